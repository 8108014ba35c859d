"""The quarterly report over HTTP: `GET /api/report?quarter=2026Q2&format=xlsx|html|pdf` (staff and above),
the same file as `geoplan report --quarter 2026Q2 -o report.<format>`, as a download. Without a quarter: now, or
the plan's last monitored quarter once today is past it (`plan_period.chosen_moment`, as the dashboard; the
`X-Geoplan-Quarter` header names the quarter reported).

The plan-end evaluation beside it: `GET /api/evaluation?format=xlsx|html|pdf` (staff and above), the same file as
`geoplan evaluate -o evaluation.<format>`; a store without data for the plan period answers 400 with the reason.
It computes the indicators at several quarters and draws many pages (half a minute on the demo), so each format's
file, and the gathered data the three formats share, are kept per state of the store (`state_key`: the layers,
marks, records, definitions and rule files), the plan file and today's quarter: the same request again is
answered from memory, an edit makes a new one.

Staff, like the indicators it reports (see routers/dashboard.py). The indicators come from the app's indicator
cache (no second computation after the dashboard has shown them); the maps' per-village coverage and the
drawing take a few seconds more, so reports are made one at a time (the machine has few cores) in a worker
thread. The HTML report is sent with a policy that runs no script and loads nothing, should a browser open it
from the download.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geoplan.monitoring.asof import as_of_now
from geoplan.monitoring.plan_period import default_plan_path, plan_for
from geoplan.reporting.evaluation_data import EvaluationData, gather_evaluation
from geoplan.reporting.render import FORMATS, ReportFormat
from geoplan.reporting.report_data import gather_report
from geoplan.services.indicators import chosen_for, state_key
from web.computed_once import ComputedOnce
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
    quarter: Annotated[
        str | None,
        Query(max_length=10, description="e.g. 2026Q2; default now, or the plan's last quarter once past it"),
    ] = None,
) -> Response:
    plan = plan_for(settings.layers_dir)
    moment = await run_in_threadpool(chosen_for, store, plan, None, quarter)
    chosen = FORMATS[format]

    def build() -> bytes:
        run = cache.run(moment)
        with _one_at_a_time:
            data = gather_report(store, layers_dir=settings.layers_dir, quarter=moment.quarter, run=run)
            return chosen.render(data)

    content = await run_in_threadpool(build)
    response = _download(content, chosen, f"geoplan-report-{moment.quarter}")
    response.headers["X-Geoplan-Quarter"] = str(moment.quarter)
    return response


@router.get(
    "/evaluation",
    summary="The plan-end evaluation (三年行动计划实施评估) as a workbook, printable HTML or PDF (a download)",
    response_class=Response,
    responses={200: {"content": {f.media_type.split(";")[0]: {} for f in FORMATS.values()}}},
)
async def evaluation(
    _: StaffCaller,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    cache: IndicatorCacheDep,
    format: Annotated[ReportFormatName, Query(description="xlsx, html or pdf")] = "pdf",
) -> Response:
    chosen = FORMATS[format]
    state = request.app.state
    if getattr(state, "evaluation_files", None) is None:
        state.evaluation_data = ComputedOnce[EvaluationData](keep=2)
        state.evaluation_files = ComputedOnce[bytes](keep=6)
    data: ComputedOnce[EvaluationData] = state.evaluation_data
    files: ComputedOnce[bytes] = state.evaluation_files

    def build() -> bytes:
        plan_path = default_plan_path(settings.layers_dir)
        plan = hashlib.sha256(plan_path.read_bytes()).hexdigest() if plan_path.is_file() else ""
        inputs = state_key(store, layers_dir=settings.layers_dir, definitions=cache.definitions())
        key = (inputs, plan, str(as_of_now().quarter))

        def gathered() -> EvaluationData:
            return gather_evaluation(store, layers_dir=settings.layers_dir)

        def make() -> bytes:
            with _one_at_a_time:  # the three formats share one gathering
                return chosen.render_evaluation(data.get(key, gathered))

        return files.get((*key, chosen.name), make)

    content = await run_in_threadpool(build)
    return _download(content, chosen, "geoplan-evaluation")


def _download(content: bytes, chosen: ReportFormat, stem: str) -> Response:
    headers = {
        "Content-Disposition": f'attachment; filename="{stem}.{chosen.name}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if chosen.name == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(content, media_type=chosen.media_type, headers=headers)
