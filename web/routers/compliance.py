"""POST /api/compliance: the site compliance check (合规性审查) over HTTP, as JSON or a printable HTML report.

The check reads control layers that are not public (basic farmland, the plans), so it needs a staff token:
401 without one, 403 below staff; the role check is a dependency, so it runs before any body is read. The site
comes as a GeoJSON body (a polygon drawn on the map, or pasted) or as a multipart upload of any file the CLI
reads; both are size-limited like the edit routes. Nothing is written to the store.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geoplan.access import Role
from geoplan.analysis.compliance_site import REQUEST_BODY, SiteInput, site_from_geojson
from geoplan.beijing_time import api_times
from geoplan.reporting.compliance_html import render_html
from geoplan.services.compliance import check_site_in_store, layer_colours, site_context, site_from_file
from geoplan.services.rule_files import default_rules_path, load_rules
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.settings import WebSettings
from web.uploads import is_truthy, json_body, uploaded_file

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["analysis"])

REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
"""The report is self-contained: it may load nothing and run nothing."""

_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/geo+json": {
                "schema": {
                    "type": "object",
                    "description": "Feature, FeatureCollection of one "
                    "feature, or a Polygon/MultiPolygon geometry (lon/lat)",
                }
            },
            "application/json": {"schema": {"type": "object"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "crs": {"type": "string", "description": "EPSG:4547, gcj02, … when the file has none"},
                        "strict": {"type": "boolean", "default": False},
                    },
                }
            },
        },
    }
}

StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]


async def _site_from_upload(request: Request, settings: WebSettings, *, crs: str | None, strict: bool) -> SiteInput:
    """A site file from a multipart form (field `file`; optional `crs`, `strict`), saved to a private folder."""
    limit = settings.max_upload_bytes
    async with uploaded_file(request, limit, prefix="geoplan-site-") as (path, form):
        crs = str(form["crs"]) if form.get("crs") else crs
        strict = is_truthy(form.get("strict")) or strict
        return await run_in_threadpool(site_from_file, path, crs=crs, strict=strict, max_bytes=limit)


@router.post(
    "/compliance",
    summary="Check a proposed project site against the control layers (合规性审查)",
    openapi_extra=_FORM,
    response_model=None,
)
async def compliance_check(
    request: Request,
    caller: StaffCaller,
    store: StoreDep,
    settings: SettingsDep,
    report_format: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
    download: bool = False,
    crs: Annotated[str | None, Query(description="the site's CRS when it is not lon/lat: EPSG code or gcj02")] = None,
    strict: Annotated[bool, Query(description="refuse an invalid outline instead of repairing it")] = False,
) -> Response:
    """The verdict, hits, rules checked and notes as JSON, or (`format=html`) the printable report; with
    `download=1` the report comes as an attachment. A completed check answers 200 whatever the verdict."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        site = await _site_from_upload(request, settings, crs=crs, strict=strict)
    else:
        document = await json_body(request, settings.max_upload_bytes)
        site = await run_in_threadpool(site_from_geojson, document, crs=crs, strict=strict, source=REQUEST_BODY)
    rules_path = default_rules_path(settings.layers_dir)
    rules = await run_in_threadpool(load_rules, rules_path, store.catalog)
    report = await run_in_threadpool(
        check_site_in_store,
        store,
        site.frame,
        rules=rules,
        notes=site.notes,
        source=site.source,
        rules_source=rules_path.name,
    )
    log.info("site check by %s: %s (%s)", caller.actor, report.verdict, site.source)
    if report_format == "json":
        return JSONResponse(api_times(report.to_dict()))
    context = await run_in_threadpool(site_context, store, report.site_geometry)
    html = await run_in_threadpool(render_html, report, layer_colours=layer_colours(store.catalog), context=context)
    headers = {"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"}
    if download:
        headers["Content-Disposition"] = 'attachment; filename="compliance-report.html"'
    return HTMLResponse(html, headers=headers)
