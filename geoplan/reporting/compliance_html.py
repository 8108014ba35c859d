"""The printable compliance report (建设项目选址合规性审查报告): one self-contained HTML file.

Self-contained because these reports are printed, mailed and filed on government intranets that are often
offline: no JavaScript, no fonts, images or styles from anywhere (the map is inline SVG; a CSP meta tag forbids
loading anything even if a later edit slipped a reference in). Built with Jinja2 autoescaping, so user text
such as the site's name reaches the page as text, never as markup. The library renders; the web layer only
serves the string.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from geoplan import __version__
from geoplan.analysis.compliance import ComplianceReport
from geoplan.analysis.compliance_site import source_label
from geoplan.beijing_time import shown_time
from geoplan.reporting.compliance_svg import site_map
from geoplan.services.compliance import SiteContext

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "compliance_report.html"

SEVERITY_ZH = {"high": "高", "medium": "中", "low": "低（提示）"}
RELATION_ZH = {"intersection": "不得占用（相交）", "difference": "应位于其内（超出部分）"}
VERDICT_ZH = {"fail": "不通过", "pass_with_warnings": "通过（有提示事项）", "pass": "通过"}
VERDICT_EXPLAIN = {
    "fail": "拟选址与高、中严重程度的管控规则存在冲突，需调整选址或依法办理相关手续。",
    "pass_with_warnings": "未发现高、中严重程度的冲突；存在低严重程度的提示事项，请核实。",
    "pass": "经审查，拟选址未与所列管控规则发生冲突。",
}
FEATURE_IDS_SHOWN = 12


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every {{ }} is escaped: site names and rule text are data, not markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["area"] = lambda v: f"{v:,.0f}"
    env.filters["pct"] = lambda v: f"{v:.2f}"
    env.filters["ids"] = _ids_text
    return env


def _ids_text(ids: tuple[str, ...]) -> str:
    if not ids:
        return "–"
    shown = "、".join(ids[:FEATURE_IDS_SHOWN])
    return shown if len(ids) <= FEATURE_IDS_SHOWN else f"{shown} 等 {len(ids)} 个"


def _beijing_time(iso: str) -> str:
    return shown_time(iso, label=True)


def render_html(
    report: ComplianceReport, *, layer_colours: dict[str, str] | None = None, context: SiteContext | None = None
) -> str:
    """The report as a complete HTML document (A4 print layout). `layer_colours` colours the touched layers
    on the map (layer -> #rrggbb, e.g. from the catalogue styles); `context` (services.compliance.site_context)
    draws the roads, towns and district around the site."""
    values: dict[str, Any] = {
        "report": report,
        "source_label": source_label(report.site_source),
        "map": site_map(report, layer_colours=layer_colours, context=context),
        "verdict_text": VERDICT_ZH[report.verdict],
        "verdict_explain": VERDICT_EXPLAIN[report.verdict],
        "severity_zh": SEVERITY_ZH,
        "relation_zh": RELATION_ZH,
        "generated": _beijing_time(report.generated_at),
        "data": dict(report.data),
        "version": __version__,
    }
    return _environment().get_template(TEMPLATE).render(values)
