"""The quarterly report as a PDF (A4 portrait), drawn with matplotlib's PdfPages.

The pages, in order (`page_plan` lists them; the page count is a function of the data, see `page_count`):

1. the cover and the indicator summary (every indicator: value, target, state, change since the previous
   snapshot, warnings), SUMMARY_ROWS_PER_PAGE indicators per page;
2. the overview charts (projects per task area by status, coverage and the sponge-city share per town against
   their targets);
3. the trends over the snapshots, TRENDS_PER_PAGE indicators per page (one page saying there are no snapshots
   yet, when there are none);
4. the two small maps (coverage per village, projects by status);
5. the per-town comparison;
5b. 公共服务生活圈: each life-circle indicator's district and town values (when the definitions hold any);
6. the early warnings, WARNINGS_PER_PAGE per page (one page saying there are none, when there are none);
7. every indicator row with its change, DETAIL_ROWS_PER_PAGE per page.

Every page has a footer with the page number and, when synthetic layers feed the figures, a note saying so.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from geoplan.reporting.formatting import change_text, met_label, scope_text, target_text, value_text
from geoplan.reporting.life_circle_section import GROUP_TITLE as LIFE_CIRCLE_TITLE
from geoplan.reporting.life_circle_section import NOTES as LIFE_CIRCLE_NOTES
from geoplan.reporting.pdf_table import draw_table, text_width
from geoplan.reporting.report_data import ReportData
from geoplan.reporting.report_maps import draw_coverage_map, draw_projects_map
from geoplan.reporting.report_mpl import draw_chart, rendering

__all__ = [
    "DETAIL_ROWS_PER_PAGE",
    "SUMMARY_ROWS_PER_PAGE",
    "TRENDS_PER_PAGE",
    "WARNINGS_PER_PAGE",
    "chunks",
    "heading",
    "page_count",
    "page_plan",
    "render_pdf",
    "synthetic_footer",
    "synthetic_note",
    "trends_page",
]

A4 = (8.27, 11.69)
SUMMARY_ROWS_PER_PAGE = 16
TRENDS_PER_PAGE = 8
WARNINGS_PER_PAGE = 36
DETAIL_ROWS_PER_PAGE = 44
MARGIN = 0.05
"""Left and right page margins (a share of the width, 10.5 mm on A4): no table or text crosses them."""
MAP_BOXES = ((0.05, 0.50, 0.66, 0.42), (0.05, 0.05, 0.66, 0.42))
"""The two maps' axes on the maps page (left, bottom, width, height): legends go beside them, right of 0.71."""


NOTE_WIDTH_PT = (1 - 0.06 - 0.05) * A4[0] * 72
"""Points of a summary line: from the text's left edge (6 % of the page) to the right margin (5 %)."""


def synthetic_note(data: ReportData) -> list[str]:
    """The summary page's warning naming the layers that still hold demo data (as the web's banners do), wrapped
    between names (measured in the page's font at 8 pt) so no line runs off the page or starts with a comma."""
    lines = ["示意数据（synthetic）："]
    names = list(data.synthetic_titles or data.synthetic)
    for i, name in enumerate(names):
        piece = name + ("、" if i < len(names) - 1 else "为合成的演示数据，数值非官方统计。")
        if text_width(lines[-1] + piece, 8.0) > NOTE_WIDTH_PT:
            lines.append("")
        lines[-1] += piece
    return lines


def synthetic_footer(data: ReportData) -> str:
    """The footer's short form: how many layers, the list being on the first page."""
    return f"示意数据（synthetic）：{len(data.synthetic)} 个图层为合成的演示数据（见第 1 页），数值非官方统计。"


@dataclass(frozen=True)
class Page:
    title: str
    draw: Callable[[Figure], None]


def chunks(count: int, size: int) -> list[range]:
    """`count` rows in as few pages of at most `size` as possible, shared out evenly: 33 rows at 16 a page are
    11 + 11 + 11, not 16 + 16 and a nearly blank page with one row."""
    if count <= 0:
        return []
    per = math.ceil(count / math.ceil(count / size))
    return [range(start, min(start + per, count)) for start in range(0, count, per)]


def page_count(*, indicators: int, trends: int, snapshots: int, warnings: int, rows: int, life_circles: int = 0) -> int:
    """How many pages a report of this size has (see the module docstring); `life_circles` is the number of
    life-circle indicators (one page for all of them)."""
    return (
        math.ceil(indicators / SUMMARY_ROWS_PER_PAGE)
        + 1
        + (math.ceil(trends / TRENDS_PER_PAGE) if snapshots else 1)
        + 1
        + 1
        + (1 if life_circles else 0)
        + max(1, math.ceil(warnings / WARNINGS_PER_PAGE))
        + math.ceil(rows / DETAIL_ROWS_PER_PAGE)
    )


def page_plan(data: ReportData) -> list[Page]:
    pages: list[Page] = []
    for number, rows in enumerate(chunks(len(data.summaries), SUMMARY_ROWS_PER_PAGE)):
        pages.append(Page("指标总表", partial(_summary_page, data=data, rows=rows, first=number == 0)))
    pages.append(Page("概览图表", partial(_charts_page, data=data)))
    if data.snapshots:
        for rows in chunks(len(data.trends), TRENDS_PER_PAGE):
            pages.append(Page("指标趋势", partial(trends_page, data=data, rows=rows)))
    else:  # one page saying so, not pages of empty charts
        pages.append(Page("指标趋势", _no_trends_page))
    pages.append(Page("专题地图", partial(_maps_page, data=data)))
    pages.append(Page("镇街对比", partial(_towns_page, data=data)))
    if data.life_circles:
        pages.append(Page(LIFE_CIRCLE_TITLE, partial(_life_circles_page, data=data)))
    warning_chunks = chunks(len(data.warnings), WARNINGS_PER_PAGE) or [range(0)]
    for rows in warning_chunks:
        pages.append(Page("预警", partial(_warnings_page, data=data, rows=rows)))
    for rows in chunks(len(data.table), DETAIL_ROWS_PER_PAGE):
        pages.append(Page("指标明细", partial(_detail_page, data=data, rows=rows)))
    return pages


def render_pdf(data: ReportData) -> bytes:
    """The report as PDF bytes."""
    return pages_pdf(
        page_plan(data),
        title=data.title,
        moment=f"数据截至 {data.as_of_local}（北京时间）",
        synthetic=synthetic_footer(data) if data.synthetic else None,
    )


def pages_pdf(plan: Sequence[Page], *, title: str, moment: str, synthetic: str | None) -> bytes:
    """The pages on A4 as PDF bytes, each with its footer: the document's title, the page's, "page n of N" and
    `moment`, then the synthetic-data line when there is one (the quarterly report and the evaluation alike)."""
    buffer = io.BytesIO()
    with rendering(), PdfPages(buffer, metadata={"Title": title, "Creator": "geoplan"}) as pdf:
        for number, page in enumerate(plan, start=1):
            figure = Figure(figsize=A4)
            page.draw(figure)
            text = f"{title} · {page.title} · 第 {number} / {len(plan)} 页 · {moment}"
            figure.text(0.5, 0.018, text, ha="center", fontsize=6.5, color="#52606d")
            if synthetic is not None:
                figure.text(0.5, 0.006, synthetic, ha="center", fontsize=6.5, color="#c2410c")
            pdf.savefig(figure)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- parts


def heading(figure: Figure, text: str, *, y: float = 0.965, size: float = 13) -> None:
    figure.text(0.06, y, text, fontsize=size, color="#1f2933")


def _state_colour(state: str) -> str:
    return {"met": "#e3f4e6", "missed": "#fde2e1", "partial": "#fff4d6"}.get(state, "#ffffff")


def _summary_page(figure: Figure, data: ReportData, rows: range, first: bool) -> None:
    top = 0.90
    if first:
        heading(figure, data.title)
        previous = "尚无更早的快照：变化一栏为空"
        if data.previous is not None:
            taken = data.previous_as_of_local
            previous = f"较第 {data.previous.id} 次快照（{data.previous.quarter}，截至 {taken}）"
        lines = [
            f"季度：{data.quarter}　数据截至：{data.as_of_local}　生成：{data.generated_local}（均为北京时间）",
            f"变化：{previous}；快照共 {len(data.snapshots)} 次；预警 {len(data.warnings)} 条。",
        ]
        warning = synthetic_note(data) if data.synthetic else []
        lines += warning + list(data.notes)
        for i, line in enumerate(lines):
            colour = "#c2410c" if 2 <= i < 2 + len(warning) else "#1f2933"
            figure.text(0.06, 0.935 - 0.018 * i, line, fontsize=8, color=colour)
        top = 0.935 - 0.018 * len(lines) - 0.02
    else:
        heading(figure, "指标总表（续）")
    chosen = [data.summaries[i] for i in rows]
    body = []
    colours = []
    for s in chosen:
        title = f"{s.definition.title_zh}\n{s.definition.id}"
        body.append(
            [
                title,
                s.value_label,
                target_text(s.target_op, s.target, s.target_year, s.definition.unit),
                s.state_label,
                change_text(s.change, s.definition.unit),
                str(s.warnings),
            ]
        )
        colours.append(["#ffffff", "#ffffff", "#ffffff", _state_colour(s.state), "#ffffff", "#ffffff"])
    header = ["指标", "数值", "目标", "状态", "较上次快照", "预警"]
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, top - 0.06), header, body, colours=colours)


def _charts_page(figure: Figure, data: ReportData) -> None:
    heading(figure, "概览图表")
    charts = data.charts
    if not charts:
        figure.text(0.5, 0.5, "无可绘制的指标", ha="center")
        return
    heights = [max(2.0, len(c.categories) * 0.35 + 1.0) for c in charts]
    grid = figure.add_gridspec(
        len(charts), 1, height_ratios=heights, left=0.22, right=0.90, top=0.93, bottom=0.07, hspace=0.45
    )
    for i, chart in enumerate(charts):
        draw_chart(figure.add_subplot(grid[i, 0]), chart)


def trends_page(figure: Figure, data: ReportData, rows: range) -> None:
    heading(figure, "指标趋势（历次快照）")
    grid = figure.add_gridspec(4, 2, left=0.13, right=0.93, top=0.92, bottom=0.07, hspace=0.6, wspace=0.4)
    for slot, index in enumerate(rows):
        draw_chart(figure.add_subplot(grid[slot // 2, slot % 2]), data.trends[index])


def _no_trends_page(figure: Figure) -> None:
    heading(figure, "指标趋势（历次快照）")
    text = "尚无指标快照。用 geoplan snapshot 或看板上的“记录快照”按季度记录指标后，这里显示各指标的变化趋势。"
    figure.text(0.06, 0.9, text, fontsize=9, color="#52606d")


def _maps_page(figure: Figure, data: ReportData) -> None:
    heading(figure, "专题地图")
    # The maps take the left 70 % of the page; their legends sit in the strip to their right (report_maps).
    draw_coverage_map(figure.add_axes(MAP_BOXES[0]), data.layers)
    draw_projects_map(figure.add_axes(MAP_BOXES[1]), data.layers)


def _towns_page(figure: Figure, data: ReportData) -> None:
    heading(figure, "镇街对比")
    town = data.town_table
    header = ["镇街", *(f"{d.title_zh}（{d.unit}）" for d in town.indicators)]
    body = []
    colours = []
    for name in town.towns:
        cells = [name]
        shades = ["#ffffff"]
        for d in town.indicators:
            value, met, note = town.cell(name, d.id)
            cells.append(value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"))
            shades.append({True: "#e3f4e6", False: "#fde2e1"}.get(met, "#ffffff") if met is not None else "#ffffff")
        body.append(cells)
        colours.append(shades)
    draw_table(figure, (MARGIN, 0.08, 1 - 2 * MARGIN, 0.84), header, body, font=7.0, colours=colours)
    figure.text(0.06, 0.05, "绿色：达到当年适用的目标；红色：未达到；数值单位见表头。", fontsize=7, color="#52606d")


def _life_circles_page(figure: Figure, data: ReportData) -> None:
    heading(figure, f"{LIFE_CIRCLE_TITLE}（人口覆盖率，%）")
    table = data.life_circles
    header = ["指标", "目标", *table.columns, "较上次"]
    body = []
    colours = []
    for item in table.rows:
        d = item.definition
        target = d.target_for(data.year)
        cells = [d.title_zh, "—" if target is None else target_text(target.comparison, target.value, target.year, "%")]
        shades = ["#ffffff", "#ffffff"]
        for value, met, note in (item.district, *item.towns):
            cells.append(value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"))
            shades.append({True: "#e3f4e6", False: "#fde2e1"}.get(met, "#ffffff") if met is not None else "#ffffff")
        cells.append(change_text(item.change, d.unit))
        shades.append("#ffffff")
        body.append(cells)
        colours.append(shades)
    top, box_height = 0.92, 0.72
    layout = draw_table(
        figure, (MARGIN, top - box_height, 1 - 2 * MARGIN, box_height), header, body, font=7.0, colours=colours
    )
    # the notes right under the table (it is short: one row per service), never down into the footer
    below = top - (sum(layout.heights) / (A4[1] * 72.0) if layout is not None else 0.03) - 0.03
    notes = [*LIFE_CIRCLE_NOTES, "绿色：达到目标；红色：未达到；无底色：无目标（监测）。"]
    for i, line in enumerate(notes):
        figure.text(0.06, below - 0.018 * i, line, fontsize=7.5, color="#52606d")


def _warnings_page(figure: Figure, data: ReportData, rows: range) -> None:
    heading(figure, "预警（未达目标或变化方向不利）")
    titles = {d.id: d.title_zh for d in data.definitions}
    kinds = {"target_missed": "未达目标", "wrong_direction": "方向不利"}
    records = data.warnings.iloc[list(rows)].to_dict("records") if len(rows) else []
    body = [
        [
            kinds.get(str(r["warning"]), str(r["warning"])),
            titles.get(str(r["indicator"]), str(r["indicator"])),
            data.key_label(r["scope"], r["scope_key"]),
            value_text(r["value"], str(r["unit"])),
            value_text(r["previous_value"], str(r["unit"])),
            target_text(r["target_op"], r["target"], r["target_year"], str(r["unit"])),
        ]
        for r in records
    ]
    header = ["预警", "指标", "范围", "数值", "上次快照", "目标"]
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, 0.87), header, body, font=7.0)


def _detail_page(figure: Figure, data: ReportData, rows: range) -> None:
    heading(figure, "指标明细（全部分项）")
    titles = {d.id: d.title_zh for d in data.definitions}
    records = data.table.iloc[list(rows)].to_dict("records")
    body = [
        [
            titles.get(str(r["indicator"]), str(r["indicator"])),
            scope_text(r["scope"]),
            data.key_label(r["scope"], r["scope_key"]) if str(r["scope_key"]) else "—",
            value_text(r["value"], str(r["unit"])),
            target_text(r["target_op"], r["target"], r["target_year"], str(r["unit"])),
            met_label(r["target_met"]),
            change_text(r["change"], str(r["unit"])),
        ]
        for r in records
    ]
    header = ["指标", "范围", "分项", "数值", "目标", "状态", "变化"]
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, 0.87), header, body, font=7.0)
