"""The project ledger over HTTP, for staff: the ledger as of a quarter, one project's progress history, and
recording a quarter's progress (the caller is the actor; the record and the layer update are both audited).

Everything here needs a staff token (401 without, 403 never: staff is the least role with a token). The
public map keeps showing only the projects layer's public fields; progress records, investment and the five
assurances stay behind the token.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from geoplan.access import Role
from geoplan.beijing_time import api_times
from geoplan.monitoring.ledger import ASSURANCES, PROJECTS, ledger_view, project_history, record_progress
from geoplan.monitoring.ledger_status import StatusFlow, status_flow_for
from geoplan.monitoring.ledger_store import MAX_TEXT, MAX_UNIT
from geoplan.storage import LayerStore
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.settings import WebSettings
from web.uploads import json_body_openapi, model_body

router = APIRouter(prefix="/api/ledger", tags=["ledger"])
StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]
RECORD_BODY_LIMIT = 32 * 1024
"""A record is a few numbers and three texts of at most MAX_TEXT characters: 32 KB is ample in UTF-8."""


def _flow(settings: WebSettings, store: LayerStore) -> StatusFlow:
    return status_flow_for(settings.layers_dir, store.catalog)


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values: missing numbers and texts become null, never NaN."""
    return [api_times({str(k): _plain(v) for k, v in row.items()}) for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


@router.get("", summary="The project ledger as of a quarter: status, progress, missing assurances, overdue")
def ledger(
    caller: StaffCaller,
    store: StoreDep,
    settings: SettingsDep,
    quarter: Annotated[str | None, Query(max_length=10, description="e.g. 2020Q4; default the latest recorded")] = None,
    task_area: Annotated[str | None, Query(max_length=50)] = None,
    town: Annotated[str | None, Query(max_length=50)] = None,
    overdue: bool = False,
) -> dict[str, Any]:
    flow = _flow(settings, store)
    view = ledger_view(store, flow=flow, quarter=quarter, task_area=task_area, town=town, overdue=overdue)
    table = view.table
    layer = store.catalog.get(PROJECTS)
    return {
        "as_of_quarter": view.as_of_quarter,
        "synthetic": view.synthetic,
        "statuses": list(flow.statuses),
        "task_areas": list(layer.field("task_area").allowed or ()),
        "assurances": list(ASSURANCES.values()),
        "totals": {
            "projects": len(table),
            "overdue": int(table["overdue"].sum()),
            "missing_assurances": int((table["missing_count"] > 0).sum()),
        },
        "projects": json_rows(table),
    }


@router.get("/{project_id}/progress", summary="One project's quarterly progress records, oldest first")
def history(project_id: str, caller: StaffCaller, store: StoreDep) -> dict[str, Any]:
    records = project_history(store, project_id)
    return {"project_id": project_id, "records": json_rows(records)}


class ProgressRequest(BaseModel):
    """One quarter's progress of one project. The rules (quarter order, status flow, …) are checked on saving."""

    model_config = ConfigDict(extra="forbid")
    quarter: str = Field(max_length=10, description="e.g. 2020Q4")
    progress_pct: float = Field(allow_inf_nan=False, description="0–100")
    investment_to_date_wan: float | None = Field(None, allow_inf_nan=False, description="万元, ≥ 0")
    problems: str = Field("", max_length=MAX_TEXT, description="problems found (存在问题)")
    responsible_unit: str | None = Field(None, max_length=MAX_UNIT, description="default: the project's")
    status: str | None = Field(None, max_length=20, description="default: unchanged")
    note: str = Field("", max_length=MAX_TEXT, description="why, when progress falls or a record is corrected")


@router.post(
    "/{project_id}/progress",
    status_code=201,
    summary="Record a quarter's progress; the project's progress and status follow (both audited)",
    openapi_extra=json_body_openapi(ProgressRequest),
)
async def record(
    project_id: str, request: Request, caller: StaffCaller, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    """The body is read only after the token check, and size-limited; the answer is the record as stored."""
    body = await model_body(request, ProgressRequest, RECORD_BODY_LIMIT)
    flow = await run_in_threadpool(_flow, settings, store)
    saved = await run_in_threadpool(
        lambda: record_progress(
            store,
            project_id=project_id,
            quarter=body.quarter,
            progress_pct=body.progress_pct,
            investment_to_date_wan=body.investment_to_date_wan,
            problems=body.problems,
            responsible_unit=body.responsible_unit,
            status=body.status,
            note=body.note,
            actor=caller.actor,
            flow=flow,
        )
    )
    return api_times(saved.as_dict())
