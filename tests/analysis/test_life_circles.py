"""The life-circle engine: culture through it equals today's coverage exactly, and each service equals an
independent computation (networkx multi-source Dijkstra on the streets cut at every link, exact cell shares)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geoplan.analysis.coverage import compute_coverage
from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.life_circles import life_circle_coverage, service_facilities
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS
from geoplan.services.rule_files import load_coverage_rules, load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.analysis.test_coverage import Reference, _reference_coverage, reference  # noqa: F401 (fixture)
from tests.conftest import ROOT
from tests.demo_layers import DemoLayers
from tests.edge_linking_reference import SplitNetwork, walkable_lines

RULES = load_life_circles(ROOT / "layers" / "rules" / "life_circles.yaml")
CHECKED = tuple(name for name, rule in RULES.items() if rule.layer == "public_facilities")  # every one


@pytest.fixture(scope="module")
def public(demo_store_path: Path, catalog: Catalog) -> gpd.GeoDataFrame:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        return store.read("public_facilities")
    finally:
        store.close()


@pytest.fixture(scope="module")
def layers(demo: DemoLayers, public: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    return {"culture_facilities": demo.facilities, "public_facilities": public}


def test_culture_through_the_general_engine_is_todays_table(
    demo: DemoLayers, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    old = compute_coverage(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=demo.graph,
        rules=load_coverage_rules(ROOT / "layers" / "rules" / "coverage.yaml"),
    )
    new = life_circle_coverage(
        villages=demo.villages, layers=layers, population=demo.raster, graph=demo.graph, rules=RULES
    )
    culture = new.services["culture"]
    assert culture.facility_ids == old.facility_ids
    pd.testing.assert_frame_equal(culture.table, old.table, check_exact=True)
    assert set(new.services) == set(RULES)


def test_searches_are_shared(demo: DemoLayers, layers: dict[str, gpd.GeoDataFrame]) -> None:
    # culture: urban = rural, one search; kindergarten twice under another name: no new search
    twin = {**RULES["kindergarten"].__dict__, "name": "kindergarten_again"}
    rules = {"culture": RULES["culture"], "kindergarten": RULES["kindergarten"], "again": ServiceRule(**twin)}
    result = life_circle_coverage(
        villages=demo.villages, layers=layers, population=demo.raster, graph=demo.graph, rules=rules
    )
    assert result.searches == 1 + 2
    pd.testing.assert_frame_equal(result.services["again"].table, result.services["kindergarten"].table)


def _covered(
    net: SplitNetwork, m: int, facilities: gpd.GeoDataFrame, positions: pd.Index, rule: ServiceRule, urban: bool
) -> np.ndarray:
    """Per cell: covered by the rule's urban or rural reach, from networkx distances."""
    unit = rule.urban if urban else rule.rural
    covered = np.zeros(m, dtype=bool)
    for reach in unit.reaches:
        keep = np.ones(len(facilities), dtype=bool)
        if reach.min_ha is not None:
            keep = facilities[rule.area_field].fillna(-1).to_numpy() >= reach.min_ha
        sources = [m + int(p) for p in positions[keep]]
        dist = net.nearest_source(sources, range(m), cutoff=reach.radius_m + 1.0)
        covered |= dist <= reach.radius_m + 1e-6
    return covered


def test_services_equal_networkx(
    demo: DemoLayers,
    layers: dict[str, gpd.GeoDataFrame],
    public: gpd.GeoDataFrame,
    reference: Reference,  # noqa: F811
) -> None:
    rules = {name: RULES[name] for name in CHECKED}
    result = life_circle_coverage(
        villages=demo.villages, layers=layers, population=demo.raster, graph=demo.graph, rules=rules
    )
    lines = walkable_lines(demo.roads.to_crs(METRIC_CRS))
    fac_xy = shapely.get_coordinates(public.to_crs(METRIC_CRS).geometry.to_numpy())
    m = len(reference.centres)
    net = SplitNetwork(lines, np.vstack([reference.centres, fac_xy]), 200.0)  # one access distance for all
    for name, rule in rules.items():
        facilities = service_facilities(public, rule).reset_index()
        positions = pd.Index(public.index.get_indexer(facilities["index"]))
        expected = _reference_coverage(
            demo,
            reference,
            _covered(net, m, facilities, positions, rule, urban=True),
            _covered(net, m, facilities, positions, rule, urban=False),
        )
        table = result.services[name].table.set_index("village_code")
        diff = (table["coverage_pct"] - expected["coverage_pct"]).abs()
        assert diff.max() < 0.5, (name, diff.sort_values().tail())
        np.testing.assert_allclose(table["population"], expected["population"], rtol=1e-9)
        assert table["coverage_pct"].min() < 50.0 < table["coverage_pct"].max(), name  # real gaps, real cover


def test_facilities_off_network_are_named_through_size_classes(
    demo: DemoLayers, layers: dict[str, gpd.GeoDataFrame], public: gpd.GeoDataFrame
) -> None:
    # one park of each size class moved 5 km off the district's south-west corner: no street within access_m
    parks = service_facilities(public, RULES["park"])
    big = parks[parks["area_ha"] >= 0.5].index[0]
    small = parks[(parks["area_ha"] >= 0.2) & (parks["area_ha"] < 0.5)].index[0]
    moved = public.to_crs(METRIC_CRS)
    x0, y0 = moved.total_bounds[:2]
    for i, index in enumerate((big, small)):
        moved.loc[index, "geometry"] = shapely.Point(x0 - 5000.0 - 100.0 * i, y0 - 5000.0)
    result = life_circle_coverage(
        villages=demo.villages,
        layers={**layers, "public_facilities": moved.to_crs(public.crs)},
        population=demo.raster,
        graph=demo.graph,
        rules={"park": RULES["park"]},
    )
    service = result.services["park"]
    expected = {str(moved.loc[i, "facility_id"]) for i in (big, small)}
    assert set(service.facilities_off_network) == expected
    assert set(service.facilities_off_network) <= set(service.facility_ids)
