"""The quarterly report as an Excel workbook (openpyxl), one sheet per section:

概要        what the report describes (quarter, moment, comparison snapshot, synthetic layers)
指标        every indicator: headline value, target, state, change, warnings
明细        every indicator row, machine-readable (ids, raw numbers: value, target, met, previous, change)
镇街对比    towns × the indicators reported per town
生活圈      公共服务生活圈: each life-circle indicator (a service, a circle's completeness), district and towns
历史        every indicator over the snapshots
预警        the early warnings
图表        the overview charts and the district trends as native Excel charts, on their data
地图        the two small maps as images

Numbers stay numbers (not text), so the sheets can be filtered and recomputed.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from geoplan.beijing_time import api_time
from geoplan.monitoring.indicator_columns import MEASURE_COLUMNS
from geoplan.monitoring.snapshots import WARNING_COLUMNS
from geoplan.reporting.charts import Chart
from geoplan.reporting.formatting import plain, target_text
from geoplan.reporting.life_circle_section import NOTES
from geoplan.reporting.report_data import ReportData
from geoplan.reporting.report_maps import map_figure
from geoplan.reporting.report_mpl import figure_png, rendering

__all__ = ["DETAIL_COLUMNS", "SHEETS", "chart_block", "header_row", "render_xlsx"]

SHEETS = ("概要", "指标", "明细", "镇街对比", "生活圈", "历史", "预警", "图表", "地图")
DETAIL_COLUMNS = [MEASURE_COLUMNS[0], "title_zh", *MEASURE_COLUMNS[1:], "previous_value", "change", "note", "as_of"]
"""An indicator row as the service computes it (its title after its id) with the change since the last snapshot."""
WARNING_SHEET_COLUMNS = [
    "warning",
    *(
        c
        for column in WARNING_COLUMNS
        if column not in ("warning", "snapshot_id", "quarter", "previous_snapshot_id")
        for c in ((column, "title_zh") if column == "indicator" else (column,))
    ),
]
"""The 预警 sheet: a warning's kind first, then the snapshot warning's columns without the snapshot ids and quarter,
the indicator's Chinese title after its id (as on the 明细 sheet)."""
HEADER_FILL = PatternFill("solid", fgColor="E4EBF2")
MET_FILL = PatternFill("solid", fgColor="E3F4E6")
MISSED_FILL = PatternFill("solid", fgColor="FDE2E1")
BOLD = Font(bold=True)


def header_row(sheet: Worksheet, names: list[str], widths: list[float] | None = None, row: int = 1) -> None:
    for column, name in enumerate(names, start=1):
        cell = sheet.cell(row=row, column=column, value=name)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if widths:
            sheet.column_dimensions[get_column_letter(column)].width = widths[column - 1]
    sheet.freeze_panes = sheet.cell(row=row + 1, column=1)


def render_xlsx(data: ReportData) -> bytes:
    book = Workbook()
    book.remove(book.active)
    sheets = {name: book.create_sheet(name) for name in SHEETS}
    _overview(sheets["概要"], data)
    _indicators(sheets["指标"], data)
    _detail(sheets["明细"], data)
    _towns(sheets["镇街对比"], data)
    _life_circles(sheets["生活圈"], data)
    _history(sheets["历史"], data)
    _warnings(sheets["预警"], data)
    _charts(sheets["图表"], data)
    _maps(sheets["地图"], data)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _overview(sheet: Worksheet, data: ReportData) -> None:
    sheet["A1"] = data.title
    sheet["A1"].font = Font(bold=True, size=14)
    previous = (
        f"第 {data.previous.id} 次快照（{data.previous.quarter}，截至 {data.previous_as_of_local} 北京时间）"
        if data.previous is not None
        else "尚无更早的快照"
    )
    rows = [
        ("报告季度", str(data.quarter)),
        ("数据截至（北京时间）", data.as_of_local),
        ("数据截至（ISO 8601）", api_time(data.as_of.at)),
        ("本季度未结束、数据为现状", "是" if data.as_of.current else "否"),
        ("比较基准", previous),
        ("快照次数", len(data.snapshots)),
        ("指标数", len(data.definitions)),
        ("分项数", len(data.table)),
        ("预警数", len(data.warnings)),
        ("指标定义 SHA-256", data.definitions_sha256),
        ("生成时间（北京时间）", data.generated_local),
        ("合成（示意）数据图层", "、".join(data.synthetic_titles or data.synthetic) or "无"),
    ]
    for offset, (name, value) in enumerate(rows, start=3):
        sheet.cell(row=offset, column=1, value=name).font = BOLD
        sheet.cell(row=offset, column=2, value=value)
    if data.synthetic:
        note = sheet.cell(row=len(rows) + 4, column=1, value="示意数据：图层为合成的演示数据，数值不是官方统计。")
        note.font = Font(bold=True, color="C2410C")
    for offset, text in enumerate(data.notes, start=len(rows) + 5):
        sheet.cell(row=offset, column=1, value=text)
    sheet.column_dimensions["A"].width = 26
    sheet.column_dimensions["B"].width = 70


def _indicators(sheet: Worksheet, data: ReportData) -> None:
    header_row(
        sheet,
        ["指标 id", "指标", "Indicator", "单位", "全区数值", "目标", "状态", "上次快照", "变化", "预警数", "说明"],
        [22, 30, 36, 6, 12, 18, 16, 12, 12, 8, 60],
    )
    for row, s in enumerate(data.summaries, start=2):
        values = [
            s.definition.id,
            s.definition.title_zh,
            s.definition.title_en,
            s.definition.unit,
            s.value,
            target_text(s.target_op, s.target, s.target_year, s.definition.unit),
            s.state_label,
            s.previous_value,
            s.change,
            s.warnings,
            s.definition.description,
        ]
        for column, value in enumerate(values, start=1):
            sheet.cell(row=row, column=column, value=plain(value))
        fill = {"met": MET_FILL, "missed": MISSED_FILL}.get(s.state)
        if fill is not None:
            sheet.cell(row=row, column=7).fill = fill


def _detail(sheet: Worksheet, data: ReportData) -> None:
    header_row(sheet, DETAIL_COLUMNS, [22, 28, 16, 30, 14, 14, 6, 10, 6, 8, 8, 14, 12, 30, 26])
    titles = {d.id: d.title_zh for d in data.definitions}
    for row, record in enumerate(data.table.to_dict("records"), start=2):
        record = {**record, "title_zh": titles.get(str(record["indicator"]), "")}
        for column, name in enumerate(DETAIL_COLUMNS, start=1):
            value = plain(record.get(name))
            if name == "target_year" and value is not None:
                value = int(value)
            if name == "as_of":  # Beijing time with its offset, like every time in the workbook
                value = api_time(value)
            sheet.cell(row=row, column=column, value=value)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(DETAIL_COLUMNS))}{len(data.table) + 1}"


def _towns(sheet: Worksheet, data: ReportData) -> None:
    towns = data.town_table
    names = ["镇街", *(f"{d.title_zh}（{d.unit}）" for d in towns.indicators)]
    header_row(sheet, names, [14, *([18] * len(towns.indicators))])
    for row, name in enumerate(towns.towns, start=2):
        sheet.cell(row=row, column=1, value=name)
        for column, d in enumerate(towns.indicators, start=2):
            value, met, note = towns.cell(name, d.id)
            cell = sheet.cell(row=row, column=column, value=value if value is not None else (note or None))
            if met is not None:
                cell.fill = MET_FILL if met else MISSED_FILL
    ids_row = len(towns.towns) + 3
    sheet.cell(row=ids_row, column=1, value="指标 id")
    for column, d in enumerate(towns.indicators, start=2):
        sheet.cell(row=ids_row, column=column, value=d.id)


def _life_circles(sheet: Worksheet, data: ReportData) -> None:
    table = data.life_circles
    columns = [f"{c}（%）" for c in table.columns]
    header_row(
        sheet,
        ["指标 id", "公共服务生活圈指标", "目标", *columns, "全区较上次快照（百分点）"],
        [22, 30, 14, *([12] * len(columns)), 16],
    )
    year = data.year
    for row, item in enumerate(table.rows, start=2):
        d = item.definition
        target = d.target_for(year)
        sheet.cell(row=row, column=1, value=d.id)
        sheet.cell(row=row, column=2, value=d.title_zh)
        sheet.cell(
            row=row,
            column=3,
            value="无" if target is None else target_text(target.comparison, target.value, target.year, d.unit),
        )
        for column, (value, met, note) in enumerate((item.district, *item.towns), start=4):
            cell = sheet.cell(row=row, column=column, value=value if value is not None else (note or None))
            if met is not None:
                cell.fill = MET_FILL if met else MISSED_FILL
        sheet.cell(row=row, column=4 + len(columns), value=item.change)
    if not table:
        sheet.cell(row=2, column=1, value="指标定义中没有公共服务生活圈指标。")
        return
    for offset, line in enumerate(NOTES, start=len(table.rows) + 3):
        sheet.cell(row=offset, column=1, value=line)


def _history(sheet: Worksheet, data: ReportData) -> None:
    header_row(
        sheet,
        ["指标 id", "指标", "范围", "单位", *(f"{s.quarter} #{s.id}" for s in data.snapshots)],
        [22, 30, 14, 6, *([14] * len(data.snapshots))],
    )
    for row, item in enumerate(data.history_rows, start=2):
        sheet.cell(row=row, column=1, value=item.definition.id)
        sheet.cell(row=row, column=2, value=item.definition.title_zh)
        sheet.cell(row=row, column=3, value=item.scope_key or "全区")
        sheet.cell(row=row, column=4, value=item.definition.unit)
        for column, value in enumerate(item.values, start=5):
            sheet.cell(row=row, column=column, value=value)
    if not data.snapshots:
        sheet.cell(row=len(data.history_rows) + 3, column=1, value="尚无快照：用 geoplan snapshot 记录后显示历史。")


def _warnings(sheet: Worksheet, data: ReportData) -> None:
    header_row(sheet, WARNING_SHEET_COLUMNS, [16, 22, 28, 12, 24, 12, 12, 6, 10, 6, 8, 10, 80])
    titles = {d.id: d.title_zh for d in data.definitions}
    for row, record in enumerate(data.warnings.to_dict("records"), start=2):
        record = {**record, "title_zh": titles.get(str(record["indicator"]), "")}
        for column, name in enumerate(WARNING_SHEET_COLUMNS, start=1):
            sheet.cell(row=row, column=column, value=plain(record.get(name)))


def chart_block(sheet: Worksheet, chart: Chart, top: int) -> int:
    """Write the chart's data at row `top` (categories down column A, a column per series and per target) and
    anchor an Excel chart beside it; returns the next free row."""
    sheet.cell(row=top, column=1, value=chart.title).font = BOLD
    head = top + 1
    sheet.cell(row=head, column=1, value="分类")
    for column, series in enumerate(chart.series, start=2):
        sheet.cell(row=head, column=column, value=series.name)
    target_columns = []
    for offset, target in enumerate(chart.targets):
        column = 2 + len(chart.series) + offset
        sheet.cell(row=head, column=column, value=target.label)
        target_columns.append((column, target.value))
    for index, category in enumerate(chart.categories):
        row = head + 1 + index
        sheet.cell(row=row, column=1, value=category)
        for column, series in enumerate(chart.series, start=2):
            sheet.cell(row=row, column=column, value=series.values[index])
        for column, value in target_columns:
            sheet.cell(row=row, column=column, value=value)
    last = head + len(chart.categories)
    if chart.categories:
        labels = Reference(sheet, min_col=1, min_row=head + 1, max_row=last)
        if chart.kind == "lines":
            excel: BarChart | LineChart = LineChart()
            excel.add_data(
                Reference(sheet, min_col=2, max_col=1 + len(chart.series), min_row=head, max_row=last),
                titles_from_data=True,
            )
        else:
            excel = BarChart()
            excel.type = "col"
            excel.add_data(
                Reference(sheet, min_col=2, max_col=1 + len(chart.series), min_row=head, max_row=last),
                titles_from_data=True,
            )
            if chart.kind == "stacked":
                excel.grouping = "stacked"
                excel.overlap = 100
        excel.set_categories(labels)
        if target_columns and chart.kind != "lines":
            lines = LineChart()  # the targets as flat lines over the bars
            lines.add_data(
                Reference(
                    sheet, min_col=target_columns[0][0], max_col=target_columns[-1][0], min_row=head, max_row=last
                ),
                titles_from_data=True,
            )
            excel += lines
        excel.title = chart.title
        excel.y_axis.title = chart.unit
        excel.height, excel.width = 8.0, 18.0
        sheet.add_chart(excel, f"{get_column_letter(4 + len(chart.series) + len(chart.targets))}{top}")
    return max(last + 3, top + 18)


def _charts(sheet: Worksheet, data: ReportData) -> None:
    row = 1
    for chart in data.charts:
        row = chart_block(sheet, chart, row)
    if data.snapshots:
        for chart in data.trends:
            if chart.unit == "%":  # the shares, one chart each; the other trends are in 历史
                row = chart_block(sheet, chart, row)
    sheet.column_dimensions["A"].width = 18


def _maps(sheet: Worksheet, data: ReportData) -> None:
    with rendering():
        for anchor, kind in (("A1", "coverage"), ("A32", "projects")):
            png = figure_png(map_figure(kind, data.layers, size=(7.0, 5.2)), dpi=110)
            sheet.add_image(Image(io.BytesIO(png)), anchor)
