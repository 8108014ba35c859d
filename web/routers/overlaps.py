"""多规合一 conflict patches over HTTP, for planners: the patches as GeoJSON, their totals, one patch with its
source features and mark history, marking a patch, and the patch table as a file.

Everything here needs a planner token (401 without, 403 below planner), because the patches come from private
plan layers. The role check is a dependency, so it runs before any parameter or body is looked at.

The overlay takes about a second on the demo store, so each patch table is computed once and kept in memory
(`OverlapCache`). It is keyed by everything it depends on: the rules, the sliver thresholds, the store version
of every layer the rules and the town/village lookup read, and the newest mark. An edit or a mark changes the
key, so the next request sees it; repeated requests are served from memory, and revalidated with ETags.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from geoplan.access import Role, visible_fields
from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.summary import NO_TOWN, summarise
from geoplan.beijing_time import api_times
from geoplan.errors import InputError
from geoplan.geojson import feature_collection
from geoplan.services.overlap import mark_patch
from geoplan.services.overlap_marks import MAX_NOTE, STATUS_TITLES, Mark, MarkStatus
from geoplan.services.provenance import synthetic_now
from geoplan.services.rule_files import default_rules_path, rule_file_stamp
from geoplan.storage import LayerStore
from geoplan.storage.mvt import encode_tile
from geoplan.storage.tile_matrix import TileKey
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.downloads import table_download
from web.etags import etag_headers, not_modified
from web.layer_cache import LayerCache
from web.maps.planner_map import planner_config
from web.ogc.common import MVT
from web.ogc.tiles import mvt_response
from web.overlap_cache import DEFAULTS, OverlapCache, PatchTable
from web.uploads import json_body_openapi, model_body

router = APIRouter(prefix="/api", tags=["planning"])

GEOJSON = "application/geo+json"
PATCH_ID = re.compile(r"^[0-9a-f]{16}$")
PATCH_TILE_LAYER = "patches"
PATCH_TILE_FIELDS = (
    "patch_id",
    "rule",
    "severity",
    "exempt",
    "rule_title",
    "area_m2",
    "town",
    "village_code",
    "mark_status",
)
"""What the map draws and labels a patch with; the rest comes with the patch's detail when it is opened."""
MARK_BODY_LIMIT = 16 * 1024
"""A mark is a status and a note of at most MAX_NOTE characters: 16 KB is ample even in UTF-8 Chinese."""
DownloadFormat = Literal["gpkg", "csv", "geojson"]
PlannerCaller = Annotated[Caller, Depends(require_role(Role.PLANNER))]


# --------------------------------------------------------------------------------------------- parameters


def thresholds(
    min_area_m2: Annotated[
        float, Query(ge=0, allow_inf_nan=False, description="drop patch parts smaller than this (m²)")
    ] = DEFAULTS.min_area_m2,
    min_width_m: Annotated[
        float, Query(ge=0, allow_inf_nan=False, description="drop patch parts narrower than this (m)")
    ] = DEFAULTS.min_width_m,
) -> OverlapSettings:
    return OverlapSettings(min_area_m2=min_area_m2, min_width_m=min_width_m)


Thresholds = Annotated[OverlapSettings, Depends(thresholds)]


@dataclass(frozen=True)
class PatchQuery:
    rule: str | None
    town: str | None
    settings: OverlapSettings


def patch_query(
    settings: Thresholds,
    rule: Annotated[str | None, Query(description="only this rule's patches (its code)")] = None,
    town: Annotated[str | None, Query(description=f"only patches in this town; {NO_TOWN} for none")] = None,
) -> PatchQuery:
    return PatchQuery(rule, town, settings)


Patches = Annotated[PatchQuery, Depends(patch_query)]


def get_overlaps(request: Request) -> OverlapCache:
    cache: OverlapCache = request.app.state.overlaps
    return cache


OverlapsDep = Annotated[OverlapCache, Depends(get_overlaps)]


def _selected(found: PatchTable, query: PatchQuery) -> np.ndarray:
    """Row positions matching the rule and town filters. An unknown rule is an error, not an empty answer: a
    misspelt code would otherwise look like "no conflicts"."""
    frame = found.frame
    keep = np.ones(len(frame), dtype=bool)
    if query.rule is not None:
        codes = [r.code for r in found.rules]
        if query.rule not in codes:
            raise InputError(
                f"unknown rule {query.rule!r}; the rules are: {', '.join(codes)}",
                zh=f"未知的冲突规则“{query.rule}”。可选：{'、'.join(codes)}。",
            )
        keep &= (frame["rule"] == query.rule).to_numpy()
    if query.town is not None:
        towns = frame["town"].astype(object)
        keep &= (towns.isna() if query.town == NO_TOWN else towns == query.town).to_numpy(dtype=bool)
    return np.flatnonzero(keep)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain JSON values (numpy scalars unwrapped)."""
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _mark_json(mark: Mark) -> dict[str, Any]:
    return {**api_times(asdict(mark)), "status_title": STATUS_TITLES.get(mark.status, mark.status)}


# --------------------------------------------------------------------------------------------- routes


@router.get("/overlaps/config", summary="What the planner map draws with: rules, their colours, the plan layers")
async def overlaps_config(_: PlannerCaller, store: StoreDep, settings: SettingsDep, cache: OverlapsDep) -> Any:
    rules = await run_in_threadpool(cache.rules)
    return await run_in_threadpool(planner_config, rules=rules, store=store, page_size=settings.max_page_size)


@router.get("/overlaps/summary", summary="Patch counts and areas by rule and by town")
async def overlaps_summary(request: Request, _: PlannerCaller, query: Patches, cache: OverlapsDep) -> Response:
    found = await run_in_threadpool(cache.table, query.settings)
    etag, headers = etag_headers(request, found.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    rows = _selected(found, query)
    summary = summarise(found.frame.iloc[rows], rules=found.rules)
    body = {
        "by_rule": _records(summary.by_rule),
        "by_town": _records(summary.by_town),
        "exempt": {
            "patches": summary.exempt_patches,
            "area_m2": summary.exempt_area_m2,
            "area_ellipsoid_m2": summary.exempt_area_ellipsoid_m2,
            "by_rule": _records(summary.exempt),
        },
        "thresholds": asdict(found.settings),
    }
    return JSONResponse(body, headers=headers)


@router.get(
    "/overlaps",
    summary="Conflict patches (差异图斑) as GeoJSON, with rule titles and marks; `f` downloads the table",
    response_model=None,
)
async def overlaps(
    request: Request,
    _: PlannerCaller,
    query: Patches,
    cache: OverlapsDep,
    f: Annotated[
        Literal["json", "gpkg", "csv", "geojson"], Query(description="json: this answer; else a file")
    ] = "json",
) -> Response:
    found = await run_in_threadpool(cache.table, query.settings)
    if f != "json":
        return await _download(found, query, f)
    etag, headers = etag_headers(request, found.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    rows = _selected(found, query)
    body = feature_collection(
        [found.features[i] for i in rows],
        numberMatched=len(rows),
        numberReturned=len(rows),
        thresholds=asdict(found.settings),
    )
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/overlaps/tiles/{z}/{x}/{y}",
    summary="Conflict patches as a vector tile (MVT, layer 'patches', XYZ order); 204 when none is in it",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {"description": "no patch in this tile"}},
)
async def overlap_tile(
    z: int, x: int, y: int, request: Request, _: PlannerCaller, query: Patches, cache: OverlapsDep
) -> Response:
    key = TileKey(z, x, y)  # 404 outside the tile matrix, with the valid range
    found = await run_in_threadpool(cache.table, query.settings)
    etag, headers = etag_headers(request, found.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    rows = _selected(found, query)
    frame = found.frame.iloc[rows]
    data = await run_in_threadpool(encode_tile, frame, key, PATCH_TILE_LAYER, PATCH_TILE_FIELDS)
    return mvt_response(data, headers)


@router.get("/overlaps.{fmt}", summary="The patch table as a file: GeoPackage, CSV or GeoJSON", response_model=None)
async def overlaps_file(fmt: DownloadFormat, _: PlannerCaller, query: Patches, cache: OverlapsDep) -> Response:
    found = await run_in_threadpool(cache.table, query.settings)
    return await _download(found, query, fmt)


async def _download(found: PatchTable, query: PatchQuery, fmt: DownloadFormat) -> Response:
    return await table_download(found.frame.iloc[_selected(found, query)], name="conflict_patches", fmt=fmt)


@router.get("/overlaps/{patch_id}", summary="One patch, its source features (all fields) and its mark history")
async def overlap_detail(
    patch_id: str, request: Request, caller: PlannerCaller, settings: Thresholds, cache: OverlapsDep, store: StoreDep
) -> Response:
    if not PATCH_ID.fullmatch(patch_id):
        raise HTTPException(404, f"no conflict patch {patch_id!r}")
    found, row = await run_in_threadpool(cache.find, patch_id, settings)
    etag, headers = etag_headers(request, found.digest, patch_id)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    layers: LayerCache = request.app.state.layer_cache
    patch = found.frame.iloc[row]
    rule = next(r for r in found.rules if r.code == patch["rule"])
    sources = await run_in_threadpool(_sources, patch, layers, store, caller.role)
    village = await run_in_threadpool(_village_name, patch["village_code"], layers, store)
    history = [_mark_json(m) for m in await run_in_threadpool(cache.history, patch_id)]
    body = {
        "patch": json.loads(found.features[row]),
        "rule": {
            "code": rule.code,
            "title": rule.title_zh,
            "title_en": rule.title_en,
            "severity": rule.severity,
            "relation": rule.relation,
            "basis": rule.basis,
            "description": rule.description,
        },
        "village_name": village,
        "sources": sources,
        "mark": history[-1] if history else None,
        "history": history,
    }
    return JSONResponse(body, headers=headers)


def _sources(patch: pd.Series, layers: LayerCache, store: LayerStore, role: Role) -> list[dict[str, Any]]:
    """The patch's source features from the store, with every field the caller may read (planners: all).
    A difference rule's patch has one: the part of A outside all of B belongs to no single B feature."""
    sides = [("a", patch["layer_a"], patch["id_a"])]
    if _present(patch["id_b"]):
        sides.append(("b", patch["layer_b"], patch["id_b"]))
    sources = []
    for side, layer_name, feature_id in sides:
        layer = store.catalog.get(str(layer_name))
        cached = layers.get(layer, visible_fields(layer, role))
        matches = np.flatnonzero(cached.frame[layer.id_field].astype(str).to_numpy() == str(feature_id))
        sources.append(
            {
                "side": side,
                "layer": layer.name,
                "title": layer.title_zh,
                "synthetic": layer.name in synthetic_now(store),
                "id_field": layer.id_field,
                "id": str(feature_id),
                "feature": json.loads(cached.features[int(matches[0])]) if len(matches) else None,
            }
        )
    return sources


def _present(value: object) -> bool:
    """Not None / NaN / NA: an attribute that a frame holds as "missing" in whichever form pandas chose."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA


def _village_name(code: object, layers: LayerCache, store: LayerStore) -> str | None:
    if not _present(code) or "villages" not in store.catalog:
        return None
    villages = layers.get(store.catalog.get("villages"), ["village_code", "village_name"]).frame
    names = villages.loc[villages["village_code"].astype(str) == str(code), "village_name"]
    return str(names.iloc[0]) if len(names) else None


class MarkRequest(BaseModel):
    """A planner's decision on a patch."""

    model_config = ConfigDict(extra="forbid")
    status: MarkStatus = Field(description="accepted (予以认可), to_adjust (需调整) or resolved (已解决)")
    note: str = Field("", max_length=MAX_NOTE, description="why; kept in the mark history")


@router.post(
    "/overlaps/{patch_id}/mark",
    status_code=201,
    summary="Mark a patch accepted / to adjust / resolved (kept as history)",
    openapi_extra=json_body_openapi(MarkRequest),
)
async def mark_overlap(
    patch_id: str, request: Request, caller: PlannerCaller, store: StoreDep, settings: SettingsDep, cache: OverlapsDep
) -> dict[str, Any]:
    """The body is read only after the token check, and size-limited; the answer is the mark as stored."""
    body = await model_body(request, MarkRequest, MARK_BODY_LIMIT)
    if not PATCH_ID.fullmatch(patch_id):
        raise HTTPException(404, f"no conflict patch {patch_id!r}")
    rules = await run_in_threadpool(cache.rules)
    stamp = rule_file_stamp(default_rules_path(settings.layers_dir))
    mark = await run_in_threadpool(
        mark_patch,
        store,
        patch_id,
        rules=rules,
        status=body.status,
        note=body.note,
        actor=caller.actor,
        rule_files=[stamp],
    )
    return _mark_json(mark)
