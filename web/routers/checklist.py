"""The village checklist (镇村发展现代化) over HTTP, for staff: the items, one item per village as of a quarter
as GeoJSON (the map per item, with the shares per town as a member), and recording states (audited, the
caller is the actor).

Like the project ledger, everything here needs a staff token.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from geoplan.access import Role
from geoplan.geojson import feature_collection, feature_strings
from geoplan.monitoring.village_checklist import MAX_NOTE, checklist_for, checklist_view, record_checklist
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.uploads import json_body_openapi, model_body

router = APIRouter(prefix="/api/checklist", tags=["checklist"])
StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]
GEOJSON = "application/geo+json"
MAX_RECORDS = 500
BODY_LIMIT = 512 * 1024
"""At most MAX_RECORDS records of a code, an item, a state, a quarter and a note each."""
MAP_FIELDS = ["village_code", "village_name", "town", "item", "item_title", "state", "achieved", "since"]


@router.get("/items", summary="The checklist items, their states and the state that counts as achieved")
def items(caller: StaffCaller, settings: SettingsDep) -> dict[str, Any]:
    checklist = checklist_for(settings.layers_dir)
    return {
        "items": [
            {
                "code": i.code,
                "title_zh": i.title_zh,
                "title_en": i.title_en,
                "states": list(i.states),
                "achieved": i.achieved,
            }
            for i in checklist.items
        ]
    }


@router.get("/{item}", summary="One item per village as of a quarter (GeoJSON), with the shares per town")
def item_map(
    item: str,
    caller: StaffCaller,
    store: StoreDep,
    settings: SettingsDep,
    quarter: Annotated[str | None, Query(max_length=10, description="e.g. 2020Q4; default the latest recorded")] = None,
) -> Response:
    view = checklist_view(store, checklist=checklist_for(settings.layers_dir), item=item, quarter=quarter)
    frame = view.villages
    body = feature_collection(
        feature_strings(frame, fields=MAP_FIELDS, id_field="village_code"),
        numberMatched=len(frame),
        numberReturned=len(frame),
        quarter=view.quarter,
        item={"code": view.item.code, "title_zh": view.item.title_zh, "achieved": view.item.achieved},
        towns=[
            {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in view.towns.to_dict("records")
        ],
        synthetic=view.synthetic,
    )
    return Response(body, media_type=GEOJSON)


class ChecklistRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    village_code: str = Field(max_length=12)
    item: str = Field(max_length=40)
    state: str = Field(max_length=20)
    quarter: str = Field(max_length=10, description="e.g. 2020Q4")
    note: str = Field("", max_length=MAX_NOTE)


class ChecklistRequest(BaseModel):
    """Records stored together (all or none); a later record for the same village, item and quarter corrects."""

    model_config = ConfigDict(extra="forbid")
    records: list[ChecklistRecord] = Field(min_length=1, max_length=MAX_RECORDS)


@router.post(
    "/records",
    status_code=201,
    summary="Record checklist states (checked, stored together and audited)",
    openapi_extra=json_body_openapi(ChecklistRequest),
)
async def record(request: Request, caller: StaffCaller, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    body = await model_body(request, ChecklistRequest, BODY_LIMIT)
    frame = pd.DataFrame([r.model_dump() for r in body.records])
    checklist = await run_in_threadpool(checklist_for, settings.layers_dir)
    ids = await run_in_threadpool(lambda: record_checklist(store, frame, checklist=checklist, actor=caller.actor))
    return {"record_ids": ids, "records": len(ids)}
