"""`charts.Chart` drawn as SVG (`svg.Node`): horizontal bars (plain or stacked) with target lines, and line charts
over the snapshots. Sizes are in a fixed viewBox; the page scales the drawing to its width.

Every mark carries its number in `data-value` (and its category or snapshot) and a <title> tooltip, so the
figures can be read (and tested) without measuring pixels.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

from geoplan.reporting.charts import MET_COLOUR, MISSED_COLOUR, NO_DATA_COLOUR, Chart, TargetLine
from geoplan.reporting.formatting import value_text
from geoplan.reporting.svg import Node, el

__all__ = ["chart_svg", "nice_ceiling"]

FONT = 12
INK, MUTED, GRID = "#1f2933", "#52606d", "#d9e2ec"
BAR_WIDTH = 640.0
BAR_LABELS = 132.0
BAR_RIGHT = 76.0
ROW = 24.0
BAR = 16.0
LINE_WIDTH, LINE_HEIGHT = 480.0, 230.0
LINE_LEFT, LINE_RIGHT, LINE_TOP, LINE_BOTTOM = 58.0, 16.0, 30.0, 44.0
LINE_INSET = 30.0
"""The first and last points stand this far inside the plot, so their labels (2026Q4 #12) fit under them."""


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is >= value (1 for nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _scale_max(chart: Chart, totals: Sequence[float]) -> float:
    largest = max([0.0, *totals, *(t.value for t in chart.targets)])
    if chart.unit == "%" and largest <= 100:
        return 100.0
    return nice_ceiling(largest * 1.05)


def _ticks(top: float) -> list[float]:
    """0 to `top` in 4 (or 5, or 2) equal steps of a round size: 0, 25, 50 … or 0, 10, 20 … never 12.5."""
    for count in (4, 5, 2):
        step = top / count
        if math.isclose(nice_ceiling(step), step, rel_tol=1e-9):
            return [step * i for i in range(count + 1)]
    return [top * i / 4 for i in range(5)]


def _tick_text(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value == round(value) else f"{value:,.2f}".rstrip("0")
    return text + ("%" if unit == "%" else "")


def _target_colour(target: TargetLine) -> str:
    return "#b91c1c" if target.applies else "#7b8794"


def _target_line(target: TargetLine, x1: float, y1: float, x2: float, y2: float, *, width: float | None = None) -> Node:
    """A target as a dashed line in its colour, its number in data-value, its label as the tooltip."""
    attrs: dict[str, object] = {"x1": x1, "x2": x2, "y1": y1, "y2": y2, "stroke": _target_colour(target)}
    if width is not None:
        attrs["stroke-width"] = width
    attrs.update({"stroke-dasharray": "5 3", "class": "gp-target", "data-value": repr(float(target.value))})
    return el("line", attrs, el("title", text=target.label))


def _svg(chart: Chart, width: float, height: float, *nodes: Node) -> Node:
    attrs = {"viewBox": f"0 0 {width:g} {height:g}", "role": "img", "aria-label": chart.title, "class": "gp-chart"}
    return el("svg", {**attrs, "data-chart": chart.id}, *nodes)


def _text(x: float, y: float, text: str, attrs: dict[str, object] | None = None) -> Node:
    base: dict[str, object] = {"x": float(x), "y": float(y), "font-size": FONT, "fill": INK}
    base.update(attrs or {})
    return el("text", base, text=text)


def shortened(text: str, width: float, *, size: float = FONT) -> str:
    """`text` cut with … to fit `width` px at `size` (a full-width character one em, any other about half)."""

    def em(c: str) -> float:
        return 1.0 if unicodedata.east_asian_width(c) in ("W", "F") else 0.58

    if sum(em(c) for c in text) * size <= width:
        return text
    out, used = "", em("…") * size
    for c in text:
        if used + em(c) * size > width:
            break
        out, used = out + c, used + em(c) * size
    return out + "…"


def _category_label(x: float, y: float, category: str) -> Node:
    """A bar's category at the left of the plot, shortened to the label column (a long name would run off the
    drawing) with the whole name as its tooltip."""
    label = shortened(category, x - 4)
    title = () if label == category else (el("title", text=category),)
    return el(
        "text", {"x": float(x), "y": float(y), "font-size": FONT, "fill": INK, "text-anchor": "end"}, *title, text=label
    )


LEGEND_ROW = 16.0


def _legend_places(items: Sequence[tuple[str, str]], x: float, max_x: float | None) -> list[tuple[float, int]]:
    """Where each legend item starts: (x, row), wrapping to a new row before `max_x` (None: one row)."""
    places: list[tuple[float, int]] = []
    cursor, row = x, 0
    for name, _ in items:
        width = 14 + 11 * len(name)
        if max_x is not None and places and cursor + width > max_x:
            cursor, row = x, row + 1
        places.append((cursor, row))
        cursor += width + 16
    return places


def _legend(items: Sequence[tuple[str, str]], x: float, y: float, max_x: float | None = None) -> Node:
    parts: list[Node] = []
    for (name, colour), (left, row) in zip(items, _legend_places(items, x, max_x), strict=True):
        top = y + row * LEGEND_ROW
        parts.append(el("rect", {"x": left, "y": top - 9.0, "width": 10, "height": 10, "fill": colour}))
        parts.append(_text(left + 14, top, name, {"font-size": 11}))
    return el("g", {"class": "gp-chart-legend"}, *parts)


def _empty(chart: Chart, width: float, message: str) -> Node:
    return el(
        "svg",
        {"viewBox": f"0 0 {width:g} 60", "role": "img", "aria-label": chart.title, "class": "gp-chart"},
        el("title", text=chart.title),
        _text(width / 2, 34, message, {"text-anchor": "middle", "fill": MUTED}),
    )


def chart_svg(chart: Chart) -> Node:
    """The chart as an <svg> node."""
    if chart.kind == "lines":
        return _lines(chart)
    return _bars(chart)


# --------------------------------------------------------------------------------------------- bars


def _bar_colour(chart: Chart, series_index: int, value_index: int) -> str:
    series = chart.series[series_index]
    if series.values[value_index] is None:
        return NO_DATA_COLOUR
    if series.met and value_index < len(series.met) and series.met[value_index] is not None:
        return MET_COLOUR if series.met[value_index] else MISSED_COLOUR
    return series.colour


def _bars(chart: Chart) -> Node:
    if not chart.categories:
        return _empty(chart, BAR_WIDTH, "无数据")
    stacked = chart.kind == "stacked"
    totals = [sum(s.values[i] or 0.0 for s in chart.series) for i in range(len(chart.categories))]
    top = _scale_max(chart, totals)
    plot = BAR_WIDTH - BAR_LABELS - BAR_RIGHT
    legend_h = 22.0 if stacked or chart.targets else 0.0
    target_h = 14.0 * min(len(chart.targets), 2)  # labels alternate between two lines (close targets stay readable)
    y0 = legend_h + target_h + 4
    height = y0 + ROW * len(chart.categories) + 26

    def x_of(value: float) -> float:
        return BAR_LABELS + plot * max(0.0, value) / top

    nodes: list[Node] = [el("title", text=chart.title)]
    if stacked:
        nodes.append(_legend([(s.name, s.colour) for s in chart.series], BAR_LABELS, 14))
    elif chart.targets:
        states = [("达标", MET_COLOUR), ("未达标", MISSED_COLOUR), ("无数据", NO_DATA_COLOUR)]
        nodes.append(_legend(states, BAR_LABELS, 14))
    grid: list[Node] = []
    bottom = y0 + ROW * len(chart.categories)
    for tick in _ticks(top):
        x = x_of(tick)
        grid.append(el("line", {"x1": x, "x2": x, "y1": y0 - 2, "y2": bottom, "stroke": GRID}))
        grid.append(
            _text(
                x,
                y0 + ROW * len(chart.categories) + 16,
                _tick_text(tick, chart.unit),
                {
                    "text-anchor": "middle",
                    "fill": MUTED,
                    "font-size": 11,
                },
            )
        )
    nodes.append(el("g", {"class": "gp-chart-grid"}, *grid))
    rows: list[Node] = []
    for i, category in enumerate(chart.categories):
        y = y0 + ROW * i + (ROW - BAR) / 2
        parts: list[Node] = [
            _category_label(BAR_LABELS - 6, y + BAR - 3, category),
        ]
        cursor = 0.0
        for j, series in enumerate(chart.series):
            value = series.values[i]
            if value is None or value <= 0:
                continue
            start, end = x_of(cursor), x_of(cursor + value)
            cursor += value
            name = f"{category} · {series.name}" if stacked else category
            label = f"{name}: {value_text(value, chart.unit)}"
            parts.append(
                el(
                    "rect",
                    {
                        "x": start,
                        "y": y,
                        "width": max(end - start, 0.5),
                        "height": BAR,
                        "fill": _bar_colour(chart, j, i),
                        "class": "gp-bar",
                        "data-category": category,
                        "data-series": series.name,
                        "data-value": repr(float(value)),
                    },
                    el("title", text=label),
                )
            )
        if stacked:
            end_text = f"合计 {value_text(totals[i], chart.unit)}"
        else:
            end_text = value_text(chart.series[0].values[i], chart.unit)
        parts.append(_text(x_of(cursor) + 5, y + BAR - 3, end_text, {"fill": MUTED, "font-size": 11}))
        rows.append(el("g", {"class": "gp-chart-row", "data-category": category}, *parts))
    nodes.append(el("g", {"class": "gp-chart-rows"}, *rows))
    marks: list[Node] = []
    for number, target in enumerate(chart.targets):
        x = x_of(target.value)
        colour = _target_colour(target)
        width = 2 if target.applies else 1.5
        marks.append(_target_line(target, x, y0 - 4, x, y0 + ROW * len(chart.categories), width=width))
        anchor = "end" if x > BAR_WIDTH - 90 else ("start" if x < BAR_LABELS + 60 else "middle")
        label_y = y0 - 7 - 14 * ((len(chart.targets) - 1 - number) % 2 if len(chart.targets) > 1 else 0)
        marks.append(_text(x, label_y, target.label, {"text-anchor": anchor, "fill": colour, "font-size": 11}))
    nodes.append(el("g", {"class": "gp-chart-targets"}, *marks))
    return _svg(chart, BAR_WIDTH, height, *nodes)


# --------------------------------------------------------------------------------------------- lines


def _lines(chart: Chart) -> Node:
    if not chart.categories:
        return _empty(chart, LINE_WIDTH, "尚无快照：记录快照后显示趋势")
    values = [v for s in chart.series for v in s.values if v is not None]
    low = min([0.0, *values])
    high = max([0.0, *values, *(t.value for t in chart.targets)])
    top = 100.0 if chart.unit == "%" and high <= 100 and low >= 0 else nice_ceiling(high * 1.05)
    bottom = 0.0 if low >= 0 else -nice_ceiling(-low * 1.05)
    legend = [(s.name, s.colour) for s in chart.series] if len(chart.series) > 1 else []
    # a long legend wraps; the plot moves down by its extra rows, the drawing grows by them
    rows = max((row for _, row in _legend_places(legend, LINE_LEFT, LINE_WIDTH - LINE_RIGHT)), default=0)
    line_top = LINE_TOP + rows * LEGEND_ROW
    height = LINE_HEIGHT + rows * LEGEND_ROW
    plot_w = LINE_WIDTH - LINE_LEFT - LINE_RIGHT
    plot_h = height - line_top - LINE_BOTTOM
    count = len(chart.categories)

    inner = plot_w - 2 * LINE_INSET

    def x_of(index: int) -> float:
        return LINE_LEFT + LINE_INSET + (inner / 2 if count == 1 else inner * index / (count - 1))

    def y_of(value: float) -> float:
        return line_top + plot_h * (top - value) / (top - bottom)

    nodes: list[Node] = [el("title", text=chart.title)]
    if legend:
        nodes.append(_legend(legend, LINE_LEFT, 14, LINE_WIDTH - LINE_RIGHT))
    grid: list[Node] = []
    for offset in _ticks(top - bottom):
        tick = bottom + offset
        y = y_of(tick)
        grid.append(el("line", {"x1": LINE_LEFT, "x2": LINE_WIDTH - LINE_RIGHT, "y1": y, "y2": y, "stroke": GRID}))
        grid.append(
            _text(
                LINE_LEFT - 6,
                y + 4,
                _tick_text(tick, chart.unit),
                {"text-anchor": "end", "fill": MUTED, "font-size": 11},
            )
        )
    step = max(1, math.ceil(count / 6))  # at most about six labels fit under the axis
    for index, label in enumerate(chart.categories):
        if index % step == 0 or index == count - 1:
            grid.append(
                _text(
                    x_of(index),
                    height - LINE_BOTTOM + 16,
                    label,
                    {
                        "text-anchor": "middle",
                        "fill": MUTED,
                        "font-size": 10,
                    },
                )
            )
    nodes.append(el("g", {"class": "gp-chart-grid"}, *grid))
    for target in chart.targets:
        if bottom <= target.value <= top:
            y = y_of(target.value)
            nodes.append(_target_line(target, LINE_LEFT, y, LINE_WIDTH - LINE_RIGHT, y))
    for series in chart.series:
        parts: list[Node] = []
        path: list[str] = []
        pen_down = False
        for index, value in enumerate(series.values):
            if value is None:
                pen_down = False
                continue
            x, y = x_of(index), y_of(value)
            path.append(f"{'L' if pen_down else 'M'}{x:.2f} {y:.2f}")
            pen_down = True
            parts.append(
                el(
                    "circle",
                    {
                        "cx": x,
                        "cy": y,
                        "r": 3.5,
                        "fill": series.colour,
                        "class": "gp-point",
                        "data-series": series.name,
                        "data-snapshot": chart.categories[index],
                        "data-value": repr(float(value)),
                    },
                    el("title", text=f"{chart.categories[index]} · {series.name}: {value_text(value, chart.unit)}"),
                )
            )
        if path:
            line = el("path", {"d": " ".join(path), "fill": "none", "stroke": series.colour, "stroke-width": 2})
            parts.insert(0, line)
        nodes.append(el("g", {"class": "gp-series", "data-series": series.name}, *parts))
    if not values:
        nodes.append(_text(LINE_WIDTH / 2, line_top + plot_h / 2, "无数据", {"text-anchor": "middle", "fill": MUTED}))
    return _svg(chart, LINE_WIDTH, height, *nodes)
