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

import hashlib
import json
import math
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask

from geoplan.access import Role, visible_fields
from geoplan.analysis.conflicts_service import ADMIN_LAYERS, LOOKUP_SETTINGS, mark_patch, mark_registry, rules_for
from geoplan.analysis.conflicts_service import run_overlaps as compute_overlaps
from geoplan.analysis.marks import MAX_NOTE, STATUS_TITLES, Mark, MarkRegistry, MarkStatus, attach_marks
from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule, default_rules_path, layers_of
from geoplan.analysis.summary import NO_TOWN, summarise
from geoplan.errors import InputError, NotFoundError
from geoplan.geojson import feature_collection, feature_strings
from geoplan.io import write_file
from geoplan.storage import LayerStore
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.layer_cache import LayerCache
from web.maps.planner_map import planner_config
from web.uploads import json_body

router = APIRouter(prefix="/api", tags=["planning"])

GEOJSON = "application/geo+json"
DEFAULTS = OverlapSettings()
PATCH_ID = re.compile(r"^[0-9a-f]{16}$")
MARK_BODY_LIMIT = 16 * 1024
"""A mark is a status and a note of at most MAX_NOTE characters: 16 KB is ample even in UTF-8 Chinese."""
DOWNLOADS = {
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "geojson": GEOJSON,
}
DownloadFormat = Literal["gpkg", "csv", "geojson"]
PlannerCaller = Annotated[Caller, Depends(require_role(Role.PLANNER))]

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class PatchTable:
    """One computed, marked and serialised patch table: requests are answered from it until its key changes."""

    digest: str
    """A short hash of the key: the ETag's base."""
    rules: tuple[ConflictRule, ...]
    settings: OverlapSettings
    frame: gpd.GeoDataFrame
    """The patches with their marks and rule titles, in the engine's order."""
    features: list[str]
    """One serialised GeoJSON Feature per row of `frame`."""
    rows: dict[str, int]
    """patch_id -> row."""


class OverlapCache:
    """Patch tables keyed by their inputs' state; each is computed once, however many requests ask at once.

    Two levels: the overlay itself (seconds, keyed by rules, thresholds and layer versions) and the table with
    the current marks attached and serialised (milliseconds, keyed additionally by the newest mark), so a mark
    never re-runs the overlay. The state is read *before* the data, so a table is never older than its key.
    Blocking: call from a worker thread (run_in_threadpool).
    """

    def __init__(self, store: LayerStore, layers_dir: Path, *, workers: int = 2, keep: int = 8) -> None:
        self._store = store
        self._layers_dir = Path(layers_dir)
        self._workers = workers
        self._keep = keep
        self._guard = threading.Lock()
        self._inflight: dict[Hashable, Future[Any]] = {}
        self._overlays: OrderedDict[Hashable, gpd.GeoDataFrame] = OrderedDict()
        self._tables: OrderedDict[Hashable, PatchTable] = OrderedDict()
        self._rules: tuple[tuple[int, int], tuple[ConflictRule, ...]] | None = None
        # Opened now, not on first use: it creates the marks table, and a CREATE TABLE while GDAL is reading the
        # same GeoPackage makes those reads fail ("malformed database schema"). At start-up nothing is reading.
        self._registry = mark_registry(store)
        self.overlay_runs = 0
        """How many times the overlay has run (for tests and logs)."""

    # ----------------------------------------------------------------------------------------- inputs

    def rules(self) -> tuple[ConflictRule, ...]:
        """The rule table, re-read when its file changes (a rules edit needs no restart)."""
        path = default_rules_path(self._layers_dir)
        try:
            stat = path.stat()
        except OSError:
            raise InputError(f"rules file {path} not found") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._rules
        if cached is not None and cached[0] == signature:
            return cached[1]
        rules = tuple(rules_for(self._store.catalog, self._layers_dir))
        self._rules = (signature, rules)
        return rules

    def registry(self) -> MarkRegistry:
        return self._registry

    def marks_stamp(self) -> int:
        """The newest mark's row id: every new mark changes it."""
        return self.registry().latest_id()

    def _layer_versions(self, rules: tuple[ConflictRule, ...]) -> tuple[tuple[str, int], ...]:
        catalog = self._store.catalog
        names = [*layers_of(rules), *(n for n in ADMIN_LAYERS if n in catalog)]
        return tuple((name, self._store.layer_version(name)) for name in names)

    # ----------------------------------------------------------------------------------------- tables

    def table(self, settings: OverlapSettings = DEFAULTS) -> PatchTable:
        rules = self.rules()
        overlay_key = (rules, settings, self._layer_versions(rules))
        key = (overlay_key, self.marks_stamp())
        return self._once(self._tables, key, lambda: self._build(key, rules, settings))

    def find(self, patch_id: str, settings: OverlapSettings = DEFAULTS) -> tuple[PatchTable, int]:
        """The patch in the table for `settings`, or else in the table of every patch with any area (a patch
        the thresholds drop can still be opened and marked, as `mark_patch` allows)."""
        for candidate in (settings, LOOKUP_SETTINGS):
            found = self.table(candidate)
            if patch_id in found.rows:
                return found, found.rows[patch_id]
        raise NotFoundError(f"no conflict patch {patch_id!r}")

    def history(self, patch_id: str) -> list[Mark]:
        return self.registry().history(patch_id)

    def _build(
        self, key: tuple[Hashable, int], rules: tuple[ConflictRule, ...], settings: OverlapSettings
    ) -> PatchTable:
        patches = self._once(self._overlays, key[0], lambda: self._overlay(rules, settings))
        frame = _with_titles(attach_marks(patches, self.registry().current()), rules)
        fields = [c for c in frame.columns if c != "geometry"]
        return PatchTable(
            digest=hashlib.sha256(repr(key).encode()).hexdigest()[:24],
            rules=rules,
            settings=settings,
            frame=frame,
            features=feature_strings(frame, fields=fields, id_field="patch_id"),
            rows={str(pid): i for i, pid in enumerate(frame["patch_id"])},
        )

    def _overlay(self, rules: tuple[ConflictRule, ...], settings: OverlapSettings) -> gpd.GeoDataFrame:
        with self._guard:  # two different keys may be built at once
            self.overlay_runs += 1
        return compute_overlaps(self._store, rules=rules, settings=settings, workers=self._workers, with_marks=False)

    def _once(self, entries: OrderedDict[Hashable, _T], key: Hashable, build: Callable[[], _T]) -> _T:
        """The entry for `key`, built by exactly one thread; others asking meanwhile wait for that result."""
        with self._guard:
            if key in entries:
                entries.move_to_end(key)
                return entries[key]
            waiting = self._inflight.get(key)
            if waiting is None:
                future: Future[Any] = Future()
                self._inflight[key] = future
        if waiting is not None:
            result: _T = waiting.result()
            return result
        try:
            value = build()
        except BaseException as exc:
            with self._guard:
                del self._inflight[key]
            future.set_exception(exc)
            raise
        with self._guard:
            entries[key] = value
            while len(entries) > self._keep:  # old states (before an edit, other thresholds) go first
                entries.popitem(last=False)
            del self._inflight[key]
        future.set_result(value)
        return value

    def close(self) -> None:
        self._registry.close()


def _with_titles(frame: gpd.GeoDataFrame, rules: tuple[ConflictRule, ...]) -> gpd.GeoDataFrame:
    """The rule's Chinese and English title on every patch, after its severity: a patch reads on its own."""
    titles = {r.code: (r.title_zh, r.title_en) for r in rules}
    out = frame.copy()
    at = list(out.columns).index("severity") + 1
    out.insert(at, "rule_title", pd.Series([titles[c][0] for c in out["rule"]], index=out.index, dtype=object))
    out.insert(at + 1, "rule_title_en", pd.Series([titles[c][1] for c in out["rule"]], index=out.index, dtype=object))
    return out


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
            raise InputError(f"unknown rule {query.rule!r}; the rules are: {', '.join(codes)}")
        keep &= (frame["rule"] == query.rule).to_numpy()
    if query.town is not None:
        towns = frame["town"].astype(object)
        keep &= (towns.isna() if query.town == NO_TOWN else towns == query.town).to_numpy(dtype=bool)
    return np.flatnonzero(keep)


def _etag(request: Request, *parts: str) -> tuple[str, dict[str, str]]:
    text = "|".join([*parts, request.url.path, request.url.query])
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    return etag, {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Authorization"}


def _not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    return Response(status_code=304, headers=headers) if request.headers.get("if-none-match") == etag else None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain JSON values (numpy scalars unwrapped)."""
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _mark_json(mark: Mark) -> dict[str, Any]:
    return {**asdict(mark), "status_title": STATUS_TITLES.get(mark.status, mark.status)}


# --------------------------------------------------------------------------------------------- routes


@router.get("/overlaps/config", summary="What the planner map draws with: rules, their colours, the plan layers")
async def overlaps_config(_: PlannerCaller, store: StoreDep, settings: SettingsDep, cache: OverlapsDep) -> Any:
    rules = await run_in_threadpool(cache.rules)
    return await run_in_threadpool(planner_config, rules=rules, store=store, page_size=settings.max_page_size)


@router.get("/overlaps/summary", summary="Patch counts and areas by rule and by town")
async def overlaps_summary(request: Request, _: PlannerCaller, query: Patches, cache: OverlapsDep) -> Response:
    found = await run_in_threadpool(cache.table, query.settings)
    etag, headers = _etag(request, found.digest)
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    rows = _selected(found, query)
    summary = summarise(found.frame.iloc[rows], rules=found.rules)
    body = {
        "by_rule": _records(summary.by_rule),
        "by_town": _records(summary.by_town),
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
    etag, headers = _etag(request, found.digest)
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    rows = _selected(found, query)
    body = feature_collection(
        [found.features[i] for i in rows],
        numberMatched=len(rows),
        numberReturned=len(rows),
        thresholds=asdict(found.settings),
    )
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get("/overlaps.{fmt}", summary="The patch table as a file: GeoPackage, CSV or GeoJSON", response_model=None)
async def overlaps_file(fmt: DownloadFormat, _: PlannerCaller, query: Patches, cache: OverlapsDep) -> Response:
    found = await run_in_threadpool(cache.table, query.settings)
    return await _download(found, query, fmt)


async def _download(found: PatchTable, query: PatchQuery, fmt: DownloadFormat) -> Response:
    """Written into a private temporary folder, removed once the response has been sent."""
    frame = found.frame.iloc[_selected(found, query)]
    folder = Path(tempfile.mkdtemp(prefix="geoplan-patches-"))
    name = f"conflict_patches.{fmt}"
    try:
        path = await run_in_threadpool(write_file, frame, folder / name, layer_name="conflict_patches")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(path, media_type=DOWNLOADS[fmt], filename=name, background=cleanup)


@router.get("/overlaps/{patch_id}", summary="One patch, its source features (all fields) and its mark history")
async def overlap_detail(
    patch_id: str, request: Request, caller: PlannerCaller, settings: Thresholds, cache: OverlapsDep, store: StoreDep
) -> Response:
    if not PATCH_ID.fullmatch(patch_id):
        raise HTTPException(404, f"no conflict patch {patch_id!r}")
    found, row = await run_in_threadpool(cache.find, patch_id, settings)
    etag, headers = _etag(request, found.digest, patch_id)
    if (cached := _not_modified(request, etag, headers)) is not None:
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
                "synthetic": layer.synthetic,
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


_MARK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": MarkRequest.model_json_schema()}},
    }
}


@router.post(
    "/overlaps/{patch_id}/mark",
    status_code=201,
    summary="Mark a patch accepted / to adjust / resolved (kept as history)",
    openapi_extra=_MARK_BODY,
)
async def mark_overlap(
    patch_id: str, request: Request, caller: PlannerCaller, store: StoreDep, cache: OverlapsDep
) -> dict[str, Any]:
    """The body is read only after the token check, and size-limited; the answer is the mark as stored."""
    document = await json_body(request, MARK_BODY_LIMIT)
    try:
        body = MarkRequest.model_validate(document)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
    if not PATCH_ID.fullmatch(patch_id):
        raise HTTPException(404, f"no conflict patch {patch_id!r}")
    rules = await run_in_threadpool(cache.rules)
    mark = await run_in_threadpool(
        mark_patch, store, patch_id, rules=rules, status=body.status, note=body.note, actor=caller.actor
    )
    return _mark_json(mark)
