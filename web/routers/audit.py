"""The audit log over HTTP (全过程留痕), for staff: every change to any layer and every progress record —
who, when, what — filterable by layer, actor, feature id and time, paged with limit/offset.

Each entry comes with its field-level diff (`changes`): for every feature the write names, the fields whose
values differ before and after, and whether the geometry moved. Feature properties pass through the
caller's `visible_fields`, so a role never sees in the log what it could not read in the layer itself.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from geoplan.access import Role, can_see_layer, visible_fields
from geoplan.catalog import Catalog
from geoplan.monitoring.ledger_store import PROGRESS_LAYER, PROGRESS_TITLE, RECORD_FIELDS, RECORD_TITLES
from geoplan.monitoring.village_checklist_store import (
    CHECKLIST_FIELDS,
    CHECKLIST_LAYER,
    CHECKLIST_TITLE,
    CHECKLIST_TITLES,
)
from geoplan.storage import AuditEntry
from web.deps import Caller, CatalogDep, StoreDep, require_role

router = APIRouter(prefix="/api", tags=["audit"])
StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]
MAX_LIMIT = 1000


@router.get("/audit", summary="The audit log (全过程留痕), newest first, with field-level diffs")
def audit_log(
    store: StoreDep,
    catalog: CatalogDep,
    caller: StaffCaller,
    layer: Annotated[str | None, Query(max_length=63)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    feature_id: Annotated[str | None, Query(alias="id", max_length=200, description="a feature or project id")] = None,
    since: Annotated[str | None, Query(max_length=40, description="ISO date or time; UTC without an offset")] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO date (the whole day) or time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    entries = store.audit_log(
        limit=limit, offset=offset, layer=layer, actor=actor, feature_id=feature_id, since=since, until=until
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
    layers.append({"name": PROGRESS_LAYER, "title_zh": PROGRESS_TITLE, "fields": dict(RECORD_TITLES)})
    layers.append({"name": CHECKLIST_LAYER, "title_zh": CHECKLIST_TITLE, "fields": dict(CHECKLIST_TITLES)})
    return layers


def entry_json(entry: AuditEntry, catalog: Catalog, role: Role) -> dict[str, Any] | None:
    """One entry for this role (None if the role may not see the layer), with its `changes`."""
    if entry.layer in catalog:
        definition = catalog.get(entry.layer)
        if not can_see_layer(definition, role):
            return None
        fields = visible_fields(definition, role)
        title = definition.title_zh
    elif entry.layer == PROGRESS_LAYER:
        fields, title = list(RECORD_FIELDS), PROGRESS_TITLE
    elif entry.layer == CHECKLIST_LAYER:
        fields, title = list(CHECKLIST_FIELDS), CHECKLIST_TITLE
    else:  # a layer no longer in the catalogue: only who/when/what, no feature contents
        fields, title = [], entry.layer
    detail = dict(entry.detail)
    for side in ("before", "after"):
        if isinstance(detail.get(side), list):
            detail[side] = [_visible(feature, fields) for feature in detail[side]]
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "layer": entry.layer,
        "layer_title": title,
        "action": entry.action,
        "feature_count": entry.feature_count,
        "detail": detail,
        "changes": feature_changes(detail.get("before"), detail.get("after"), fields=fields),
    }


def _visible(feature: Any, fields: list[str]) -> Any:
    if not isinstance(feature, dict):
        return feature
    properties = feature.get("properties") or {}
    return {**feature, "properties": {k: properties[k] for k in fields if k in properties}}


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
