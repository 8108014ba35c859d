"""OGC API Part 3 on both stores: each CQL2 filter of a table selects exactly the features a plain
pandas/shapely filter, written here without pygeofilter, selects (GeoPackage: evaluated on the cached frame;
PostGIS: compiled to bound SQL). Plus the 400s: private fields, bad syntax, type mismatches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.services.store_setup import init_store
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.web.conftest import Tokens, bearer, tokens_in
from web.app import create_app
from web.settings import WebSettings

ITEMS = "/ogc/collections/projects/items"
E4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
N = 40
NAMES = ["Park", "park road", "PARK", "库区"]
TOWNS = ["荷城街道", "杨和镇", None, "明城镇", "更合镇"]


def _frame(catalog: Catalog) -> gpd.GeoDataFrame:
    """Sample projects with varied names (case), towns (some NULL), years and progress."""
    frame = sample_frame(catalog.get("projects"), N)
    i = np.arange(N)
    frame["name"] = [f"{NAMES[k % 4]}-{k:02d}" for k in i]
    frame["town"] = [TOWNS[k % 5] for k in i]
    frame["start_year"] = 2017 + i % 4
    frame["end_year"] = 2018 + i % 3
    frame["progress_pct"] = (i * 37 % 101).astype(float)
    frame["investment_wan"] = i * 10.0
    return frame


F = pd.DataFrame
Expected = Callable[[gpd.GeoDataFrame], "pd.Series[bool]"]
POLY = shapely.box(112.86, 22.889, 112.875, 22.9)
POINT = shapely.Point(112.861, 22.891)
BOX = shapely.box(112.87, 22.88, 112.89, 22.9)


def _near(f: gpd.GeoDataFrame, shape: shapely.Geometry) -> pd.Series:
    return pd.Series(shapely.intersects(np.asarray(f.geometry.values), shape), index=f.index)


# (filter, filter-lang, extra params, plain pandas/shapely selection). NULL towns: SQL's rule, a comparison
# with NULL is unknown and so neither it nor its negation selects the row.
TABLE: list[tuple[str, str, dict[str, str], Expected]] = [
    ("status = '在建'", "cql2-text", {}, lambda f: f.status == "在建"),
    ("status <> '在建'", "cql2-text", {}, lambda f: f.status != "在建"),
    ("progress_pct > 50", "cql2-text", {}, lambda f: f.progress_pct > 50),
    (
        "progress_pct >= 37 AND progress_pct < 90",
        "cql2-text",
        {},
        lambda f: (f.progress_pct >= 37) & (f.progress_pct < 90),
    ),
    ("start_year = 2019", "cql2-text", {}, lambda f: f.start_year == 2019),
    ("start_year > 2018.5", "cql2-text", {}, lambda f: f.start_year > 2018.5),  # not cast to the column's INTEGER
    ("start_year <= end_year", "cql2-text", {}, lambda f: f.start_year <= f.end_year),
    ("town IS NULL", "cql2-text", {}, lambda f: f.town.isna()),
    ("town IS NOT NULL", "cql2-text", {}, lambda f: f.town.notna()),
    ("town = '荷城街道'", "cql2-text", {}, lambda f: f.town == "荷城街道"),
    ("NOT (town = '荷城街道')", "cql2-text", {}, lambda f: f.town.notna() & (f.town != "荷城街道")),
    ("name LIKE 'Park%'", "cql2-text", {}, lambda f: f.name.str.startswith("Park")),
    ("name < 'park'", "cql2-text", {}, lambda f: f.name < "park"),  # code point order: 'PARK', 'Park' first
    ("name BETWEEN 'PARK-10' AND 'Park-20'", "cql2-text", {}, lambda f: (f.name >= "PARK-10") & (f.name <= "Park-20")),
    ("name LIKE 'Park-_4'", "cql2-text", {}, lambda f: f.name.str.fullmatch(r"Park-.4")),
    ("name NOT LIKE '%road%'", "cql2-text", {}, lambda f: ~f.name.str.contains("road")),
    ("CASEI(name) LIKE casei('PARK%')", "cql2-text", {}, lambda f: f.name.str.lower().str.startswith("park")),
    ("CASEI(name) = casei('park-08')", "cql2-text", {}, lambda f: f.name.str.lower() == "park-08"),
    ("status IN ('前期', '暂缓')", "cql2-text", {}, lambda f: f.status.isin(["前期", "暂缓"])),
    ("status NOT IN ('前期', '暂缓')", "cql2-text", {}, lambda f: ~f.status.isin(["前期", "暂缓"])),
    ("town IN ('杨和镇', '更合镇')", "cql2-text", {}, lambda f: f.town.isin(["杨和镇", "更合镇"])),
    ("progress_pct BETWEEN 20 AND 60", "cql2-text", {}, lambda f: f.progress_pct.between(20, 60)),
    ("progress_pct NOT BETWEEN 20 AND 60", "cql2-text", {}, lambda f: ~f.progress_pct.between(20, 60)),
    (f"S_INTERSECTS(geometry, {POLY.wkt})", "cql2-text", {}, lambda f: _near(f, POLY)),
    ("S_INTERSECTS(geometry, POINT(112.861 22.891))", "cql2-text", {}, lambda f: _near(f, POINT)),
    ("S_INTERSECTS(geometry, BBOX(112.87, 22.88, 112.89, 22.9))", "cql2-text", {}, lambda f: _near(f, BOX)),
    (
        "S_INTERSECTS(geometry, POINT(22.891 112.861))",  # lat, lon: EPSG:4490's axis order
        "cql2-text",
        {"filter-crs": E4490},
        lambda f: _near(f, POINT),
    ),
    (
        "(status = '在建' OR town IS NULL) AND start_year >= 2019",
        "cql2-text",
        {},
        lambda f: ((f.status == "在建") | f.town.isna()) & (f.start_year >= 2019),
    ),
    (
        "NOT (progress_pct > 30) OR town = '杨和镇'",
        "cql2-text",
        {},
        lambda f: (f.progress_pct <= 30) | (f.town == "杨和镇"),
    ),
    (
        json.dumps(
            {
                "op": "and",
                "args": [
                    {"op": ">", "args": [{"property": "end_year"}, 2018]},
                    {"op": "like", "args": [{"property": "name"}, "%1"]},
                ],
            }
        ),
        "cql2-json",
        {},
        lambda f: (f.end_year > 2018) & f.name.str.endswith("1"),
    ),
    (
        json.dumps({"op": "between", "args": [{"property": "progress_pct"}, 10, 40]}),  # the standard's shape
        "cql2-json",
        {},
        lambda f: f.progress_pct.between(10, 40),
    ),
    (
        json.dumps({"op": "s_intersects", "args": [{"property": "geometry"}, shapely.geometry.mapping(POLY)]}),
        "cql2-json",
        {},
        lambda f: _near(f, POLY),
    ),
    (
        json.dumps({"op": "not", "args": [{"op": "isNull", "args": [{"property": "town"}]}]}),
        "cql2-json",
        {},
        lambda f: f.town.notna(),
    ),
    ("name = '; DROP TABLE projects; --'", "cql2-text", {}, lambda f: f.name == "; DROP TABLE projects; --"),
]


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def filter_app(
    request: pytest.FixtureRequest, catalog: Catalog, tmp_path: Path
) -> Iterator[tuple[TestClient, gpd.GeoDataFrame, Tokens]]:
    url = str(tmp_path / "f.gpkg") if request.param == "gpkg" else request.getfixturevalue("postgis_url")
    store = GeoPackageStore(Path(url), catalog) if request.param == "gpkg" else PostGISStore(url, catalog)
    frame = _frame(catalog)
    try:
        init_store(store)
        store.write("projects", frame)
        if isinstance(store, PostGISStore):
            # A language collation, as a database made with a locale has ('park' sorts before 'Park'; the
            # test cluster's own is C): string order in filters must still be code point order.
            with store.engine.begin() as connection:
                connection.exec_driver_sql('ALTER TABLE projects ALTER COLUMN name TYPE text COLLATE "und-x-icu"')
    finally:
        store.close()
    tokens = tokens_in(url)
    with TestClient(create_app(WebSettings(store=url, layers_dir=LAYERS_DIR))) as client:
        yield client, frame, tokens


def _ids(client: TestClient, params: dict[str, str], headers: dict[str, str] | None = None) -> set[str]:
    response = client.get(ITEMS, params={"limit": "1000", **params}, headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def test_every_filter_in_the_table_matches_plain_pandas(
    filter_app: tuple[TestClient, gpd.GeoDataFrame, Tokens],
) -> None:
    client, frame, _ = filter_app
    assert len(TABLE) >= 20
    wrong = []
    for text, lang, extra, expected in TABLE:
        want = set(frame.loc[expected(frame).fillna(False).astype(bool), "project_id"])
        got = _ids(client, {"filter": text, "filter-lang": lang, **extra})
        if got != want:
            wrong.append((text, sorted(got ^ want)))
    assert wrong == []
    # The table means something: most filters select some but not all features.
    sizes = [int(e(frame).fillna(False).astype(bool).sum()) for *_, e in TABLE]
    assert sum(0 < s < N for s in sizes) >= 20
    # The injection attempt was a bound value: the table is still there.
    assert len(_ids(client, {})) == N


def test_private_fields_are_queryable_only_with_a_token(
    filter_app: tuple[TestClient, gpd.GeoDataFrame, Tokens],
) -> None:
    client, frame, tokens = filter_app
    for params in (
        {"filter": "investment_wan > 100"},
        {"sortby": "-investment_wan"},
        {"properties": "name,internal_note"},
    ):
        response = client.get(ITEMS, params=params)
        assert response.status_code == 400, params
        assert "not a queryable" in response.json()["detail"]
    staff = _ids(client, {"filter": "investment_wan > 100 AND assured_funds = true"}, bearer(tokens.staff))
    assert staff == set(frame.loc[(frame.investment_wan > 100) & frame.assured_funds, "project_id"])
    public = client.get("/ogc/collections/projects/queryables").json()
    staff_q = client.get("/ogc/collections/projects/queryables", headers=bearer(tokens.staff)).json()
    assert "investment_wan" not in public["properties"] and "investment_wan" in staff_q["properties"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "status = "}, "cannot parse"),
        ({"filter": "{not json", "filter-lang": "cql2-json"}, "cannot parse"),
        ({"filter": "status = 'x'", "filter-lang": "ecql"}, "filter-lang"),
        ({"filter": "progress_pct = 'a lot'"}, "type mismatch"),
        ({"filter": "name LIKE 5"}, "type mismatch"),
        (
            {
                "filter": '{"op": "=", "args": [{"property": "start_year"}, 99999999999999999999999]}',
                "filter-lang": "cql2-json",
            },
            "out of range",
        ),
        ({"filter": json.dumps({"op": "like", "args": [{"property": "name"}]}), "filter-lang": "cql2-json"}, "parse"),
        ({"filter": "nope = 1"}, "not a queryable"),
        ({"filter": "S_INTERSECTS(name, POINT(1 2))"}, "S_INTERSECTS"),
        ({"filter": "status = 'x'", "filter-crs": "EPSG:9999"}, "filter-crs"),
    ],
)
def test_bad_filters_are_400_with_a_message(
    filter_app: tuple[TestClient, gpd.GeoDataFrame, Tokens], params: dict[str, str], message: str
) -> None:
    client, _, _ = filter_app
    response = client.get(ITEMS, params=params)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_sortby_and_properties(filter_app: tuple[TestClient, gpd.GeoDataFrame, Tokens]) -> None:
    client, frame, _ = filter_app
    body = client.get(
        ITEMS, params={"sortby": "-progress_pct,+project_id", "properties": "name,status", "limit": "1000"}
    ).json()
    want = frame.sort_values(["progress_pct", "project_id"], ascending=[False, True])["project_id"].tolist()
    assert [f["id"] for f in body["features"]] == want
    assert all(set(f["properties"]) == {"name", "status"} for f in body["features"])
    filtered = client.get(ITEMS, params={"filter": "town IS NULL", "sortby": "name", "limit": "3"}).json()
    want = sorted(frame.loc[frame.town.isna(), "name"])[:3]
    assert [f["properties"]["name"] for f in filtered["features"]] == want
    assert filtered["numberMatched"] == int(frame.town.isna().sum())
