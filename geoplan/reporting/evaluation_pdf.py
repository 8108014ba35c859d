"""The plan-end evaluation as a PDF (A4 portrait), drawn with matplotlib's PdfPages like the quarterly report
(report_pdf: its tables, headings, trend pages and footer notes).

The pages, in order (`page_plan` lists them):

1. the cover: the plan (period, milestones, the moments described) and the projects per task area by outcome;
2. the projects' names per task area and outcome;
3. every indicator at the start, the plan's end and the end of the monitoring, and per milestone year the
   target due and the verdict, INDICATOR_ROWS_PER_PAGE per page;
4. the trends over the plan's snapshots (the quarterly report's trend pages);
5. the maps: the change of coverage with the conflicts resolved, and the coverage then and now;
6. the conflicts: the summary and every patch (resolved, new, remaining), LIST_ROWS_PER_PAGE per page;
7. every project with its outcome;
8. every village's coverage then and now.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from matplotlib.figure import Figure

from geoplan.monitoring.project_outcomes import OUTCOMES
from geoplan.reporting.evaluation_data import EvaluationData
from geoplan.reporting.evaluation_maps import draw_change_map, draw_coverage_at
from geoplan.reporting.evaluation_tables import (
    CONFLICT_HEADER,
    OUTCOME_HEADER,
    STALLED_NOTE,
    VILLAGE_HEADER,
    conflict_rows,
    conflict_summary,
    indicator_header,
    outcome_rows,
    plan_lines,
    project_header,
    project_rows,
    verdict_target,
    village_rows,
)
from geoplan.reporting.formatting import change_text, value_text
from geoplan.reporting.pdf_table import TableLayout, draw_table
from geoplan.reporting.report_pdf import (
    A4,
    MARGIN,
    Page,
    chunks,
    heading,
    pages_pdf,
    synthetic_footer,
    synthetic_note,
    trends_page,
)

__all__ = ["INDICATOR_ROWS_PER_PAGE", "LIST_ROWS_PER_PAGE", "page_plan", "render_evaluation_pdf"]

INDICATOR_ROWS_PER_PAGE = 17
LIST_ROWS_PER_PAGE = 46
TRENDS_PER_PAGE = 8
VERDICT_COLOURS = {"met": "#e3f4e6", "missed": "#fde2e1", "partial": "#fff4d6"}


def page_plan(data: EvaluationData) -> list[Page]:
    pages = [
        Page("概况与任务领域", partial(_cover_page, data=data)),
        Page("项目名单", partial(_names_page, data=data)),
    ]
    for rows in chunks(len(data.indicators), INDICATOR_ROWS_PER_PAGE):
        pages.append(Page("指标起止与节点目标", partial(_indicators_page, data=data, rows=rows)))
    if data.final.snapshots:
        for rows in chunks(len(data.trends), TRENDS_PER_PAGE):
            pages.append(Page("指标趋势", partial(trends_page, data=data.final, rows=rows)))
    pages.append(Page("变化地图", partial(_maps_page, data=data)))
    conflicts = conflict_rows(data)
    for number, rows in enumerate(chunks(len(conflicts), LIST_ROWS_PER_PAGE - 8) or [range(0)]):
        pages.append(Page("冲突图斑化解", partial(_conflicts_page, data=data, rows=rows, first=number == 0)))
    projects = project_rows(data)
    for rows in chunks(len(projects), LIST_ROWS_PER_PAGE):
        pages.append(
            Page(
                "项目清单",
                partial(
                    _list_page,
                    title="项目清单",
                    header=project_header(),
                    rows=[
                        [*(str(c) for c in r[:6]), value_text(r[6], "%", with_unit=False), *(str(c) for c in r[7:])]
                        for r in (projects[i] for i in rows)
                    ],
                ),
            )
        )
    villages = village_rows(data)
    for rows in chunks(len(villages), LIST_ROWS_PER_PAGE):
        pages.append(
            Page(
                "各村覆盖率",
                partial(
                    _list_page,
                    title="各村（社区）文化圈覆盖率变化",
                    header=VILLAGE_HEADER,
                    rows=[
                        [str(code), str(name), _pct(a), _pct(b), "—" if c is None else change_text(c, "%")]
                        for code, name, a, b, c in (villages[i] for i in rows)
                    ],
                ),
            )
        )
    return pages


def render_evaluation_pdf(data: EvaluationData) -> bytes:
    """The evaluation as PDF bytes."""
    return pages_pdf(
        page_plan(data),
        title=data.title,
        moment=f"生成于 {data.generated_local}（北京时间）",
        synthetic=synthetic_footer(data.final) if data.synthetic else None,
    )


def _pct(value: Any) -> str:
    return "—" if value is None else value_text(value, "%", with_unit=False)


def _below(top: float, layout: TableLayout | None, gap: float = 0.02) -> float:
    """The figure y just under a table drawn from `top` (its rows' heights are points)."""
    return top - (sum(layout.heights) / (A4[1] * 72.0) if layout is not None else 0.03) - gap


def _cover_page(figure: Figure, data: EvaluationData) -> None:
    heading(figure, data.title, size=12)
    lines = []
    for name, value in plan_lines(data):
        if name == "节点年份":  # one milestone a line: the notes are long
            lines += [f"节点年份：{m.year} 年 {m.title_zh}（{m.note}）" for m in data.plan.milestones]
        elif name != "合成（示意）数据图层":
            lines.append(f"{name}：{value}")
    warning = synthetic_note(data.final) if data.synthetic else []
    y = 0.935
    for line, colour in [*((t, "#1f2933") for t in (*lines, *data.notes)), *((t, "#c2410c") for t in warning)]:
        figure.text(0.06, y, line, fontsize=7.5, color=colour)
        y -= 0.017
    y -= 0.01
    figure.text(0.06, y, "一、各任务领域项目实施情况（评估截至）", fontsize=10, color="#1f2933")
    rows = [[str(c) for c in row] for row in outcome_rows(data)]
    top = y - 0.012
    layout = draw_table(figure, (MARGIN, top - 0.3, 1 - 2 * MARGIN, 0.3), OUTCOME_HEADER, rows, font=7.5)
    y = _below(top, layout, 0.015)
    figure.text(0.06, y, STALLED_NOTE, fontsize=6.5, color="#52606d")
    y -= 0.04
    figure.text(0.06, y, "二、多规冲突图斑（摘要）", fontsize=10, color="#1f2933")
    body = [[what, str(count), value_text(area, "ha")] for what, count, area in conflict_summary(data)]
    top = y - 0.012
    draw_table(figure, (MARGIN, top - 0.16, 1 - 2 * MARGIN, 0.16), ["", "图斑数", "面积"], body, font=7.5)


def _names_page(figure: Figure, data: EvaluationData) -> None:
    heading(figure, "各任务领域项目名单（评估截至）")
    body = []
    for area in data.task_areas:
        for key, label in OUTCOMES.items():
            names = data.projects_of(area, key)
            if names:
                body.append([area, label, "、".join(names)])
        stalled = data.stalled_of(area)
        if stalled:
            body.append([area, "其中停滞", "、".join(stalled)])
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, 0.87), ["任务领域", "结果", "项目"], body, font=7.0)


def _indicators_page(figure: Figure, data: EvaluationData, rows: range) -> None:
    """Eight columns, so the names fit on A4: a milestone's target and verdict share one cell."""
    heading(figure, "指标起止对比与节点目标")
    moments = indicator_header(data)[3 : 3 + len(data.moments)]
    header = ["指标", *moments, "变化（末−起）", *(f"{m.year} 年（{q}）" for m, q in data.milestones)]
    body: list[list[str]] = []
    colours: list[list[str]] = []
    for index in rows:
        item = data.indicators[index]
        d = item.definition
        cells = [f"{d.title_zh}\n{d.id}"]
        cells += [value_text(v, d.unit) if item.headline else "见分项" for v in item.values]
        cells.append(change_text(item.change, d.unit) if item.headline else "—")
        shades = ["#ffffff"] * len(cells)
        for verdict in item.verdicts:
            target = "" if verdict.target is None else "\n" + verdict_target(verdict.target, d.unit)
            cells.append(verdict.label + target)
            shades.append(VERDICT_COLOURS.get(verdict.verdict, "#ffffff"))
        body.append(cells)
        colours.append(shades)
    draw_table(figure, (MARGIN, 0.08, 1 - 2 * MARGIN, 0.85), header, body, font=7.0, colours=colours)
    figure.text(
        0.06,
        0.05,
        "结论：节点年份第四季度末（不晚于监测截止季度）的全区数值与当年到期的目标比较；未注明年份的目标每年适用。",
        fontsize=6.5,
        color="#52606d",
    )


def _maps_page(figure: Figure, data: EvaluationData) -> None:
    heading(figure, "变化地图：计划起点与评估截至")
    draw_change_map(figure.add_axes((0.04, 0.50, 0.60, 0.42)), data)
    draw_coverage_at(figure.add_axes((0.04, 0.27, 0.40, 0.18)), data, "coverage_start", title="计划起点覆盖率")
    draw_coverage_at(figure.add_axes((0.04, 0.04, 0.40, 0.18)), data, "coverage_end", title="评估截至覆盖率")


def _conflicts_page(figure: Figure, data: EvaluationData, rows: range, first: bool) -> None:
    heading(figure, "多规冲突图斑化解情况" if first else "多规冲突图斑（续）")
    top = 0.93
    if first:
        body = [[what, str(count), value_text(area, "ha")] for what, count, area in conflict_summary(data)]
        draw_table(figure, (MARGIN, top - 0.16, 1 - 2 * MARGIN, 0.16), ["", "图斑数", "面积"], body, font=7.0)
        top -= 0.18
    listed = conflict_rows(data)
    body = [
        [*(str(c) for c in listed[i][:4]), value_text(listed[i][4], "ha", with_unit=False), *listed[i][5:]]
        for i in rows
    ]
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, top - 0.06), CONFLICT_HEADER, body, font=6.5)


def _list_page(figure: Figure, *, title: str, header: Sequence[str], rows: list[list[str]]) -> None:
    heading(figure, title)
    draw_table(figure, (MARGIN, 0.06, 1 - 2 * MARGIN, 0.87), header, rows, font=6.5)
