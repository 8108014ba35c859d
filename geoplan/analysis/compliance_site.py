"""A proposed project site (用地范围) for the compliance check, from a frame or a GeoJSON document.

A site check answers one question about one piece of land, so the input is held to that: exactly one feature,
polygonal, non-empty, of a plausible size. Anything else is refused with an `InputError` that says what was
found and what to do, because a check that silently took the first of several features, or measured a point,
would hand a planner a verdict about land nobody proposed. The one thing repaired rather than refused is an
invalid outline (a self-intersecting "bow-tie" drawn by hand): `make_valid` keeps its area and the repair is
reported as a note in the report; `strict=True` refuses it instead, as `geoplan import --strict` does.

Nothing here touches a store or a file: `services.compliance.load_site` reads a site's file and comes here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geoplan.crs import METRIC_CRS, STORE_CRS, is_lonlat_wgs84_family, to_store_crs
from geoplan.errors import InputError
from geoplan.geojson import frame_from_geojson

MAX_SITE_AREA_M2 = 50_000_000.0
"""50 km²: far above any single project's land (Gaoming's largest demo project is ~4 km²), far below the
district (938 km²). A larger "site" is a plan layer or a mistake (a district outline sent by accident), and
belongs in the overlap analysis, not a site check."""

MIN_SITE_AREA_M2 = 1.0
"""A site under 1 m² has no area worth checking (a collapsed or mis-scaled outline); the same 1 m² is the
overlap tolerance of the check itself."""

NAME_PROPERTIES = ("name", "名称", "project_name", "项目名称", "site_name", "title")
"""Properties that may carry the site's name, in the order they are looked for."""

_NAME_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_POLYGONAL = ("Polygon", "MultiPolygon")
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)
_NO_AREA_HINT = {
    "Point": "a point has no area: send the site's outline (用地红线) as a Polygon",
    "MultiPoint": "points have no area: send the site's outline (用地红线) as a Polygon",
    "LineString": "a line has no area: if it traces the site's outline, close it into a Polygon",
    "LinearRing": "a ring is not an area: send it as a Polygon",
    "MultiLineString": "lines have no area: if they trace the site's outline, close them into a Polygon",
}


REQUEST_BODY = "request body"
"""The `source` of a site sent as GeoJSON in an HTTP request's body: the JSON answer keeps this machine value,
a report shows `source_label`'s words instead."""


def source_label(source: str | None) -> str:
    """Where a site came from, as a reader of the report names it: the web form's outline or the file's name."""
    if not source:
        return "（未注明）"
    if source == REQUEST_BODY:
        return "网页提交的选址范围（GeoJSON）"
    return f"选址文件 {source}"


@dataclass(frozen=True)
class SiteInput:
    """A site ready for `check_site`: one row in EPSG:4490 with a valid (Multi)Polygon, and what was done to it."""

    frame: gpd.GeoDataFrame
    source: str
    name: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def geometry(self) -> shapely.Geometry:
        return self.frame.geometry.iloc[0]


# --------------------------------------------------------------------------------------------- geometry


_KIND_ZH = {"Point": "点", "MultiPoint": "多点", "LineString": "线", "MultiLineString": "多线", "LinearRing": "闭合线"}
"""Geometry types in Chinese, for the message that a site must be a polygon."""


def site_polygon(
    geom: shapely.Geometry | None, *, source: str, strict: bool = False
) -> tuple[shapely.Geometry, list[str]]:
    """The site's geometry as a valid Polygon/MultiPolygon, and notes on any repair; InputError otherwise.

    CRS-agnostic (topology only): callers measure area themselves in EPSG:4547.
    """
    if geom is None or shapely.is_missing(geom) or geom.is_empty:
        raise InputError(
            f"{source}: the site has no geometry (null or empty); send the site's outline as a Polygon",
            zh="选址没有几何图形（为空）：请提供选址范围的面（多边形）。",
        )
    geom = shapely.force_2d(geom)
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InputError(
            f"{source}: the site's coordinates are not all finite numbers", zh="选址的坐标不全是有效数字。"
        )
    geom = _polygonal(geom, source)
    if geom.is_valid:
        return geom, []
    reason = shapely.is_valid_reason(geom)
    if strict:
        raise InputError(
            f"{source}: the site's outline is invalid ({reason}); fix it, or check without strict mode to have "
            "it repaired with make_valid",
            zh=f"选址的边界无效（{reason}）：请修正，或不勾选严格模式以自动修复。",
        )
    repaired = _polygon_parts(shapely.make_valid(geom))
    if repaired is None:
        raise InputError(
            f"{source}: the site's outline is invalid ({reason}) and repairing it leaves no area",
            zh=f"选址的边界无效（{reason}），修复后没有面积：请检查选址范围。",
        )
    parts = shapely.get_num_geometries(repaired)
    note = (
        f"the site's outline was invalid ({reason}) and was repaired with make_valid into {parts} polygon "
        "part(s); check that the repaired outline is the intended site"
    )
    return repaired, [note]


def _polygonal(geom: shapely.Geometry, source: str) -> shapely.Geometry:
    """The geometry if it is polygonal (a collection of only polygons is merged); InputError naming the type."""
    kind = geom.geom_type
    if kind in _POLYGONAL:
        return geom
    if kind == "GeometryCollection":
        parts = shapely.get_parts(geom)
        kinds = sorted({p.geom_type for p in parts if not p.is_empty})
        if kinds and set(kinds) <= set(_POLYGONAL):
            return shapely.union_all(parts)
        raise InputError(
            f"{source}: the site must be a polygon, but it is a GeometryCollection of {', '.join(kinds) or 'nothing'}"
            "; send only the site's outline as a Polygon or MultiPolygon",
            zh="选址范围必须是面（多边形），文件中混有点或线：请只提供选址范围的面。",
        )
    hint = _NO_AREA_HINT.get(kind, "send the site's outline as a Polygon or MultiPolygon")
    raise InputError(
        f"{source}: the site must be a polygon, but it is a {kind}; {hint}",
        zh=f"选址范围必须是面（多边形），而文件中是{_KIND_ZH.get(kind, kind)}：请提供选址范围的面。",
    )


def _polygon_parts(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygons inside a make_valid result (dropping collapsed lines and points), or None."""
    polygons = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    nested = [q for p in shapely.get_parts(geom) if p.geom_type == "MultiPolygon" for q in shapely.get_parts(p)]
    found = polygons + [q for q in nested if not q.is_empty]
    if not found:
        return None
    return found[0] if len(found) == 1 else shapely.MultiPolygon(found)


def metric_area_m2(geom: shapely.Geometry, crs: Any = STORE_CRS) -> float:
    """Planar area in EPSG:4547 of one geometry given in `crs`."""
    return float(gpd.GeoSeries([geom], crs=crs).to_crs(METRIC_CRS).area.iloc[0])


def check_site_size(area_m2: float, *, source: str, max_area_m2: float = MAX_SITE_AREA_M2) -> None:
    """Refuse a site too small to measure or too large to be one project's land."""
    if not math.isfinite(area_m2) or area_m2 < MIN_SITE_AREA_M2:
        raise InputError(
            f"{source}: the site has (almost) no area ({area_m2:.2f} m²); send the site's outline",
            zh=f"选址几乎没有面积（{area_m2:.2f} 平方米）：请提供选址范围的面。",
        )
    if area_m2 > max_area_m2:
        raise InputError(
            f"{source}: the site covers {area_m2 / 1e6:,.1f} km², more than the {max_area_m2 / 1e6:,.0f} km² a site "
            "check accepts; a site is one project's land (compare whole plan layers with the overlap analysis)",
            zh=f"选址面积 {area_m2 / 1e6:,.1f} 平方公里，超过单个选址的上限 {max_area_m2 / 1e6:,.0f} 平方公里。",
        )


# --------------------------------------------------------------------------------------------- loading


def site_from_frame(frame: gpd.GeoDataFrame, *, source: str, strict: bool = False) -> SiteInput:
    """The one feature of a frame (any CRS; the result is in EPSG:4490) as a checked site."""
    if frame.crs is None:
        raise InputError(f"{source}: the site has no coordinate system", zh="选址没有坐标系：请指明坐标系。")
    if len(frame) == 0:
        raise InputError(
            f"{source}: no features; send one Polygon feature, the site's outline",
            zh="文件中没有任何要素：请提供一个选址范围的面。",
        )
    if len(frame) > 1:
        raise InputError(
            f"{source}: one site per check; got {len(frame)} features. If they are parts of one site, merge them "
            "into one (Multi)Polygon feature first (QGIS: Vector > Geoprocessing Tools > Dissolve); otherwise "
            "check them one at a time",
            zh=f"每次只能审查一个选址，文件中有 {len(frame)} 个要素：如属同一选址，请先合并为一个面。",
        )
    data = frame.to_crs(STORE_CRS) if not _is_store_crs(frame) else frame
    geom, notes = site_polygon(data.geometry.iloc[0], source=source, strict=strict)
    check_site_size(metric_area_m2(geom), source=source)
    name = site_name(data)
    out = gpd.GeoDataFrame({"name": [name]}, geometry=gpd.GeoSeries([geom], crs=STORE_CRS), crs=STORE_CRS)
    return SiteInput(frame=out, source=source, name=name, notes=tuple(notes))


def _is_store_crs(frame: gpd.GeoDataFrame) -> bool:
    return frame.crs is not None and is_lonlat_wgs84_family(frame.crs)


def site_name(frame: gpd.GeoDataFrame) -> str | None:
    """The first name-like property of the (single) feature, cleaned of control characters and shortened.

    The name is user text: it is only ever shown escaped (Jinja2 autoescaping, JSON), never trusted.
    """
    lookup = {str(c).strip().lower(): c for c in frame.columns if c != frame.geometry.name}
    for key in NAME_PROPERTIES:
        column = lookup.get(key)
        if column is None:
            continue
        value = frame[column].iloc[0]
        if isinstance(value, str) and value.strip():
            text = _CONTROL.sub(" ", value).strip()
            return text if len(text) <= _NAME_LIMIT else text[: _NAME_LIMIT - 1] + "…"
    return None


def site_from_geojson(
    document: Any, *, crs: str | None = None, strict: bool = False, source: str = "GeoJSON"
) -> SiteInput:
    """A site from a parsed GeoJSON Feature, FeatureCollection or bare geometry (e.g. drawn on a web map).

    GeoJSON is longitude/latitude (RFC 7946); `crs` says otherwise: "gcj02" for a polygon drawn over an AMap
    basemap or copied from AMap, an EPSG code for projected coordinates. Without `crs`, coordinates that are not
    longitude/latitude are refused with a hint (zone-prefixed Gauss-Krüger eastings are recognised).
    """
    if isinstance(document, Mapping) and document.get("type") in _GEOMETRY_TYPES:
        document = {"type": "Feature", "geometry": dict(document), "properties": {}}
    if not isinstance(document, Mapping) or document.get("type") not in ("Feature", "FeatureCollection"):
        raise InputError(
            f"{source}: expected a GeoJSON Feature, FeatureCollection or Polygon geometry",
            zh="内容不是 GeoJSON 的要素、要素集或面。",
        )
    frame = frame_from_geojson(dict(document), source=source)
    if len(frame) > 1:
        return site_from_frame(frame, source=source, strict=strict)  # refused with the one-site message
    declared = crs if crs is not None else (STORE_CRS if _looks_lonlat(frame) else None)
    frame = to_store_crs(frame.set_crs(None, allow_override=True), declared=declared, source=source)
    return site_from_frame(frame, source=source, strict=strict)


def _looks_lonlat(frame: gpd.GeoDataFrame) -> bool:
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        return True  # no coordinates: nothing to contradict; the geometry checks refuse it
    return -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0
