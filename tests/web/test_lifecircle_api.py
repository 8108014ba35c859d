"""The staff life-circle API (/api/lifecircle…) and the /lifecircle page skeleton, on the Gaoming demo store.

The read-only tests share one app on a module copy of the demo store (with tokens); a test that edits works on
its own copy. Every figure is compared with geoplan.analysis run directly on the same layers (the session's demo
inputs and its own walking graph, not the server's cache), and with what plain loops compute from the rows:
sums per group, the services under half, the centres inside each outline (shapely, point by point).
"""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from geoplan.analysis.life_circle_scorecard import SCORECARD_COLUMNS, scorecard
from geoplan.analysis.life_circles import LifeCircleResult, life_circle_coverage
from geoplan.catalog import Catalog
from geoplan.io import read_file
from geoplan.services.provenance import DEMO_ACTOR
from geoplan.services.rule_files import load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR, ROOT
from tests.demo_layers import DemoLayers
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens
from tests.web.script_checks import assert_builds_no_html_from_strings
from web.app import create_app
from web.settings import WebSettings

RULES = load_life_circles(ROOT / "layers" / "rules" / "life_circles.yaml")
SERVICES = list(RULES)
TOWNS = ["荷城街道", "杨和镇", "明城镇", "更合镇"]
VIRTUAL = "虚拟单位"
ENDPOINTS = (
    "/api/lifecircle",
    "/api/lifecircle/villages?service=kindergarten",
    "/api/lifecircle/facilities?service=kindergarten",
    "/api/lifecircle/matrix",
    "/api/lifecircle/villages/440608004001",
    "/api/lifecircle/table.csv",
)


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def web_demo(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokens]:
    path = tmp_path_factory.mktemp("lifecircle") / "demo.gpkg"
    return path, demo_store_with_tokens(path, source=demo_store_path)


@pytest.fixture(scope="module")
def shared(web_demo: tuple[Path, Tokens]) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=str(web_demo[0]), layers_dir=LAYERS_DIR))) as client:
        yield client


@pytest.fixture(scope="module")
def staff(web_demo: tuple[Path, Tokens]) -> dict[str, str]:
    return bearer(web_demo[1].staff)


@pytest.fixture(scope="module")
def public(demo_store_path: Path, catalog: Catalog) -> gpd.GeoDataFrame:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        return store.read("public_facilities")
    finally:
        store.close()


@pytest.fixture(scope="module")
def engine(demo: DemoLayers, public: gpd.GeoDataFrame) -> LifeCircleResult:
    """Every service as geoplan.analysis computes it on the demo layers with its own graph."""
    return life_circle_coverage(
        villages=demo.villages,
        layers={"culture_facilities": demo.facilities, "public_facilities": public},
        population=demo.raster,
        graph=demo.graph,
        rules=RULES,
    )


@pytest.fixture(scope="module")
def card(demo: DemoLayers, engine: LifeCircleResult) -> pd.DataFrame:
    return scorecard(demo.villages, engine)


def strict_json(text: str) -> Any:
    """The body parsed, failing on NaN or ±Infinity (which Python's json would otherwise accept)."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in an answer")

    return json.loads(text, parse_constant=refuse)


def walk(value: Any, where: str = "$") -> None:
    """No NaN, inf or 'nan'/'inf' text anywhere in a parsed answer."""
    if isinstance(value, dict):
        for key, item in value.items():
            walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            walk(item, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, str):
        assert value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "none", "<na>"), where


def get_json(client: TestClient, url: str, headers: dict[str, str]) -> Any:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body = strict_json(response.text)
    walk(body)
    return body


def groups_of(villages: gpd.GeoDataFrame) -> list[str]:
    """Each unit's group by hand: its town, or 虚拟单位 for a virtual unit."""
    return [
        VIRTUAL if t == "virtual" else str(town) for t, town in zip(villages["type"], villages["town"], strict=True)
    ]


# --------------------------------------------------------------------------------------------- access


@pytest.mark.parametrize("url", ENDPOINTS)
def test_every_endpoint_needs_a_staff_token(shared: TestClient, url: str) -> None:
    assert shared.get(url).status_code == 401
    assert shared.get(url, headers=bearer("gp_not-a-token")).status_code == 401


def test_planner_and_admin_tokens_are_staff_or_better(shared: TestClient, web_demo: tuple[Path, Tokens]) -> None:
    for token in (web_demo[1].planner, web_demo[1].admin):
        assert shared.get("/api/lifecircle", headers=bearer(token)).status_code == 200


# --------------------------------------------------------------------------------------------- numbers


def test_summary_rules_rollups_and_completeness(
    shared: TestClient, staff: dict[str, str], demo: DemoLayers, engine: LifeCircleResult, card: pd.DataFrame
) -> None:
    body = get_json(shared, "/api/lifecircle", staff)
    assert [s["service"] for s in body["services"]] == SERVICES
    for item in body["services"]:
        rule = RULES[item["service"]]
        assert (item["title_zh"], item["circle"]) == (rule.title_zh, rule.circle)
        assert item["urban"]["radius_m"] == rule.urban.radius_m and item["rural"]["radius_m"] == rule.rural.radius_m
        assert item["urban"]["clause"] == rule.urban.clause and item["rural"]["assumed"] == rule.rural.assumed
        assert item["facilities"] == len(engine.services[item["service"]].facility_ids)
    assert body["searches"] == engine.searches and body["villages"] == 81

    # the rollups: towns, then 虚拟单位, then 全区; each the sum of its villages' whole-people rows
    groups = groups_of(demo.villages)
    order = list(dict.fromkeys(r["group"] for r in body["rollup"]))
    towns = list(dict.fromkeys(g for g in groups if g != VIRTUAL))
    assert sorted(towns) == sorted(TOWNS) and order == [*towns, VIRTUAL, "全区"]
    virtual_names = set(demo.villages.loc[demo.villages["type"] == "virtual", "village_name"])
    assert virtual_names and not virtual_names & set(order)  # a prison is never a town
    for row in body["rollup"]:
        rows = card[card["service"] == row["service"]].reset_index(drop=True)
        keep = np.ones(len(rows), bool) if row["group"] == "全区" else np.array(groups) == row["group"]
        people, covered = int(rows["population"][keep].sum()), int(rows["covered_population"][keep].sum())
        assert (row["population"], row["covered_population"]) == (people, covered), row
        assert row["coverage_pct"] == pytest.approx(100 * covered / people, abs=0.05)
    district = {r["service"]: r for r in body["rollup"] if r["group"] == "全区"}
    for service in SERVICES:  # 全区 counts the virtual units too: the sum of the groups
        parts = [r for r in body["rollup"] if r["service"] == service and r["group"] != "全区"]
        assert district[service]["population"] == sum(r["population"] for r in parts)

    # completeness: per circle, the people in cells every service of that circle covers, counted by hand
    cells = engine.cells
    for row in body["completeness"]:
        names = [n for n, r in RULES.items() if r.circle == row["circle"]]
        every = np.logical_and.reduce([engine.services[n].covered for n in names])
        complete = [
            math.floor(float(cells.people[(cells.village == v) & every].sum()) + 0.5) for v in range(len(groups))
        ]
        people = [math.floor(float(cells.people[cells.village == v].sum()) + 0.5) for v in range(len(groups))]
        chosen = [v for v in range(len(groups)) if row["group"] == "全区" or groups[v] == row["group"]]
        assert chosen and row["complete_population"] == sum(complete[v] for v in chosen), row
        assert row["population"] == sum(people[v] for v in chosen), row
    assert {r["circle"] for r in body["completeness"]} == {r.circle for r in RULES.values()}


def test_villages_of_a_service_equal_the_scorecard(
    shared: TestClient, staff: dict[str, str], demo: DemoLayers, card: pd.DataFrame
) -> None:
    for service in ("kindergarten", "park", "culture"):
        body = get_json(shared, f"/api/lifecircle/villages?service={service}", staff)
        rows = card[card["service"] == service].reset_index(drop=True)
        assert [f["id"] for f in body["features"]] == list(rows["village_code"])
        for feature, (_, row) in zip(body["features"], rows.iterrows(), strict=True):
            props = feature["properties"]
            assert props["population"] == row["population"] and props["covered_population"] == row["covered_population"]
            assert isinstance(props["population"], int) and isinstance(props["covered_population"], int)
            expected = None if pd.isna(row["coverage_pct"]) else float(row["coverage_pct"])
            assert props["coverage_pct"] == expected
            bounds = body["classes"]["upper"]
            cls = None if expected is None else next(i for i, u in enumerate(bounds) if expected <= u)
            assert props["class"] == cls
        # every outline is the village's own
        outlines = demo.villages.set_index("village_code").geometry
        first = body["features"][0]
        assert shape(first["geometry"]).equals_exact(outlines[first["id"]], 1e-6)
        assert body["classes"]["counts"] == [
            sum(1 for f in body["features"] if f["properties"]["class"] == i) for i in range(len(bounds))
        ]


def test_facilities_of_a_service_are_those_the_rule_names(
    shared: TestClient, staff: dict[str, str], public: gpd.GeoDataFrame, demo: DemoLayers
) -> None:
    body = get_json(shared, "/api/lifecircle/facilities?service=primary_school", staff)
    expected = public[public["service"] == "primary_school"]
    assert [f["id"] for f in body["features"]] == list(expected["facility_id"])
    assert [f["properties"]["name"] for f in body["features"]] == list(expected["name"])
    culture = get_json(shared, "/api/lifecircle/facilities?service=culture", staff)
    assert len(culture["features"]) == len(demo.facilities)


def test_an_unknown_service_is_refused_naming_the_valid_ones(shared: TestClient, staff: dict[str, str]) -> None:
    for url in ("/api/lifecircle/villages?service=zoo", "/api/lifecircle/facilities?service=zoo"):
        response = shared.get(url, headers=staff)
        assert response.status_code == 400
        body = response.json()
        assert "zoo" in body["detail"] and all(s in body["detail"] for s in SERVICES)
        assert "幼儿园" in body["detail_zh"] and "公园绿地" in body["detail_zh"]
    assert shared.get("/api/lifecircle/villages", headers=staff).status_code == 422  # no service at all
    assert shared.get("/api/lifecircle/villages?service=" + "x" * 100, headers=staff).status_code == 422


def test_the_matrix_is_the_scorecard_read_across(
    shared: TestClient, staff: dict[str, str], demo: DemoLayers, card: pd.DataFrame
) -> None:
    body = get_json(shared, "/api/lifecircle/matrix", staff)
    assert [s["service"] for s in body["services"]] == SERVICES
    assert len(body["villages"]) == 81
    groups = dict(zip(demo.villages["village_code"], groups_of(demo.villages), strict=True))
    lookup = {(r.village_code, r.service): r for r in card.itertuples()}
    for row in body["villages"]:
        code = row["village_code"]
        assert row["group"] == groups[code]
        assert set(row["coverage"]) == set(SERVICES)
        lacking = []
        for service in SERVICES:
            pct = lookup[(code, service)].coverage_pct
            expected = None if pd.isna(pct) else float(pct)
            assert row["coverage"][service] == expected
            if expected is not None and expected < 50.0:
                lacking.append(service)
        assert sorted(row["missing"]) == sorted(lacking)
        assert row["population"] == lookup[(code, SERVICES[0])].population
    virtual = [r for r in body["villages"] if r["group"] == VIRTUAL]
    assert virtual and all(r["has_centre"] is None for r in virtual)  # no centre is asked of a prison


def test_the_village_card(
    shared: TestClient,
    staff: dict[str, str],
    demo: DemoLayers,
    public: gpd.GeoDataFrame,
    engine: LifeCircleResult,
    card: pd.DataFrame,
) -> None:
    names = {
        **dict(zip(public["facility_id"], public["name"], strict=True)),
        **dict(zip(demo.facilities["facility_id"], demo.facilities["name"], strict=True)),
    }
    centres = demo.facilities[demo.facilities["kind"] == "综合性文化服务中心"]
    seen_centre = seen_no_centre = False
    for i, village in enumerate(demo.villages.itertuples()):
        if i % 4 and village.type != "virtual":  # a quarter of the villages and every virtual unit
            continue
        body = get_json(shared, f"/api/lifecircle/villages/{village.village_code}", staff)
        assert (body["village_name"], body["town"]) == (village.village_name, village.town)
        assert body["group"] == (VIRTUAL if village.type == "virtual" else village.town)
        assert [s["service"] for s in body["services"]] == SERVICES
        for item in body["services"]:
            row = card[(card["village_code"] == village.village_code) & (card["service"] == item["service"])].iloc[0]
            assert (item["population"], item["covered_population"]) == (row["population"], row["covered_population"])
            t = engine.services[item["service"]].table.iloc[i]
            nearest = t["nearest_facility"] if isinstance(t["nearest_facility"], str) else None
            assert item["nearest_facility"] == nearest
            assert item["nearest_facility_name"] == (names[nearest] if nearest else None)
            if item["population"] == 0:
                assert item["minutes_zh"] == "—"
            elif math.isfinite(float(t["mean_minutes"])):
                assert item["minutes_zh"] == f"{float(t['mean_minutes']):.1f} 分钟"
            else:
                assert item["minutes_zh"] == "无路径" and item["mean_minutes"] is None
        low = [
            (s["service"], s["population"] - s["covered_population"])
            for s in body["services"]
            if s["coverage_pct"] is not None and s["coverage_pct"] < 50.0
        ]
        assert sorted(m["service"] for m in body["missing"]) == sorted(s for s, _ in low)
        uncovered = [m["uncovered_population"] for m in body["missing"]]
        assert uncovered == sorted(uncovered, reverse=True)  # the biggest gap first
        assert all(m["title_zh"] == RULES[m["service"]].title_zh for m in body["missing"])
        outline = demo.villages.geometry.iloc[i]
        inside = sorted(
            str(n)
            for n, g in zip(centres["name"], centres.geometry, strict=True)
            if outline.intersects(Point(g.x, g.y))
        )
        centre = body["culture_centre"]
        assert centre["has_centre"] == bool(inside) and centre["centres"] == "、".join(inside)
        seen_centre |= bool(inside)
        seen_no_centre |= not inside and village.type != "virtual"
        assert [c["circle"] for c in body["completeness"]] == sorted({r.circle for r in RULES.values()})
    assert seen_centre and seen_no_centre


def test_an_unknown_village_is_404(shared: TestClient, staff: dict[str, str]) -> None:
    for code in ("000000000000", "x", "440608004001x"):
        response = shared.get(f"/api/lifecircle/villages/{code}", headers=staff)
        assert response.status_code == 404, code
        assert response.json()["detail_zh"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "gpkg"])
def test_the_scorecard_downloads(
    shared: TestClient, staff: dict[str, str], card: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    response = shared.get(f"/api/lifecircle/table.{fmt}", headers=staff)
    assert response.status_code == 200
    assert f"life_circles.{fmt}" in response.headers["content-disposition"]
    if fmt == "csv":
        text = response.content.decode("utf-8-sig")
        assert "nan" not in text.lower() and "inf" not in text.lower()
        table = pd.read_csv(io.StringIO(text), dtype={"village_code": str})
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        table = pd.DataFrame(values[1:], columns=values[0])
    else:
        path = tmp_path / "life.gpkg"
        path.write_bytes(response.content)
        table = read_file(path)
        assert table.crs is not None and table.crs.to_epsg() == 4490
    assert list(table.columns)[: len(SCORECARD_COLUMNS)] == SCORECARD_COLUMNS
    assert len(table) == len(card) == 81 * len(SERVICES)
    assert list(table["village_code"].astype(str)) == list(card["village_code"])
    assert [int(v) for v in table["covered_population"]] == [int(v) for v in card["covered_population"]]


# --------------------------------------------------------------------------------------------- caching


def test_answers_are_revalidated_with_etags(shared: TestClient, staff: dict[str, str]) -> None:
    for url in ENDPOINTS[:-1]:
        first = shared.get(url, headers=staff)
        assert first.status_code == 200 and first.headers["etag"]
        again = shared.get(url, headers={**staff, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        stale = shared.get(url, headers={**staff, "If-None-Match": '"stale"'})
        assert stale.status_code == 200
    park = shared.get("/api/lifecircle/villages?service=park", headers=staff).headers["etag"]
    kindergarten = shared.get("/api/lifecircle/villages?service=kindergarten", headers=staff).headers["etag"]
    assert park != kindergarten


def test_computed_once_and_again_after_an_edit(web_demo: tuple[Path, Tokens], catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "demo.gpkg"
    shutil.copy(web_demo[0], path)
    headers = bearer(web_demo[1].staff)
    with TestClient(create_app(WebSettings(store=str(path), layers_dir=LAYERS_DIR))) as client:
        cache = client.app.state.lifecircle  # type: ignore[attr-defined]
        before = get_json(client, "/api/lifecircle/villages?service=primary_school", headers)
        get_json(client, "/api/lifecircle", headers)
        get_json(client, "/api/lifecircle/matrix", headers)
        assert cache.runs == 1
        # remove every primary school: nobody is covered any more, and the answer says so at once
        store = GeoPackageStore(path, catalog)
        try:
            public = store.read("public_facilities")
            store.write("public_facilities", public[public["service"] != "primary_school"], actor=DEMO_ACTOR)
        finally:
            store.close()
        after = get_json(client, "/api/lifecircle/villages?service=primary_school", headers)
        assert cache.runs == 2
        assert sum(f["properties"]["covered_population"] for f in before["features"]) > 0
        assert all(f["properties"]["covered_population"] == 0 for f in after["features"])
        facilities = get_json(client, "/api/lifecircle/facilities?service=primary_school", headers)
        assert facilities["features"] == []


# --------------------------------------------------------------------------------------------- the page


def test_the_page_is_a_public_skeleton_linked_from_the_nav(shared: TestClient) -> None:
    response = shared.get("/lifecircle")
    assert response.status_code == 200
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    text = response.text
    assert "GeoplanMap.lifecircleMap(" in text and "/static/geoplan-lifecircle.js" in text
    assert "河江社区" not in text  # no data in the page: it comes with a token
    assert '<a href="/lifecircle">' in shared.get("/").text


def test_the_page_script_builds_no_html_from_strings() -> None:
    assert_builds_no_html_from_strings("geoplan-lifecircle.js", leaflet=True)
