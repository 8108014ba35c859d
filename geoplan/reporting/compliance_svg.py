"""The compliance report's map as plain data for an inline SVG: the site, the hit areas, the touched features,
and around them, whatever the verdict, the context a reader finds the place by: the roads near the site, the town
and district boundaries with the towns' names, and a small locator map of the whole district.

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
from geoplan.services.compliance import SiteContext

WIDTH = 680.0
HEIGHT = 480.0
MIN_SPAN_M = 800.0
"""A small site is shown with at least 800 m across the map: enough for the streets around it."""
PADDING = 0.25
"""Context around the site and its hits, as a share of their extent on each side."""

HIT_COLOURS = ("#d7301f", "#6a3d9a", "#e66101", "#1f78b4", "#b15928", "#c51b7d", "#33a02c", "#525252")
"""Hit areas, one colour per rule (strong, told apart in print)."""
TOUCHED_FALLBACK = ("#a6dba0", "#fee08b", "#fdd0a2", "#c6dbef", "#dadaeb", "#fbb4b9")
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NICE_STEPS = (1.0, 2.0, 5.0)
ROAD_COLOUR, TOWN_COLOUR, DISTRICT_COLOUR = "#b4b4b4", "#6a3d9a", "#333333"
ROAD_WIDTHS = {"高速公路": 2.4, "主干路": 1.8, "次干路": 1.3}
"""Drawing width of a road by class (others 0.8): light grey lines, context rather than content."""
FULL_FRAME = 0.9
"""A touched feature covering this share of the map is outlined, not filled: a fill would colour the whole map.
Any other is filled lightly (12 %): the site, the hits and the streets must read through it."""
INSET = (8.0, 8.0, 150.0, 124.0)
"""The locator map's box (x, y, width, height) in the map's upper left corner."""
INSET_CAPTION = 14.0
"""The strip at the bottom of the locator map for its caption."""
LABEL_MIN_SHARE = 0.03
"""A town is named on the map when at least this share of the map lies in it."""


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
    line: bool = False
    """Drawn as a line swatch (roads, boundaries), not a box."""


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Inset:
    """The locator map: the district and its towns, the main map's extent as a box and the site as a dot."""

    x: float
    y: float
    width: float
    height: float
    district: str
    towns: str
    extent: tuple[float, float, float, float]
    site: tuple[float, float]


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
    context: tuple[Shape, ...] = ()
    """Roads, then town and district boundaries (lines, no fill), drawn under everything else."""
    labels: tuple[Label, ...] = ()
    inset: Inset | None = None


class _Frame:
    """Map metres to SVG units: a uniform scale, y flipped, the extent centred in the drawing."""

    def __init__(
        self,
        bounds: tuple[float, float, float, float],
        width: float,
        height: float,
        *,
        min_span: float = MIN_SPAN_M,
        padding: float = PADDING,
    ) -> None:
        minx, miny, maxx, maxy = bounds
        span_x = max(maxx - minx, min_span)
        span_y = max(maxy - miny, min_span)
        cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        span_x, span_y = span_x * (1 + 2 * padding), span_y * (1 + 2 * padding)
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

    def point(self, x: float, y: float) -> tuple[float, float]:
        return round((x - self.minx) * self.scale, 1), round((self.maxy - y) * self.scale, 1)

    def line_path(self, geom: shapely.Geometry) -> str:
        """SVG path data for the lines in `geom` (a polygon contributes its rings), open: drawn without fill."""
        commands: list[str] = []
        for line in _lines(geom):
            points = [f"{(x - self.minx) * self.scale:.1f},{(self.maxy - y) * self.scale:.1f}" for x, y in line.coords]
            if len(points) >= 2:
                commands.append("M" + "L".join(points))
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


def _lines(geom: shapely.Geometry | None) -> list[shapely.LineString]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, shapely.LineString | shapely.LinearRing):
        return [shapely.LineString(geom.coords)]
    if isinstance(geom, shapely.Polygon):
        return [shapely.LineString(r.coords) for r in (geom.exterior, *geom.interiors)]
    if isinstance(geom, shapely.MultiLineString | shapely.MultiPolygon | shapely.GeometryCollection):
        return [line for part in geom.geoms for line in _lines(part)]
    return []


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
    context: SiteContext | None = None,
    width: float = WIDTH,
    height: float = HEIGHT,
) -> SiteMap:
    """The map of one report. `layer_colours` (layer -> #rrggbb, e.g. the catalogue's styles) colours the
    touched features; anything not a plain hex colour falls back to a light palette. `context` (the store's
    district, towns and nearby roads: services.compliance.site_context) is drawn around the site."""
    site = report.site_geometry
    extent = shapely.union_all([site, *(h.geometry for h in report.hits)])
    frame = _Frame(tuple(float(v) for v in extent.bounds), width, height)  # type: ignore[arg-type]
    box = shapely.box(*frame.box)
    legend: list[LegendEntry] = []
    touched: list[Shape] = []
    for index, layer in enumerate(report.touched_layers):
        colour = _colour((layer_colours or {}).get(layer.layer), TOUCHED_FALLBACK[index % len(TOUCHED_FALLBACK)])
        geoms = [g for g in (frame.clip(g) for g in layer.geometries) if not g.is_empty]
        # A feature the whole map lies in (the development boundary around a site that passes) is outlined
        # only: filled, it would turn the map into one coloured box.
        whole = any(shapely.area(shapely.intersection(g, box)) >= FULL_FRAME * box.area for g in geoms)
        opacity = 0.0 if whole else 0.12
        touched.extend(Shape(frame.path(g), colour, colour, opacity, 1.2, "4 3") for g in geoms)
        where = "，覆盖整个图幅" if whole else ""
        legend.append(
            LegendEntry(f"{layer.title_zh}（{layer.layer}，管控图斑{where}）", colour, colour, opacity, "4 3")
        )
    hits = _hit_shapes(report, frame, legend)
    legend.insert(0, LegendEntry("拟选址用地范围", "#000000", "#000000", 0.06))
    lines, labels = _context(context, frame, box, legend, avoid=extent)
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
        context=lines,
        labels=labels,
        inset=_inset(context, frame, site),
    )


def _context(
    context: SiteContext | None,
    frame: _Frame,
    box: shapely.Geometry,
    legend: list[LegendEntry],
    *,
    avoid: shapely.Geometry,
) -> tuple[tuple[Shape, ...], tuple[Label, ...]]:
    """Roads (light, by class), town and district boundaries, and the name of every town the map shows, placed
    off the site (`avoid`) and away from the corners' scale bar, north arrow and locator map."""
    if context is None:
        return (), ()
    shapes: list[Shape] = []
    for road_class, geom in context.roads:
        clipped = frame.clip(geom)
        if not clipped.is_empty:
            shapes.append(Shape(frame.line_path(clipped), "none", ROAD_COLOUR, 0.0, ROAD_WIDTHS.get(road_class, 0.8)))
    if shapes:
        legend.append(LegendEntry("道路", "none", ROAD_COLOUR, 0.0, line=True))
    labels: list[Label] = []
    minx, miny, maxx, maxy = frame.box
    side = min(maxx - minx, maxy - miny)
    inner = shapely.box(minx + 0.28 * (maxx - minx), miny + 0.1 * side, maxx - 0.1 * (maxx - minx), maxy - 0.1 * side)
    free = shapely.difference(inner, shapely.envelope(avoid).buffer(0.06 * side))
    towns_drawn = False
    for name, geom in context.towns:
        outline = frame.clip(geom.boundary)
        if not outline.is_empty:
            shapes.append(Shape(frame.line_path(outline), "none", TOWN_COLOUR, 0.0, 1.2, "6 3"))
            towns_drawn = True
        part = shapely.intersection(geom, free)
        if shapely.intersection(geom, box).area >= LABEL_MIN_SHARE * box.area and not part.is_empty:
            point = part.representative_point()
            labels.append(Label(*frame.point(point.x, point.y), name))
    if towns_drawn or labels:
        legend.append(LegendEntry("镇街界（镇街名称）", "none", TOWN_COLOUR, 0.0, "6 3", line=True))
    if context.district is not None:
        outline = frame.clip(context.district.boundary)
        if not outline.is_empty:
            shapes.append(Shape(frame.line_path(outline), "none", DISTRICT_COLOUR, 0.0, 2.2))
            legend.append(LegendEntry("区界", "none", DISTRICT_COLOUR, 0.0, line=True))
    return tuple(shapes), tuple(labels)


def _inset(context: SiteContext | None, frame: _Frame, site: shapely.Geometry) -> Inset | None:
    """The locator map: the district in the map's corner, the main map's extent and the site on it."""
    if context is None or context.district is None:
        return None
    x, y, width, height = INSET
    bounds = tuple(float(v) for v in context.district.bounds)
    small = _Frame(bounds, width, height - INSET_CAPTION, min_span=0.0, padding=0.04)  # type: ignore[arg-type]
    towns = shapely.union_all([shapely.boundary(g) for _, g in context.towns]) if context.towns else None
    minx, miny, maxx, maxy = frame.box
    left, top = small.point(minx, maxy)
    right, bottom = small.point(maxx, miny)
    centre = site.centroid
    return Inset(
        x=x,
        y=y,
        width=width,
        height=height,
        district=small.path(shapely.simplify(context.district, 30.0)),
        towns="" if towns is None else small.line_path(shapely.simplify(towns, 30.0)),
        extent=(left, top, max(right - left, 2.0), max(bottom - top, 2.0)),
        site=small.point(centre.x, centre.y),
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
