"""The quarterly report's two small maps (coverage per village, projects by status), drawn with matplotlib for
the PDF pages and as PNG images (the workbook and the HTML report).

The coverage map uses the web coverage map's classes and colours (geoplan.analysis.coverage_classes), so a
village has the same colour on screen and on paper. Both maps name the towns on the map, carry a scale bar and
a north arrow, and put their legend beside the map (outside the axes), where it cannot hide a village.

Maps are drawn in EPSG:4547 (metres), so the scale bar is exact; up is grid north, which in Gaoming is within
a degree of true north (see compliance_svg), closer than a small map can show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch, Rectangle

from geoplan.analysis.coverage_classes import NO_PEOPLE_COLOR, NO_PEOPLE_LABEL, classify_coverage
from geoplan.crs import METRIC_CRS
from geoplan.reporting.charts import STATUS_COLOURS
from geoplan.reporting.compliance_svg import nice_length

__all__ = [
    "LegendItem",
    "coverage_legend",
    "draw_coverage_map",
    "draw_projects_map",
    "furniture",
    "legend_beside",
    "map_axes",
    "map_figure",
    "outline",
    "town_labels",
]

TOWN_EDGE, DISTRICT_EDGE = "#52606d", "#1f2933"
HALO = {"boxstyle": "round,pad=0.12", "facecolor": "#ffffff", "edgecolor": "none", "alpha": 0.75}
"""A light box behind a label, so it reads on any class colour. Not a stroked halo (path effects): that turns the
text into outlines, and a PDF reader could no longer find or copy a town's name."""


@dataclass(frozen=True)
class LegendItem:
    label: str
    colour: str


def coverage_legend(villages: gpd.GeoDataFrame) -> tuple[list[str], list[LegendItem]]:
    """Each village's colour and the legend's classes, from the web map's classes of the same coverage %."""
    values = [_number(v) for v in villages["coverage_pct"]]
    classes = classify_coverage(values)
    colours = [classes.color_of(i) for i in range(len(values))]
    items = [
        LegendItem(f"{label}（{count} 个）", colour)
        for label, colour, count in zip(classes.labels(), classes.colors, classes.counts, strict=True)
    ]
    missing = sum(cls is None for cls in classes.classes)
    if missing:
        items.append(LegendItem(f"{NO_PEOPLE_LABEL}（{missing} 个）", NO_PEOPLE_COLOR))
    return colours, items


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def town_labels(layers: dict[str, gpd.GeoDataFrame]) -> list[tuple[str, float, float]]:
    """(name, x, y) in EPSG:4547 for every town: a point inside its outline (a centroid can fall outside)."""
    towns = layers.get("towns")
    if towns is None or not len(towns) or "town_name" not in towns.columns:
        return []
    metric = towns.to_crs(METRIC_CRS)
    points = metric.geometry.representative_point()
    return [(str(name), float(p.x), float(p.y)) for name, p in zip(metric["town_name"], points, strict=True)]


def outline(ax: Axes, layers: dict[str, gpd.GeoDataFrame]) -> None:
    towns = layers.get("towns")
    if towns is not None and len(towns):
        towns.to_crs(METRIC_CRS).boundary.plot(ax=ax, color=TOWN_EDGE, linewidth=0.6)
    district = layers.get("district")
    if district is not None and len(district):
        district.to_crs(METRIC_CRS).boundary.plot(ax=ax, color=DISTRICT_EDGE, linewidth=1.0)


def furniture(ax: Axes, layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Town names, a scale bar (lower left) and a north arrow (upper left), after everything else is drawn."""
    for name, x, y in town_labels(layers):
        ax.text(x, y, name, fontsize=6.5, ha="center", va="center", color="#1f2933", bbox=HALO, zorder=5)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width, height = x1 - x0, y1 - y0
    length = nice_length(width)
    left, base, bar = x0 + 0.03 * width, y0 + 0.04 * height, 0.012 * height
    for i in range(2):  # two halves, black and white, like a printed map's bar
        ax.add_patch(
            Rectangle(
                (left + i * length / 2, base),
                length / 2,
                bar,
                facecolor="#1f2933" if i == 0 else "#ffffff",
                edgecolor="#1f2933",
                linewidth=0.6,
                zorder=6,
            )
        )
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    for x, text in ((left, "0"), (left + length, label)):
        ax.text(x, base + bar * 1.6, text, fontsize=6, ha="center", va="bottom", bbox=HALO, zorder=6)
    tip = (x0 + 0.05 * width, y1 - 0.08 * height)
    ax.annotate(
        "",
        xy=tip,
        xytext=(tip[0], tip[1] - 0.09 * height),
        arrowprops={"arrowstyle": "-|>", "color": "#1f2933", "linewidth": 1.0},
        zorder=6,
    )
    ax.text(tip[0], tip[1] + 0.01 * height, "北", fontsize=7, ha="center", va="bottom", zorder=6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def map_axes(ax: Axes, title: str) -> None:
    ax.set_title(title, loc="left")
    ax.set_aspect("equal")
    ax.set_axis_off()


def legend_beside(ax: Axes, items: list[LegendItem], title: str) -> Legend:
    handles = [Patch(facecolor=i.colour, edgecolor="#7b8794", linewidth=0.4, label=i.label) for i in items]
    # Anchored to the right of the map's axes: outside the map, so it never covers a village.
    return ax.legend(
        handles=handles,
        title=title,
        title_fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
    )


def draw_coverage_map(ax: Axes, layers: dict[str, gpd.GeoDataFrame]) -> Legend | None:
    """Villages coloured in the web map's coverage classes, town and district lines, names, scale and north."""
    map_axes(ax, "各村（社区）十分钟文化圈人口覆盖率")
    villages = layers.get("villages")
    if villages is None or not len(villages):
        ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
        return None
    colours, items = coverage_legend(villages)
    villages.to_crs(METRIC_CRS).plot(ax=ax, color=colours, edgecolor="#ffffff", linewidth=0.3)
    outline(ax, layers)
    furniture(ax, layers)
    return legend_beside(ax, items, "覆盖率（自然断点分级，\n与网页覆盖图相同）")


def draw_projects_map(ax: Axes, layers: dict[str, gpd.GeoDataFrame]) -> Legend | None:
    """Projects coloured by status (outline and a dot, so small sites show at district scale)."""
    map_axes(ax, "建设项目分布（按状态）")
    outline(ax, layers)
    projects = layers.get("projects")
    if projects is None or not len(projects):
        ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
        return None
    metric = projects.to_crs(METRIC_CRS)
    statuses = [str(s) for s in metric["status"]]
    colours = [STATUS_COLOURS.get(s, "#666666") for s in statuses]
    metric.plot(ax=ax, color=colours, edgecolor=colours, linewidth=0.8)
    points = metric.geometry.representative_point()
    ax.scatter(points.x, points.y, s=10, c=colours, edgecolors="#1f2933", linewidths=0.3, zorder=3)
    furniture(ax, layers)
    present = list(dict.fromkeys(statuses))
    order = [s for s in STATUS_COLOURS if s in present] + [s for s in present if s not in STATUS_COLOURS]
    items = [LegendItem(f"{s}（{statuses.count(s)} 项）", STATUS_COLOURS.get(s, "#666666")) for s in order]
    return legend_beside(ax, items, "项目状态")


def map_figure(kind: str, layers: dict[str, gpd.GeoDataFrame], *, size: tuple[float, float] = (6.0, 5.0)) -> Figure:
    """One of the two maps ("coverage" or "projects") on its own figure, the legend at its right."""
    figure = Figure(figsize=size)
    ax = figure.add_axes((0.02, 0.02, 0.68, 0.9))
    (draw_coverage_map if kind == "coverage" else draw_projects_map)(ax, layers)
    return figure
