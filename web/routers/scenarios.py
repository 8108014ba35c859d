"""Scenarios (规划方案) over HTTP, for planners: create one, draft features into it, see it against today (conflict
patches, life-circle coverage, indicators), then adopt or discard it. The core is geoplan.services.scenarios.

Scenarios are drafts and never public: every route needs a planner token or better (401 without, 403 below), and
declares that first, so it runs before any parameter or body is looked at. A scenario belongs to its author's
token: a planner sees and changes only the scenarios made with their own token (another's answers 404, as an
unknown name does, so nobody learns what others draft); an admin sees and changes every scenario. Drafting into
or adopting a layer also needs the layer's own `edit_role`.

The diff runs the analyses on both sides (tens of seconds on the demo): each side is cached by its versions
(web.scenario_cache) and computed off the event loop.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from geoplan.access import Role
from geoplan.beijing_time import api_time, shown_time
from geoplan.catalog import LayerDef
from geoplan.geojson import feature_collection, feature_strings, frame_from_geojson
from geoplan.services import scenarios as core
from geoplan.services.indicators import definitions_for
from geoplan.services.rule_files import default_life_circles_path, load_life_circles, rules_for
from geoplan.services.scenario_diff import ScenarioDiff, write_diff
from geoplan.services.scenario_store import MAX_NAME, OP_TITLES, Scenario
from geoplan.storage import LayerStore
from web.answers import records
from web.deps import Caller, SettingsDep, StoreDep, require_role
from web.downloads import MEDIA_TYPES
from web.etags import etag_headers, not_modified
from web.scenario_cache import ScenarioDiffCache
from web.uploads import is_truthy, json_body, json_body_openapi, model_body

router = APIRouter(prefix="/api/scenarios", tags=["scenarios"])

PlannerCaller = Annotated[Caller, Depends(require_role(Role.PLANNER))]
GEOJSON = "application/geo+json"
BODY_LIMIT = 16 * 1024
ScenarioName = Annotated[str, Path(max_length=MAX_NAME, description="the scenario's name")]
LayerName = Annotated[str, Path(max_length=63, description="a vector layer with an id field")]
DiffFormat = Literal["json", "xlsx"]
DRAWABLE = ("culture_facilities", "public_facilities", "projects")
"""What the planner page drafts into a scenario: new facilities (points) and projects (polygons)."""
PATCH_FIELDS = ["patch_id", "rule", "rule_title", "severity", "change", "change_zh", "layer_a", "id_a"]
PATCH_FIELDS += ["layer_b", "id_b", "area_m2", "town", "village_code"]


def get_diffs(request: Request) -> ScenarioDiffCache:
    cache: ScenarioDiffCache = request.app.state.scenario_diffs
    return cache


DiffsDep = Annotated[ScenarioDiffCache, Depends(get_diffs)]


class ScenarioRequest(BaseModel):
    """A new scenario: its name, unique, one line."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_NAME, description="e.g. 西江新城图书馆")


# --------------------------------------------------------------------------------------------- helpers


def _owns(caller: Caller, scenario: Scenario) -> bool:
    return caller.role >= Role.ADMIN or scenario.author == caller.actor


def _owned(store: LayerStore, name: str, caller: Caller) -> Scenario:
    """The scenario if the caller may see it; another planner's is not found, exactly as an unknown name."""
    scenario = core.get_scenario(store, name)
    if not _owns(caller, scenario):
        raise HTTPException(404, f"no scenario named {name!r}")
    return scenario


def _may_edit(caller: Caller, layer: LayerDef) -> None:
    needed = Role.parse(layer.edit_role)
    if caller.role < needed:
        raise HTTPException(
            403, f"editing '{layer.name}' needs the {needed.label} role; your token is {caller.role.label}"
        )


def _scenario_json(scenario: Scenario) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "author": scenario.author,
        "created_at": api_time(scenario.created_at),  # ISO 8601 in Beijing time, as every API time
        "created_at_shown": shown_time(scenario.created_at),
        "edit_count": scenario.edit_count,
        "layers": sorted(scenario.bases),
    }


def _details(store: LayerStore, name: str, caller: Caller) -> dict[str, Any]:
    _owned(store, name, caller)
    scenario, edits = core.scenario_edits(store, name)
    by_layer: dict[str, dict[str, int]] = {}
    for edit in edits:
        counts = by_layer.setdefault(edit.layer, dict.fromkeys(OP_TITLES, 0))
        counts[edit.op] += 1
    return {
        **_scenario_json(scenario),
        "op_titles": OP_TITLES,
        "summary": [{"layer": layer, **counts} for layer, counts in sorted(by_layer.items())],
        "edits": [{"layer": e.layer, "feature_id": e.feature_id, "op": e.op, "op_zh": OP_TITLES[e.op]} for e in edits],
    }


# --------------------------------------------------------------------------------------------- scenarios


@router.get("", summary="The scenarios the caller may see (their own; every one for an admin), and what to draw")
def list_scenarios(caller: PlannerCaller, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    author = None if caller.role >= Role.ADMIN else caller.actor
    return {
        "scenarios": [_scenario_json(s) for s in core.list_scenarios(store, author=author)],
        "drawable": _drawable(store, caller, settings.layers_dir),
    }


def _drawable(store: LayerStore, caller: Caller, layers_dir: FilePath) -> list[dict[str, Any]]:
    """The layers the planner page draws new features of (facilities as points, projects as polygons), each with
    the fields its form asks for (the required ones), in Chinese; allowed values as choices."""
    service_titles = {n: r.title_zh for n, r in load_life_circles(default_life_circles_path(layers_dir)).items()}
    drawable = []
    for name in DRAWABLE:
        if name not in store.catalog:
            continue
        layer = store.catalog.get(name)
        if layer.kind != "vector" or layer.id_field is None or caller.role < Role.parse(layer.edit_role):
            continue
        fields = []
        for f in layer.fields:
            if not f.required:
                continue
            labels = service_titles if f.name == "service" else {}
            choices = [{"value": v, "label": labels.get(str(v), str(v))} for v in f.allowed or ()]
            fields.append(
                {
                    "name": f.name,
                    "title": f.title_zh or f.name,
                    "type": f.type,
                    "choices": choices,
                    "id": f.name == layer.id_field,
                }
            )
        drawable.append({"name": name, "title": layer.title_zh, "geometry": layer.geometry, "fields": fields})
    return drawable


@router.post(
    "",
    status_code=201,
    summary="Create an empty scenario",
    openapi_extra=json_body_openapi(ScenarioRequest),
)
async def create_scenario(caller: PlannerCaller, request: Request, store: StoreDep) -> dict[str, Any]:
    body = await model_body(request, ScenarioRequest, BODY_LIMIT)
    scenario = await run_in_threadpool(core.create_scenario, store, body.name, author=caller.actor, token=caller.name)
    return _scenario_json(scenario)


@router.get("/{scenario}", summary="One scenario with its edits")
def get_scenario(caller: PlannerCaller, scenario: ScenarioName, store: StoreDep) -> dict[str, Any]:
    return _details(store, scenario, caller)


@router.delete("/{scenario}", summary="Discard a scenario (the live layers are untouched)")
def discard_scenario(caller: PlannerCaller, scenario: ScenarioName, store: StoreDep) -> dict[str, Any]:
    found = _owned(store, scenario, caller)
    core.discard_scenario(store, found.name, actor=caller.actor)
    return {"discarded": found.name}


# --------------------------------------------------------------------------------------------- edits


@router.post(
    "/{scenario}/features/{layer_name}",
    summary="Draft features into a scenario (a GeoJSON Feature or collection; ?replace=true replaces by id)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def add_features(
    caller: PlannerCaller,
    scenario: ScenarioName,
    layer_name: LayerName,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    replace: Annotated[str | None, Query(max_length=10, description="true: replace features by their id")] = None,
) -> dict[str, Any]:
    found = await run_in_threadpool(_owned, store, scenario, caller)
    layer = core.scenario_layer(store, layer_name)
    _may_edit(caller, layer)
    frame = frame_from_geojson(await json_body(request, settings.max_upload_bytes), source="request body")
    report = await run_in_threadpool(
        core.add_features,
        store,
        found.name,
        layer.name,
        frame,
        actor=caller.actor,
        replace=is_truthy(replace),
        refuse_unknown=True,  # as the live edit API: a misspelt property is refused, not silently dropped
    )
    ids = [str(v) for v in frame[layer.id_field]] if layer.id_field in frame.columns else []
    return {
        "scenario": report.scenario,
        "layer": report.layer,
        "ops": report.ops,
        "ids": ids,
        "repairs": report.repairs,
    }


@router.delete("/{scenario}/features/{layer_name}/{feature_id}", summary="Delete a feature in a scenario")
def remove_feature(
    caller: PlannerCaller,
    scenario: ScenarioName,
    layer_name: LayerName,
    feature_id: Annotated[str, Path(max_length=200)],
    store: StoreDep,
) -> dict[str, Any]:
    found = _owned(store, scenario, caller)
    layer = core.scenario_layer(store, layer_name)
    _may_edit(caller, layer)
    report = core.remove_features(store, found.name, layer.name, [feature_id], actor=caller.actor)
    return {"scenario": report.scenario, "layer": report.layer, "ops": report.ops}


@router.get("/{scenario}/layers/{layer_name}", summary="A layer as the scenario sees it (GeoJSON, EPSG:4490)")
async def scenario_layer(
    caller: PlannerCaller, scenario: ScenarioName, layer_name: LayerName, store: StoreDep
) -> Response:
    def build() -> bytes:
        found = _owned(store, scenario, caller)
        layer = core.scenario_layer(store, layer_name)
        _, edits = core.scenario_edits(store, found.name)
        view = core.open_view(store, found.name)
        frame = view.read(layer.name)
        edited = {e.feature_id: e.op for e in edits if e.layer == layer.name}
        ids = frame[layer.id_field].astype(str) if layer.id_field else pd.Series([], dtype=str)
        frame = frame.assign(scenario_op=[edited.get(i) for i in ids])
        fields = [*layer.field_names, "scenario_op"]
        features = feature_strings(frame, fields=[f for f in fields if f in frame.columns], id_field=layer.id_field)
        return feature_collection(features, numberReturned=len(features), scenario=found.name)

    return Response(await run_in_threadpool(build), media_type=GEOJSON)


# --------------------------------------------------------------------------------------------- the diff


def _diff_json(diff: ScenarioDiff, rule_titles: dict[str, str], service_titles: dict[str, str]) -> dict[str, Any]:
    patches = diff.patches.assign(rule_title=[rule_titles.get(str(r), str(r)) for r in diff.patches["rule"]])
    patches = patches.to_crs("EPSG:4490") if patches.crs is not None else patches
    fields = [f for f in PATCH_FIELDS if f in patches.columns]
    coverage = diff.coverage_changed()
    indicators = diff.indicators_changed()
    return {
        "scenario": diff.scenario,
        "counts": {
            "added": int((diff.patches["change"] == "added").sum()),
            "removed": int((diff.patches["change"] == "removed").sum()),
            "coverage_changed": len(coverage),
            "indicators_changed": len(indicators),
        },
        "patches": json.loads(feature_collection(feature_strings(patches, fields=fields, id_field="patch_id"))),
        "coverage": records(coverage.assign(service_title=[service_titles.get(s, s) for s in coverage["service"]])),
        "indicators": records(indicators),
    }


def _titles(store: LayerStore, layers_dir: FilePath) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The Chinese titles of the rules, the services and the indicators, for the tables people read."""
    rules = {r.code: r.title_zh for r in rules_for(store.catalog, layers_dir)}
    services = load_life_circles(default_life_circles_path(layers_dir), store.catalog)
    indicators = {d.id: d.title_zh for d in definitions_for(store, layers_dir)}
    return rules, {name: rule.title_zh for name, rule in services.items()}, indicators


@router.get("/{scenario}/diff", summary="The scenario against today: conflict patches, coverage, indicators")
async def scenario_diff(
    caller: PlannerCaller,
    scenario: ScenarioName,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    diffs: DiffsDep,
    format: Annotated[DiffFormat, Query(description="json (default) or xlsx")] = "json",
) -> Response:
    await run_in_threadpool(_owned, store, scenario, caller)
    if format == "xlsx":
        return await _diff_file(scenario, diffs)
    digest, diff = await run_in_threadpool(diffs.diff, scenario)
    etag, headers = etag_headers(request, digest)
    cached = not_modified(request, etag, headers)
    if cached is not None:
        return cached
    rules, services, indicators = await run_in_threadpool(_titles, store, settings.layers_dir)
    body = _diff_json(diff, rules, services)
    for row in body["indicators"]:
        row["indicator_title"] = indicators.get(row["indicator"], row["indicator"])
    return JSONResponse(body, headers=headers)


@router.get("/{scenario}/diff.xlsx", summary="The scenario against today as an Excel workbook (three sheets)")
async def scenario_diff_xlsx(
    caller: PlannerCaller, scenario: ScenarioName, store: StoreDep, diffs: DiffsDep
) -> Response:
    await run_in_threadpool(_owned, store, scenario, caller)
    return await _diff_file(scenario, diffs)


async def _diff_file(name: str, diffs: ScenarioDiffCache) -> Response:
    _, diff = await run_in_threadpool(diffs.diff, name)
    folder = FilePath(tempfile.mkdtemp(prefix="geoplan-scenario-"))
    path = folder / "scenario_diff.xlsx"
    try:
        await run_in_threadpool(write_diff, diff, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(path, media_type=MEDIA_TYPES["xlsx"], filename="scenario_diff.xlsx", background=cleanup)


# --------------------------------------------------------------------------------------------- adopt


@router.post(
    "/{scenario}/adopt",
    summary="Adopt a scenario: every edit in one transaction (409 naming the features when it is stale)",
    responses={409: {"description": "stale: the features that changed live are listed in `features`"}},
)
async def adopt_scenario(caller: PlannerCaller, scenario: ScenarioName, store: StoreDep) -> dict[str, Any]:
    def adopt() -> core.AdoptReport:
        found = _owned(store, scenario, caller)
        for layer in found.bases:
            _may_edit(caller, store.catalog.get(layer))
        return core.adopt_scenario(store, found.name, actor=caller.actor)

    report = await run_in_threadpool(adopt)
    return {"adopted": report.scenario, "written": report.written, "moved_layers": report.moved_layers}
