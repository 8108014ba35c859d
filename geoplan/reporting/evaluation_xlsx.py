"""The plan-end evaluation as an Excel workbook (openpyxl), one sheet per section:

概要        the plan (period, milestones), the moments described, synthetic layers
任务领域    projects per task area by outcome, and the projects' names per outcome
项目        every project: its state at the end of the monitoring and its outcome
指标        every indicator at the start, the plan's end and the end of the monitoring, and per milestone year
            the target due and the verdict
冲突图斑    the conflict patches resolved, new and remaining (by stable patch id)
村覆盖率    culture coverage per village then and now, and the change
趋势        the district trends over the plan's snapshots as native Excel charts (the quarterly report's)
地图        the three maps as images

Numbers stay numbers (not text), so the sheets can be filtered and recomputed.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.drawing.image import Image
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from geoplan.monitoring.project_outcomes import OUTCOMES
from geoplan.reporting.evaluation_data import EvaluationData
from geoplan.reporting.evaluation_maps import evaluation_map_figure
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
from geoplan.reporting.report_mpl import figure_png, rendering
from geoplan.reporting.report_xlsx import chart_block, header_row

__all__ = ["SHEETS", "render_evaluation_xlsx"]

SHEETS = ("概要", "任务领域", "项目", "指标", "冲突图斑", "村覆盖率", "趋势", "地图")
VERDICT_FILLS = {"met": PatternFill("solid", fgColor="E3F4E6"), "missed": PatternFill("solid", fgColor="FDE2E1")}
VERDICT_FILLS["partial"] = PatternFill("solid", fgColor="FFF4D6")
BOLD = Font(bold=True)


def render_evaluation_xlsx(data: EvaluationData) -> bytes:
    book = Workbook()
    book.remove(book.active)
    sheets = {name: book.create_sheet(name) for name in SHEETS}
    _overview(sheets["概要"], data)
    _task_areas(sheets["任务领域"], data)
    _rows(sheets["项目"], project_header(), project_rows(data), [14, 28, 16, 10, 10, 10, 10, 10, 12, 8])
    _indicators(sheets["指标"], data)
    _conflicts(sheets["冲突图斑"], data)
    _rows(sheets["村覆盖率"], VILLAGE_HEADER, village_rows(data), [16, 18, 18, 18, 16])
    _trends(sheets["趋势"], data)
    _maps(sheets["地图"], data)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _overview(sheet: Worksheet, data: EvaluationData) -> None:
    sheet["A1"] = data.title
    sheet["A1"].font = Font(bold=True, size=14)
    row = 3
    for name, value in plan_lines(data):
        sheet.cell(row=row, column=1, value=name).font = BOLD
        sheet.cell(row=row, column=2, value=value)
        row += 1
    if data.synthetic:
        note = sheet.cell(row=row + 1, column=1, value="示意数据：图层为合成的演示数据，数值不是官方统计。")
        note.font = Font(bold=True, color="C2410C")
    for offset, text in enumerate((STALLED_NOTE, *data.notes), start=row + 2):
        sheet.cell(row=offset, column=1, value=text)
    sheet.column_dimensions["A"].width = 26
    sheet.column_dimensions["B"].width = 90


def _rows(sheet: Worksheet, header: list[str], rows: list[list[object]], widths: list[float]) -> None:
    header_row(sheet, header, widths)
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            sheet.cell(row=r, column=c, value=value)


def _task_areas(sheet: Worksheet, data: EvaluationData) -> None:
    rows = outcome_rows(data)
    _rows(sheet, OUTCOME_HEADER, rows, [16, *([11] * (len(OUTCOME_HEADER) - 1))])
    top = len(rows) + 3
    sheet.cell(row=top, column=1, value=STALLED_NOTE)
    top += 2
    names = ["任务领域", *OUTCOMES.values(), "其中停滞"]
    header_row(sheet, names, row=top)
    sheet.freeze_panes = "A2"
    for r, area in enumerate(data.task_areas, start=top + 1):
        sheet.cell(row=r, column=1, value=area)
        for c, outcome in enumerate(OUTCOMES, start=2):
            sheet.cell(row=r, column=c, value="、".join(data.projects_of(area, outcome)) or "—")
        sheet.cell(row=r, column=len(OUTCOMES) + 2, value="、".join(data.stalled_of(area)) or "—")


def _indicators(sheet: Worksheet, data: EvaluationData) -> None:
    header = indicator_header(data)
    header_row(sheet, header, [22, 30, 6, *([14] * (len(header) - 3))])
    first_verdict = 5 + len(data.moments)
    for r, item in enumerate(data.indicators, start=2):
        d = item.definition
        values: list[object] = [d.id, d.title_zh, d.unit]
        values += list(item.values) if item.headline else ["见分项"] * len(item.values)
        values.append(item.change)
        for verdict in item.verdicts:
            values += [verdict_target(verdict.target, d.unit), verdict.label]
        for c, value in enumerate(values, start=1):
            sheet.cell(row=r, column=c, value=value)
        for i, verdict in enumerate(item.verdicts):
            fill = VERDICT_FILLS.get(verdict.verdict)
            if fill is not None:
                sheet.cell(row=r, column=first_verdict + 2 * i + 1).fill = fill


def _conflicts(sheet: Worksheet, data: EvaluationData) -> None:
    summary = conflict_summary(data)
    header_row(sheet, ["", "图斑数", "面积（公顷）"], [34, 12, 14])
    for r, (what, count, area) in enumerate(summary, start=2):
        sheet.cell(row=r, column=1, value=what)
        sheet.cell(row=r, column=2, value=count)
        sheet.cell(row=r, column=3, value=area)
    top = len(summary) + 3
    header_row(sheet, CONFLICT_HEADER, row=top)
    sheet.freeze_panes = "A2"
    for r, values in enumerate(conflict_rows(data), start=top + 1):
        for c, value in enumerate(values, start=1):
            sheet.cell(row=r, column=c, value=value)
    for column, width in zip("DEFGH", (12, 14, 8, 10, 20), strict=True):
        sheet.column_dimensions[column].width = width


def _trends(sheet: Worksheet, data: EvaluationData) -> None:
    row = 1
    if not data.final.snapshots:
        sheet.cell(row=1, column=1, value="计划期内尚无快照：趋势图需按季度记录的快照。")
        return
    for chart in data.trends:
        row = chart_block(sheet, chart, row)
    sheet.column_dimensions["A"].width = 18


def _maps(sheet: Worksheet, data: EvaluationData) -> None:
    with rendering():
        for anchor, kind in (("A1", "change"), ("A32", "coverage_start"), ("A63", "coverage_end")):
            png = figure_png(evaluation_map_figure(kind, data), dpi=110)
            sheet.add_image(Image(io.BytesIO(png)), anchor)
