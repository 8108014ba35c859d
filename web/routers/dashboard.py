"""The monitoring dashboard (监测看板): `GET /dashboard`, the page, and `GET /api/dashboard`, everything it shows.

Who may see it: staff and above. The dashboard is the indicators (`/api/indicators`) seen at once, and they
aggregate private layers and fields (the population raster, the plan layers behind the conflict areas, the
project ledger), so the data needs a staff token like the indicator API it is built on. The page itself is
public and empty, like the planner, coverage and audit pages: a browser sends no bearer token on a page load,
so geoplan-dashboard.js asks for one (kept in the tab's sessionStorage) and fetches the data with it. The page
holds only what anyone may read anyway: headings and links to the public map pages.

The charts are drawn here, on the server, by the same code as the quarterly report (geoplan.reporting:
`charts` -> `svg_charts`), and travel as a JSON tree of SVG elements (`svg.Node.to_json`); the page script
rebuilds each with createElementNS/setAttribute/textContent from fixed lists of elements and attributes, so
no markup is ever parsed in the browser and nothing needs a CDN or a chart library. Numbers come from the
indicator service through the app's indicator cache (the same answers as `/api/indicators`); the history and
the early warnings from the snapshots.

GET /api/dashboard[?quarter=2020Q2|now]  (default: now, or the plan's last monitored quarter once today is past it)
    {as_of, as_of_local, current, quarter, quarters (the plan's quarters with data), plan, synthetic_layers,
     previous_snapshot, indicators: [{id, titles, unit,
     description, good_direction, targets, target_text, value, value_text, state, state_label, change,
     change_text, warnings, links, group, rows: [{scope, scope_key, value, value_text, target_text, target_met,
     met_label, note}]}], life_circles: {title, columns, snapshots, rows: [{id, title_zh, target_text, state,
     state_label, cells: [{value, text, met}], change_text, trend}], notes, charts}, warnings: {snapshot,
     previous_snapshot_id, items}, snapshots, history: {snapshots, rows}, towns: {indicators, rows},
     charts: [{id, title, note, indicator, svg}], trends: [...], reports}

The life-circle indicators (公共服务生活圈, one per service) have a group of their own: `group` names it on each
indicator, and `life_circles` holds them as one table (district and towns) with their trends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from geoplan.access import Role, can_see_layer
from geoplan.beijing_time import api_time, api_times
from geoplan.catalog import Catalog
from geoplan.monitoring.asof import as_of_now
from geoplan.monitoring.indicator_defs import IndicatorDef
from geoplan.monitoring.plan_period import PlanPeriod, plan_for
from geoplan.monitoring.snapshots import Snapshot
from geoplan.monitoring.snapshots import warnings as snapshot_warnings
from geoplan.reporting.charts import Chart, snapshot_label
from geoplan.reporting.formatting import change_text, met_label, note_text, plain, target_text, value_text
from geoplan.reporting.life_circle_section import GROUP_TITLE, LIFE_CIRCLE_KINDS, NOTES, is_life_circle
from geoplan.reporting.render import FORMATS
from geoplan.reporting.report_data import ReportData, gather_report
from geoplan.reporting.svg_charts import chart_svg
from geoplan.services.indicators import chosen_for, quarters_with_data
from geoplan.services.provenance import synthetic_titles
from geoplan.storage import LayerStore
from web.deps import CatalogDep, SettingsDep, StoreDep
from web.maps.basemap import NO_BASEMAP
from web.maps.csp import new_nonce
from web.routers.monitoring import IndicatorCacheDep, StaffCaller
from web.routers.pages import SITE_TITLE, render_page

router = APIRouter(tags=["dashboard"])

DASHBOARD_TITLE = "监测看板"
WARNING_KINDS = {"target_missed": "未达目标", "wrong_direction": "变化方向不利"}


@dataclass(frozen=True)
class Link:
    href: str
    title: str


def map_links(catalog: Catalog) -> list[Link]:
    """The map pages the dashboard leads to; layer pages only for public layers (the others answer 404)."""
    links = [
        Link("/", "项目地图"),
        Link("/coverage", "十分钟文化圈覆盖"),
        Link("/planner", "多规合一冲突图斑"),
    ]
    for name in ("projects", "sponge_areas", "renewal_zones", "culture_facilities"):
        if name in catalog and can_see_layer(catalog.get(name), Role.PUBLIC):
            links.append(Link(f"/layers/{name}", f"图层：{catalog.get(name).title_zh}"))
    links.append(Link("/audit", "审计日志（全过程留痕）"))
    return links


def indicator_links(definition: IndicatorDef, catalog: Catalog) -> list[Link]:
    """Where an indicator's figures can be seen on a map, by its kind (indicators are data, so not by id)."""

    def layer(name: Any) -> list[Link]:
        if isinstance(name, str) and name in catalog and can_see_layer(catalog.get(name), Role.PUBLIC):
            return [Link(f"/layers/{name}", f"{catalog.get(name).title_zh}图层")]
        return []

    kind, params = definition.kind, definition.params
    if kind in ("cultural_coverage", "library_coverage", "facility_count"):
        return [Link("/coverage", "文化圈覆盖地图"), *layer("culture_facilities")]
    if kind in LIFE_CIRCLE_KINDS:
        return [Link("/lifecircle", "公共服务生活圈地图"), *layer("public_facilities")]
    if kind == "conflict_area":
        return [Link("/planner", "多规合一冲突图斑")]
    if kind == "sponge_share":
        compliant = params.get("compliant") or {}
        return layer(compliant.get("layer"))
    if kind == "area_by_field":
        return layer(params.get("layer"))
    if kind in ("project_count", "project_overdue"):
        return [Link("/", "项目地图"), *layer("projects")]
    if kind in ("case_count", "case_area"):
        return [Link("/audit?layer=illegal_construction", "案件变更记录")]
    if kind == "village_checklist_share":
        return [Link("/audit?layer=village_checklist", "村居检查记录")]
    return []


# --------------------------------------------------------------------------------------------- the page


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, catalog: CatalogDep) -> HTMLResponse:
    """Rendered like the other pages (web/routers/pages.py); no map here: no tile host to allow."""
    context = {
        "title": f"{DASHBOARD_TITLE} · {SITE_TITLE}",
        "heading": DASHBOARD_TITLE,
        "links": map_links(catalog),
        "formats": list(FORMATS),
    }
    return render_page(request, NO_BASEMAP, "dashboard.html", new_nonce(), context)


# --------------------------------------------------------------------------------------------- the data


def _chart_json(chart: Chart) -> dict[str, Any]:
    return {
        "id": chart.id,
        "title": chart.title,
        "note": chart.note,
        "indicator": chart.indicator,
        "unit": chart.unit,
        "svg": chart_svg(chart).to_json(),
    }


def _snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {**api_times(snapshot.to_dict()), "label": snapshot_label(snapshot.id, snapshot.quarter)}


def _indicators_json(data: ReportData, catalog: Catalog) -> list[dict[str, Any]]:
    out = []
    for summary in data.summaries:
        definition = summary.definition
        unit = definition.unit
        rows = data.table[data.table["indicator"] == definition.id]
        out.append(
            {
                **{k: v for k, v in definition.to_dict().items() if k not in ("params", "kind")},
                "group": GROUP_TITLE if is_life_circle(definition) else "",
                "target_text": target_text(summary.target_op, summary.target, summary.target_year, unit),
                "targets_text": [target_text(t.comparison, t.value, t.year, unit) for t in definition.targets],
                "value": summary.value,
                "value_text": summary.value_label,
                "state": summary.state,
                "state_label": summary.state_label,
                "previous_value": summary.previous_value,
                "change": summary.change,
                "change_text": change_text(summary.change, unit),
                "warnings": summary.warnings,
                "links": [{"href": link.href, "title": link.title} for link in indicator_links(definition, catalog)],
                "rows": [
                    {
                        "scope": str(r["scope"]),
                        "scope_key": str(r["scope_key"]),
                        "value": plain(r["value"]),
                        "value_text": value_text(r["value"], unit),
                        "target_text": target_text(r["target_op"], r["target"], r["target_year"], unit),
                        "target_met": plain(r["target_met"]),
                        "met_label": met_label(r["target_met"]),
                        "change_text": change_text(r["change"], unit),
                        "note": note_text(r["note"]),
                    }
                    for r in rows.to_dict("records")
                ],
            }
        )
    return out


def _life_circles_json(data: ReportData) -> dict[str, Any]:
    """公共服务生活圈: one row per life-circle indicator, district and towns, with its district values over the
    snapshots (the trend) and the group's two trend charts."""
    table = data.life_circles
    history = {row.definition.id: row for row in data.history_rows if row.scope_key == ""}
    summaries = {s.definition.id: s for s in data.summaries}
    rows = []
    for item in table.rows:
        d = item.definition
        summary = summaries[d.id]
        past = history.get(d.id)
        rows.append(
            {
                "id": d.id,
                "title_zh": d.title_zh,
                "description": d.description,
                "target_text": target_text(summary.target_op, summary.target, summary.target_year, d.unit),
                "state": summary.state,
                "state_label": summary.state_label,
                "warnings": summary.warnings,
                "cells": [
                    {
                        "value": value,
                        "text": value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"),
                        "met": met,
                    }
                    for value, met, note in (item.district, *item.towns)
                ],
                "change_text": change_text(item.change, d.unit),
                "trend": [] if past is None else [value_text(v, d.unit) for v in past.values],
            }
        )
    charts = [c for c in data.trends if c.id.startswith("trend-life-circle")] if data.snapshots else []
    return {
        "title": GROUP_TITLE,
        "columns": list(table.columns),
        "snapshots": [snapshot_label(s.id, s.quarter) for s in data.snapshots],
        "rows": rows,
        "notes": list(NOTES),
        "charts": [_chart_json(c) for c in charts],
    }


def _warnings_json(store: LayerStore, data: ReportData) -> dict[str, Any]:
    """The early warnings of the latest snapshot (against the one before it), as `geoplan warnings` lists them."""
    found = snapshot_warnings(store)
    titles = {d.id: d.title_zh for d in data.definitions}
    items = [
        {
            "warning": str(r["warning"]),
            "kind": WARNING_KINDS.get(str(r["warning"]), str(r["warning"])),
            "indicator": str(r["indicator"]),
            "title_zh": titles.get(str(r["indicator"]), str(r["indicator"])),
            "scope": str(r["scope"]),
            "scope_key": str(r["scope_key"]),
            "value_text": value_text(r["value"], str(r["unit"])),
            "previous_text": value_text(r["previous_value"], str(r["unit"])),
            "target_text": target_text(r["target_op"], r["target"], r["target_year"], str(r["unit"])),
            "message": str(r["message"]),
        }
        for r in found.to_dict("records")
    ]
    latest = data.snapshots[-1] if data.snapshots else None
    ids = [s.id for s in data.snapshots]
    return {
        "snapshot": None if latest is None else _snapshot_json(latest),
        "previous_snapshot_id": ids[-2] if len(ids) > 1 else None,
        "items": items,
    }


def dashboard_json(
    store: LayerStore, data: ReportData, *, plan: PlanPeriod | None = None, quarters: list[str] | None = None
) -> dict[str, Any]:
    catalog = store.catalog
    towns = data.town_table
    return {
        "as_of": api_time(data.as_of.at),
        "as_of_local": data.as_of_local,
        "current": data.as_of.current,
        "quarter": str(data.quarter),
        "quarters": list(quarters or []),
        "plan": None if plan is None else plan.to_dict(),
        "synthetic_layers": list(data.synthetic),
        "synthetic_titles": list(synthetic_titles(store, data.synthetic)),
        "previous_snapshot": None if data.previous is None else _snapshot_json(data.previous),
        "indicators": _indicators_json(data, catalog),
        "life_circles": _life_circles_json(data),
        "warnings": _warnings_json(store, data),
        "snapshots": [_snapshot_json(s) for s in data.snapshots],
        "history": {
            "snapshots": [s.id for s in data.snapshots],
            "rows": [
                {
                    "indicator": row.definition.id,
                    "title_zh": row.definition.title_zh,
                    "scope_key": row.scope_key,
                    "unit": row.definition.unit,
                    "values": list(row.values),
                    "texts": [value_text(v, row.definition.unit) for v in row.values],
                }
                for row in data.history_rows
            ],
        },
        "towns": {
            "indicators": [{"id": d.id, "title_zh": d.title_zh, "unit": d.unit} for d in towns.indicators],
            "rows": [
                {
                    "town": name,
                    "cells": [
                        {
                            "indicator": d.id,
                            "value": value,
                            "text": value_text(value, d.unit, with_unit=False) if value is not None else (note or "—"),
                            "met": met,
                        }
                        for d in towns.indicators
                        for value, met, note in [towns.cell(name, d.id)]
                    ],
                }
                for name in towns.towns
            ],
        },
        "charts": [_chart_json(c) for c in data.charts],
        "trends": [_chart_json(c) for c in data.trends],
        "reports": {"url": "/api/report", "formats": list(FORMATS)},
    }


@router.get("/api/dashboard", summary="Everything the monitoring dashboard shows (staff)")
async def dashboard_data(
    _: StaffCaller,
    store: StoreDep,
    settings: SettingsDep,
    cache: IndicatorCacheDep,
    quarter: Annotated[
        str | None, Query(max_length=10, description="e.g. 2020Q2: the end of that quarter; now: today")
    ] = None,
) -> dict[str, Any]:
    plan = plan_for(settings.layers_dir)
    # `now` asks for the store as it is today, whatever the plan's default
    wants_now = (quarter or "").strip().lower() == "now"
    moment = as_of_now() if wants_now else await run_in_threadpool(chosen_for, store, plan, None, quarter)

    def build() -> dict[str, Any]:
        run = cache.run(moment)
        data = gather_report(
            store, layers_dir=settings.layers_dir, quarter=moment.quarter, run=run, definitions=None, maps=False
        )
        quarters = [] if plan is None else quarters_with_data(store, plan)
        return dashboard_json(store, data, plan=plan, quarters=quarters)

    return await run_in_threadpool(build)
