"""The quarterly report over HTTP: `GET /api/report?quarter=2026Q2&format=xlsx|html|pdf` (staff and above),
the same file as `geoplan report --quarter 2026Q2 -o report.<format>`, as a download.

Staff, like the indicators it reports (see routers/dashboard.py). The indicators come from the app's indicator
cache (no second computation after the dashboard has shown them); the maps' per-village coverage and the
drawing take a few seconds more, so reports are made one at a time (the machine has few cores) in a worker
thread. The HTML report is sent with a policy that runs no script and loads nothing, should a browser open it
from the download.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from geoplan.monitoring.asof import as_of_either
from geoplan.reporting.render import FORMATS
from geoplan.reporting.report_data import gather_report
from web.deps import SettingsDep, StoreDep
from web.routers.monitoring import IndicatorCacheDep, StaffCaller

router = APIRouter(prefix="/api", tags=["report"])
ReportFormatName = Literal["xlsx", "html", "pdf"]
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_one_at_a_time = threading.Lock()


@router.get(
    "/report",
    summary="The quarterly monitoring report as a workbook, printable HTML or PDF (a download)",
    response_class=Response,
    responses={200: {"content": {f.media_type.split(";")[0]: {} for f in FORMATS.values()}}},
)
async def report(
    _: StaffCaller,
    store: StoreDep,
    settings: SettingsDep,
    cache: IndicatorCacheDep,
    format: Annotated[ReportFormatName, Query(description="xlsx, html or pdf")] = "pdf",
    quarter: Annotated[str | None, Query(max_length=10, description="e.g. 2026Q2; default the current quarter")] = None,
) -> Response:
    moment = as_of_either(None, quarter)
    chosen = FORMATS[format]

    def build() -> bytes:
        run = cache.run(moment)
        with _one_at_a_time:
            data = gather_report(store, layers_dir=settings.layers_dir, quarter=moment.quarter, run=run)
            return chosen.render(data)

    content = await run_in_threadpool(build)
    name = f"geoplan-report-{moment.quarter}.{chosen.name}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if chosen.name == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(content, media_type=chosen.media_type, headers=headers)
