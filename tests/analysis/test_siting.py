"""New-site study on the demo store: greedy gains against a brute-force recomputation through compute_coverage
(the chosen sites added as real facilities), the uncovered areas against the district total, 自助图书馆 coverage.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geoplan.analysis.coverage import (
    CoverageResult,
    CoverageRules,
    CoverageSettings,
    district_total,
    town_rollup,
)
from geoplan.analysis.siting import (
    SITE_COLUMNS,
    UNCOVERED_COLUMNS,
    self_service_library_coverage,
    suggest_sites,
    uncovered_areas,
)
from geoplan.crs import METRIC_CRS
from geoplan.errors import InputError
from tests.demo_layers import DemoLayers


@pytest.fixture(scope="module")
def demo(demo: DemoLayers) -> DemoLayers:
    """The shared demo layers with villages and facilities in EPSG:4547, so that sites placed on nodes stay
    exactly on them."""
    return replace(demo, villages=demo.villages.to_crs(METRIC_CRS), facilities=demo.facilities.to_crs(METRIC_CRS))


@pytest.fixture(scope="module")
def network(demo: DemoLayers) -> CoverageResult:
    """The demo's coverage under the default rules (network, 10 minutes at 4.5 km/h)."""
    return demo.coverage(CoverageRules())


def _with_sites(demo: DemoLayers, points: list[shapely.Point]) -> gpd.GeoDataFrame:
    extra = gpd.GeoDataFrame(
        {"facility_id": [f"NEW-{i}" for i in range(len(points))], "kind": "新址"}, geometry=points, crs=METRIC_CRS
    )
    return gpd.GeoDataFrame(pd.concat([demo.facilities[["facility_id", "kind", "geometry"]], extra]), crs=METRIC_CRS)


def _check_against_brute_force(
    demo: DemoLayers, rules: CoverageRules, result: CoverageResult, sites: gpd.GeoDataFrame, points: list[shapely.Point]
) -> None:
    gains = sites["gain_population"].to_numpy()
    assert len(sites) > 0
    assert np.all(gains > 0)
    assert np.all(np.diff(gains) <= 1e-9 * gains[0])  # greedy: the marginal gains never grow
    before = district_total(result.table)["covered_population"]
    for j in range(len(sites)):
        with_sites = demo.coverage(rules, facilities=_with_sites(demo, points[: j + 1]))
        after = district_total(with_sites.table)["covered_population"]
        assert after - before == pytest.approx(gains[j], rel=1e-6), j
        assert sites["cumulative_covered_population"].iloc[j] == pytest.approx(after, rel=1e-9)
        before = after


def test_greedy_network_sites_match_a_brute_force_recomputation(demo: DemoLayers, network: CoverageResult) -> None:
    rules, result = CoverageRules(), network
    sites = suggest_sites(result=result, rules=rules, k=3, graph=demo.graph)
    assert list(sites.columns) == [*SITE_COLUMNS, "geometry"]
    assert sites.crs == "EPSG:4490"
    assert list(sites["rank"]) == [1, 2, 3]
    assert sites["site_id"].is_unique
    points = [shapely.Point(demo.graph.coords[int(s.removeprefix("node-"))]) for s in sites["site_id"]]
    _check_against_brute_force(demo, rules, result, sites, points)
    total = district_total(result.table)
    assert sites["cumulative_coverage_pct"].iloc[-1] == pytest.approx(
        100.0 * sites["cumulative_covered_population"].iloc[-1] / total["population"]
    )


def test_mixed_rules_and_given_candidates(demo: DemoLayers) -> None:
    """Urban units by the network, rural ones in a straight line at 15 minutes; candidates = chosen points."""
    rules = CoverageRules(urban=CoverageSettings(), rural=CoverageSettings(mode="euclidean", minutes=15.0))
    result = demo.coverage(rules)
    rng = np.random.default_rng(5)
    coords = demo.graph.coords[rng.choice(demo.graph.n_nodes, size=300, replace=False)]
    coords = coords + rng.uniform(-80, 80, size=coords.shape)  # off the nodes: links count
    candidates = gpd.GeoDataFrame(
        {"site_id": [f"C{i}" for i in range(len(coords))]}, geometry=shapely.points(coords), crs=METRIC_CRS
    ).to_crs("EPSG:4490")
    sites = suggest_sites(result=result, rules=rules, k=2, graph=demo.graph, candidates=candidates)
    assert set(sites["site_id"]) <= set(candidates["site_id"])
    points = [shapely.Point(coords[int(s[1:])]) for s in sites["site_id"]]
    _check_against_brute_force(demo, rules, result, sites, points)


def test_euclidean_sites_and_k_larger_than_useful(demo: DemoLayers) -> None:
    rules = CoverageRules(urban=CoverageSettings(mode="euclidean"), rural=CoverageSettings(mode="euclidean"))
    result = demo.coverage(rules)
    coords = demo.graph.coords[:: max(1, demo.graph.n_nodes // 40)]
    candidates = gpd.GeoDataFrame(geometry=shapely.points(coords), crs=METRIC_CRS)
    sites = suggest_sites(result=result, rules=rules, k=len(coords) + 5, graph=None, candidates=candidates)
    assert len(sites) <= len(coords)
    gains = sites["gain_population"].to_numpy()
    assert np.all(gains > 0) and np.all(np.diff(gains) <= 1e-9 * gains[0])
    points = [shapely.Point(coords[int(s)]) for s in sites["site_id"]]
    # every useful candidate is taken, so the last cumulative value is what all candidates together reach
    everything = district_total(demo.coverage(rules, facilities=_with_sites(demo, points)).table)["covered_population"]
    assert sites["cumulative_covered_population"].iloc[-1] == pytest.approx(everything, rel=1e-6)


def test_bad_arguments(demo: DemoLayers, network: CoverageResult) -> None:
    rules, result = CoverageRules(), network
    with pytest.raises(InputError):
        suggest_sites(result=result, rules=rules, k=0, graph=demo.graph)
    with pytest.raises(InputError):
        suggest_sites(result=result, rules=rules, k=2, graph=None)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=METRIC_CRS)
    with pytest.raises(InputError):
        suggest_sites(result=result, rules=rules, k=2, graph=demo.graph, candidates=lines)


def test_uncovered_areas_hold_the_uncovered_population(demo: DemoLayers, network: CoverageResult) -> None:
    result = network
    areas = uncovered_areas(result, demo.raster, demo.villages)
    assert list(areas.columns) == [*UNCOVERED_COLUMNS, "geometry"]
    assert areas.crs == "EPSG:4490"
    total = district_total(result.table)
    assert areas["uncovered_population"].sum() == pytest.approx(
        total["population"] - total["covered_population"], rel=1e-9
    )
    by_village = result.table.set_index("village_code")
    expected = by_village["population"] - by_village["covered_population"]
    got = areas.set_index("village_code")["uncovered_population"]
    assert np.allclose(got, expected.loc[got.index], rtol=1e-9, atol=1e-6)
    assert (expected.drop(got.index) <= 1e-6).all()  # villages without a polygon have nobody uncovered
    metric = areas.to_crs(METRIC_CRS)
    assert metric.geometry.is_valid.all() and (metric.geometry.area > 0).all()
    inside = demo.villages.set_index("village_code").geometry.loc[metric["village_code"]].buffer(1.0).to_numpy()
    assert shapely.within(metric.geometry.to_numpy(), inside).all()


def test_self_service_library_coverage(demo: DemoLayers, network: CoverageResult) -> None:
    rules = CoverageRules()
    libraries = self_service_library_coverage(
        villages=demo.villages, facilities=demo.facilities, population=demo.raster, graph=demo.graph, rules=rules
    )
    everything = town_rollup(network.table).set_index("town")
    libraries = libraries.set_index("town")
    assert list(libraries.index) == list(everything.index)
    assert np.allclose(libraries["population"], everything["population"])
    assert (libraries["covered_population"] <= everything["covered_population"] + 1e-6).all()
    assert libraries["covered_population"].sum() > 0
    only = demo.facilities[demo.facilities["kind"] == "自助图书馆"]
    direct = town_rollup(demo.coverage(rules, facilities=only).table).set_index("town")
    assert np.allclose(libraries["covered_population"], direct["covered_population"])
