"""The plan-end evaluation as one self-contained HTML file that prints well on A4, like the quarterly report
(report_html): no script, nothing loaded from anywhere (a CSP meta tag forbids it), the trend charts inline SVG
(`svg_charts`, the dashboard's drawings), the maps PNG data URIs. Jinja2 autoescaping turns every text (project,
town and rule names) into text, never markup."""

from __future__ import annotations

import base64

from markupsafe import Markup

from geoplan import __version__
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
from geoplan.reporting.formatting import change_text, value_text
from geoplan.reporting.report_html import template_environment
from geoplan.reporting.report_mpl import figure_png, rendering
from geoplan.reporting.svg_charts import chart_svg

__all__ = ["MAP_TITLES", "render_evaluation_html"]

TEMPLATE = "evaluation_report.html"
MAP_DPI = 130
MAP_TITLES = {
    "change": "覆盖率变化（百分点）与多规冲突图斑化解情况",
    "coverage_start": "计划起点：各村十分钟文化圈人口覆盖率",
    "coverage_end": "评估截至：各村十分钟文化圈人口覆盖率",
}


def _map_uri(kind: str, data: EvaluationData) -> str:
    png = figure_png(evaluation_map_figure(kind, data), dpi=MAP_DPI)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _pct(value: object) -> str:
    return "—" if value is None else value_text(value, "%", with_unit=False)


def render_evaluation_html(data: EvaluationData) -> bytes:
    """The evaluation as UTF-8 HTML."""
    with rendering():
        maps = [(title, _map_uri(kind, data)) for kind, title in MAP_TITLES.items()]
    indicators = []
    for item in data.indicators:
        d = item.definition
        values = [value_text(v, d.unit) if item.headline else "见分项" for v in item.values]
        verdicts = [(verdict_target(v.target, d.unit), v.label, v.verdict) for v in item.verdicts]
        indicators.append(
            {
                "id": d.id,
                "title": d.title_zh,
                "unit": d.unit,
                "values": values,
                "change": change_text(item.change, d.unit) if item.headline else "—",
                "verdicts": verdicts,
            }
        )
    projects = [[*row[:6], value_text(row[6], "%", with_unit=False), *row[7:]] for row in project_rows(data)]
    conflicts = [[*row[:4], value_text(row[4], "ha", with_unit=False), *row[5:]] for row in conflict_rows(data)]
    villages = [
        [code, name, _pct(a), _pct(b), "—" if c is None else change_text(c, "%")]
        for code, name, a, b, c in village_rows(data)
    ]
    context = {
        "data": data,
        "version": __version__,
        "plan_lines": plan_lines(data),
        "stalled_note": STALLED_NOTE,
        "outcome_header": OUTCOME_HEADER,
        "outcome_rows": outcome_rows(data),
        "outcome_names": [
            (area, [(label, data.projects_of(area, key)) for key, label in OUTCOMES.items()], data.stalled_of(area))
            for area in data.task_areas
        ],
        "project_header": project_header(),
        "projects": projects,
        "indicator_header": indicator_header(data),
        "indicators": indicators,
        "conflict_summary": [(what, count, value_text(area, "ha")) for what, count, area in conflict_summary(data)],
        "conflict_header": CONFLICT_HEADER,
        "conflicts": conflicts,
        "village_header": VILLAGE_HEADER,
        "villages": villages,
        # Markup: the SVG is ElementTree's serialisation, which escaped every text and attribute already.
        "trends": [(c, Markup(chart_svg(c).to_svg())) for c in data.trends] if data.final.snapshots else [],
        "maps": maps,
    }
    return template_environment().get_template(TEMPLATE).render(**context).encode("utf-8")
