"""The ten-minute cultural circle (十分钟文化圈) over HTTP, for staff: the village table with the town and district
totals, the villages, service areas and uncovered areas as GeoJSON, greedy new-site suggestions, and the table
as a file. The same engine and options as `geoplan coverage` and `geoplan suggest-sites`.

Everything here needs a staff token or better (401 without, 403 never: staff is the lowest role with a token).
The figures come from the population raster, which the catalogue keeps private, and the suggested sites are
unapproved planning material; a public map of them is not the project map's job. The role check also keeps
anonymous callers from starting seconds of computation per request with varied options. It is a dependency
declared first, so it runs before any parameter is looked at.

Options (all optional; the defaults come from layers/rules/coverage.yaml, and any option given applies to urban
and rural units alike, as on the command line): `mode`, `minutes`, `speed_kmh`, `access_m`, `kinds`
(comma-separated facility kinds). A malformed or out-of-range number answers 422, an unknown kind 400.
Each answer is computed once per state of its inputs (`CoverageCache`) and revalidated with ETags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geoplan.access import Role
from geoplan.analysis.coverage import CoverageRules, CoverageSettings
from geoplan.analysis.coverage_config import rules_with_overrides
from geoplan.analysis.coverage_tables import NO_ROUTE_NOTE_ZH, no_route_words
from geoplan.analysis.unit_groups import VIRTUAL_GROUP
from geoplan.errors import InputError
from geoplan.geojson import feature_collection
from geoplan.storage import LayerStore
from web.answers import plain, records, synthetic_facts
from web.coverage_cache import (
    COVERAGE_LAYERS,
    CoverageCache,
    CoverageQuery,
    CoverageRun,
    GeoLayer,
    nearest_facility_names,
    village_download,
    with_words,
)
from web.deps import Caller, StoreDep, require_role
from web.downloads import table_download
from web.etags import etag_headers, not_modified
from web.maps.coverage_map import MAX_SITES

router = APIRouter(prefix="/api", tags=["coverage"])

GEOJSON = "application/geo+json"
MAX_MINUTES = 60.0
MAX_SPEED_KMH = 30.0
MAX_ACCESS_M = 1_000.0
MAX_SITE_REACH_M = 2_000.0
"""The new-site search pairs every uncovered cell with every candidate node within reach; beyond ~2 km (a
26-minute walk) that takes seconds and gigabytes per request on the demo store. `geoplan suggest-sites` has no
such limit."""
DEFAULT_BELOW_PCT = 50.0
DownloadFormat = Literal["csv", "xlsx", "gpkg"]
TABLE_NAME = "village_coverage"

StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]


# --------------------------------------------------------------------------------------------- parameters


def get_coverage(request: Request) -> CoverageCache:
    cache: CoverageCache = request.app.state.coverage
    return cache


CoverageDep = Annotated[CoverageCache, Depends(get_coverage)]


def coverage_query(
    store: StoreDep,
    cache: CoverageDep,
    mode: Annotated[
        Literal["network", "euclidean"] | None, Query(description="network (walk the roads) or euclidean")
    ] = None,
    minutes: Annotated[
        float | None, Query(gt=0, le=MAX_MINUTES, allow_inf_nan=False, description="time limit, minutes")
    ] = None,
    speed_kmh: Annotated[
        float | None, Query(gt=0, le=MAX_SPEED_KMH, allow_inf_nan=False, description="travel speed, km/h")
    ] = None,
    access_m: Annotated[
        float | None,
        Query(ge=0, le=MAX_ACCESS_M, allow_inf_nan=False, description="longest link to the network, m"),
    ] = None,
    kinds: Annotated[
        str | None, Query(max_length=500, description="facility kinds, comma-separated (default: all)")
    ] = None,
) -> CoverageQuery:
    """The rules file with the request's options applied (a plain function: FastAPI runs it in a thread)."""
    rules = rules_with_overrides(cache.base_rules(), mode=mode, minutes=minutes, speed_kmh=speed_kmh, access_m=access_m)
    return CoverageQuery(
        rules=rules, kinds=_kinds(kinds, store.catalog.get("culture_facilities").field("kind").allowed)
    )


def _kinds(text: str | None, allowed: tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    wanted = sorted({part.strip() for part in text.split(",") if part.strip()})
    if not wanted:
        raise InputError(
            "kinds is empty: name at least one facility kind, or leave it out for all",
            zh="请至少选择一类设施（或不限类别）。",
        )
    unknown = [k for k in wanted if allowed and k not in allowed]
    if unknown:
        raise InputError(
            f"unknown facility kind(s) {', '.join(unknown)}; the kinds are: {', '.join(allowed or ())}",
            zh=f"未知的设施类别：{'、'.join(unknown)}。可选：{'、'.join(allowed or ())}。",
        )
    return tuple(wanted)


Coverage = Annotated[CoverageQuery, Depends(coverage_query)]


# --------------------------------------------------------------------------------------------- helpers


def _settings_json(settings: CoverageSettings) -> dict[str, Any]:
    return {**asdict(settings), "threshold_m": settings.threshold_m}


def rules_json(rules: CoverageRules) -> dict[str, Any]:
    return {"urban": _settings_json(rules.urban), "rural": _settings_json(rules.rural)}


def _about(run: CoverageRun, synthetic: dict[str, Any]) -> dict[str, Any]:
    """What every answer says about how it was computed, and which of its inputs are synthetic demo data."""
    return {
        "rules": rules_json(run.query.rules),
        "kinds": list(run.query.kinds) if run.query.kinds is not None else None,
        "data": dict(run.versions),
        **synthetic,
    }


def _synthetic(store: LayerStore) -> dict[str, Any]:
    """The coverage inputs that hold synthetic demo data now (see web.answers.synthetic_facts)."""
    return synthetic_facts(store, tuple(COVERAGE_LAYERS), tail="，覆盖率非官方统计")


def _geojson(
    request: Request, run: CoverageRun, layer: GeoLayer, synthetic: dict[str, Any], **members: Any
) -> Response:
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    body = feature_collection(
        layer.features,
        numberMatched=len(layer.features),
        numberReturned=len(layer.features),
        **plain({**members, **layer.extra, **_about(run, synthetic)}),
    )
    return Response(body, media_type=GEOJSON, headers=headers)


async def _layer_answer(
    request: Request,
    query: CoverageQuery,
    cache: CoverageCache,
    store: LayerStore,
    layer_of: Callable[[CoverageRun], GeoLayer],
    *,
    with_classes: bool = False,
) -> Response:
    """One of the run's GeoJSON layers (`layer_of`), both steps off the event loop; the villages carry the
    choropleth classes too."""
    run = await run_in_threadpool(cache.run, query)
    layer = await run_in_threadpool(layer_of, run)
    members = {"classes": run.classes.to_json()} if with_classes else {}
    synthetic = await run_in_threadpool(_synthetic, store)
    return _geojson(request, run, layer, synthetic, **members)


# --------------------------------------------------------------------------------------------- routes


@router.get("/coverage", summary="Coverage per village, per town and for the district (十分钟文化圈)")
async def coverage(
    request: Request,
    _: StaffCaller,
    query: Coverage,
    cache: CoverageDep,
    store: StoreDep,
    below: Annotated[
        float, Query(ge=0, le=100, allow_inf_nan=False, description="count the villages under this coverage %")
    ] = DEFAULT_BELOW_PCT,
) -> Response:
    run = await run_in_threadpool(cache.run, query)
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    table = run.result.table.assign(nearest_facility_name=nearest_facility_names(run))
    table = with_words(table)
    pct = table["coverage_pct"].to_numpy(dtype=np.float64)
    body = {
        **_about(run, await run_in_threadpool(_synthetic, store)),
        "district": plain(
            {**run.total, "no_route_zh": no_route_words(run.total["no_route_population"], run.total["population"])}
        ),
        "towns": records(with_words(run.towns)),
        "villages": records(table),
        "virtual_group": VIRTUAL_GROUP,
        "no_route_note_zh": NO_ROUTE_NOTE_ZH,
        "below": {"pct": below, "villages": int(np.sum(pct < below))},
        "facilities_counted": len(run.facilities),
        "facilities_off_network": list(run.result.facilities_off_network),
        "unassigned_population": plain(run.result.unassigned_population),
        "off_network_population": plain(run.total["off_network_population"]),
        "classes": run.classes.to_json(),
    }
    return JSONResponse(body, headers=headers)


@router.get("/coverage/villages", summary="The villages as GeoJSON with their coverage and choropleth class")
async def coverage_villages(
    request: Request, _: StaffCaller, query: Coverage, cache: CoverageDep, store: StoreDep
) -> Response:
    return await _layer_answer(request, query, cache, store, cache.villages, with_classes=True)


@router.get("/coverage/service-areas", summary="Each counted facility's service area (isochrone) as GeoJSON")
async def coverage_service_areas(
    request: Request, _: StaffCaller, query: Coverage, cache: CoverageDep, store: StoreDep
) -> Response:
    return await _layer_answer(request, query, cache, store, cache.service_areas)


@router.get("/coverage/gaps", summary="The uncovered populated areas per village, with their population")
async def coverage_gaps(
    request: Request, _: StaffCaller, query: Coverage, cache: CoverageDep, store: StoreDep
) -> Response:
    return await _layer_answer(request, query, cache, store, cache.gaps)


@router.get("/coverage/suggested-sites", summary="Greedy new sites: each one's gain and the cumulative coverage")
async def coverage_sites(
    request: Request,
    _: StaffCaller,
    query: Coverage,
    cache: CoverageDep,
    store: StoreDep,
    k: Annotated[int, Query(ge=1, le=MAX_SITES, description="how many new sites")] = 5,
) -> Response:
    reach = max(query.rules.urban.threshold_m, query.rules.rural.threshold_m)
    if reach > MAX_SITE_REACH_M:
        raise InputError(
            f"new sites are searched here for reaches up to {MAX_SITE_REACH_M:,.0f} m; these options reach "
            f"{reach:,.0f} m (minutes × speed): shorten them, or use `geoplan suggest-sites`",
            zh=f"此处新选址只支持 {MAX_SITE_REACH_M:,.0f} 米以内的服务半径；当前参数为 {reach:,.0f} 米"
            "（分钟 × 速度）：请缩短时间或降低速度。",
        )
    return await _layer_answer(request, query, cache, store, lambda run: cache.sites(run, k))


@router.get(
    "/coverage/table.{fmt}", summary="The village table as a file: CSV, Excel or GeoPackage", response_model=None
)
async def coverage_table(fmt: DownloadFormat, _: StaffCaller, query: Coverage, cache: CoverageDep) -> Response:
    run = await run_in_threadpool(cache.run, query)
    return await table_download(village_download(run), name=TABLE_NAME, fmt=fmt)
