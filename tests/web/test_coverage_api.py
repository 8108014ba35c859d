"""The staff coverage API (/api/coverage…) and the /coverage page skeleton, on the Gaoming demo store.

The read-only tests share one app on a module copy of the session's demo store (with tokens); a test that edits
works on its own copy. Every number is compared with geoplan.analysis run directly on the same store (its own
walking graph, the default rules built here, not read from the rules file), and with facts the engine does not
compute: the raster total, village outlines, facility points, and what a new facility actually adds.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapclassify
import numpy as np
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape

from geoplan.analysis.coverage import (
    COVERAGE_COLUMNS,
    CoverageResult,
    CoverageRules,
    CoverageSettings,
    compute_coverage,
    town_rollup,
)
from geoplan.analysis.coverage_tables import VILLAGE_OUTPUT_COLUMNS, whole
from geoplan.analysis.network import build_walk_graph
from geoplan.analysis.siting import suggest_sites
from geoplan.catalog import Catalog
from geoplan.cli import main as cli
from geoplan.crs import METRIC_CRS
from geoplan.io import read_file
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens
from tests.web.script_checks import assert_builds_no_html_from_strings
from web.app import create_app
from web.coverage_cache import CoverageCache, CoverageQuery
from web.settings import WebSettings

DEFAULT = CoverageRules()  # the rules file's values, written out independently of it
LIBRARY = "自助图书馆"
ENDPOINTS = (
    "/api/coverage",
    "/api/coverage/villages",
    "/api/coverage/service-areas",
    "/api/coverage/gaps",
    "/api/coverage/suggested-sites?k=2",
    "/api/coverage/table.csv",
)


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokens]:
    """A module copy of the demo store with a token of each role (tokens are writes: never in the shared file)."""
    path = tmp_path_factory.mktemp("coverage") / "demo.gpkg"
    return path, demo_store_with_tokens(path, source=demo_store_path)


@contextmanager
def app_on(path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=str(path), layers_dir=LAYERS_DIR))) as client:
        yield client


@pytest.fixture(scope="module")
def shared(demo: tuple[Path, Tokens]) -> Iterator[TestClient]:
    """One app on the module copy, for the read-only tests (its coverage cache stays warm)."""
    with app_on(demo[0]) as client:
        yield client


@pytest.fixture(scope="module")
def staff(demo: tuple[Path, Tokens]) -> dict[str, str]:
    return bearer(demo[1].staff)


@pytest.fixture
def fresh(demo: tuple[Path, Tokens], tmp_path: Path) -> Path:
    """A private copy (tokens included) for a test that edits."""
    copy = tmp_path / "demo.gpkg"
    shutil.copy(demo[0], copy)
    return copy


def direct(
    path: Path, catalog: Catalog, rules: CoverageRules = DEFAULT, kinds: list[str] | None = None
) -> CoverageResult:
    """Coverage as geoplan.analysis computes it on the store, with its own graph (not the server's cache)."""
    store = GeoPackageStore(path, catalog)
    try:
        network = "network" in (rules.urban.mode, rules.rural.mode)
        return compute_coverage(
            villages=store.read("villages"),
            facilities=store.read("culture_facilities"),
            population=store.read_raster("population"),
            graph=build_walk_graph(roads=store.read("roads")) if network else None,
            rules=rules,
            kinds=kinds,
        )
    finally:
        store.close()


@pytest.fixture(scope="module")
def engine(demo: tuple[Path, Tokens], catalog: Catalog) -> CoverageResult:
    return direct(demo[0], catalog)


@pytest.fixture(scope="module")
def layers(demo: tuple[Path, Tokens], catalog: Catalog) -> dict[str, gpd.GeoDataFrame]:
    store = GeoPackageStore(demo[0], catalog)
    try:
        return {name: store.read(name) for name in ("villages", "culture_facilities")}
    finally:
        store.close()


def number(value: Any) -> float:
    """The API's null (NaN or inf in the engine) as NaN, so rows compare with the engine's table."""
    return math.nan if value is None else float(value)


def assert_table_equals(rows: list[dict[str, Any]], table: pd.DataFrame) -> None:
    assert [r["village_code"] for r in rows] == list(table["village_code"])
    for row, (_, expected) in zip(rows, table.iterrows(), strict=True):
        words = {"no_route_population", "no_route_pct", "no_route_zh", "group", "type_zh"}
        assert set(row) == {*COVERAGE_COLUMNS, "nearest_facility_name", *words}
        no_route = float(expected["population"]) - float(expected["routed_population"])
        assert row["no_route_population"] == pytest.approx(max(no_route, 0.0), abs=1e-6)
        assert (row["no_route_zh"] != "") == (whole(no_route) > 0)
        assert row["type_zh"] in ("社区", "村", "虚拟单位")
        assert row["group"] == ("虚拟单位" if expected["type"] == "virtual" else expected["town"])
        for column in ("village_name", "town", "type", "nearest_facility"):
            want = None if pd.isna(expected[column]) else expected[column]  # a village nobody reaches: None
            assert row[column] == want, (row["village_code"], column)
        for column in ("population", "covered_population", "coverage_pct", "mean_minutes", "routed_population"):
            want = float(expected[column])
            assert number(row[column]) == pytest.approx(want, rel=1e-12, abs=1e-9, nan_ok=True), column
        p90 = float(expected["p90_minutes"])  # inf (over 10 % without a route) is null in JSON
        assert number(row["p90_minutes"]) == pytest.approx(p90 if math.isfinite(p90) else math.nan, nan_ok=True)


def geojson(client: TestClient, url: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    body: dict[str, Any] = response.json()
    return body


# --------------------------------------------------------------------------------------------- access


def test_every_coverage_endpoint_needs_a_staff_token(shared: TestClient, demo: tuple[Path, Tokens]) -> None:
    tokens = demo[1]
    for url in ENDPOINTS:
        assert shared.get(url).status_code == 401, url
        assert shared.get(url, headers=bearer("gp_not-a-token")).status_code == 401, url
        for token in (tokens.staff, tokens.planner, tokens.admin):
            assert shared.get(url, headers=bearer(token)).status_code == 200, url
    # The token is checked before any option: no option error leaks to the public.
    assert shared.get("/api/coverage", params={"minutes": "-1", "kinds": "x"}).status_code == 401
    assert shared.get("/api/coverage/table.shp").status_code == 401


def test_openapi_lists_the_coverage_routes(shared: TestClient) -> None:
    paths = shared.get("/openapi.json").json()["paths"]
    ours = {p: ops for p, ops in paths.items() if p.startswith("/api/coverage")}
    assert set(ours) == {
        "/api/coverage",
        "/api/coverage/villages",
        "/api/coverage/service-areas",
        "/api/coverage/gaps",
        "/api/coverage/suggested-sites",
        "/api/coverage/table.{fmt}",
    }
    assert all(ops["get"]["tags"] == ["coverage"] for ops in ours.values())


def test_without_a_population_raster_the_answer_says_so(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/api/coverage", headers=bearer(tokens.staff))  # the small sample store
    assert response.status_code == 404 and "population" in response.json()["detail"]


# --------------------------------------------------------------------------------------------- numbers


def test_table_and_totals_equal_the_engine(
    shared: TestClient,
    staff: dict[str, str],
    engine: CoverageResult,
    demo: tuple[Path, Tokens],
    catalog: Catalog,
    layers: dict[str, gpd.GeoDataFrame],
) -> None:
    body = shared.get("/api/coverage", headers=staff).json()
    assert body["rules"]["urban"] == {**asdict(DEFAULT.urban), "threshold_m": 750.0}
    assert body["rules"]["rural"] == body["rules"]["urban"] and body["kinds"] is None
    assert_table_equals(body["villages"], engine.table)
    # The nearest facility by name too (the pages show names), as the facilities layer names it.
    names = layers["culture_facilities"].set_index("facility_id")["name"]
    with_one = [row for row in body["villages"] if row["nearest_facility"] is not None]
    assert len(with_one) > 50
    for row in body["villages"]:
        want = None if row["nearest_facility"] is None else names[row["nearest_facility"]]
        assert row["nearest_facility_name"] == want, row["village_code"]
    villages = geojson(shared, "/api/coverage/villages", staff)["features"]
    assert {f["id"]: f["properties"]["nearest_facility_name"] for f in villages} == {
        row["village_code"]: row["nearest_facility_name"] for row in body["villages"]
    }
    towns = town_rollup(engine.table)
    assert [t["town"] for t in body["towns"]] == list(towns["town"])
    # the virtual units (prisons, farms) are one group after the towns, never a town each
    assert body["towns"][-1]["town"] == body["virtual_group"] == "虚拟单位"
    assert not {"高明监狱", "佛山监狱", "云勇林场", "对川茶场"} & {t["town"] for t in body["towns"]}
    virtual = engine.table[engine.table["type"] == "virtual"]
    assert body["towns"][-1]["population"] == pytest.approx(virtual["population"].sum(), rel=1e-12)
    assert body["district"]["no_route_zh"].startswith("无路径")
    for row, (_, expected) in zip(body["towns"], towns.iterrows(), strict=True):
        assert row["villages"] == expected["villages"]
        assert row["covered_population"] == pytest.approx(expected["covered_population"], rel=1e-12)
    # Facts from outside the engine: the villages share out the whole raster; the totals add up the table.
    store = GeoPackageStore(demo[0], catalog)
    try:
        raster_total = store.read_raster("population").valid_sum()
        n_facilities = store.count("culture_facilities")
    finally:
        store.close()
    district = body["district"]
    assert district["population"] + body["unassigned_population"] == pytest.approx(raster_total, rel=1e-9)
    assert district["covered_population"] == pytest.approx(sum(r["covered_population"] for r in body["villages"]))
    assert district["coverage_pct"] == pytest.approx(100 * district["covered_population"] / district["population"])
    assert 0 < district["coverage_pct"] < 100
    assert body["below"] == {"pct": 50.0, "villages": int((engine.table["coverage_pct"] < 50).sum())}
    assert body["facilities_counted"] == n_facilities
    assert body["facilities_off_network"] == engine.facilities_off_network
    assert body["off_network_population"] == pytest.approx(engine.table["off_network_population"].sum())
    assert body["synthetic"] is True
    assert set(body["data"]) == {"villages", "culture_facilities", "roads", "population"}
    other = shared.get("/api/coverage", params={"below": 30}, headers=staff).json()["below"]
    assert other == {"pct": 30.0, "villages": int((engine.table["coverage_pct"] < 30).sum())}


def test_options_are_the_engines_options(
    shared: TestClient, staff: dict[str, str], demo: tuple[Path, Tokens], catalog: Catalog, layers: dict[str, Any]
) -> None:
    five_minutes_straight = CoverageSettings(minutes=5, speed_kmh=4.5, access_m=200, mode="euclidean")
    rules = CoverageRules(urban=five_minutes_straight, rural=five_minutes_straight)
    expected = direct(demo[0], catalog, rules, kinds=[LIBRARY])
    body = shared.get(
        "/api/coverage", params={"mode": "euclidean", "minutes": 5, "kinds": LIBRARY}, headers=staff
    ).json()
    assert body["kinds"] == [LIBRARY] and body["rules"]["urban"]["mode"] == "euclidean"
    assert body["rules"]["urban"]["threshold_m"] == pytest.approx(375.0)
    assert body["facilities_counted"] == int((layers["culture_facilities"]["kind"] == LIBRARY).sum()) > 0
    assert_table_equals(body["villages"], expected.table)
    walk = CoverageSettings(minutes=10, speed_kmh=6, access_m=100)
    expected = direct(demo[0], catalog, CoverageRules(urban=walk, rural=walk))
    body = shared.get("/api/coverage", params={"speed_kmh": 6, "access_m": 100}, headers=staff).json()
    assert_table_equals(body["villages"], expected.table)


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"minutes": "0"}, "minutes"),
        ({"minutes": "-3"}, "minutes"),
        ({"minutes": "ten"}, "minutes"),
        ({"minutes": "nan"}, "minutes"),
        ({"minutes": "61"}, "minutes"),
        ({"speed_kmh": "0"}, "speed_kmh"),
        ({"access_m": "-1"}, "access_m"),
        ({"mode": "bicycle"}, "mode"),
        ({"below": "101"}, "below"),
    ],
)
def test_malformed_options_answer_422(
    shared: TestClient, staff: dict[str, str], params: dict[str, str], where: str
) -> None:
    response = shared.get("/api/coverage", params=params, headers=staff)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", where]


def test_meaningless_options_answer_400_with_the_reason(shared: TestClient, staff: dict[str, str]) -> None:
    unknown = shared.get("/api/coverage", params={"kinds": f"{LIBRARY},电影院"}, headers=staff)
    assert unknown.status_code == 400
    assert "电影院" in unknown.json()["detail"] and LIBRARY in unknown.json()["detail"]  # names the valid kinds
    empty = shared.get("/api/coverage/villages", params={"kinds": " , "}, headers=staff)
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    far = shared.get("/api/coverage/suggested-sites", params={"minutes": 30, "speed_kmh": 6}, headers=staff)
    assert far.status_code == 400 and "3,000 m" in far.json()["detail"]
    for k in ("0", "51", "two"):
        assert shared.get("/api/coverage/suggested-sites", params={"k": k}, headers=staff).status_code == 422
    assert shared.get("/api/coverage/table.shp", headers=staff).status_code == 422


# --------------------------------------------------------------------------------------------- layers


@pytest.mark.filterwarnings("ignore:Numba not installed")  # mapclassify's pure-Python path: fine for 81 values
def test_villages_carry_coverage_and_mapclassify_classes(
    shared: TestClient, staff: dict[str, str], engine: CoverageResult, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    body = geojson(shared, "/api/coverage/villages", staff)
    features = body["features"]
    assert [f["id"] for f in features] == list(engine.table["village_code"])
    pct = engine.table["coverage_pct"].to_numpy(dtype=float)
    finite = np.isfinite(pct)
    reference = mapclassify.FisherJenks(pct[finite], k=5)
    classes = body["classes"]
    assert classes["scheme"] == "FisherJenks" and classes["k"] == 5 == len(classes["colors"])
    assert classes["upper"] == pytest.approx(list(reference.bins))
    assert classes["lower"][0] == pytest.approx(pct[finite].min())
    assert classes["lower"][1:] == pytest.approx(classes["upper"][:-1])
    assert classes["counts"] == list(np.bincount(reference.yb, minlength=5))
    outlines = layers["villages"].set_index("village_code").geometry
    for feature, value in zip(features, pct, strict=True):
        props = feature["properties"]
        assert number(props["coverage_pct"]) == pytest.approx(value, nan_ok=True)
        if math.isfinite(value):  # the first class whose upper bound holds the value
            assert props["class"] == int(np.searchsorted(classes["upper"], value, side="left"))
        else:
            assert props["class"] is None
        # lon/lat (EPSG:4490) outlines: the store's own
        assert shape(feature["geometry"]).equals_exact(outlines[feature["id"]], tolerance=1e-9)


def test_service_areas_hold_their_facilities(
    shared: TestClient, staff: dict[str, str], layers: dict[str, gpd.GeoDataFrame]
) -> None:
    body = geojson(shared, "/api/coverage/service-areas", staff)
    facilities = layers["culture_facilities"].set_index("facility_id")
    drawn = {f["properties"]["facility_id"]: f for f in body["features"]}
    assert set(drawn) == set(facilities.index) - set(body["facilities_off_network"])
    bound = math.pi * (750 + 50) ** 2 * 1.002  # the reach plus the street offset, circumscribing 64-gons
    for facility_id, feature in drawn.items():
        props = feature["properties"]
        assert props["rule"] == "all" and props["reach_m"] == 750.0 and props["off_network"] is False
        assert 0 < props["area_m2"] <= bound
        area = shape(feature["geometry"])
        assert area.buffer(1e-6).contains(facilities.geometry[facility_id]), facility_id  # lon/lat, around it
    only = geojson(shared, "/api/coverage/service-areas", staff, kinds=LIBRARY, mode="euclidean")
    libraries = facilities.index[facilities["kind"] == LIBRARY]
    assert sorted(f["properties"]["facility_id"] for f in only["features"]) == sorted(libraries)
    for feature in only["features"]:  # a circle of 750 m: its area, measured here in metres
        metric = gpd.GeoSeries([shape(feature["geometry"])], crs="EPSG:4490").to_crs(METRIC_CRS)
        assert metric.area.iloc[0] == pytest.approx(math.pi * 750**2, rel=0.01)


def test_gaps_hold_the_uncovered_people(
    shared: TestClient, staff: dict[str, str], engine: CoverageResult, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    body = geojson(shared, "/api/coverage/gaps", staff)
    table = engine.table.set_index("village_code")
    missing = table["population"] - table["covered_population"]
    gaps = {f["id"]: f for f in body["features"]}
    assert set(gaps) == set(missing.index[missing > 1e-9])
    outlines = gpd.GeoSeries(layers["villages"].geometry.to_numpy(), index=layers["villages"]["village_code"])
    metric = outlines.set_crs("EPSG:4490").to_crs(METRIC_CRS)
    for code, feature in gaps.items():
        assert feature["properties"]["uncovered_population"] == pytest.approx(missing[code], rel=1e-9, abs=1e-6)
        gap = gpd.GeoSeries([shape(feature["geometry"])], crs="EPSG:4490").to_crs(METRIC_CRS).iloc[0]
        outside = gap.difference(metric[code].buffer(2.5)).area  # simplified to 2 m for drawing
        assert outside <= 1e-6 * gap.area + 1.0, code
    assert body["uncovered_population"] == pytest.approx(float(missing.sum()), rel=1e-9)


def test_suggested_sites_and_what_the_first_one_really_adds(
    shared: TestClient,
    staff: dict[str, str],
    engine: CoverageResult,
    demo: tuple[Path, Tokens],
    catalog: Catalog,
    layers: dict[str, gpd.GeoDataFrame],
) -> None:
    body = geojson(shared, "/api/coverage/suggested-sites", staff, k=3)
    store = GeoPackageStore(demo[0], catalog)
    try:
        graph = build_walk_graph(roads=store.read("roads"))
    finally:
        store.close()
    expected = suggest_sites(result=engine, rules=DEFAULT, k=3, graph=graph)
    sites = body["features"]
    assert [f["id"] for f in sites] == list(expected["site_id"])
    gains = [f["properties"]["gain_population"] for f in sites]
    assert [f["properties"]["rank"] for f in sites] == [1, 2, 3]
    assert gains == pytest.approx(list(expected["gain_population"])) and gains == sorted(gains, reverse=True)
    population = float(engine.table["population"].sum())
    covered = float(engine.table["covered_population"].sum())
    assert body["baseline_covered_population"] == pytest.approx(covered)
    assert [f["properties"]["cumulative_covered_population"] for f in sites] == pytest.approx(
        list(covered + np.cumsum(gains))
    )
    assert sites[-1]["properties"]["cumulative_coverage_pct"] == pytest.approx(
        100 * (covered + sum(gains)) / population
    )
    villages = layers["villages"].set_index("village_code")
    for feature in sites:  # the village each site is reported in holds it
        props = feature["properties"]
        assert villages.geometry[props["village_code"]].intersects(shape(feature["geometry"]))
        assert props["village_name"] == villages.loc[props["village_code"], "village_name"]
    # In Euclidean mode the candidates are still the network nodes.
    straight = CoverageSettings(mode="euclidean")
    euclidean = CoverageRules(urban=straight, rural=straight)
    picked = suggest_sites(result=direct(demo[0], catalog, euclidean), rules=euclidean, k=2, graph=graph)
    answer = geojson(shared, "/api/coverage/suggested-sites", staff, k=2, mode="euclidean")
    assert [f["id"] for f in answer["features"]] == list(picked["site_id"])
    # A facility really standing at site 1 adds exactly its gain (the engine, not the greedy, says so).
    new = layers["culture_facilities"].iloc[[0]].copy()
    new["facility_id"] = "SITE-1"
    new.geometry = [shape(sites[0]["geometry"])]
    with_site = gpd.GeoDataFrame(pd.concat([layers["culture_facilities"], new], ignore_index=True), crs=new.crs)
    store = GeoPackageStore(demo[0], catalog)
    try:
        result = compute_coverage(
            villages=layers["villages"],
            facilities=with_site,
            population=store.read_raster("population"),
            graph=graph,
            rules=DEFAULT,
        )
    finally:
        store.close()
    assert float(result.table["covered_population"].sum()) == pytest.approx(covered + gains[0], rel=1e-9)


# --------------------------------------------------------------------------------------------- cache and files


def test_etags_and_the_cache(shared: TestClient, staff: dict[str, str]) -> None:
    cache: CoverageCache = shared.app.state.coverage  # type: ignore[attr-defined]
    first = shared.get("/api/coverage", headers=staff)
    runs = cache.coverage_runs
    etag = first.headers["etag"]
    assert first.headers["vary"] == "Authorization" and first.headers["cache-control"] == "no-cache"
    again = shared.get("/api/coverage", headers={**staff, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    for url in ENDPOINTS[1:-1]:  # every layer of the same options comes from the same run
        response = shared.get(url, headers=staff)
        assert response.status_code == 200 and response.headers["etag"] != etag
        revalidated = shared.get(url, headers={**staff, "If-None-Match": response.headers["etag"]})
        assert revalidated.status_code == 304
    assert shared.get("/api/coverage/table.csv", headers=staff).status_code == 200  # a file, written afresh
    assert cache.coverage_runs == runs
    other = shared.get("/api/coverage", params={"minutes": 7}, headers=staff)
    assert other.headers["etag"] != etag and cache.coverage_runs == runs + 1


def test_concurrent_requests_compute_once(demo: tuple[Path, Tokens], catalog: Catalog) -> None:
    store = GeoPackageStore(demo[0], catalog)
    cache = CoverageCache(store, LAYERS_DIR)
    query = CoverageQuery(rules=cache.base_rules())
    results: list[Any] = []
    try:
        threads = [threading.Thread(target=lambda: results.append(cache.run(query))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert cache.coverage_runs == 1
        assert len(results) == 6 and all(r is results[0] for r in results)
        assert cache.run(query) is results[0] and cache.coverage_runs == 1
        assert query.rules == DEFAULT  # the rules file holds the defaults
    finally:
        store.close()


@pytest.fixture(scope="module")
def five_minutes(demo: tuple[Path, Tokens], catalog: Catalog) -> pd.DataFrame:
    five = CoverageSettings(minutes=5)
    return direct(demo[0], catalog, CoverageRules(urban=five, rural=five)).table.set_index("village_code")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "gpkg"])
def test_downloads(
    shared: TestClient, staff: dict[str, str], five_minutes: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    expected = five_minutes
    response = shared.get(f"/api/coverage/table.{fmt}", params={"minutes": 5}, headers=staff)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="village_coverage.{fmt}"'
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        header = list(rows[0])
        assert header[: len(VILLAGE_OUTPUT_COLUMNS)] == VILLAGE_OUTPUT_COLUMNS and "centroid_lon" in header
        padded = [list(r) + [None] * (len(header) - len(r)) for r in rows[1:]]  # empty trailing cells are left out
        table = pd.DataFrame(padded, columns=header).set_index("village_code")
    else:
        path = tmp_path / f"table.{fmt}"
        path.write_bytes(response.content)
        frame = read_file(path, crs="EPSG:4490" if fmt == "csv" else None)  # the project's reader (CSV: WKT)
        assert frame.crs.to_epsg() == 4490 and frame.geometry.notna().all()
        table = pd.DataFrame(frame.drop(columns="geometry")).set_index("village_code")
    assert sorted(table.index.astype(str)) == sorted(expected.index)
    got = table["covered_population"].astype(int).reindex(expected.index)
    assert list(got) == [whole(v) for v in expected["covered_population"]]  # whole people, half up
    assert set(table["type"]) <= {"社区", "村", "虚拟单位"}
    assert not np.isinf(pd.to_numeric(table["p90_minutes"], errors="coerce").to_numpy(dtype=float)).any()


# --------------------------------------------------------------------------------------------- edits


def post_facility(client: TestClient, headers: dict[str, str], facility_id: str, point: dict[str, Any]) -> None:
    feature = {
        "type": "Feature",
        "geometry": point,
        "properties": {"facility_id": facility_id, "name": "测试文化站", "kind": "文化站", "capacity": 300},
    }
    response = client.post("/api/layers/culture_facilities/features", json=feature, headers=headers)
    assert response.status_code == 201, response.text


def test_adding_and_moving_a_facility_change_the_next_answer(
    fresh: Path, demo: tuple[Path, Tokens], catalog: Catalog, tmp_path: Path
) -> None:
    staff = bearer(demo[1].staff)
    with app_on(fresh) as client:
        before = client.get("/api/coverage", headers=staff)
        sites = geojson(client, "/api/coverage/suggested-sites", staff, k=2)["features"]
        first, second = sites
        gain = first["properties"]["gain_population"]
        landing = first["properties"]["village_code"]
        old = {r["village_code"]: r for r in before.json()["villages"]}

        # Added through the edit API, where the new-site search said it would help most.
        post_facility(client, staff, "CF-TEST-1", first["geometry"])
        after = client.get("/api/coverage", headers={**staff, "If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
        body = after.json()
        assert body["facilities_counted"] == before.json()["facilities_counted"] + 1
        covered = before.json()["district"]["covered_population"]
        assert body["district"]["covered_population"] == pytest.approx(covered + gain, rel=1e-9)
        new = {r["village_code"]: r for r in body["villages"]}
        assert new[landing]["coverage_pct"] > old[landing]["coverage_pct"]
        assert_table_equals(body["villages"], direct(fresh, catalog).table)
        mapped = {f["id"]: f["properties"] for f in geojson(client, "/api/coverage/villages", staff)["features"]}
        assert mapped[landing]["coverage_pct"] == pytest.approx(new[landing]["coverage_pct"])
        areas = geojson(client, "/api/coverage/service-areas", staff)["features"]
        mine = [f for f in areas if f["properties"]["facility_id"] == "CF-TEST-1"]
        assert len(mine) == 1 and shape(mine[0]["geometry"]).buffer(1e-6).contains(shape(first["geometry"]))

        # Moved to the second site: the table follows.
        moved = {
            "type": "Feature",
            "geometry": second["geometry"],
            "properties": {"name": "测试文化站", "kind": "文化站"},
        }
        response = client.put("/api/layers/culture_facilities/features/CF-TEST-1", json=moved, headers=staff)
        assert response.status_code == 200, response.text
        body = client.get("/api/coverage", headers=staff).json()
        assert_table_equals(body["villages"], direct(fresh, catalog).table)
        assert body["district"]["covered_population"] != pytest.approx(covered + gain, rel=1e-6)
        assert body["district"]["covered_population"] >= covered + second["properties"]["gain_population"] - 1e-6
        areas = geojson(client, "/api/coverage/service-areas", staff)["features"]
        mine = [f for f in areas if f["properties"]["facility_id"] == "CF-TEST-1"]
        assert shape(mine[0]["geometry"]).buffer(1e-6).contains(shape(second["geometry"]))

        # Another one imported with the CLI while the server runs: seen by the next request too.
        source = tmp_path / "more.geojson"
        third = {**first["geometry"]}
        source.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "geometry": third,
                            "properties": {"facility_id": "CF-TEST-2", "name": "命令行导入", "kind": LIBRARY},
                        }
                    ],
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        assert cli(["import", "culture_facilities", str(source), "--mode", "append", "--store", str(fresh)]) == 0
        body = client.get("/api/coverage", headers=staff).json()
        assert body["facilities_counted"] == before.json()["facilities_counted"] + 2
        assert_table_equals(body["villages"], direct(fresh, catalog).table)
        assert body["district"]["covered_population"] > covered + gain - 1e-6  # site 1 is served again
        libraries = client.get("/api/coverage", params={"kinds": LIBRARY}, headers=staff).json()
        assert_table_equals(libraries["villages"], direct(fresh, catalog, kinds=[LIBRARY]).table)

        # Both removed: back to the start, figure for figure.
        for facility_id in ("CF-TEST-1", "CF-TEST-2"):
            deleted = client.delete(f"/api/layers/culture_facilities/features/{facility_id}", headers=staff)
            assert deleted.status_code == 200
        assert_table_equals(client.get("/api/coverage", headers=staff).json()["villages"], direct(fresh, catalog).table)
        end = client.get("/api/coverage", headers=staff).json()["district"]
        start = before.json()["district"]
        assert end.pop("no_route_zh") == start.pop("no_route_zh")  # the words, then the numbers
        assert end == pytest.approx(start, rel=1e-12)


# --------------------------------------------------------------------------------------------- the page


def shown(text: str, html: str) -> bool:
    """Whether `text` is in the page as it is or as the page config's JSON escapes it."""
    return text in html or json.dumps(text)[1:-1] in html


def test_coverage_page_is_public_and_holds_no_data(
    shared: TestClient, staff: dict[str, str], engine: CoverageResult
) -> None:
    response = shared.get("/coverage")
    assert response.status_code == 200 and "十分钟文化圈覆盖" in response.text
    html = response.text
    for src in ("/static/vendor/leaflet/leaflet.js", "/static/geoplan-map.js", "/static/geoplan-coverage.js"):
        assert src in html
    assert 'id="gp-token"' in html and 'type="password"' in html and "GeoplanMap.coverageMap(" in html
    # No figure and no name until a token is given (the kinds and the public layers' styles are catalogue facts).
    total = engine.table["covered_population"].sum()
    assert f"{total:,.0f}" not in html and f"{total:.0f}" not in html
    assert not any(shown(name, html) for name in engine.table["village_name"])
    assert shown("/api/coverage/suggested-sites", html) and shown(LIBRARY, html)
    csp = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce and f"script-src 'self' 'nonce-{nonce.group(1)}';" in csp and "unsafe" not in csp
    assert not shown("村委会", shared.get("/coverage", headers=staff).text)  # a token changes nothing
    # Every page's navigation links to it.
    assert '<a href="/coverage">' in shared.get("/").text


def test_coverage_script_builds_no_html_from_strings() -> None:
    assert_builds_no_html_from_strings("geoplan-coverage.js", leaflet=True)
