"""matplotlib drawings for the reports: the charts (`charts.Chart`), for the PDF pages, and the settings every
report drawing is made under (the maps are report_maps).

No pyplot: figures are plain `Figure` objects, so nothing global (a backend, a figure registry) is touched and
the web app can draw in a worker thread. rcParams are global, though, so drawing holds `RENDER_LOCK`.

Chinese text needs a CJK font. The first installed one of `CJK_FONTS` is used (Debian's fonts-wqy-microhei
gives WenQuanYi Micro Hei); without any, text falls back to DejaVu Sans, which draws the Latin text and leaves
boxes for the Chinese: the report is still produced (and says so in the log) rather than refused. Fonts are
embedded as TrueType (pdf.fonttype 42), so the PDF's text can be searched and copied.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from geoplan.reporting.charts import MET_COLOUR, MISSED_COLOUR, NO_DATA_COLOUR, Chart
from geoplan.reporting.formatting import value_text

__all__ = [
    "CJK_FONTS",
    "RENDER_LOCK",
    "cjk_font",
    "draw_chart",
    "figure_png",
    "rendering",
]

log = logging.getLogger(__name__)

CJK_FONTS = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
RENDER_LOCK = threading.RLock()


@cache
def cjk_font() -> str | None:
    """The first installed CJK font of CJK_FONTS, or None."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    log.warning("no CJK font found (e.g. apt-get install fonts-wqy-microhei): Chinese text will not show")
    return None


@contextmanager
def rendering() -> Iterator[None]:
    """The report's matplotlib settings, under the render lock (rcParams are process-wide)."""
    font = cjk_font()
    settings = rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": [*([font] if font else []), "DejaVu Sans"],
            "pdf.fonttype": 42,
            "axes.unicode_minus": False,
            "axes.titlesize": 10,
            "axes.labelsize": 8,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "legend.fontsize": 7,
        }
    )
    with RENDER_LOCK, settings, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # no CJK font: said once above
        yield


def figure_png(figure: Figure, *, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- charts


def _bar_colours(chart: Chart) -> list[str]:
    series = chart.series[0]
    colours = []
    for i, value in enumerate(series.values):
        met = series.met[i] if series.met and i < len(series.met) else None
        if value is None:
            colours.append(NO_DATA_COLOUR)
        elif met is None:
            colours.append(series.colour)
        else:
            colours.append(MET_COLOUR if met else MISSED_COLOUR)
    return colours


def _scale_top(chart: Chart, largest: float) -> float:
    if chart.unit == "%" and largest <= 100:
        return 100.0
    return max(largest * 1.15, 1.0)


def draw_chart(ax: Axes, chart: Chart) -> None:
    """A chart on the axes: horizontal bars (coloured by target state; stacked by series) or lines."""
    ax.set_title(chart.title, loc="left")
    if chart.empty:
        ax.text(0.5, 0.5, "尚无快照" if chart.kind == "lines" else "无数据", ha="center", va="center", color="#52606d")
        ax.set_axis_off()
        return
    if chart.kind == "lines":
        _draw_lines(ax, chart)
    else:
        _draw_bars(ax, chart)
    ax.spines[["top", "right"]].set_visible(False)


def _draw_bars(ax: Axes, chart: Chart) -> None:
    positions = np.arange(len(chart.categories))[::-1]
    totals = np.zeros(len(chart.categories))
    if chart.kind == "stacked":
        for series in chart.series:
            values = np.array([v or 0.0 for v in series.values])
            ax.barh(positions, values, left=totals, color=series.colour, label=series.name, height=0.7)
            totals += values
        for y, total in zip(positions, totals, strict=True):
            ax.text(total, y, f" {value_text(total, chart.unit)}", va="center", fontsize=7, color="#52606d")
        ax.legend(ncols=min(5, len(chart.series)), loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False)
    else:
        series = chart.series[0]
        values = np.array([v if v is not None else 0.0 for v in series.values])
        ax.barh(positions, values, color=_bar_colours(chart), height=0.7)
        totals = values
        for y, value in zip(positions, series.values, strict=True):
            ax.text(value or 0.0, y, f" {value_text(value, chart.unit)}", va="center", fontsize=7, color="#52606d")
    top = _scale_top(chart, max([float(totals.max()) if len(totals) else 0.0, *(t.value for t in chart.targets)]))
    for i, target in enumerate(chart.targets):
        colour = "#b91c1c" if target.applies else "#7b8794"
        ax.axvline(target.value, color=colour, linestyle="--", linewidth=1.4 if target.applies else 1.0)
        # Labels alternate between two heights, so close targets (90 % and 100 %) stay readable.
        ax.text(
            target.value,
            len(chart.categories) - 0.4 + 0.45 * (i % 2),
            target.label,
            color=colour,
            fontsize=7,
            ha="center",
        )
    ax.set_yticks(positions, list(chart.categories))
    ax.set_xlim(0, top * (1.12 if chart.unit != "%" else 1.0) + (8 if chart.unit == "%" else 0))
    ax.set_ylim(-0.6, len(chart.categories) - 0.1 + (0.5 * min(len(chart.targets), 2)))
    ax.set_xlabel(chart.unit)


def _draw_lines(ax: Axes, chart: Chart) -> None:
    xs = np.arange(len(chart.categories))
    for series in chart.series:
        ys = np.array([np.nan if v is None else v for v in series.values], dtype=float)
        ax.plot(xs, ys, marker="o", markersize=3, color=series.colour, label=series.name, linewidth=1.5)
    for target in chart.targets:
        ax.axhline(target.value, color="#b91c1c" if target.applies else "#7b8794", linestyle="--", linewidth=1)
    step = max(1, math.ceil(len(xs) / 5))
    ticks = [i for i in range(len(xs)) if i % step == 0 or i == len(xs) - 1]
    ax.set_xticks(ticks, [chart.categories[i] for i in ticks], fontsize=6)
    ax.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))
    values = [v for s in chart.series for v in s.values if v is not None]
    high = max([*values, *(t.value for t in chart.targets), 0.0])
    ax.set_ylim(min([0.0, *values]), 100.0 if chart.unit == "%" and high <= 100 else max(high * 1.15, 1.0))
    ax.set_ylabel(chart.unit)
    if len(chart.series) > 4:  # many lines (the life-circle services): a small legend under the axis
        ax.legend(frameon=False, ncols=3, fontsize=5, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    elif len(chart.series) > 1:
        ax.legend(frameon=False, ncols=2)
