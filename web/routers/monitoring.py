"""The plan's indicators over HTTP: the indicators with their targets, a history per indicator, early warnings,
the snapshots, and recording a snapshot. The dashboard and the quarterly report build on these answers.

Every route needs a staff token or better (401 without, 403 never happens: staff is the least role). Staff
monitor the plan (coverage, the sponge-city share, projects), and the indicators aggregate private layers and
fields (the plan layers behind the conflict areas, the project ledger), so the public gets none of it.
Recording a snapshot is open to staff too, not only admins: it is the quarterly inspection's own act, it
changes no layer, and snapshots are append-only and carry who took them, so a snapshot can neither hide nor
overwrite an earlier one.

Shapes (numbers are JSON numbers, null where there is nothing to measure):

GET  /api/indicators?as_of=YYYY-MM-DD | quarter=2026Q2 [&only=id,id]
     {as_of, current, quarter, definitions_sha256, synthetic_layers,
      indicators: [{id, title_zh, title_en, unit, scopes, kind, quantity, params, targets: [{value, comparison,
      year}], good_direction, description, rows: [{scope, scope_key, value, value_ellipsoid, target, target_op,
      target_year, target_met, note}]}]}
GET  /api/indicators/{id}/history[?scope_key=…]
     {indicator: {definition}, scope_key, history: [{snapshot_id, quarter, as_of, taken_at, scope, scope_key,
      value, value_ellipsoid, unit, target, target_op, target_year, target_met, note}]}
GET  /api/warnings[?snapshot_id=N]
     {snapshot, previous_snapshot_id, warnings: [{warning: target_missed | wrong_direction, indicator, title_zh,
      title_en, scope, scope_key, value, previous_value, unit, target, target_op, target_year, good_direction,
      message, snapshot_id, quarter, previous_snapshot_id}]}
GET  /api/snapshots           {snapshots: [{id, quarter, as_of, taken_at, actor, definitions_sha256, rows}]}
POST /api/snapshots           body {"quarter": "2026Q4"} (optional; default the current quarter) -> 201
     {snapshot, warnings: count}
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from geoplan.access import Role
from geoplan.beijing_time import api_time, api_times
from geoplan.errors import InputError
from geoplan.monitoring.asof import as_of_either, as_of_now, as_of_quarter
from geoplan.monitoring.indicator_defs import IndicatorSet
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.snapshots import snapshot_registry
from geoplan.monitoring.snapshots import warnings as snapshot_warnings
from geoplan.services.indicators import IndicatorRun, rule_files, synthetic_layers
from geoplan.storage import LayerStore
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.indicator_cache import IndicatorCache
from web.uploads import parse_json

router = APIRouter(prefix="/api", tags=["monitoring"])

StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]
SNAPSHOT_BODY_LIMIT = 4 * 1024
_ROW_FIELDS = (
    "scope",
    "scope_key",
    "value",
    "value_ellipsoid",
    "target",
    "target_op",
    "target_year",
    "target_met",
    "note",
)
_cache_lock = threading.Lock()


def get_indicator_cache(request: Request, store: StoreDep, settings: SettingsDep) -> IndicatorCache:
    """The app's indicator cache, made on first use (it holds no resources to close)."""
    with _cache_lock:
        cache: IndicatorCache | None = getattr(request.app.state, "indicator_cache", None)
        if cache is None or cache.store is not store:
            cache = IndicatorCache(store, settings.layers_dir)
            request.app.state.indicator_cache = cache
        return cache


IndicatorCacheDep = Annotated[IndicatorCache, Depends(get_indicator_cache)]


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars unwrapped, NaN and pandas' missing values as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(frame: pd.DataFrame, fields: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    return [api_times({name: _plain(row[name]) for name in fields}) for row in frame.to_dict("records")]


def _indicators_json(run: IndicatorRun, only: list[str] | None, synthetic: list[str]) -> dict[str, Any]:
    by_indicator = {name: group for name, group in run.table.groupby("indicator", sort=False)}
    indicators = []
    for definition in run.definitions:
        if only is not None and definition.id not in only:
            continue
        rows = by_indicator.get(definition.id, run.table.iloc[0:0])
        indicators.append({**definition.to_dict(), "rows": _records(rows, list(_ROW_FIELDS))})
    return {
        "as_of": api_time(run.as_of.at),
        "current": run.as_of.current,
        "quarter": str(run.as_of.quarter),
        "definitions_sha256": run.definitions_sha256,
        "synthetic_layers": synthetic,
        "indicators": indicators,
    }


def _only(text: str | None, definitions: IndicatorSet) -> list[str] | None:
    if text is None:
        return None
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    return [definitions.get(name).id for name in wanted]  # an unknown id is a 404 naming the indicators


@router.get("/indicators", summary="Every indicator with its target, as of now, a date or the end of a quarter")
async def indicators(
    _: StaffCaller,
    store: StoreDep,
    cache: IndicatorCacheDep,
    as_of: Annotated[str | None, Query(description="YYYY-MM-DD: the end of that day (China time)")] = None,
    quarter: Annotated[str | None, Query(description="e.g. 2026Q2: the end of that quarter")] = None,
    only: Annotated[str | None, Query(description="indicator ids, comma-separated")] = None,
) -> dict[str, Any]:
    moment = as_of_either(as_of, quarter)
    definitions = await run_in_threadpool(cache.definitions)
    wanted = _only(only, definitions)
    run = await run_in_threadpool(cache.run, moment)
    synthetic = await run_in_threadpool(synthetic_layers, store)
    return _indicators_json(run, wanted, synthetic)


@router.get("/indicators/{indicator_id}/history", summary="One indicator over the snapshots, oldest first")
async def indicator_history(
    indicator_id: str,
    _: StaffCaller,
    store: StoreDep,
    cache: IndicatorCacheDep,
    scope_key: Annotated[str | None, Query(description="only this scope key (a town, rule, status…)")] = None,
) -> dict[str, Any]:
    definitions = await run_in_threadpool(cache.definitions)

    def read() -> pd.DataFrame:
        registry = snapshot_registry(store)
        try:
            return registry.history(indicator_id, scope_key)
        finally:
            registry.close()

    rows = await run_in_threadpool(read)
    if indicator_id in definitions.ids:
        definition: dict[str, Any] | None = definitions.get(indicator_id).to_dict()
    elif rows.empty:
        definitions.get(indicator_id)  # 404, naming the indicators
        definition = None
    else:
        definition = None  # recorded earlier, since removed from the definitions: its history stays readable
    return {"indicator": definition, "scope_key": scope_key, "history": _records(rows, list(rows.columns))}


@router.get("/warnings", summary="Early warnings of a snapshot (default the latest) against the one before it")
async def indicator_warnings(
    _: StaffCaller,
    store: StoreDep,
    cache: IndicatorCacheDep,
    snapshot_id: Annotated[int | None, Query(ge=1, description="the snapshot; default the latest")] = None,
) -> dict[str, Any]:
    definitions = await run_in_threadpool(cache.definitions)
    found = await run_in_threadpool(lambda: snapshot_warnings(store, snapshot_id=snapshot_id))
    shots = await run_in_threadpool(_snapshots, store)
    chosen = snapshot_id if snapshot_id is not None else (shots[-1]["id"] if shots else None)
    snapshot = next((s for s in shots if s["id"] == chosen), None)
    ids = [s["id"] for s in shots]
    previous = ids[ids.index(chosen) - 1] if chosen in ids and ids.index(chosen) > 0 else None
    titles = {d.id: (d.title_zh, d.title_en) for d in definitions}
    warnings = []
    for row in _records(found, list(found.columns)):
        zh, en = titles.get(str(row["indicator"]), ("", ""))
        warnings.append({**row, "title_zh": zh, "title_en": en})
    return {"snapshot": snapshot, "previous_snapshot_id": previous, "warnings": warnings}


def _snapshots(store: LayerStore) -> list[dict[str, Any]]:
    registry = snapshot_registry(store)
    try:
        return [api_times(s.to_dict()) for s in registry.snapshots()]
    finally:
        registry.close()


@router.get("/snapshots", summary="Every indicator snapshot, oldest first")
async def snapshots(_: StaffCaller, store: StoreDep) -> dict[str, Any]:
    return {"snapshots": await run_in_threadpool(_snapshots, store)}


async def _optional_json(request: Request) -> Any:
    """The JSON body, or {} for an empty one; 413 beyond SNAPSHOT_BODY_LIMIT bytes."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > SNAPSHOT_BODY_LIMIT:
            raise HTTPException(413, f"the request body is larger than {SNAPSHOT_BODY_LIMIT:,} bytes")
    if not raw.strip():
        return {}
    return parse_json(bytes(raw))


@router.post("/snapshots", status_code=201, summary="Record every indicator for a quarter (default: the current one)")
async def take_snapshot(
    request: Request, caller: StaffCaller, store: StoreDep, settings: SettingsDep, cache: IndicatorCacheDep
) -> dict[str, Any]:
    body = await _optional_json(request)
    if not isinstance(body, dict) or set(body) - {"quarter"}:
        raise InputError(
            'the body must be {"quarter": "YYYYQn"} or empty', zh="请求内容应为空，或只含季度（如 2026Q4）。"
        )
    text = body.get("quarter")
    if text is not None and not isinstance(text, str):
        raise InputError("quarter must be text such as 2026Q4", zh="季度应写成文字，如 2026Q4。")
    current = as_of_now()
    quarter = Quarter.parse(text) if text is not None else current.quarter
    moment = as_of_quarter(quarter, now=current.at)

    def record() -> dict[str, Any]:
        run = cache.run(moment)
        definitions = cache.definitions()
        registry = snapshot_registry(store)
        try:
            shot = registry.record(
                run.table,
                quarter=str(quarter),
                as_of=run.as_of.iso,
                actor=caller.actor,
                definitions=definitions,
                rule_files=rule_files(settings.layers_dir),
            )
        finally:
            registry.close()
        return {"snapshot": api_times(shot.to_dict()), "warnings": len(snapshot_warnings(store, snapshot_id=shot.id))}

    return await run_in_threadpool(record)
