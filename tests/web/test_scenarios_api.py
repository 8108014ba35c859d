"""Scenarios over HTTP (/api/scenarios) on a copy of the Gaoming demo: roles and ownership, refusals in Chinese,
a create → draft → diff → adopt round trip checked against the core's own diff and the store, a stale adoption
refused with the feature named, and a discard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.services.rule_files import rules_for
from geoplan.services.scenario_diff import analyse, scenario_diff
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens
from web.app import create_app
from web.settings import WebSettings

STORE_METRES = "EPSG:4547"
NEW_ID = "CF-9101"
NEW_NAME = "方案新建文化站"


@dataclass(frozen=True)
class Api:
    client: TestClient
    path: Path
    tokens: Tokens
    other_planner: str


@pytest.fixture(scope="module")
def api(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One demo copy for the module (the diff's live side is computed once and shared), with a second planner."""
    path = tmp_path_factory.mktemp("scenarios-api") / "demo.gpkg"
    tokens = demo_store_with_tokens(path, source=demo_store_path)
    registry = TokenRegistry(side_table_engine(str(path)))
    try:
        other = registry.create(name="planner-2", role=Role.PLANNER)
    finally:
        registry.close()
    with TestClient(create_app(WebSettings(store=str(path), layers_dir=LAYERS_DIR))) as client:
        yield Api(client, path, tokens, other)


def _create(api: Api, name: str, token: str | None = None) -> None:
    response = api.client.post("/api/scenarios", json={"name": name}, headers=bearer(token or api.tokens.planner))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


def _facility(lon: float, lat: float, *, fid: str = NEW_ID, name: str = NEW_NAME) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"facility_id": fid, "name": name, "kind": "文化站", "capacity": 200},
    }


def _refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["detail"] and body["detail_zh"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail_zh"]), body["detail_zh"]
    return body


def _worst_culture_village(path: Path, catalog: Catalog) -> tuple[str, shapely.Point]:
    """The most populous village with no cultural facility in reach today, and a point on a road inside it (the
    life circles walk the roads: a facility far from any road reaches nobody)."""
    store = GeoPackageStore(path, catalog)
    try:
        card = analyse(store, rules=rules_for(catalog, LAYERS_DIR), layers_dir=LAYERS_DIR).life_circles
        villages = store.read("villages")
        roads = store.read("roads")
    finally:
        store.close()
    culture = card[(card["service"] == "culture") & (card["covered_population"] == 0) & (card["population"] > 0)]
    code = str(culture.sort_values("population", ascending=False)["village_code"].iloc[0])
    village = villages[villages["village_code"].astype(str) == code].geometry.iloc[0]
    inner = roads[roads.intersects(village).to_numpy()]
    centre = village.representative_point()
    nearest = inner.geometry.iloc[int(inner.to_crs(STORE_METRES).distance(_metres(centre)).to_numpy().argmin())]
    return code, nearest.intersection(village).interpolate(0.5, normalized=True)


def _metres(point: shapely.Point) -> shapely.Point:
    return gpd.GeoSeries([point], crs="EPSG:4490").to_crs(STORE_METRES).iloc[0]


# --------------------------------------------------------------------------------------------- roles


def test_roles_and_ownership(api: Api) -> None:
    _create(api, "规划一的方案")
    paths = ["/api/scenarios", "/api/scenarios/规划一的方案", "/api/scenarios/规划一的方案/diff"]
    for path in paths:
        _refused(api.client.get(path), 401)
        _refused(api.client.get(path, headers=bearer(api.tokens.staff)), 403)
    _refused(api.client.post("/api/scenarios", json={"name": "x"}), 401)
    _refused(api.client.post("/api/scenarios", json={"name": "x"}, headers=bearer(api.tokens.staff)), 403)
    _refused(api.client.post("/api/scenarios/规划一的方案/adopt", headers=bearer(api.tokens.staff)), 403)
    # Another planner neither sees it listed nor reaches it: 404 alike for every route.
    other = bearer(api.other_planner)
    assert "规划一的方案" not in [
        s["name"] for s in api.client.get("/api/scenarios", headers=other).json()["scenarios"]
    ]
    for method, path in [
        ("GET", "/api/scenarios/规划一的方案"),
        ("GET", "/api/scenarios/规划一的方案/diff"),
        ("GET", "/api/scenarios/规划一的方案/layers/culture_facilities"),
        ("POST", "/api/scenarios/规划一的方案/adopt"),
        ("DELETE", "/api/scenarios/规划一的方案"),
        ("DELETE", "/api/scenarios/规划一的方案/features/culture_facilities/CF-0001"),
    ]:
        _refused(api.client.request(method, path, headers=other), 404)
    _refused(
        api.client.post(
            "/api/scenarios/规划一的方案/features/culture_facilities", json=_facility(112.7, 22.8), headers=other
        ),
        404,
    )
    # Its author and an admin do see it.
    mine = api.client.get("/api/scenarios", headers=bearer(api.tokens.planner)).json()["scenarios"]
    assert [s["author"] for s in mine if s["name"] == "规划一的方案"] == ["planner:planner-1"]
    every = api.client.get("/api/scenarios", headers=bearer(api.tokens.admin)).json()["scenarios"]
    assert "规划一的方案" in [s["name"] for s in every]
    assert api.client.get("/api/scenarios/规划一的方案", headers=bearer(api.tokens.admin)).status_code == 200


# --------------------------------------------------------------------------------------------- refusals


def test_bad_input_is_refused_in_chinese(api: Api) -> None:
    planner = bearer(api.tokens.planner)
    _refused(api.client.post("/api/scenarios", json={"name": ""}, headers=planner), 422)
    _refused(api.client.post("/api/scenarios", json={"name": "a\nb"}, headers=planner), 400)
    _refused(api.client.post("/api/scenarios", json={"nom": "x"}, headers=planner), 422)
    _refused(api.client.post("/api/scenarios", content=b"{not json", headers=planner), 400)
    _refused(api.client.get("/api/scenarios/没有这个方案", headers=planner), 404)
    _create(api, "校验方案")
    base = "/api/scenarios/校验方案"
    _refused(api.client.post(f"{base}/features/no_such_layer", json=_facility(112.7, 22.8), headers=planner), 404)
    _refused(api.client.post(f"{base}/features/population", json=_facility(112.7, 22.8), headers=planner), 400)
    _refused(api.client.post(f"{base}/features/culture_facilities", json={"type": "Point"}, headers=planner), 400)
    bad_kind = _facility(112.7, 22.8)
    bad_kind["properties"]["kind"] = "不存在的类型"
    body = _refused(api.client.post(f"{base}/features/culture_facilities", json=bad_kind, headers=planner), 422)
    assert body["problems"]
    unknown = _facility(112.7, 22.8)
    unknown["properties"]["capacty"] = 10  # misspelt: refused, as the live edit API does
    body = _refused(api.client.post(f"{base}/features/culture_facilities", json=unknown, headers=planner), 422)
    assert "capacty" in body["detail"]
    hidden = _facility(112.7, 22.8, fid="CF-9\u200b1")  # an invisible character in the id
    _refused(api.client.post(f"{base}/features/culture_facilities", json=hidden, headers=planner), 422)
    outside = _facility(100.0, 30.0)  # far outside Gaoming
    _refused(api.client.post(f"{base}/features/culture_facilities", json=outside, headers=planner), 422)
    taken = _facility(112.7, 22.8, fid="CF-0001")  # a live id, without replace
    _refused(api.client.post(f"{base}/features/culture_facilities", json=taken, headers=planner), 422)
    _refused(api.client.delete(f"{base}/features/culture_facilities/CF-NOPE", headers=planner), 404)
    _refused(api.client.post(f"{base}/adopt", headers=planner), 400)  # nothing to adopt
    _refused(api.client.get(f"{base}/diff?format=pdf", headers=planner), 422)
    # Nothing of the refused drafts was kept.
    assert api.client.get(base, headers=planner).json()["edit_count"] == 0


# --------------------------------------------------------------------------------------------- round trip


def test_round_trip_create_draft_diff_adopt(api: Api, catalog: Catalog) -> None:
    planner = bearer(api.tokens.planner)
    code, inside = _worst_culture_village(api.path, catalog)
    _create(api, "文化站方案")
    base = "/api/scenarios/文化站方案"
    added = api.client.post(f"{base}/features/culture_facilities", json=_facility(inside.x, inside.y), headers=planner)
    assert added.status_code == 200, added.text
    assert added.json()["ops"]["create"] == 1 and added.json()["ids"] == [NEW_ID]
    deleted = api.client.delete(f"{base}/features/culture_facilities/CF-0002", headers=planner)
    assert deleted.status_code == 200 and deleted.json()["ops"]["delete"] == 1
    details = api.client.get(base, headers=planner).json()
    assert details["summary"] == [{"layer": "culture_facilities", "create": 1, "replace": 0, "delete": 1}]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00", details["created_at"])  # Beijing time
    assert {(e["feature_id"], e["op_zh"]) for e in details["edits"]} == {(NEW_ID, "新增"), ("CF-0002", "删除")}

    # The layer as the scenario sees it: the new facility in, the deleted one out, each edit marked.
    layer = api.client.get(f"{base}/layers/culture_facilities", headers=planner).json()
    ids = {f["id"]: f for f in layer["features"]}
    assert NEW_ID in ids and "CF-0002" not in ids and ids[NEW_ID]["properties"]["scenario_op"] == "create"
    assert ids[NEW_ID]["geometry"]["coordinates"] == pytest.approx([inside.x, inside.y])
    live = api.client.get("/ogc/collections/culture_facilities/items?limit=1000", headers=planner).json()
    assert NEW_ID not in {f["id"] for f in live["features"]}  # not live yet
    assert len(layer["features"]) == len(live["features"])  # one in, one out

    # The diff equals the core's own diff on the same store.
    response = api.client.get(f"{base}/diff", headers=planner)
    assert response.status_code == 200, response.text
    diff = response.json()
    store = GeoPackageStore(api.path, catalog)
    try:
        expected = scenario_diff(store, "文化站方案", layers_dir=LAYERS_DIR)
    finally:
        store.close()
    changed = expected.coverage_changed()
    got = pd.DataFrame(diff["coverage"])
    assert len(got) == len(changed) == diff["counts"]["coverage_changed"] > 0
    keys = ["village_code", "service"]
    pairs = got.sort_values(keys).reset_index(drop=True)
    want = changed.sort_values(keys).reset_index(drop=True)
    assert list(pairs["village_code"].astype(str)) == list(want["village_code"].astype(str))
    for column in ("covered_live", "covered_scenario"):
        assert [int(v) for v in pairs[column]] == [int(v) for v in want[column]]
    assert [float(v) for v in pairs["delta_pp"]] == [float(v) for v in want["delta_pp"]]
    row = got[(got["village_code"].astype(str) == code) & (got["service"] == "culture")]
    assert len(row) == 1 and row["delta_pp"].iloc[0] > 0 and row["service_title"].iloc[0] == "文化设施"
    patch_ids = {f["id"]: f["properties"]["change"] for f in diff["patches"]["features"]}
    assert patch_ids == dict(zip(expected.patches["patch_id"], expected.patches["change"], strict=True))
    assert {r["indicator"] for r in diff["indicators"]} == set(expected.indicators_changed()["indicator"])
    assert all(r["indicator_title"] for r in diff["indicators"])
    # A second request is answered from the cache (no side recomputed) and revalidates by its ETag.
    cache = api.client.app.state.scenario_diffs  # type: ignore[attr-defined]
    before = cache.computations
    again = api.client.get(f"{base}/diff", headers={**planner, "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and cache.computations == before

    book = api.client.get(f"{base}/diff.xlsx", headers=planner)
    assert book.status_code == 200
    sheets = pd.read_excel(BytesIO(book.content), sheet_name=None)
    assert list(sheets) == ["冲突图斑变化", "生活圈覆盖变化", "指标变化"]
    assert len(sheets["生活圈覆盖变化"]) == len(expected.coverage)
    assert api.client.get(f"{base}/diff?format=xlsx", headers=planner).content[:2] == b"PK"

    # Adopt: the live layer has the new facility and not the deleted one; the scenario is gone.
    adopted = api.client.post(f"{base}/adopt", headers=planner)
    assert adopted.status_code == 200, adopted.text
    assert adopted.json()["written"] == {"culture_facilities": 2}
    store = GeoPackageStore(api.path, catalog)
    try:
        facilities = store.read("culture_facilities")
    finally:
        store.close()
    live_ids = set(facilities["facility_id"].astype(str))
    assert NEW_ID in live_ids and "CF-0002" not in live_ids
    assert facilities.loc[facilities["facility_id"] == NEW_ID, "name"].iloc[0] == NEW_NAME
    _refused(api.client.get(base, headers=planner), 404)


def test_stale_adoption_is_refused_naming_the_feature(api: Api) -> None:
    planner = bearer(api.tokens.planner)
    _create(api, "过时方案")
    base = "/api/scenarios/过时方案"
    live = api.client.get("/ogc/collections/culture_facilities/items/CF-0003", headers=planner).json()
    changed = {"type": "Feature", "geometry": live["geometry"], "properties": {**live["properties"], "capacity": 999}}
    drafted = api.client.post(f"{base}/features/culture_facilities?replace=true", json=changed, headers=planner)
    assert drafted.status_code == 200 and drafted.json()["ops"]["replace"] == 1
    # Someone changes CF-0003 live meanwhile.
    live_edit = {**changed, "properties": {**live["properties"], "name": "现状改名的图书馆"}}
    put = api.client.put("/api/layers/culture_facilities/features/CF-0003", json=live_edit, headers=planner)
    assert put.status_code == 200, put.text
    body = _refused(api.client.post(f"{base}/adopt", headers=planner), 409)
    assert body["features"] == [
        {"layer": "culture_facilities", "feature_id": "CF-0003", "reason": "changed", "reason_zh": "现状中已被修改"}
    ]
    assert "CF-0003" in body["detail"] and "CF-0003" in body["detail_zh"]
    # Nothing was adopted: the live feature is as the other edit left it, and the scenario is still there.
    after = api.client.get("/ogc/collections/culture_facilities/items/CF-0003", headers=planner).json()
    assert after["properties"]["name"] == "现状改名的图书馆" and after["properties"]["capacity"] != 999
    assert api.client.get(base, headers=planner).json()["edit_count"] == 1


def test_discard_drops_the_scenario_and_leaves_live_alone(api: Api) -> None:
    planner = bearer(api.tokens.planner)
    _create(api, "放弃方案")
    base = "/api/scenarios/放弃方案"
    assert api.client.delete(f"{base}/features/culture_facilities/CF-0004", headers=planner).status_code == 200
    assert api.client.delete(base, headers=planner).json() == {"discarded": "放弃方案"}
    _refused(api.client.get(base, headers=planner), 404)
    live = api.client.get("/ogc/collections/culture_facilities/items/CF-0004", headers=planner)
    assert live.status_code == 200
    _create(api, "重名方案")
    _refused(api.client.post("/api/scenarios", json={"name": "重名方案"}, headers=planner), 400)  # names are unique
