"""The compliance report's map as plain data for an inline SVG: the site, the hit areas, the touched features.

The map is drawn in EPSG:4547 (metres), so a scale bar is exact across it; "up" is grid north, and the north
arrow is turned by the meridian convergence at the site (about 0.6° in Gaoming, which lies west of the zone's
114°E central meridian) so it points to true north. Everything here is numbers and our own colours: the
template writes them into SVG elements with autoescaping on, and no user text is ever part of a path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from pyproj import Transformer

from geoplan.analysis.compliance import ComplianceReport
from geoplan.crs import METRIC_CRS, STORE_CRS

WIDTH = 680.0
HEIGHT = 480.0
MIN_SPAN_M = 300.0
"""A tiny site is shown with at least 300 m of context across the map."""
PADDING = 0.25
"""Context around the site and its hits, as a share of their extent on each side."""

HIT_COLOURS = ("#d7301f", "#6a3d9a", "#e66101", "#1f78b4", "#b15928", "#c51b7d", "#33a02c", "#525252")
"""Hit areas, one colour per rule (strong, told apart in print)."""
TOUCHED_FALLBACK = ("#a6dba0", "#fee08b", "#fdd0a2", "#c6dbef", "#dadaeb", "#fbb4b9")
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NICE_STEPS = (1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Shape:
    """One SVG path: `d` holds only numbers and path commands."""

    d: str
    fill: str
    stroke: str
    fill_opacity: float
    stroke_width: float
    dash: str = ""


@dataclass(frozen=True)
class LegendEntry:
    label: str
    fill: str
    stroke: str
    fill_opacity: float
    dash: str = ""


@dataclass(frozen=True)
class ScaleBar:
    x: float
    y: float
    length: float
    label: str


@dataclass(frozen=True)
class SiteMap:
    """Everything the template needs to draw the map."""

    width: float
    height: float
    touched: tuple[Shape, ...]
    hits: tuple[Shape, ...]
    site: Shape
    legend: tuple[LegendEntry, ...]
    scale: ScaleBar
    north_rotation_deg: float
    span_m: float


class _Frame:
    """Map metres to SVG units: a uniform scale, y flipped, the extent centred in the drawing."""

    def __init__(self, bounds: tuple[float, float, float, float], width: float, height: float) -> None:
        minx, miny, maxx, maxy = bounds
        span_x = max(maxx - minx, MIN_SPAN_M)
        span_y = max(maxy - miny, MIN_SPAN_M)
        cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        span_x, span_y = span_x * (1 + 2 * PADDING), span_y * (1 + 2 * PADDING)
        self.scale = min(width / span_x, height / span_y)
        self.minx = cx - width / self.scale / 2.0
        self.maxy = cy + height / self.scale / 2.0
        self.box = (self.minx, self.maxy - height / self.scale, self.minx + width / self.scale, self.maxy)

    def path(self, geom: shapely.Geometry) -> str:
        """SVG path data for the polygons in `geom` (rings closed; holes drawn with the even-odd rule)."""
        commands: list[str] = []
        for polygon in _polygons(geom):
            for ring in (polygon.exterior, *polygon.interiors):
                points = [
                    f"{(x - self.minx) * self.scale:.1f},{(self.maxy - y) * self.scale:.1f}"
                    for x, y in ring.coords[:-1]
                ]
                if len(points) >= 3:
                    commands.append("M" + "L".join(points) + "Z")
        return "".join(commands)

    def clip(self, geom: shapely.Geometry) -> shapely.Geometry:
        """Clip to a little beyond the frame and drop detail finer than a fifth of a drawing unit."""
        minx, miny, maxx, maxy = self.box
        margin = 10.0 / self.scale
        clipped = shapely.clip_by_rect(geom, minx - margin, miny - margin, maxx + margin, maxy + margin)
        return shapely.simplify(clipped, 0.2 / self.scale, preserve_topology=True)


def _polygons(geom: shapely.Geometry | None) -> list[shapely.Polygon]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, shapely.Polygon):
        return [geom]
    if isinstance(geom, shapely.MultiPolygon | shapely.GeometryCollection):
        return [p for part in geom.geoms for p in _polygons(part)]
    return []  # lines and points left by clipping have no area to draw


def _colour(value: object, fallback: str) -> str:
    return value if isinstance(value, str) and _HEX_COLOUR.match(value) else fallback


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k m) close to a quarter of the map's width."""
    target = span_m / 4.0
    power = 10.0 ** math.floor(math.log10(target))
    best = power
    for step in _NICE_STEPS:
        if step * power <= target:
            best = step * power
    return best


def _length_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def true_north_rotation(site: shapely.Geometry) -> float:
    """Degrees clockwise from grid north (map up) to true north at the site's centre, in EPSG:4547."""
    centre = site.centroid
    to_lonlat = Transformer.from_crs(METRIC_CRS, STORE_CRS, always_xy=True)
    to_metric = Transformer.from_crs(STORE_CRS, METRIC_CRS, always_xy=True)
    lon, lat = to_lonlat.transform(centre.x, centre.y)
    x0, y0 = to_metric.transform(lon, lat)
    x1, y1 = to_metric.transform(lon, lat + 0.01)
    return math.degrees(math.atan2(x1 - x0, y1 - y0))


def site_map(
    report: ComplianceReport,
    *,
    layer_colours: dict[str, str] | None = None,
    width: float = WIDTH,
    height: float = HEIGHT,
) -> SiteMap:
    """The map of one report. `layer_colours` (layer -> #rrggbb, e.g. the catalogue's styles) colours the
    touched features; anything not a plain hex colour falls back to a light palette."""
    site = report.site_geometry
    extent = shapely.union_all([site, *(h.geometry for h in report.hits)])
    frame = _Frame(tuple(float(v) for v in extent.bounds), width, height)  # type: ignore[arg-type]
    legend: list[LegendEntry] = []
    touched: list[Shape] = []
    for index, layer in enumerate(report.touched_layers):
        colour = _colour((layer_colours or {}).get(layer.layer), TOUCHED_FALLBACK[index % len(TOUCHED_FALLBACK)])
        geoms = [frame.clip(g) for g in layer.geometries]
        touched.extend(Shape(frame.path(g), colour, colour, 0.25, 0.8, "4 3") for g in geoms if not g.is_empty)
        legend.append(LegendEntry(f"{layer.title_zh}（{layer.layer}，管控图斑）", colour, colour, 0.25, "4 3"))
    hits = _hit_shapes(report, frame, legend)
    legend.insert(0, LegendEntry("拟选址用地范围", "#000000", "#000000", 0.06))
    span = width / frame.scale
    length = nice_length(span)
    return SiteMap(
        width=width,
        height=height,
        touched=tuple(touched),
        hits=tuple(hits),
        site=Shape(frame.path(site), "#000000", "#000000", 0.06, 1.6),
        legend=tuple(legend),
        scale=ScaleBar(x=16.0, y=height - 22.0, length=length * frame.scale, label=_length_label(length)),
        north_rotation_deg=round(true_north_rotation(site), 2),
        span_m=span,
    )


def _hit_shapes(report: ComplianceReport, frame: _Frame, legend: list[LegendEntry]) -> Sequence[Shape]:
    """Hit areas, drawn over the site with a stroke of their own colour so a hit on a narrow corridor still
    shows; listed most severe first, drawn most severe last (on top)."""
    shapes = []
    for index, hit in enumerate(report.hits):
        colour = HIT_COLOURS[index % len(HIT_COLOURS)]
        opacity = 0.3 if hit.is_warning else 0.6
        shapes.append(Shape(frame.path(frame.clip(hit.geometry)), colour, colour, opacity, 2.5))
        what = "超出部分" if hit.relation == "difference" else "重叠区域"
        legend.append(LegendEntry(f"{hit.rule} {hit.title_zh}（{what}）", colour, colour, opacity))
    return shapes[::-1]
