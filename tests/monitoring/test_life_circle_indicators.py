"""The life-circle indicators on the Gaoming demo store: every service's district and town values equal the
scorecard's whole-people sums recomputed here from the engine, kindergarten coverage equals a networkx
multi-source search within 0.5 pp, all of them come from one engine run, and a user's bad parameters are
refused when the definitions file is read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from geoplan.analysis import life_circles
from geoplan.analysis.life_circles import service_facilities
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf
from geoplan.services.indicators import IndicatorRun, compute_indicators, definitions_for
from geoplan.services.rule_files import load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.analysis.test_coverage import Reference, _reference_coverage, reference  # noqa: F401 (fixture)
from tests.analysis.test_life_circles import _covered
from tests.conftest import LAYERS_DIR
from tests.demo_layers import DemoLayers
from tests.edge_linking_reference import SplitNetwork, walkable_lines
from tests.monitoring.uncovered import uncovered_site

RULES = load_life_circles(LAYERS_DIR / "rules" / "life_circles.yaml")
VIRTUAL = "virtual"


@pytest.fixture(scope="module")
def store(demo_store_path: Path, catalog: Catalog) -> Iterator[GeoPackageStore]:
    backend = GeoPackageStore(demo_store_path, catalog)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def public(store: GeoPackageStore) -> gpd.GeoDataFrame:
    return store.read("public_facilities")


@pytest.fixture(scope="module")
def counted_run(store: GeoPackageStore) -> tuple[IndicatorRun, int]:
    """Every life-circle indicator of the bundled file, with the engine's runs counted."""
    definitions = definitions_for(store, LAYERS_DIR)
    ids = [d.id for d in definitions if d.kind.startswith("life_circle_")]
    calls = []
    engine = life_circles.life_circle_coverage

    def counting(**kwargs: Any) -> life_circles.LifeCircleResult:
        calls.append(sorted(kwargs["rules"]))
        return engine(**kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(life_circles, "life_circle_coverage", counting)
        run = compute_indicators(store, layers_dir=LAYERS_DIR, definitions=definitions, only=ids)
    assert all(names == sorted(RULES) for names in calls)  # each run computes every service at once
    return run, len(calls)


def _whole(values: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5)


def _expected(villages: gpd.GeoDataFrame, population: np.ndarray, covered: np.ndarray) -> dict[tuple[str, str], float]:
    """District and town shares from per-village people rounded half up; virtual units only in the district."""
    people, reached = _whole(population), _whole(covered)
    towns = villages["town"].astype(str).to_numpy()
    virtual = villages["type"].astype(str).to_numpy() == VIRTUAL
    out = {("district", ""): 100.0 * reached.sum() / people.sum()}
    for town in sorted(set(towns[~virtual])):
        sel = (towns == town) & ~virtual
        out[("town", town)] = 100.0 * reached[sel].sum() / people[sel].sum()
    return out


def _values(table: pd.DataFrame, indicator: str) -> dict[tuple[str, str], float]:
    rows = table[table["indicator"] == indicator]
    return {(str(s), str(k)): float(v) for s, k, v in zip(rows["scope"], rows["scope_key"], rows["value"], strict=True)}


def test_one_engine_run_for_every_life_circle_indicator(counted_run: tuple[IndicatorRun, int]) -> None:
    run, calls = counted_run
    assert calls == 1
    indicators = set(run.table["indicator"])
    assert {f"lc_{name}" for name in RULES} <= indicators
    assert {"lc_complete_5", "lc_complete_10", "lc_complete_15"} <= indicators


@pytest.fixture(scope="module")
def engine_result(demo: DemoLayers, public: gpd.GeoDataFrame) -> life_circles.LifeCircleResult:
    """The engine run in the test, on the demo layers read by the test's own fixtures."""
    return life_circles.life_circle_coverage(
        villages=demo.villages,
        layers={"culture_facilities": demo.facilities, "public_facilities": public},
        population=demo.raster,
        graph=demo.graph,
        rules=RULES,
    )


def test_service_values_equal_the_scorecard_sums(
    counted_run: tuple[IndicatorRun, int], engine_result: life_circles.LifeCircleResult, demo: DemoLayers
) -> None:
    run, _ = counted_run
    result = engine_result
    virtual_names = set(demo.villages.loc[demo.villages["type"] == VIRTUAL, "town"].astype(str))
    assert virtual_names  # the demo has prisons and farms: they must not be towns
    for name, service in result.services.items():
        table = service.table
        expected = _expected(demo.villages, table["population"].to_numpy(), table["covered_population"].to_numpy())
        got = _values(run.table, f"lc_{name}")
        assert set(got) == set(expected), name
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-9), (name, key)
        assert not virtual_names & {k for _, k in got}
        assert 0.0 < got[("district", "")] < 100.0


def test_completeness_is_the_share_reaching_every_service_of_the_circle(
    counted_run: tuple[IndicatorRun, int], engine_result: life_circles.LifeCircleResult, demo: DemoLayers
) -> None:
    run, _ = counted_run
    cells = engine_result.cells
    n = len(demo.villages)
    population = np.bincount(cells.village, weights=cells.people, minlength=n)
    singles = {name: _values(run.table, f"lc_{name}")[("district", "")] for name in RULES}
    reached: dict[int, float] = {}
    for circle in (5, 10, 15):
        names = [name for name, rule in RULES.items() if rule.circle == circle]
        every = np.ones(len(cells.people), dtype=bool)
        for name in names:  # the same (village, cell) share must reach each of them
            every &= engine_result.services[name].covered
        complete = np.bincount(cells.village, weights=np.where(every, cells.people, 0.0), minlength=n)
        expected = _expected(demo.villages, population, complete)
        got = _values(run.table, f"lc_complete_{circle}")
        assert set(got) == set(expected), circle
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-9), (circle, key)
        # nobody reaches them all who does not reach the least-covered one
        assert got[("district", "")] <= min(singles[name] for name in names) + 0.01
        reached[circle] = got[("district", "")]
    # on the demo some people reach every 5- and 15-minute service; nobody reaches all five 10-minute ones
    assert reached[5] > 0.0 and reached[15] > 0.0


def test_kindergarten_equals_networkx(
    counted_run: tuple[IndicatorRun, int],
    demo: DemoLayers,
    public: gpd.GeoDataFrame,
    reference: Reference,  # noqa: F811
) -> None:
    run, _ = counted_run
    rule = RULES["kindergarten"]
    lines = walkable_lines(demo.roads.to_crs(METRIC_CRS))
    fac_xy = shapely.get_coordinates(public.to_crs(METRIC_CRS).geometry.to_numpy())
    m = len(reference.centres)
    net = SplitNetwork(lines, np.vstack([reference.centres, fac_xy]), rule.access_m)
    facilities = service_facilities(public, rule).reset_index()
    positions = pd.Index(public.index.get_indexer(facilities["index"]))
    per_village = _reference_coverage(
        demo,
        reference,
        _covered(net, m, facilities, positions, rule, urban=True),
        _covered(net, m, facilities, positions, rule, urban=False),
    ).reindex(demo.villages["village_code"])
    population = per_village["population"].to_numpy()
    covered = population * np.nan_to_num(per_village["coverage_pct"].to_numpy()) / 100.0
    expected = _expected(demo.villages, population, covered)
    got = _values(run.table, "lc_kindergarten")
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert abs(got[key] - value) < 0.5, key


def _user_file(tmp_path: Path, params: dict[str, Any], kind: str = "life_circle_coverage") -> Path:
    item = {
        "id": "my_service",
        "title_zh": "我的指标",
        "title_en": "Mine",
        "unit": "%",
        "scopes": ["district", "town"],
        "kind": kind,
        "params": params,
        "good_direction": "up",
    }
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump({"indicators": [item]}, allow_unicode=True), encoding="utf-8")
    return path


def test_a_users_bad_parameters_are_refused_when_read(store: GeoPackageStore, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {"service": "kindergarden"}))
    message = str(caught.value)
    assert "kindergarden" in message and "my_service" in message
    assert all(name in message for name in RULES)  # names the valid services
    with pytest.raises(InputError, match="parameter 'service' is missing"):
        definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {}))
    with pytest.raises(InputError, match="circle must be one of 5, 10, 15"):
        definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {"circle": 20}, "life_circle_completeness"))
    with pytest.raises(InputError, match="unknown parameter 'radius'"):
        definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {"service": "park", "radius": 300}))
    good = definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {"service": "park"}))
    assert good.get("my_service").params == {"service": "park"}


def test_a_past_moment_reads_the_facilities_as_they_stood(demo_store_copy: Path, catalog: Catalog) -> None:
    """A kindergarten added after a moment raises today's coverage, not the moment's (replayed from the audit log)."""
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        ids = ["lc_kindergarten"]
        moment = AsOf(at=datetime.now(UTC))
        before = _values(compute_indicators(store, layers_dir=LAYERS_DIR, only=ids).table, "lc_kindergarten")
        time.sleep(1.1)  # the audit log keeps whole seconds: the edit must fall after the moment
        lon, lat, _ = uncovered_site(store)
        added = gpd.GeoDataFrame(
            [
                {
                    "facility_id": "TEST-KG",
                    "name": "新建幼儿园（测试）",
                    "service": "kindergarten",
                    "kind": "幼儿园",
                    "town": None,
                    "village_code": None,
                    "capacity": 90,
                    "area_ha": None,
                }
            ],
            geometry=[shapely.Point(lon, lat)],
            crs="EPSG:4490",
        )
        store.write("public_facilities", added, mode="append", actor="test:life-circle")
        now = _values(compute_indicators(store, layers_dir=LAYERS_DIR, only=ids).table, "lc_kindergarten")
        then = _values(
            compute_indicators(store, layers_dir=LAYERS_DIR, only=ids, as_of=moment).table, "lc_kindergarten"
        )
    finally:
        store.close()
    assert now[("district", "")] > before[("district", "")]  # the new kindergarten reaches people
    assert then == pytest.approx(before, abs=1e-12)  # the moment before it sees the layer without it


def test_virtual_units_in_towns_when_the_definition_says_so(
    store: GeoPackageStore, counted_run: tuple[IndicatorRun, int], demo: DemoLayers, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="virtual_units must be one of separate, in_towns"):
        definitions_for(store, LAYERS_DIR, _user_file(tmp_path, {"service": "park", "virtual_units": "towns"}))
    definitions = definitions_for(
        store, LAYERS_DIR, _user_file(tmp_path, {"service": "park", "virtual_units": "in_towns"})
    )
    got = _values(compute_indicators(store, layers_dir=LAYERS_DIR, definitions=definitions).table, "my_service")
    separate = _values(counted_run[0].table, "lc_park")
    virtual = set(demo.villages.loc[demo.villages["type"] == VIRTUAL, "town"].astype(str))
    assert {k for s, k in got if s == "town"} == {k for s, k in separate if s == "town"} | virtual
    for key, value in separate.items():  # the district and the four towns are the same either way
        assert got[key] == value, key
