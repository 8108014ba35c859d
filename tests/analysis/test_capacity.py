"""The 2SFCA capacity check: hand-computed answers on a five-cell street, and on the demo store a brute-force
recomputation with networkx distances and plain Python sums (one facility at a time).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from geoplan.analysis.capacity import (
    ACCESSIBILITY_COLUMNS,
    FACILITY_RATIO_COLUMNS,
    capacity_accessibility,
    town_accessibility,
)
from geoplan.analysis.coverage import URBAN_TYPE, CoverageRules, CoverageSettings
from geoplan.analysis.network import WalkGraph, build_walk_graph
from geoplan.crs import METRIC_CRS
from geoplan.errors import CRSError, InputError
from geoplan.rasterdata import RasterData
from tests.demo_layers import DemoLayers
from tests.edge_linking_reference import SplitNetwork, walkable_lines

# ------------------------------------------------------------------------------------------ a five-cell street
#
# Five 100 m cells in one row, centres x = 50 … 450, y = 50, holding 10, 20, 30, 40, 50 people. The street runs
# through the centres (a node on each), so every link is 0. Facility A (capacity 100) stands on x = 50, B (60)
# on x = 450, C (no capacity) on x = 250. Village W (社区) holds cells 0-1, village E (村) cells 2-4.

PEOPLE = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
M250 = CoverageSettings(minutes=2.5, speed_kmh=6.0, access_m=10.0)  # 100 m/min: 250 m
M150 = CoverageSettings(minutes=1.5, speed_kmh=6.0, access_m=10.0)  # 150 m


def _street() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, WalkGraph]:
    xs = 50.0 + 100.0 * np.arange(5)
    roads = gpd.GeoDataFrame(
        {"road_id": ["R0", "R1", "R2", "R3"], "walkable": [True] * 4},
        geometry=[shapely.LineString([(a, 50.0), (a + 100.0, 50.0)]) for a in xs[:-1]],
        crs=METRIC_CRS,
    )
    villages = gpd.GeoDataFrame(
        {
            "village_code": ["W", "E"],
            "village_name": ["西社区", "东村"],
            "town": ["镇甲", "镇甲"],
            "type": [URBAN_TYPE, "village"],
        },
        geometry=[shapely.box(0, 0, 200, 100), shapely.box(200, 0, 500, 100)],
        crs=METRIC_CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["A", "B", "C"],
            "kind": ["文化站", "图书馆", "文化广场"],
            "capacity": [100, 60, None],
        },
        geometry=[shapely.Point(50, 50), shapely.Point(450, 50), shapely.Point(250, 50)],
        crs=METRIC_CRS,
    )
    raster = RasterData(PEOPLE.reshape(1, 5), Affine(100.0, 0.0, 0.0, 0.0, -100.0, 100.0), METRIC_CRS)
    return villages, facilities, raster, build_walk_graph(roads=roads)


def test_one_rule_for_every_unit() -> None:
    villages, facilities, raster, graph = _street()
    result = capacity_accessibility(
        villages=villages, facilities=facilities, population=raster, graph=graph, rules=CoverageRules(M250, M250)
    )
    # A reaches cells 0-2 (0, 100, 200 m), B cells 2-4: P_A = 60, P_B = 120
    r_a, r_b = 100 / 60 * 1000, 60 / 120 * 1000
    assert list(result.facilities.columns) == FACILITY_RATIO_COLUMNS
    assert list(result.facilities["facility_id"]) == ["A", "B"]
    assert np.allclose(result.facilities["catchment_population"], [60.0, 120.0])
    assert np.allclose(result.facilities["supply_ratio"], [r_a, r_b])
    assert result.facilities_without_capacity == ["C"]
    per_cell = np.array([r_a, r_a, r_a + r_b, r_b, r_b])
    assert np.allclose(result.share_accessibility, per_cell)
    assert list(result.table.columns) == ACCESSIBILITY_COLUMNS
    assert list(result.table["village_code"]) == ["W", "E"]
    expected_w = (10 * r_a + 20 * r_a) / 30
    expected_e = (30 * (r_a + r_b) + 40 * r_b + 50 * r_b) / 120
    assert np.allclose(result.table["accessibility"], [expected_w, expected_e])
    # default norm: the district's own supply, 160 visits for 150 people
    assert result.norm == pytest.approx(160 / 150 * 1000)
    below = per_cell < result.norm  # 1666.7, 1666.7, 2166.7, 500, 500 against 1066.7
    assert np.allclose(result.table["below_norm_population"], [0.0, 90.0])
    assert np.allclose(result.table["below_norm_pct"], [0.0, 75.0])
    assert below.tolist() == [False, False, False, True, True]
    # 2SFCA hands out exactly the capacity: sum of people x accessibility = sum of capacities
    assert float((PEOPLE * per_cell).sum()) == pytest.approx(160 * 1000)


def test_urban_and_rural_rules_and_an_explicit_norm() -> None:
    villages, facilities, raster, graph = _street()
    result = capacity_accessibility(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=graph,
        rules=CoverageRules(urban=M250, rural=M150),
        norm=1000.0,
    )
    # rural cells 2-4 within 150 m: B reaches 3 and 4, A none (cell 2 is 200 m from both)
    r_a, r_b = 100 / 30 * 1000, 60 / 90 * 1000
    assert np.allclose(result.facilities["catchment_population"], [30.0, 90.0])
    assert np.allclose(result.share_accessibility, [r_a, r_a, 0.0, r_b, r_b])
    assert result.norm == 1000.0
    assert np.allclose(result.table["below_norm_population"], [0.0, 120.0])
    town = town_accessibility(result.table.assign(town=villages["town"].to_numpy(), population=[30.0, 120.0])).iloc[0]
    assert town["accessibility"] == pytest.approx((30 * r_a + 90 * r_b) / 150)
    assert town["below_norm_pct"] == pytest.approx(80.0)


def test_euclidean_mode_kinds_and_no_one_in_reach() -> None:
    villages, facilities, raster, _graph = _street()
    straight = CoverageSettings(minutes=1.2, speed_kmh=6.0, mode="euclidean")  # 120 m
    result = capacity_accessibility(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=None,
        rules=CoverageRules(straight, straight),
        kinds=["图书馆"],
    )
    assert list(result.facilities["facility_id"]) == ["B"]
    assert result.facilities_without_capacity == []  # C is not of the kind asked for
    assert np.allclose(result.share_accessibility, [0.0, 0.0, 0.0, 60 / 90 * 1000, 60 / 90 * 1000])
    # a facility with nobody in reach has supply ratio 0 and adds nothing
    far = facilities.assign(geometry=[shapely.Point(50, 5000), shapely.Point(450, 50), shapely.Point(250, 50)])
    lonely = capacity_accessibility(
        villages=villages, facilities=far, population=raster, graph=None, rules=CoverageRules(straight, straight)
    )
    assert lonely.facilities["supply_ratio"].tolist()[0] == 0.0
    assert lonely.facilities["catchment_population"].tolist()[0] == 0.0


def test_inputs_are_checked() -> None:
    villages, facilities, raster, graph = _street()
    rules = CoverageRules(M250, M250)
    with pytest.raises(InputError, match="walking graph"):
        capacity_accessibility(villages=villages, facilities=facilities, population=raster, graph=None, rules=rules)
    with pytest.raises(InputError, match="capacity"):
        capacity_accessibility(
            villages=villages,
            facilities=facilities.drop(columns="capacity"),
            population=raster,
            graph=graph,
            rules=rules,
        )
    with pytest.raises(InputError, match=">= 0"):
        capacity_accessibility(
            villages=villages,
            facilities=facilities.assign(capacity=[100, -1, None]),
            population=raster,
            graph=graph,
            rules=rules,
        )
    with pytest.raises(InputError, match="norm"):
        capacity_accessibility(
            villages=villages, facilities=facilities, population=raster, graph=graph, rules=rules, norm=math.nan
        )
    with pytest.raises(CRSError, match="mixed"):
        capacity_accessibility(
            villages=villages.to_crs("EPSG:4490"), facilities=facilities, population=raster, graph=graph, rules=rules
        )


# ------------------------------------------------------------------------------------------ the demo store


def _brute_force(demo: DemoLayers, rules: CoverageRules, facilities: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per facility its catchment population, per (village, cell) share its accessibility: networkx on the
    streets cut at every link (tests/edge_linking_reference.py), one facility at a time."""
    cells = demo.coverage(rules, facilities=facilities).cells
    centres = cells.centres
    m = len(centres)
    fac_xy = shapely.get_coordinates(facilities.to_crs(METRIC_CRS).geometry.to_numpy())
    lines = walkable_lines(demo.roads.to_crs(METRIC_CRS))
    is_urban = (demo.villages["type"].to_numpy() == URBAN_TYPE)[cells.village]
    # per rule: the split network under its access distance, and each facility's metres to every cell
    metres: dict[CoverageSettings, list[np.ndarray]] = {}
    for settings in {rules.urban, rules.rural}:
        net = SplitNetwork(lines, np.vstack([centres, fac_xy]), settings.access_m)
        metres[settings] = [
            net.from_source(m + j, range(m), cutoff=settings.threshold_m + 1.0) for j in range(len(fac_xy))
        ]
    threshold = np.where(is_urban, rules.urban.threshold_m, rules.rural.threshold_m)
    capacity = facilities["capacity"].to_numpy(dtype=float)
    reached_by: list[np.ndarray] = []
    catchment = np.zeros(len(fac_xy))
    for j in range(len(fac_xy)):
        # each share under its own village's rule
        dist = np.where(is_urban, metres[rules.urban][j][cells.cell], metres[rules.rural][j][cells.cell])
        hits = dist <= threshold + 1e-6
        reached_by.append(hits)
        catchment[j] = float(cells.people[hits].sum())
    ratio = np.where(catchment > 0, capacity / np.where(catchment > 0, catchment, 1.0), 0.0) * 1000.0
    accessibility = np.zeros(len(cells.cell))
    for j, hits in enumerate(reached_by):
        accessibility[hits] += ratio[j]
    return catchment, accessibility


@pytest.mark.parametrize(
    "rules",
    [
        CoverageRules(),
        CoverageRules(urban=CoverageSettings(), rural=CoverageSettings(minutes=15, speed_kmh=4.0, access_m=250)),
    ],
)
def test_demo_against_networkx(demo: DemoLayers, rules: CoverageRules) -> None:
    result = capacity_accessibility(
        villages=demo.villages, facilities=demo.facilities, population=demo.raster, graph=demo.graph, rules=rules
    )
    served = demo.facilities[demo.facilities["capacity"].notna().to_numpy()]
    assert len(served) > 100
    catchment, accessibility = _brute_force(demo, rules, served)
    assert np.allclose(result.facilities["catchment_population"], catchment, rtol=1e-9, atol=1e-6)
    assert np.allclose(result.share_accessibility, accessibility, rtol=1e-9, atol=1e-9)
    assert (catchment > 0).sum() > 100 and (accessibility > 0).sum() > 5000  # not vacuous
    cells = demo.coverage(rules).cells
    people = np.bincount(cells.village, weights=cells.people, minlength=len(demo.villages))
    weighted = np.bincount(cells.village, weights=cells.people * accessibility, minlength=len(demo.villages))
    expected = np.divide(weighted, people, out=np.full(len(people), np.nan), where=people > 0)
    assert np.allclose(result.table["accessibility"], expected, equal_nan=True)
    # the capacity of every facility with someone in reach is handed out exactly once
    handed_out = float((cells.people * result.share_accessibility).sum())
    in_reach = float(served["capacity"].to_numpy(dtype=float)[catchment > 0].sum())
    assert handed_out == pytest.approx(in_reach * 1000.0, rel=1e-9)
    below = np.bincount(
        cells.village, weights=cells.people * (accessibility < result.norm), minlength=len(demo.villages)
    )
    assert np.allclose(result.table["below_norm_population"], below)
