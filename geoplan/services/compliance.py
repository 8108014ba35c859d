"""The compliance check against a store: read what the rules need near the site, check, say which data it used.

The CLI and the web API both call `check_site_in_store`, so they read the same layers the same way; `load_site`
reads a proposed site from the caller's file (any format an import reads) or a GeoJSON document. Only the
features whose bounding box meets the site are read (the stores' spatial indexes do the work), and nothing is
ever written: a site check is a question, not an edit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import shapely

from geoplan import __version__
from geoplan.analysis.compliance import ComplianceReport, check_site
from geoplan.analysis.compliance_site import SiteInput, site_from_frame, site_from_geojson
from geoplan.analysis.rules import ConflictRule
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, is_lonlat_wgs84_family
from geoplan.errors import InputError
from geoplan.io import DEFAULT_MAX_BYTES, read_file
from geoplan.services import provenance
from geoplan.services.ingest import district_outline
from geoplan.storage import LayerStore, is_postgis_url
from geoplan.storage.base import vector_layer

log = logging.getLogger(__name__)

DISTRICT_LAYER = "district"
CONTEXT_MARGIN_M = 2000.0
"""Roads are read this far around the site (at least): more than the report's map shows around any site."""


@dataclass(frozen=True)
class SiteContext:
    """What the report's map shows around a site, whatever the verdict, in EPSG:4547: the district, the towns
    (name, outline) and the roads near the site (class, line)."""

    district: shapely.Geometry | None = None
    towns: tuple[tuple[str, shapely.Geometry], ...] = ()
    roads: tuple[tuple[str, shapely.Geometry], ...] = ()


def site_context(store: LayerStore, site: shapely.Geometry) -> SiteContext:
    """The district, every town and the roads within CONTEXT_MARGIN_M (or the site's own size) of `site`
    (EPSG:4547); a layer the store lacks or holds empty is left out."""
    district = district_outline(store)
    towns: tuple[tuple[str, shapely.Geometry], ...] = ()
    if "towns" in store.catalog and store.count("towns"):
        frame = store.read("towns").to_crs(METRIC_CRS)
        towns = tuple((str(n), g) for n, g in zip(frame["town_name"], frame.geometry, strict=True))
    roads: tuple[tuple[str, shapely.Geometry], ...] = ()
    if "roads" in store.catalog:
        minx, miny, maxx, maxy = site.bounds
        margin = max(CONTEXT_MARGIN_M, maxx - minx, maxy - miny)
        window = gpd.GeoSeries(
            [shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)], crs=METRIC_CRS
        )
        bbox = tuple(float(v) for v in window.to_crs(STORE_CRS).total_bounds)
        found = store.read("roads", bbox=bbox)  # type: ignore[arg-type]
        if len(found):
            found = found.to_crs(METRIC_CRS)
            roads = tuple(
                (str(c), g) for c, g in zip(found["road_class"], found.geometry, strict=True) if g is not None
            )
    return SiteContext(
        district=None if district is None else _metric(district),
        towns=towns,
        roads=roads,
    )


def _metric(geom: shapely.Geometry) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=STORE_CRS).to_crs(METRIC_CRS).iloc[0]


def site_rule_layers(rules: Sequence[ConflictRule], catalog: Catalog) -> list[str]:
    """The layers B of the rules that apply to a site, each checked to be a vector layer of the catalogue."""
    names = list(dict.fromkeys(rule.layer_b for rule in rules if rule.site_check))
    if not names:
        raise InputError("none of the rules applies to a site (no rule has site_check: true)")
    for name in names:
        vector_layer(catalog, name)
    return names


def store_label(url: str) -> str:
    """A store named for a report without secrets: the GeoPackage's file name, or PostGIS host/database."""
    if is_postgis_url(url):
        parts = urlsplit(url)
        return f"PostGIS {parts.hostname or 'localhost'}/{parts.path.lstrip('/')}"
    return f"GeoPackage {Path(url).name}"


def check_site_in_store(
    store: LayerStore,
    site: gpd.GeoDataFrame,
    *,
    rules: Sequence[ConflictRule],
    notes: Sequence[str] = (),
    source: str | None = None,
    rules_source: str | None = None,
) -> ComplianceReport:
    """Check a one-feature site frame against the store's control layers and district; read-only.

    `notes` (e.g. `SiteInput.notes` from `load_site`) and `source` (the site's file name) go into the report;
    `rules_source` names the rules file in it. The report's `data` records the store and each layer's version,
    so a printed report can be traced to the data it was computed from.
    """
    if site.crs is None:
        raise InputError("the site has no coordinate system")
    site_4490 = site if is_lonlat_wgs84_family(site.crs) else site.to_crs(STORE_CRS)
    names = site_rule_layers(rules, store.catalog)
    minx, miny, maxx, maxy = (float(v) for v in site_4490.total_bounds)
    layers = {name: store.read(name, bbox=(minx, miny, maxx, maxy)) for name in names}
    district = district_outline(store)
    all_notes = list(notes)
    if district is None:
        all_notes.append("the store holds no district outline, so the site's location was not checked against it")
    for name in names:
        if store.count(name) == 0:
            all_notes.append(
                f"layer {name} holds no features at all: its rules compared the site with an empty layer, so their "
                "result says nothing about the land"
            )
    report = check_site(
        site=site_4490.set_crs(STORE_CRS, allow_override=True),
        layers=layers,
        rules=rules,
        district=district,
        catalog=store.catalog,
        notes=all_notes,
    )
    versioned = [*names, DISTRICT_LAYER] if DISTRICT_LAYER in store.catalog else names
    data: dict[str, Any] = {
        "store": store_label(store.url),
        "layer_versions": {name: store.layer_version(name) for name in versioned},
        "rules": rules_source,
        "geoplan_version": __version__,
    }
    # The catalogue flags the layers the demo fills; whether they still hold demo data is the audit log's answer.
    synthetic = provenance.synthetic_now(store)
    touched = tuple(replace(t, synthetic=t.layer in synthetic) for t in report.touched_layers)
    log.info("site check of %s: %s, %d hit(s)", source or "site", report.verdict, len(report.hits))
    return replace(
        report,
        data=data,
        site_source=source,
        touched_layers=touched,
        synthetic_layers=tuple(name for name in report.synthetic_layers if name in synthetic),
    )


def layer_colours(catalog: Catalog) -> dict[str, str]:
    """Each layer's map colour from its catalogue style, for the report's map."""
    return {layer.name: str(layer.style["color"]) for layer in catalog if "color" in layer.style}


def site_from_file(
    path: Path, *, crs: str | None = None, strict: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
) -> SiteInput:
    """A site from any file `geoplan.io.read_file` reads (GeoJSON, GeoPackage, zipped Shapefile, KML, CSV with
    WKT, Excel), with the same CRS rules as an import: the file's own CRS, else `crs` (gcj02 for AMap data)."""
    path = Path(path)
    frame = read_file(path, crs=crs, max_bytes=max_bytes)
    return site_from_frame(frame, source=path.name, strict=strict)


def load_site(
    source: Path | Mapping[str, Any],
    *,
    crs: str | None = None,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str = "GeoJSON",
) -> SiteInput:
    """A site from a file path (any supported format) or a parsed GeoJSON document; `name` labels a document
    in messages. See `site_from_file` and `site_from_geojson`."""
    if isinstance(source, Path):
        return site_from_file(source, crs=crs, strict=strict, max_bytes=max_bytes)
    return site_from_geojson(source, crs=crs, strict=strict, source=name)
