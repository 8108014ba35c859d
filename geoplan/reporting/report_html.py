"""The quarterly report as one self-contained HTML file that prints well on A4.

Self-contained for the same reasons as the compliance report: it is mailed and filed on offline intranets. No
script, nothing loaded from anywhere (a CSP meta tag forbids it even if a later edit slipped a reference in):
the charts are inline SVG (the dashboard's own drawings, `svg_charts`), the maps PNG data URIs drawn with
matplotlib. Jinja2 autoescaping turns every text (indicator titles, town and rule names) into text, never
markup; the SVG is serialised by ElementTree, which escapes too.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from geoplan import __version__
from geoplan.reporting.formatting import (
    change_text,
    is_missing,
    met_label,
    note_text,
    scope_text,
    target_text,
    value_text,
)
from geoplan.reporting.life_circle_section import GROUP_TITLE as LIFE_CIRCLE_TITLE
from geoplan.reporting.life_circle_section import NOTES as LIFE_CIRCLE_NOTES
from geoplan.reporting.report_data import ReportData
from geoplan.reporting.report_maps import map_figure
from geoplan.reporting.report_mpl import figure_png, rendering
from geoplan.reporting.svg_charts import chart_svg

__all__ = ["render_html", "template_environment"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "quarterly_report.html"
WARNING_KINDS = {"target_missed": "未达目标", "wrong_direction": "变化方向不利"}
MAP_DPI = 130


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # indicator titles, towns and rules are data: escaped, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _map_uri(kind: str, data: ReportData) -> str:
    png = figure_png(map_figure(kind, data.layers, size=(7.0, 5.2)), dpi=MAP_DPI)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(data: ReportData) -> bytes:
    """The report as UTF-8 HTML."""
    with rendering():
        maps = [
            ("各村（社区）十分钟文化圈人口覆盖率", _map_uri("coverage", data)),
            ("建设项目分布（按状态）", _map_uri("projects", data)),
        ]
    towns = data.town_table
    town_rows = []
    for name in towns.towns:
        cells = []
        for d in towns.indicators:
            value, met, note = towns.cell(name, d.id)
            state = "" if met is None else ("met" if met else "missed")
            cells.append((value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"), state))
        town_rows.append((name, cells))
    life_circles = []
    for item in data.life_circles.rows:
        d = item.definition
        target = d.target_for(data.year)
        cells = []
        for value, met, note in (item.district, *item.towns):
            state = "" if met is None else ("met" if met else "missed")
            cells.append((value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"), state))
        life_circles.append(
            {
                "id": d.id,
                "title": d.title_zh,
                "target": "—" if target is None else target_text(target.comparison, target.value, target.year, d.unit),
                "cells": cells,
                "change": change_text(item.change, d.unit),
            }
        )
    titles = {d.id: d.title_zh for d in data.definitions}
    warnings = [
        {
            "kind": WARNING_KINDS.get(str(r["warning"]), str(r["warning"])),
            "indicator": str(r["indicator"]),
            "title": titles.get(str(r["indicator"]), str(r["indicator"])),
            "key": data.key_label(r["scope"], r["scope_key"]),
            "value": value_text(r["value"], str(r["unit"])),
            "previous": value_text(r["previous_value"], str(r["unit"])),
            "target": target_text(r["target_op"], r["target"], r["target_year"], str(r["unit"])),
            "message": str(r["message"]),
        }
        for r in data.warnings.to_dict("records")
    ]
    detail = [
        {
            "indicator": str(r["indicator"]),
            "title": titles.get(str(r["indicator"]), ""),
            "scope": scope_text(r["scope"]),
            "key": data.key_label(r["scope"], r["scope_key"]),
            "value": value_text(r["value"], str(r["unit"])),
            "ellipsoid": "" if is_missing(r["value_ellipsoid"]) else value_text(r["value_ellipsoid"], str(r["unit"])),
            "target": target_text(r["target_op"], r["target"], r["target_year"], str(r["unit"])),
            "met": met_label(r["target_met"]),
            "state": "" if r["target_met"] is None else ("met" if r["target_met"] else "missed"),
            "previous": "—" if is_missing(r["previous_value"]) else value_text(r["previous_value"], str(r["unit"])),
            "change": change_text(r["change"], str(r["unit"])),
            "note": note_text(r["note"]),
        }
        for r in data.table.to_dict("records")
    ]
    history = [
        {
            "indicator": row.definition.id,
            "title": row.definition.title_zh,
            "key": row.scope_key or "全区",
            "values": [value_text(v, row.definition.unit) for v in row.values],
        }
        for row in data.history_rows
    ]
    context = {
        "data": data,
        "version": __version__,
        "summaries": data.summaries,
        "value_text": value_text,
        "target_text": target_text,
        "change_text": change_text,
        # Markup: the SVG is ElementTree's serialisation, which escaped every text and attribute already.
        "charts": [(c, Markup(chart_svg(c).to_svg())) for c in data.charts],
        "trends": [(c, Markup(chart_svg(c).to_svg())) for c in data.trends] if data.snapshots else [],
        "maps": maps,
        "towns": towns,
        "town_rows": town_rows,
        "life_circle_title": LIFE_CIRCLE_TITLE,
        "life_circle_columns": data.life_circles.columns,
        "life_circles": life_circles,
        "life_circle_notes": LIFE_CIRCLE_NOTES,
        "warnings": warnings,
        "detail": detail,
        "history": history,
        "previous": data.previous,
        "generated": data.generated_local,
    }
    return template_environment().get_template(TEMPLATE).render(**context).encode("utf-8")
