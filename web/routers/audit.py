"""The audit log over HTTP (全过程留痕), for staff: every write — layer edits and imports, progress records,
conflict-patch marks, indicator snapshots, token creation and revocation — who, when, what, filterable by
kind of action, layer, actor, feature id and time, paged with limit/offset.

Each entry comes with its field-level diff (`changes`): for every feature the write names, the fields whose
values differ before and after, and whether the geometry moved. Feature properties pass through the
caller's `visible_fields`, so a role never sees in the log what it could not read in the layer itself; for
the same reason marks and scenario entries are shown from the planner role up (conflict patches and draft
scenarios are the planners'), and token
entries to admins only (they manage tokens). Times are ISO 8601 in Beijing time (+08:00).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from geoplan.access import Role, can_see_layer, visible_fields
from geoplan.beijing_time import api_time
from geoplan.catalog import Catalog
from geoplan.monitoring.ledger_store import PROGRESS_LAYER, PROGRESS_TITLE, RECORD_FIELDS, RECORD_TITLES
from geoplan.monitoring.village_checklist_store import (
    CHECKLIST_FIELDS,
    CHECKLIST_LAYER,
    CHECKLIST_TITLE,
    CHECKLIST_TITLES,
)
from geoplan.storage import AuditEntry
from geoplan.storage.audit_actions import (
    ACTION_KINDS,
    ACTION_TITLES,
    KIND_TITLES,
    MARKS_LAYER,
    SCENARIOS_LAYER,
    SNAPSHOTS_LAYER,
    TOKENS_LAYER,
)
from web.deps import Caller, CatalogDep, StoreDep, require_role

router = APIRouter(prefix="/api", tags=["audit"])
StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]
MAX_LIMIT = 1000

# The side tables' pseudo-layers: title and the least role that sees their entries.
SIDE_LAYERS: dict[str, tuple[str, Role]] = {
    PROGRESS_LAYER: (PROGRESS_TITLE, Role.STAFF),
    MARKS_LAYER: ("冲突图斑标记", Role.PLANNER),
    SNAPSHOTS_LAYER: ("指标快照", Role.STAFF),
    TOKENS_LAYER: ("访问令牌", Role.ADMIN),
    SCENARIOS_LAYER: ("规划方案", Role.PLANNER),
    CHECKLIST_LAYER: (CHECKLIST_TITLE, Role.STAFF),
}
SIDE_FIELDS: dict[str, tuple[dict[str, str], list[str]]] = {
    PROGRESS_LAYER: (dict(RECORD_TITLES), list(RECORD_FIELDS)),
    CHECKLIST_LAYER: (dict(CHECKLIST_TITLES), list(CHECKLIST_FIELDS)),
}
"""Titles and fields of the side tables whose entries carry a record (the others carry only a summary)."""


@router.get("/audit", summary="The audit log (全过程留痕), newest first, with field-level diffs")
def audit_log(
    store: StoreDep,
    catalog: CatalogDep,
    caller: StaffCaller,
    layer: Annotated[str | None, Query(max_length=63)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    feature_id: Annotated[str | None, Query(alias="id", max_length=200, description="a feature or project id")] = None,
    action: Annotated[
        str | None,
        Query(max_length=40, description="a kind (edit, raster, progress, mark, snapshot, token) or one action"),
    ] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO date or time; Beijing time without an offset")
    ] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO date (the whole day) or time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    entries = store.audit_log(
        limit=limit,
        offset=offset,
        layer=layer,
        actor=actor,
        feature_id=feature_id,
        since=since,
        until=until,
        action=action,
        hidden_layers=hidden_layers(catalog, caller.role),
    )
    return [shown for entry in entries if (shown := entry_json(entry, catalog, caller.role)) is not None]


@router.get("/audit/layers", summary="The layers the audit log can be filtered by, with field titles")
def audit_layers(catalog: CatalogDep, caller: StaffCaller) -> list[dict[str, Any]]:
    layers = []
    for layer in catalog:
        if can_see_layer(layer, caller.role):
            shown = set(visible_fields(layer, caller.role))
            titles = {f.name: f.title_zh or f.name for f in layer.fields if f.name in shown}
            layers.append({"name": layer.name, "title_zh": layer.title_zh, "fields": titles})
    for name, (title, least) in SIDE_LAYERS.items():
        if caller.role >= least:
            fields = SIDE_FIELDS[name][0] if name in SIDE_FIELDS else {}
            layers.append({"name": name, "title_zh": title, "fields": fields})
    return layers


@router.get("/audit/actions", summary="The kinds of action the audit log can be filtered by, in Chinese")
def audit_actions(_: StaffCaller) -> dict[str, Any]:
    kinds = [{"kind": k, "title_zh": KIND_TITLES[k], "actions": list(v)} for k, v in ACTION_KINDS.items()]
    return {"kinds": kinds, "actions": dict(ACTION_TITLES)}


def hidden_layers(catalog: Catalog, role: Role) -> list[str]:
    """The layers whose entries this role may not see, left out by the query (so `limit` counts what it gets)."""
    hidden = [layer.name for layer in catalog if not can_see_layer(layer, role)]
    return hidden + [name for name, (_, least) in SIDE_LAYERS.items() if role < least]


def entry_json(entry: AuditEntry, catalog: Catalog, role: Role) -> dict[str, Any] | None:
    """One entry for this role (None if the role may not see the layer), with its `changes`."""
    if entry.layer in catalog:
        definition = catalog.get(entry.layer)
        if not can_see_layer(definition, role):
            return None
        fields = visible_fields(definition, role)
        title = definition.title_zh
    elif entry.layer in SIDE_LAYERS:
        title, least = SIDE_LAYERS[entry.layer]
        if role < least:
            return None
        fields = SIDE_FIELDS[entry.layer][1] if entry.layer in SIDE_FIELDS else []
    else:  # a layer no longer in the catalogue: only who/when/what, no feature contents
        fields, title = [], entry.layer
    detail = dict(entry.detail)
    for side in ("before", "after"):
        if isinstance(detail.get(side), list):
            detail[side] = [_visible(feature, fields) for feature in detail[side]]
    if isinstance(detail.get("as_of"), str):
        detail["as_of"] = api_time(detail["as_of"])
    return {
        "id": entry.id,
        "at": api_time(entry.at),
        "actor": entry.actor,
        "layer": entry.layer,
        "layer_title": title,
        "action": entry.action,
        "action_title": ACTION_TITLES.get(entry.action, entry.action),
        "feature_count": entry.feature_count,
        "detail": detail,
        "changes": feature_changes(detail.get("before"), detail.get("after"), fields=fields),
    }


_TIME_FIELDS = {"recorded_at"}
"""Feature properties that are stored instants (UTC), given in Beijing time like every time the API sends."""


def _visible(feature: Any, fields: list[str]) -> Any:
    if not isinstance(feature, dict):
        return feature
    properties = feature.get("properties") or {}
    shown = {k: api_time(properties[k]) if k in _TIME_FIELDS else properties[k] for k in fields if k in properties}
    return {**feature, "properties": shown}


def feature_changes(before: Any, after: Any, *, fields: list[str]) -> list[dict[str, Any]]:
    """Per feature id: added / removed / changed, the fields that differ, and whether the geometry moved.

    A side the log did not keep (writes of many features keep none) counts as unknown, not as empty: a
    replace of 5,000 features yields no diff rather than 5,000 'added'.
    """
    old = _by_id(before)
    new = _by_id(after)
    if old is None and new is None:
        return []
    changes = []
    for fid in [*(new or {}), *(k for k in (old or {}) if k not in (new or {}))]:
        a = (old or {}).get(fid)
        b = (new or {}).get(fid)
        if a is None and b is None:
            continue
        kind = "changed" if a is not None and b is not None else ("added" if b is not None else "removed")
        pa = (a or {}).get("properties") or {}
        pb = (b or {}).get("properties") or {}
        diffs = [
            {"field": name, "before": pa.get(name), "after": pb.get(name)}
            for name in fields
            if (name in pa or name in pb) and (kind != "changed" or pa.get(name) != pb.get(name))
        ]
        moved = kind == "changed" and _geometry_text(a) != _geometry_text(b)
        changes.append({"id": fid, "kind": kind, "fields": diffs, "geometry_changed": moved})
    return changes


def _by_id(features: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(features, list):
        return None
    return {str(f.get("id")): f for f in features if isinstance(f, dict)}


def _geometry_text(feature: dict[str, Any] | None) -> str:
    return json.dumps((feature or {}).get("geometry"), sort_keys=True)
