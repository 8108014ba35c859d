"""The plan-end evaluation's maps, drawn with matplotlib (PDF pages, and PNG for the workbook and the HTML):

- culture coverage per village at the plan's start and at the end of its monitoring, in the same fixed 20 %
  classes on both (natural breaks would differ between the two, and one colour would mean two things);
- the change in percentage points per village, with the conflict patches resolved over the period (blue) and
  those still open at the end (purple) on top.

They reuse the quarterly report's map furniture (report_maps): town and district lines, town names, a scale bar,
a north arrow, the legend beside the map.
"""

from __future__ import annotations

import math

import geopandas as gpd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from geoplan.analysis.coverage_classes import NO_PEOPLE_COLOR, NO_PEOPLE_LABEL, step_classes
from geoplan.analysis.summary import exempt_mask
from geoplan.crs import METRIC_CRS
from geoplan.reporting.evaluation_data import EvaluationData
from geoplan.reporting.report_maps import LegendItem, furniture, legend_beside, map_axes, outline

__all__ = ["CHANGE_CLASSES", "change_class", "draw_change_map", "draw_coverage_at", "evaluation_map_figure"]

CHANGE_CLASSES: tuple[tuple[float, float, str, str], ...] = (
    (-math.inf, -0.05, "#d7191c", "下降"),
    (-0.05, 0.05, "#f0f0f0", "基本不变（±0.05）"),
    (0.05, 5.0, "#c7e9c0", "提高 0–5 个百分点"),
    (5.0, 20.0, "#74c476", "提高 5–20 个百分点"),
    (20.0, math.inf, "#238b45", "提高 20 个百分点以上"),
)
"""(lower, upper, colour, label) of the change classes: lower < change <= upper."""
RESOLVED_COLOUR, OPEN_COLOUR = "#2166ac", "#7b3294"
"""Blue and purple: apart from the green of a rise and the red of a fall in coverage."""
TITLES = {
    "coverage_start": "计划起点：各村十分钟文化圈人口覆盖率",
    "coverage_end": "评估截至：各村十分钟文化圈人口覆盖率",
}


def change_class(value: float | None) -> int | None:
    """The CHANGE_CLASSES index of a change in percentage points (None for a village without people)."""
    if value is None or not math.isfinite(value):
        return None
    return next(i for i, (low, high, _, _) in enumerate(CHANGE_CLASSES) if low < value <= high)


def _layers(data: EvaluationData) -> dict[str, gpd.GeoDataFrame]:
    return data.final.layers


def draw_coverage_at(ax: Axes, data: EvaluationData, column: str, *, title: str | None = None) -> Legend | None:
    """One moment's coverage per village (`coverage_start` or `coverage_end`) in fixed 20 % classes."""
    map_axes(ax, title or TITLES[column])
    villages = data.villages
    if not len(villages) or column not in villages.columns:
        ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
        return None
    values = [None if v is None or not math.isfinite(float(v)) else float(v) for v in villages[column]]
    classes = step_classes(values)
    colours = [classes.color_of(i) for i in range(len(values))]
    villages.to_crs(METRIC_CRS).plot(ax=ax, color=colours, edgecolor="#ffffff", linewidth=0.3)
    outline(ax, _layers(data))
    furniture(ax, _layers(data))
    items = [
        LegendItem(f"{label}（{count} 个）", colour)
        for label, colour, count in zip(classes.labels(), classes.colors, classes.counts, strict=True)
    ]
    missing = sum(c is None for c in classes.classes)
    if missing:
        items.append(LegendItem(f"{NO_PEOPLE_LABEL}（{missing} 个）", NO_PEOPLE_COLOR))
    return legend_beside(ax, items, "覆盖率（固定分级）")


def draw_change_map(ax: Axes, data: EvaluationData) -> Legend | None:
    """The change of coverage per village (percentage points) and the conflict patches resolved / still open."""
    map_axes(ax, "覆盖率变化（百分点）与多规冲突图斑化解情况")
    villages = data.villages
    if not len(villages):
        ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
        return None
    classes = [change_class(None if v is None else float(v)) for v in villages["change_pp"]]
    colours = [NO_PEOPLE_COLOR if c is None else CHANGE_CLASSES[c][2] for c in classes]
    villages.to_crs(METRIC_CRS).plot(ax=ax, color=colours, edgecolor="#bdbdbd", linewidth=0.3)
    outline(ax, _layers(data))
    change = data.conflicts
    resolved = change.start[change.start["patch_id"].astype(str).isin(set(change.ids("resolved")))]
    still = change.end[change.end["patch_id"].astype(str).isin(set(change.ids("remaining")) | set(change.ids("new")))]
    for frame, colour in ((resolved, RESOLVED_COLOUR), (still, OPEN_COLOUR)):
        if len(frame):
            frame.to_crs(METRIC_CRS).plot(ax=ax, facecolor=colour, edgecolor=colour, linewidth=0.6, alpha=0.75)
    furniture(ax, _layers(data))
    items = [
        LegendItem(f"{label}（{classes.count(i)} 个村）", colour)
        for i, (_, _, colour, label) in enumerate(CHANGE_CLASSES)
    ]
    if None in classes:
        items.append(LegendItem(f"{NO_PEOPLE_LABEL}（{classes.count(None)} 个村）", NO_PEOPLE_COLOR))
    items += [
        LegendItem(f"已化解冲突图斑（{len(resolved)} 处）", RESOLVED_COLOUR),
        LegendItem(f"仍存在的冲突图斑（{len(still)} 处，含豁免 {_exempt(still)} 处）", OPEN_COLOUR),
    ]
    return legend_beside(ax, items, "评估截至较计划起点")


def _exempt(patches: gpd.GeoDataFrame) -> int:
    return int(exempt_mask(patches).sum())


def evaluation_map_figure(kind: str, data: EvaluationData, *, size: tuple[float, float] = (7.0, 5.2)) -> Figure:
    """One map ("coverage_start", "coverage_end" or "change") on its own figure, the legend at its right."""
    figure = Figure(figsize=size)
    ax = figure.add_axes((0.02, 0.02, 0.62, 0.9))
    if kind == "change":
        draw_change_map(ax, data)
    else:
        draw_coverage_at(ax, data, kind)
    return figure
