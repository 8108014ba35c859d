"""Life circles (社区生活圈) for every public service over HTTP, for staff: the rules, the rollups per town (virtual
units in a group of their own) and for the district, completeness per circle, the villages of one service as
GeoJSON, the villages × services matrix, one village's card, and the scorecard as a file. The same engine and
rules as `geoplan lifecircle`.

Everything here needs a staff token or better (401 without), for the reasons of web/routers/coverage.py: the
figures come from the private population raster. The role check is declared first, so it runs before any
parameter is looked at. Each answer is computed once per state of its inputs (`LifeCircleCache`) and
revalidated with ETags.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geoplan.access import Role
from geoplan.analysis.life_circle_rules import ServiceRule, UnitRule
from geoplan.analysis.life_circle_scorecard import whole_people
from geoplan.errors import InputError, NotFoundError
from geoplan.geojson import feature_collection
from geoplan.storage import LayerStore
from web.answers import plain, records, synthetic_facts
from web.deps import Caller, StoreDep, require_role
from web.downloads import table_download
from web.etags import etag_headers, not_modified
from web.lifecircle_cache import LIFE_CIRCLE_LAYERS, MISSING_BELOW_PCT, LifeCircleCache, LifeCircleRun, scorecard_frame

router = APIRouter(prefix="/api/lifecircle", tags=["life circles"])

GEOJSON = "application/geo+json"
DownloadFormat = Literal["csv", "xlsx", "gpkg"]
TABLE_NAME = "life_circles"
NO_ROUTE = "无路径"

StaffCaller = Annotated[Caller, Depends(require_role(Role.STAFF))]


def get_lifecircle(request: Request) -> LifeCircleCache:
    cache: LifeCircleCache = request.app.state.lifecircle
    return cache


LifeCircleDep = Annotated[LifeCircleCache, Depends(get_lifecircle)]
ServiceQuery = Annotated[str, Query(max_length=64, description="service id, e.g. kindergarten")]


# --------------------------------------------------------------------------------------------- helpers


def _service(run: LifeCircleRun, service: str) -> str:
    if service not in run.rules:
        names = list(run.rules)
        titles = [f"{name}（{rule.title_zh}）" for name, rule in run.rules.items()]
        raise InputError(
            f"unknown service {service!r}; the services are: {', '.join(names)}",
            zh=f"未知的服务类别：{service}。可选：{'、'.join(titles)}。",
        )
    return service


def _unit_json(unit: UnitRule) -> dict[str, Any]:
    return {
        "radius_m": unit.radius_m,
        "reaches": [{"radius_m": r.radius_m, "min_ha": r.min_ha} for r in unit.reaches],
        "clause": unit.clause,
        "assumed": unit.assumed,
    }


def rule_json(rule: ServiceRule, facilities: int) -> dict[str, Any]:
    return {
        "service": rule.name,
        "title_zh": rule.title_zh,
        "circle": rule.circle,
        "layer": rule.layer,
        "mode": rule.mode,
        "speed_kmh": rule.speed_kmh,
        "access_m": rule.access_m,
        "urban": _unit_json(rule.urban),
        "rural": _unit_json(rule.rural),
        "facilities": facilities,
    }


def scheme_json(run: LifeCircleRun) -> dict[str, Any]:
    """The class breaks and colours, the same for every service (fixed steps), without any service's counts."""
    scheme = run.classes(next(iter(run.rules))).to_json()
    scheme.pop("counts")
    return scheme


def _synthetic(store: LayerStore) -> dict[str, Any]:
    return synthetic_facts(store, LIFE_CIRCLE_LAYERS, tail="，覆盖率非官方统计")


def _about(run: LifeCircleRun, synthetic: dict[str, Any]) -> dict[str, Any]:
    return {"data": dict(run.versions), **synthetic}


async def _run(cache: LifeCircleCache) -> LifeCircleRun:
    return await run_in_threadpool(cache.run)


def minutes_zh(minutes: float | None, population: int) -> str:
    """A village's minutes to its nearest facility as a person reads them: "无路径" where people live but no
    route reaches them (too far from the network, or nothing within the search), "—" where nobody lives."""
    if population <= 0:
        return "—"
    if minutes is None or not np.isfinite(minutes):
        return NO_ROUTE
    return f"{minutes:.1f} 分钟"


def village_card(run: LifeCircleRun, code: str) -> dict[str, Any]:
    """Everything about one village: its coverage of each service with the nearest facility by name, the
    services it lacks, its completeness per circle and its 综合性文化服务中心."""
    codes = run.villages["village_code"].astype(str).to_numpy()
    where = np.flatnonzero(codes == code)
    if len(where) == 0:
        raise NotFoundError(f"no village {code!r}", zh=f"未找到代码为 {code} 的村（社区）。")
    i = int(where[0])
    rows = {str(r["service"]): r for r in run.card[run.card["village_code"].astype(str) == code].to_dict("records")}
    services = []
    for name, service in run.result.services.items():
        t = service.table.iloc[i]
        row = rows[name]
        facilities = run.facilities(name)
        names = dict(zip(facilities["facility_id"].astype(str), facilities["name"].astype(str), strict=True))
        nearest = t["nearest_facility"] if isinstance(t["nearest_facility"], str) else None
        mean = float(t["mean_minutes"])
        unrouted = max(float(t["population"]) - float(t["routed_population"]), 0.0)
        services.append(
            {
                "service": name,
                "title_zh": service.rule.title_zh,
                "circle": service.rule.circle,
                "radius_m": row["radius_m"],
                "population": row["population"],
                "covered_population": row["covered_population"],
                "coverage_pct": row["coverage_pct"],
                "nearest_facility": nearest,
                "nearest_facility_name": names.get(nearest) if nearest else None,
                "mean_minutes": round(mean, 1) if np.isfinite(mean) else None,
                "minutes_zh": minutes_zh(mean, int(row["population"])),
                "no_route_population": int(whole_people(pd.Series([unrouted])).iloc[0]),
            }
        )
    village = run.villages.iloc[i]
    missing = run.missing[run.missing["village_code"].astype(str) == code]
    complete = run.completeness[run.completeness["village_code"].astype(str) == code]
    centre = run.centres[run.centres["village_code"].astype(str) == code]
    first = next(iter(rows.values()))
    return plain(
        {
            "village_code": code,
            "village_name": village["village_name"],
            "town": village["town"],
            "type": first["type"],
            "group": run.groups.iloc[i],
            "population": int(first["population"]),
            "services": services,
            "missing": records(missing),
            "missing_below_pct": MISSING_BELOW_PCT,
            "completeness": records(complete),
            "culture_centre": records(centre)[0] if len(centre) else None,
        }
    )


def summary_json(run: LifeCircleRun) -> dict[str, Any]:
    """The rules with their facility counts, the rollups, completeness per group and circle, the searches."""
    return {
        "services": [rule_json(rule, len(run.facilities(name))) for name, rule in run.rules.items()],
        "rollup": records(run.rollup),
        "completeness": records(run.completeness_rollup),
        "villages": len(run.villages),
        "searches": run.result.searches,
        "missing_below_pct": MISSING_BELOW_PCT,
        "classes": scheme_json(run),
    }


def matrix_json(run: LifeCircleRun) -> dict[str, Any]:
    """The villages × services matrix: one row per village (its group, people, coverage per service, the
    services it lacks, whether it has a 综合性文化服务中心: null for a virtual unit, which needs none)."""
    names = list(run.rules)
    lacking = run.missing.groupby(run.missing["village_code"].astype(str))["service"].agg(list).to_dict()
    centres = {
        str(code): bool(has) if expected else None
        for code, has, expected in zip(
            run.centres["village_code"], run.centres["has_centre"], run.centres["expected"], strict=True
        )
    }
    rows = []
    for row in run.matrix.to_dict(orient="records"):
        code = str(row["village_code"])
        rows.append(
            {
                **{k: v for k, v in row.items() if k not in names},
                "coverage": {name: row[name] for name in names},
                "missing": lacking.get(code, []),
                "has_centre": centres.get(code),
            }
        )
    return plain(
        {
            "services": [{"service": n, "title_zh": r.title_zh, "circle": r.circle} for n, r in run.rules.items()],
            "villages": rows,
            "classes": scheme_json(run),
        }
    )


# --------------------------------------------------------------------------------------------- routes


@router.get("", summary="生活圈：规则、各镇街与全区覆盖、完整度 · Life circles: rules, rollups, completeness")
async def lifecircle(request: Request, _: StaffCaller, cache: LifeCircleDep, store: StoreDep) -> Response:
    run = await _run(cache)
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    body = {
        **_about(run, await run_in_threadpool(_synthetic, store)),
        **await run_in_threadpool(summary_json, run),
    }
    return JSONResponse(plain(body), headers=headers)


@router.get("/villages", summary="某项服务各村覆盖（GeoJSON）· One service's coverage per village, as GeoJSON")
async def lifecircle_villages(
    request: Request, _: StaffCaller, cache: LifeCircleDep, store: StoreDep, service: ServiceQuery
) -> Response:
    return await _layer(request, cache, store, service, "villages")


@router.get("/facilities", summary="某项服务的设施（GeoJSON）· One service's facilities, as GeoJSON")
async def lifecircle_facilities(
    request: Request, _: StaffCaller, cache: LifeCircleDep, store: StoreDep, service: ServiceQuery
) -> Response:
    return await _layer(request, cache, store, service, "facilities")


async def _layer(request: Request, cache: LifeCircleCache, store: LayerStore, service: str, which: str) -> Response:
    run = await _run(cache)
    name = _service(run, service)
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    build = cache.villages if which == "villages" else cache.facilities
    layer = await run_in_threadpool(build, run, name)
    rule = run.rules[name]
    members: dict[str, Any] = {"service": name, "title_zh": rule.title_zh, "circle": rule.circle}
    if which == "villages":
        members["classes"] = run.classes(name).to_json()
    body = feature_collection(
        layer.features,
        numberMatched=len(layer.features),
        numberReturned=len(layer.features),
        **plain({**members, **layer.extra, **_about(run, await run_in_threadpool(_synthetic, store))}),
    )
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get("/matrix", summary="村（社区）× 服务覆盖率矩阵 · The villages × services coverage matrix")
async def lifecircle_matrix(request: Request, _: StaffCaller, cache: LifeCircleDep, store: StoreDep) -> Response:
    run = await _run(cache)
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    body = await run_in_threadpool(matrix_json, run)
    return JSONResponse({**body, **plain(_about(run, await run_in_threadpool(_synthetic, store)))}, headers=headers)


@router.get(
    "/villages/{code}", summary="村（社区）卡片：各项服务、缺项、文化中心 · One village's card: services, gaps, centre"
)
async def lifecircle_village(
    request: Request,
    _: StaffCaller,
    cache: LifeCircleDep,
    code: Annotated[str, Path(max_length=32, description="the village's 12-digit statistical code")],
) -> Response:
    run = await _run(cache)
    card = await run_in_threadpool(village_card, run, code)
    etag, headers = etag_headers(request, run.digest)
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    return JSONResponse(card, headers=headers)


@router.get(
    "/table.{fmt}",
    summary="生活圈评分表下载（CSV、Excel、GeoPackage）· The scorecard as a file",
    response_model=None,
)
async def lifecircle_table(fmt: DownloadFormat, _: StaffCaller, cache: LifeCircleDep) -> Response:
    run = await _run(cache)
    frame = await run_in_threadpool(scorecard_frame, run)
    return await table_download(frame, name=TABLE_NAME, fmt=fmt)
