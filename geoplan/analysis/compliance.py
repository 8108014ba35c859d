"""The site compliance check (建设项目选址合规性审查): a proposed site against the control layers.

For every conflict rule marked `site_check: true` the site stands in for the rule's layer A:

- an *intersection* rule (the site must not overlap layer B, e.g. an ecological red line) hits where the site
  overlaps the layer-B features that pass the rule's `filter_b`;
- a *difference* rule (the site must lie inside layer B, e.g. the urban development boundary) hits where the
  site lies outside the union of layer B.

A rule's `filter_a` describes layer-A features and is not applied: a proposed site has no plan attributes.

All measuring happens in EPSG:4547 (CGCS2000 / Gauss-Krüger CM 114E); areas are also given on the ellipsoid,
as official land statistics use. The verdict fails on any hit of severity high or medium; low-severity hits are
warnings. A rule with no hit is listed too, so the report shows what was checked and not only what failed.

Tolerance: an overlap (or an outside part) under `MIN_OVERLAP_M2` (1 m²) is not a hit, and a feature that
shares less than that with the site is not "touched". A site digitised along a red line shares an edge with it,
and reprojection leaves slivers of a few cm² to a fraction of a m² along such an edge; 1 m² is far below any
land a regulation cares about (a parking space is 12.5 m²) and far above that noise.

`check_site` is pure: keyword-only, no mutation of its inputs, no store, no settings. `services.compliance`
reads the layers from a store and the site's file; `compliance_site` checks the site; `reporting.compliance_html`
renders the report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from geoplan.analysis.compliance_site import (
    MAX_SITE_AREA_M2,
    check_site_size,
    site_name,
    site_polygon,
    source_label,
)
from geoplan.analysis.rules import ConflictRule, filter_mask
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, crs_equivalent, ellipsoidal_area_m2, geometries_gcj02_to_wgs84
from geoplan.errors import CRSError, InputError

log = logging.getLogger(__name__)

MIN_OVERLAP_M2 = 1.0
"""Overlaps below 1 m² are floating noise along shared edges, not conflicts (see the module docstring)."""

FAILING_SEVERITIES = frozenset({"high", "medium"})
"""Severities that fail the check; anything else (low) is a warning."""

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


# --------------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class RuleRef:
    """What the report says about a rule, hit or not: its code, titles, severity, control layer and basis."""

    rule: str
    title_zh: str
    title_en: str
    severity: str
    relation: str
    layer: str
    layer_title_zh: str
    basis: str

    @classmethod
    def fields_of(cls, rule: ConflictRule, catalog: Catalog | None) -> dict[str, str]:
        return {
            "rule": rule.code,
            "title_zh": rule.title_zh,
            "title_en": rule.title_en,
            "severity": rule.severity,
            "relation": rule.relation,
            "layer": rule.layer_b,
            "layer_title_zh": _layer_title(rule.layer_b, catalog),
            "basis": rule.basis,
        }


@dataclass(frozen=True)
class RuleHit(RuleRef):
    """One rule the site breaks: where (the overlap, or the part outside), how much, and which features."""

    overlap_m2: float
    overlap_ellipsoid_m2: float
    overlap_pct: float
    feature_ids: tuple[str, ...]
    geometry: shapely.Geometry = field(repr=False, compare=False)
    """The hit area in EPSG:4547 (for the report's map)."""

    @property
    def is_warning(self) -> bool:
        return self.severity not in FAILING_SEVERITIES

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "severity": self.severity,
            "relation": self.relation,
            "layer": self.layer,
            "layer_title_zh": self.layer_title_zh,
            "basis": self.basis,
            "overlap_m2": round(self.overlap_m2, 1),
            "overlap_ellipsoid_m2": round(self.overlap_ellipsoid_m2, 1),
            "overlap_pct": round(self.overlap_pct, 2),
            "feature_ids": list(self.feature_ids),
        }


@dataclass(frozen=True)
class CheckedRule(RuleRef):
    """A rule that was applied to the site, with or without a hit."""

    hit: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title_zh": self.title_zh,
            "severity": self.severity,
            "relation": self.relation,
            "layer": self.layer,
            "basis": self.basis,
            "hit": self.hit,
        }


@dataclass(frozen=True)
class TouchedLayer:
    """A control layer the site overlaps (by at least the tolerance), whatever the rules' filters say."""

    layer: str
    title_zh: str
    synthetic: bool
    feature_ids: tuple[str, ...]
    overlap_m2: float
    geometries: tuple[shapely.Geometry, ...] = field(repr=False, compare=False)
    """The touched features, whole, in EPSG:4547 (the map clips them to its frame)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "title_zh": self.title_zh,
            "synthetic": self.synthetic,
            "feature_count": len(self.feature_ids),
            "feature_ids": list(self.feature_ids),
            "overlap_m2": round(self.overlap_m2, 1),
        }


@dataclass(frozen=True)
class ComplianceReport:
    """The outcome of one site check. `to_dict` is the JSON form; areas are rounded only there."""

    site_area_m2: float
    site_area_ellipsoid_m2: float
    passed: bool
    hits: tuple[RuleHit, ...]
    checked_rules: tuple[CheckedRule, ...]
    touched_layers: tuple[TouchedLayer, ...]
    notes: tuple[str, ...]
    generated_at: str
    site_geometry: shapely.Geometry = field(repr=False, compare=False)
    """The site in EPSG:4547."""
    site_name: str | None = None
    site_source: str | None = None
    site_bounds: tuple[float, float, float, float] | None = None
    """The site's bounds in longitude/latitude (EPSG:4490)."""
    outside_district_m2: float | None = None
    """Area of the site outside the district, when a district was given."""
    synthetic_layers: tuple[str, ...] = ()
    """Checked layers the catalogue marks synthetic: the report is then marked as based on demo data."""
    tolerance_m2: float = MIN_OVERLAP_M2
    data: Mapping[str, Any] = field(default_factory=dict)
    """Where the data came from (store, layer versions, rules file), filled in by the caller that read it."""

    @property
    def verdict(self) -> str:
        """'fail', 'pass_with_warnings' or 'pass'."""
        if not self.passed:
            return "fail"
        return "pass_with_warnings" if self.hits else "pass"

    @property
    def warnings(self) -> tuple[RuleHit, ...]:
        return tuple(h for h in self.hits if h.is_warning)

    @property
    def synthetic(self) -> bool:
        return bool(self.synthetic_layers)

    @property
    def rules_without_hits(self) -> tuple[CheckedRule, ...]:
        return tuple(r for r in self.checked_rules if not r.hit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": {
                "name": self.site_name,
                "source": self.site_source,
                "source_label": source_label(self.site_source),
                "bounds_lonlat": [round(v, 7) for v in self.site_bounds] if self.site_bounds else None,
            },
            "site_area_m2": round(self.site_area_m2, 1),
            "site_area_ellipsoid_m2": round(self.site_area_ellipsoid_m2, 1),
            "pass": self.passed,
            "verdict": self.verdict,
            "hits": [h.to_dict() for h in self.hits],
            "checked_rules": [r.to_dict() for r in self.checked_rules],
            "rules_without_hits": [r.rule for r in self.rules_without_hits],
            "touched_layers": [t.to_dict() for t in self.touched_layers],
            "outside_district_m2": None if self.outside_district_m2 is None else round(self.outside_district_m2, 1),
            "notes": list(self.notes),
            "tolerance_m2": self.tolerance_m2,
            "synthetic_data": self.synthetic,
            "synthetic_layers": list(self.synthetic_layers),
            "measured_in": METRIC_CRS,
            "generated_at": self.generated_at,
            "data": dict(self.data),
        }


# --------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _LayerOverlap:
    """One control layer near the site: its candidate features in EPSG:4547 and their overlap with the site."""

    frame: gpd.GeoDataFrame
    ids: tuple[str, ...]
    overlap_m2: np.ndarray


def check_site(
    *,
    site: gpd.GeoDataFrame,
    layers: Mapping[str, gpd.GeoDataFrame],
    rules: Sequence[ConflictRule],
    district: shapely.Geometry | None,
    catalog: Catalog | None = None,
    notes: Sequence[str] = (),
    min_overlap_m2: float = MIN_OVERLAP_M2,
    max_site_area_m2: float = MAX_SITE_AREA_M2,
) -> ComplianceReport:
    """Check one proposed site (a one-feature frame) against the `site_check` rules.

    `layers` holds every layer B those rules name (more is fine; features far from the site may be left out);
    the site, the layers and `district` must share one CRS. `catalog` supplies layer titles, id fields and the
    synthetic flags; `notes` (e.g. from `load_site`) are carried into the report. Raises InputError for a site
    that is not one polygon, too large, or entirely outside the district.
    """
    site_rules = [rule for rule in rules if rule.site_check]
    if not site_rules:
        raise InputError("none of the rules applies to a site (no rule has site_check: true)")
    crs = _common_crs(site, layers, site_rules)
    if len(site) != 1:
        raise InputError(f"one site per check; got {len(site)} features (merge the parts of one site first)")
    geom, repairs = site_polygon(site.geometry.iloc[0], source="site", strict=False)
    site_m = _to_metric([geom], crs)[0]
    site_area = float(site_m.area)
    check_site_size(site_area, source="site", max_area_m2=max_site_area_m2)
    all_notes = [*notes, *repairs]
    outside_m2 = _outside_district(geom, site_m, site_area, district, crs, all_notes, min_overlap_m2)

    overlaps = {
        name: _layer_overlap(name, layers[name], geom, site_m, catalog)
        for name in dict.fromkeys(rule.layer_b for rule in site_rules)
    }
    hits: list[RuleHit] = []
    checked: list[CheckedRule] = []
    for rule in site_rules:
        hit = _apply_rule(rule, overlaps[rule.layer_b], site_m, site_area, catalog, min_overlap_m2)
        if hit is not None:
            hits.append(hit)
        checked.append(_checked(rule, catalog, hit is not None))
    hits.sort(key=lambda h: (_SEVERITY_ORDER.get(h.severity, 9), -h.overlap_m2))
    lonlat = _to_lonlat([geom], crs)[0]
    return ComplianceReport(
        site_area_m2=site_area,
        site_area_ellipsoid_m2=float(ellipsoidal_area_m2([lonlat])[0]),
        passed=not any(h.severity in FAILING_SEVERITIES for h in hits),
        hits=tuple(hits),
        checked_rules=tuple(checked),
        touched_layers=tuple(
            _touched(name, o, site_m, catalog, min_overlap_m2)
            for name, o in overlaps.items()
            if (o.overlap_m2 >= min_overlap_m2).any()
        ),
        notes=tuple(all_notes),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        site_geometry=site_m,
        site_name=site_name(site),
        site_bounds=tuple(float(v) for v in lonlat.bounds),  # type: ignore[arg-type]
        outside_district_m2=outside_m2,
        synthetic_layers=_synthetic(overlaps, catalog),
        tolerance_m2=min_overlap_m2,
    )


def _common_crs(site: gpd.GeoDataFrame, layers: Mapping[str, gpd.GeoDataFrame], rules: Sequence[ConflictRule]) -> CRS:
    """The one CRS of the site and every layer the rules need; mixed or missing CRSs are refused."""
    if site.crs is None:
        raise CRSError("the site has no coordinate system")
    crs = CRS.from_user_input(site.crs)
    for rule in rules:
        if rule.layer_b not in layers:
            raise InputError(f"rule {rule.code} needs layer '{rule.layer_b}', which was not given")
        frame = layers[rule.layer_b]
        if frame.crs is None or not crs_equivalent(CRS.from_user_input(frame.crs), crs):
            raise CRSError(f"layer '{rule.layer_b}' is in {frame.crs}, the site in {site.crs}: one CRS, please")
    return crs


def _to_metric(geoms: Sequence[shapely.Geometry], crs: CRS) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(list(geoms), crs=crs).to_crs(METRIC_CRS).to_numpy(), dtype=object)


def _to_lonlat(geoms: Sequence[shapely.Geometry], crs: CRS) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(list(geoms), crs=crs).to_crs(STORE_CRS).to_numpy(), dtype=object)


def _outside_district(
    geom: shapely.Geometry,
    site_m: shapely.Geometry,
    site_area: float,
    district: shapely.Geometry | None,
    crs: CRS,
    notes: list[str],
    tolerance: float,
) -> float | None:
    """Area of the site outside the district; refuses a site wholly outside, notes a site partly outside."""
    if district is None:
        return None
    district_m = _to_metric([district], crs)[0]
    outside = float(shapely.difference(site_m, district_m).area)
    if site_area - outside < tolerance:
        raise InputError(f"the site lies outside the district{_outside_hint(geom, district, crs)}")
    if outside < tolerance:
        return 0.0
    share = 100.0 * outside / site_area
    notes.append(
        f"{share:.1f}% of the site ({outside:,.0f} m²) lies outside the district; the control layers cover only "
        "the district, so that part is unchecked"
    )
    return outside


def _outside_hint(geom: shapely.Geometry, district: shapely.Geometry, crs: CRS) -> str:
    """A GCJ-02 site (AMap) lands ~600 m off; when un-shifting it lands inside, say so."""
    if not crs_equivalent(crs, CRS.from_user_input(STORE_CRS)):
        return ""
    shifted = geometries_gcj02_to_wgs84(np.array([geom], dtype=object))[0]
    if shapely.intersects(shifted, district):
        return "; shifted from GCJ-02 it falls inside, so it looks like AMap/Gaode coordinates: pass crs gcj02"
    centre_lon, centre_lat = shapely.centroid(geom).x, shapely.centroid(geom).y
    return f" (its centre is at {centre_lon:.4f}, {centre_lat:.4f}); is its coordinate system right?"


def _id_field(name: str, frame: gpd.GeoDataFrame, catalog: Catalog | None) -> str | None:
    if catalog is not None and name in catalog:
        id_field = catalog.get(name).id_field
        if id_field is not None and id_field in frame.columns:
            return id_field
    return next((str(c) for c in frame.columns if str(c).endswith("_id")), None)


def _layer_overlap(
    name: str, frame: gpd.GeoDataFrame, geom: shapely.Geometry, site_m: shapely.Geometry, catalog: Catalog | None
) -> _LayerOverlap:
    """The layer's features that intersect the site (found with the spatial index), in EPSG:4547."""
    candidates = frame.iloc[frame.sindex.query(geom, predicate="intersects")] if len(frame) else frame
    metric = candidates.to_crs(METRIC_CRS)
    id_field = _id_field(name, metric, catalog)
    ids = tuple(str(v) for v in (metric[id_field] if id_field else metric.index))
    geoms = np.asarray(metric.geometry.to_numpy(), dtype=object)
    areas = (
        np.asarray(shapely.area(shapely.intersection(site_m, geoms)), dtype="float64") if len(geoms) else np.zeros(0)
    )
    return _LayerOverlap(frame=metric, ids=ids, overlap_m2=areas)


def _apply_rule(
    rule: ConflictRule,
    overlap: _LayerOverlap,
    site_m: shapely.Geometry,
    site_area: float,
    catalog: Catalog | None,
    tolerance: float,
) -> RuleHit | None:
    selected = filter_mask(overlap.frame, rule.filter_b)
    geoms = np.asarray(overlap.frame.geometry.to_numpy(), dtype=object)
    if rule.relation == "intersection":
        touched = selected & (overlap.overlap_m2 >= tolerance)
        if not touched.any():
            return None
        area_geom = shapely.intersection(site_m, shapely.union_all(geoms[touched]))
        ids = tuple(sorted(i for i, keep in zip(overlap.ids, touched, strict=True) if keep))
    elif rule.relation == "difference":
        cover = shapely.union_all(geoms[selected]) if selected.any() else shapely.Polygon()
        area_geom = shapely.difference(site_m, cover)
        ids = ()
    else:
        raise InputError(f"rule {rule.code}: unknown relation {rule.relation!r}")
    area_geom = _polygonal_part(area_geom)
    area = float(area_geom.area)
    if area < tolerance:
        return None
    lonlat = gpd.GeoSeries([area_geom], crs=METRIC_CRS).to_crs(STORE_CRS).to_numpy()
    return RuleHit(
        **RuleRef.fields_of(rule, catalog),
        overlap_m2=area,
        overlap_ellipsoid_m2=float(ellipsoidal_area_m2(lonlat)[0]),
        overlap_pct=min(100.0, 100.0 * area / site_area),
        feature_ids=ids,
        geometry=area_geom,
    )


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """Overlay results can carry stray lines and points along shared edges; only areas count."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polygons = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polygons) if polygons else shapely.Polygon()


def _layer_title(name: str, catalog: Catalog | None) -> str:
    return catalog.get(name).title_zh if catalog is not None and name in catalog else name


def _checked(rule: ConflictRule, catalog: Catalog | None, hit: bool) -> CheckedRule:
    return CheckedRule(**RuleRef.fields_of(rule, catalog), hit=hit)


def _touched(
    name: str, overlap: _LayerOverlap, site_m: shapely.Geometry, catalog: Catalog | None, tolerance: float
) -> TouchedLayer:
    keep = overlap.overlap_m2 >= tolerance
    geoms = np.asarray(overlap.frame.geometry.to_numpy(), dtype=object)[keep]
    shared = float(shapely.intersection(site_m, shapely.union_all(geoms)).area)
    return TouchedLayer(
        layer=name,
        title_zh=_layer_title(name, catalog),
        synthetic=bool(catalog is not None and name in catalog and catalog.get(name).synthetic),
        feature_ids=tuple(sorted(i for i, k in zip(overlap.ids, keep, strict=True) if k)),
        overlap_m2=shared,
        geometries=tuple(geoms),
    )


def _synthetic(overlaps: Mapping[str, _LayerOverlap], catalog: Catalog | None) -> tuple[str, ...]:
    if catalog is None:
        return ()
    return tuple(name for name in overlaps if name in catalog and catalog.get(name).synthetic)
