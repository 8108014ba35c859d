"""The scorecard read across: villages × services, group totals with virtual units apart, completeness per
circle from the same people reaching every service (checked cell by cell in plain Python), the gaps per village,
and the comprehensive cultural service centres (checked with shapely one village at a time)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geoplan.analysis.culture_centres import CENTRE_KIND, culture_centres
from geoplan.analysis.life_circle_matrix import (
    circle_services,
    completeness,
    completeness_rollup,
    missing_services,
    service_rollup,
    village_matrix,
)
from geoplan.analysis.life_circle_scorecard import scorecard
from geoplan.analysis.life_circles import LifeCircleResult, life_circle_coverage
from geoplan.analysis.unit_groups import DISTRICT, VIRTUAL_GROUP
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS
from geoplan.services.rule_files import load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import ROOT
from tests.demo_layers import DemoLayers

RULES = load_life_circles(ROOT / "layers" / "rules" / "life_circles.yaml")
TOWNS = {"荷城街道", "杨和镇", "明城镇", "更合镇"}


@pytest.fixture(scope="module")
def result(demo: DemoLayers, demo_store_path: Path, catalog: Catalog) -> LifeCircleResult:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        public = store.read("public_facilities")
    finally:
        store.close()
    layers = {"culture_facilities": demo.facilities, "public_facilities": public}
    return life_circle_coverage(
        villages=demo.villages, layers=layers, population=demo.raster, graph=demo.graph, rules=RULES
    )


@pytest.fixture(scope="module")
def card(demo: DemoLayers, result: LifeCircleResult) -> pd.DataFrame:
    return scorecard(demo.villages, result)


def test_the_matrix_holds_every_scorecard_row(card: pd.DataFrame, demo: DemoLayers) -> None:
    matrix = village_matrix(card)
    assert len(matrix) == len(demo.villages) == 81
    assert list(matrix.columns[6:]) == list(RULES)
    for row in card.itertuples():
        got = matrix.loc[matrix["village_code"] == row.village_code, row.service].iloc[0]
        assert (pd.isna(got) and pd.isna(row.coverage_pct)) or got == row.coverage_pct
    virtual = matrix[matrix["group"] == VIRTUAL_GROUP]
    assert set(virtual["town"]) == {"高明监狱", "云勇林场", "对川茶场", "佛山监狱"}  # their own names, no town
    assert set(matrix["group"]) == TOWNS | {VIRTUAL_GROUP}


def test_group_totals_are_sums_of_rows_and_virtual_units_are_no_town(card: pd.DataFrame) -> None:
    rollup = service_rollup(card)
    assert set(rollup["group"]) == TOWNS | {VIRTUAL_GROUP, DISTRICT}
    for row in rollup.itertuples():
        rows = card[card["service"] == row.service]
        if row.group == VIRTUAL_GROUP:
            rows = rows[rows["type"] == "虚拟单位"]
        elif row.group != DISTRICT:
            rows = rows[(rows["town"] == row.group) & (rows["type"] != "虚拟单位")]
        assert row.population == rows["population"].sum()
        assert row.covered_population == rows["covered_population"].sum()
        assert row.coverage_pct == round(100.0 * row.covered_population / row.population, 1)
    district = rollup[rollup["group"] == DISTRICT].set_index("service")
    towns = rollup[rollup["group"] != DISTRICT].groupby("service")["population"].sum()
    assert (district["population"] == towns.reindex(district.index)).all()  # virtual units count in the district


def test_completeness_counts_people_who_reach_every_service_of_their_circle(
    demo: DemoLayers, result: LifeCircleResult, card: pd.DataFrame
) -> None:
    frame = completeness(demo.villages, result)
    by_circle = circle_services(result)
    assert by_circle == {c: [n for n, r in RULES.items() if r.circle == c] for c in (5, 10, 15)}
    cells = result.cells
    codes = demo.villages["village_code"].astype(str).tolist()
    expected: dict[tuple[str, int], float] = {}
    for circle, names in by_circle.items():  # share by share, in plain Python
        for k in range(len(cells.people)):
            if all(bool(result.services[n].covered[k]) for n in names):
                key = (codes[int(cells.village[k])], circle)
                expected[key] = expected.get(key, 0.0) + float(cells.people[k])
    for row in frame.itertuples():
        assert row.complete_population == int(np.floor(expected.get((row.village_code, row.circle), 0.0) + 0.5))
        assert row.complete_population <= row.population
        lowest = card[(card["village_code"] == row.village_code) & card["service"].isin(by_circle[row.circle])]
        assert row.complete_population <= lowest["covered_population"].min()  # no more than the worst service
    rollup = completeness_rollup(frame).set_index(["group", "circle"])
    for circle in by_circle:
        part = frame[frame["circle"] == circle]
        assert rollup.loc[(DISTRICT, circle), "complete_population"] == part["complete_population"].sum()
        assert rollup.loc[(DISTRICT, circle), "population"] > 0


def test_a_circle_of_one_service_is_that_service(demo: DemoLayers, result: LifeCircleResult) -> None:
    only = LifeCircleResult(cells=result.cells, services={"clinic": result.services["clinic"]})
    frame = completeness(demo.villages, only)
    card = scorecard(demo.villages, only)
    assert frame["complete_population"].tolist() == card["covered_population"].tolist()


def test_missing_services_are_those_below_half(card: pd.DataFrame) -> None:
    gaps = missing_services(card, titles={n: r.title_zh for n, r in RULES.items()})
    expected = {
        (r.village_code, r.service) for r in card.itertuples() if not pd.isna(r.coverage_pct) and r.coverage_pct < 50.0
    }
    assert set(zip(gaps["village_code"], gaps["service"], strict=True)) == expected
    assert len(expected) > 0
    for code, part in gaps.groupby("village_code", sort=False):
        assert part["uncovered_population"].is_monotonic_decreasing, code
    assert set(gaps["title_zh"]) <= {r.title_zh for r in RULES.values()}


def test_culture_centres_equal_a_shapely_loop(demo: DemoLayers) -> None:
    table = culture_centres(villages=demo.villages, facilities=demo.facilities)
    villages = demo.villages.to_crs(METRIC_CRS)
    centres = demo.facilities[demo.facilities["kind"] == CENTRE_KIND].to_crs(METRIC_CRS)
    for i, row in enumerate(table.itertuples()):
        inside = sorted(
            str(name)
            for name, point in zip(centres["name"], centres.geometry, strict=True)
            if shapely.intersects(villages.geometry.iloc[i], point)
        )
        assert row.has_centre == bool(inside)
        assert row.centres == "、".join(inside)
        assert row.expected == (villages["type"].iloc[i] != "virtual")
    assert 0 < table["has_centre"].sum() < table["expected"].sum()  # the demo has some, and real gaps


def test_a_unit_with_nobody_lacks_nothing_and_has_no_percentage() -> None:
    card = pd.DataFrame(
        {
            "village_code": ["A", "B"],
            "village_name": ["甲", "乙"],
            "town": ["荷城街道", "佛山监狱"],
            "type": ["社区", "虚拟单位"],
            "service": ["clinic", "clinic"],
            "circle": [15, 15],
            "radius_m": [1000, 1000],
            "population": [10, 0],
            "covered_population": [2, 0],
            "coverage_pct": pd.array([20.0, None], dtype="Float64"),
        }
    )
    assert missing_services(card, titles={})["village_code"].tolist() == ["A"]
    rollup = service_rollup(card).set_index("group")
    assert pd.isna(rollup.loc[VIRTUAL_GROUP, "coverage_pct"])
    assert rollup.loc[DISTRICT, "coverage_pct"] == 20.0
    assert "佛山监狱" not in rollup.index
    matrix = village_matrix(card)
    assert matrix["group"].tolist() == ["荷城街道", VIRTUAL_GROUP]
    empty = gpd.GeoDataFrame({"kind": [], "name": []}, geometry=[], crs=METRIC_CRS)
    villages = gpd.GeoDataFrame(
        {"village_code": ["A"], "village_name": ["甲"], "town": ["荷城街道"], "type": ["community"]},
        geometry=[shapely.box(0, 0, 1, 1)],
        crs=METRIC_CRS,
    )
    assert culture_centres(villages=villages, facilities=empty)["has_centre"].tolist() == [False]
