"""The coverage engine against hand-computed answers on a tiny grid, and against independent computations on the
demo store: networkx Dijkstra on the streets cut at every link (tests/edge_linking_reference.py), per-village
shapely box intersections for the cell shares, and brute-force shapely distances for the Euclidean mode.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from geoplan.analysis.coverage import (
    COVERAGE_COLUMNS,
    CoverageRules,
    CoverageSettings,
    compute_coverage,
    district_total,
    town_rollup,
    village_coverage,
)
from geoplan.analysis.network import build_walk_graph
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import CRSError, InputError
from geoplan.rasterdata import RasterData
from tests.demo_layers import DemoLayers
from tests.edge_linking_reference import SplitNetwork, walkable_lines

WALK = CoverageSettings()  # 4.5 km/h, 10 min = 750 m, access 200 m
MPM = 4500.0 / 60.0  # metres per minute

# ------------------------------------------------------------------------------------------ the tiny grid
#
# Cells of 100 m, 3 rows x 12 columns, centres (50 + 100c, 50 - 100r), one person each. The road runs along
# y = 150 with a node above every cell centre (x = 50 + 100c), so a cell of row r is linked, at the nearest
# point of the street, that node, by 100 + 100r m (rows 0 and 1 within the 200 m access distance, row 2 not).
# Facility F1 stands 50 m north of the first node.
# A cell's walk: (100 + 100r) + 100c + 50 m; covered when that is <= 750 m.
# Village A (社区) holds columns 0-3 and the west half of column 4; village B (村) the rest.


def _tiny() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, gpd.GeoDataFrame]:
    xs = 50.0 + 100.0 * np.arange(12)
    roads = [shapely.MultiLineString([[(x0, 150.0), (x1, 150.0)]]) for x0, x1 in itertools.pairwise(xs)]
    walkable = [True] * len(roads)
    # a shortcut that is not walkable must not count: straight from the facility's node to the far end
    roads.append(shapely.MultiLineString([[(50.0, 150.0), (1150.0, 150.0)]]))
    walkable.append(False)
    # a longer parallel segment between the first two nodes: the shorter one is kept in the matrix. F1 stands on
    # it, 50 m along from the first node, so its walk to that node is 50 m by either street.
    roads.append(shapely.MultiLineString([[(50.0, 150.0), (50.0, 400.0), (150.0, 400.0), (150.0, 150.0)]]))
    walkable.append(True)
    road_frame = gpd.GeoDataFrame(
        {
            "road_id": [f"R{i}" for i in range(len(roads))],
            "road_class": "支路",
            "walkable": walkable,
        },
        geometry=roads,
        crs=METRIC_CRS,
    )
    villages = gpd.GeoDataFrame(
        {
            "village_code": ["A", "B"],
            "village_name": ["甲社区", "乙村"],
            "town_code": ["T", "T"],
            "town": ["镇", "镇"],
            "type": ["community", "village"],
            "population": [13.5, 22.5],
        },
        geometry=[shapely.box(0, -200, 450, 100), shapely.box(450, -200, 1200, 100)],
        crs=METRIC_CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["F1", "F2"],
            "name": ["站", "远"],
            "kind": ["文化站", "农家书屋"],
        },
        geometry=[shapely.Point(50.0, 200.0), shapely.Point(1150.0, 700.0)],  # F2: 550 m from the road
        crs=METRIC_CRS,
    )
    raster = RasterData(
        array=np.ones((3, 12), dtype=np.float32),
        transform=Affine(100.0, 0.0, 0.0, 0.0, -100.0, 100.0),
        crs=METRIC_CRS,
        nodata=-1.0,
    )
    return villages, facilities, raster, road_frame


def _hand(rules: CoverageRules) -> dict[str, tuple[float, float]]:
    """(population, covered) per village from the formula in the comment above."""
    out: dict[str, tuple[float, float]] = {}
    for code, cols in (
        ("A", [(c, 1.0) for c in range(4)] + [(4, 0.5)]),
        ("B", [(4, 0.5)] + [(c, 1.0) for c in range(5, 12)]),
    ):
        settings = rules.urban if code == "A" else rules.rural
        pop = covered = 0.0
        for r in range(3):
            for c, share in cols:
                pop += share
                link = 100.0 + 100.0 * r
                if link <= settings.access_m and link + 100.0 * c + 50.0 <= settings.threshold_m:
                    covered += share
        out[code] = (pop, covered)
    return out


def test_walk_graph_snaps_end_points_drops_unwalkable_and_keeps_the_shortest_parallel_edge() -> None:
    *_, roads = _tiny()
    graph = build_walk_graph(roads=roads)
    assert graph.n_nodes == 12
    assert graph.n_edges == 11
    assert graph.matrix[0, 1] == pytest.approx(100.0)
    assert graph.matrix[0, 11] == 0.0  # the unwalkable shortcut is not there
    # end points 3 mm apart snap to one node only when they round to the same centimetre
    near = gpd.GeoDataFrame(
        {"walkable": [True, True]},
        geometry=[
            shapely.MultiLineString([[(0.0, 0.0), (10.0, 0.0)]]),
            shapely.MultiLineString([[(10.001, 0.002), (20.0, 0.0)]]),
        ],
        crs=METRIC_CRS,
    )
    assert build_walk_graph(roads=near).n_nodes == 3
    dist, idx = graph.nearest(np.array([[349.0, 10.0]]))
    assert idx[0] == 3 and dist[0] == pytest.approx(np.hypot(1.0, 140.0))


def test_tiny_grid_network_coverage_matches_the_hand_computation() -> None:
    villages, facilities, raster, roads = _tiny()
    graph = build_walk_graph(roads=roads)
    rules = CoverageRules(urban=WALK, rural=WALK)
    result = compute_coverage(villages=villages, facilities=facilities, population=raster, graph=graph, rules=rules)
    table = result.table.set_index("village_code")
    assert list(result.table.columns) == COVERAGE_COLUMNS
    hand = _hand(rules)
    # A: rows 0 and 1 covered in columns 0-3 and half of 4 (the cell at exactly 750 m is covered)
    assert hand["A"] == (13.5, 9.0)
    # B: row 0 half of 4, 5, 6 (150 + 600 = 750 m); row 1 half of 4, 5 (250 + 500 = 750 m); 7 is 850 m
    assert hand["B"] == (22.5, 4.0)
    for code, (pop, covered) in hand.items():
        assert table.loc[code, "population"] == pytest.approx(pop)
        assert table.loc[code, "covered_population"] == pytest.approx(covered)
        assert table.loc[code, "coverage_pct"] == pytest.approx(100.0 * covered / pop)
        assert table.loc[code, "off_network_population"] == pytest.approx(pop / 3)  # row 2: 300 m from the road
        assert table.loc[code, "routed_population"] == pytest.approx(2 * pop / 3)
        assert table.loc[code, "nearest_facility"] == "F1"
        assert table.loc[code, "p90_minutes"] == np.inf  # a third has no route
    walks_a = [
        (100.0 + 100 * r + 100 * c + 50.0, s) for r in (0, 1) for c, s in [(0, 1), (1, 1), (2, 1), (3, 1), (4, 0.5)]
    ]
    mean_a = sum(m * s for m, s in walks_a) / sum(s for _, s in walks_a) / MPM
    assert table.loc["A", "mean_minutes"] == pytest.approx(mean_a)
    # the facility 550 m from the road serves nobody and is reported
    assert result.facilities_off_network == ["F2"]
    assert result.unassigned_population == 0.0
    totals = district_total(result.table)
    assert totals["population"] == pytest.approx(36.0)
    assert totals["covered_population"] == pytest.approx(13.0)
    town = town_rollup(result.table)
    assert town.loc[0, "town"] == "镇" and town.loc[0, "villages"] == 2
    assert town.loc[0, "coverage_pct"] == pytest.approx(100 * 13.0 / 36.0)


def test_tiny_grid_access_distance_is_counted_and_rules_split_by_type() -> None:
    villages, facilities, raster, roads = _tiny()
    graph = build_walk_graph(roads=roads)
    # rural: 5 minutes (375 m), access 100 m -> B: row 0 only, 150 + 100c <= 375 -> nothing in B (c >= 4)
    rural = CoverageSettings(minutes=5.0, access_m=100.0)
    # urban: slower walkers, 3.6 km/h for 10 min = 600 m -> A: row 0 c <= 4.5, row 1 c <= 3.5
    urban = CoverageSettings(speed_kmh=3.6)
    rules = CoverageRules(urban=urban, rural=rural)
    table = village_coverage(
        villages=villages, facilities=facilities, population=raster, graph=graph, rules=rules
    ).set_index("village_code")
    hand = _hand(rules)
    assert hand == {"A": (13.5, 8.5), "B": (22.5, 0.0)}
    for code, (_, covered) in hand.items():
        assert table.loc[code, "covered_population"] == pytest.approx(covered)
    # with access 100 m, row 1 (200 m from the road) is off the network in B
    assert table.loc["B", "off_network_population"] == pytest.approx(2 * 22.5 / 3)


def test_tiny_grid_euclidean_is_straight_line_distance() -> None:
    villages, facilities, raster, _ = _tiny()
    flat = CoverageSettings(mode="euclidean")
    table = village_coverage(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=None,
        rules=CoverageRules(urban=flat, rural=flat),
    ).set_index("village_code")
    covered = {"A": 0.0, "B": 0.0}
    for r in range(3):
        for c in range(12):
            x, y = 50.0 + 100.0 * c, 50.0 - 100.0 * r
            d = min(np.hypot(x - 50.0, y - 200.0), np.hypot(x - 1150.0, y - 700.0))  # F2 counts here
            if d <= 750.0:
                covered["A"] += 1.0 if c < 4 else 0.5 if c == 4 else 0.0
                covered["B"] += 0.5 if c == 4 else 1.0 if c > 4 else 0.0
    for code, value in covered.items():
        assert table.loc[code, "covered_population"] == pytest.approx(value)


def test_bad_inputs_are_refused() -> None:
    villages, facilities, raster, roads = _tiny()
    graph = build_walk_graph(roads=roads)
    with pytest.raises(CRSError, match="mixed coordinate systems"):
        village_coverage(
            villages=villages,
            facilities=facilities.to_crs(STORE_CRS),
            population=raster,
            graph=graph,
            rules=CoverageRules(),
        )
    with pytest.raises(InputError, match="walking graph"):
        village_coverage(villages=villages, facilities=facilities, population=raster, graph=None, rules=CoverageRules())
    with pytest.raises(InputError):
        CoverageSettings(minutes=0)
    with pytest.raises(InputError):
        CoverageSettings(mode="bus")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ the demo store


@dataclass(frozen=True)
class Reference:
    """Independent per-cell data: centres, values, and per village {cell: share of the cell's people}."""

    centres: np.ndarray
    values: np.ndarray
    shares: list[dict[int, float]]


@pytest.fixture(scope="module")
def reference(demo: DemoLayers) -> Reference:
    array = demo.raster.array.astype(np.float64)
    rows, cols = np.nonzero((array != demo.raster.nodata) & (array > 0))
    t = demo.raster.transform
    x0, y1 = t.c + cols * t.a, t.f + rows * t.e
    boxes = [shapely.box(a, b + t.e, a + t.a, b) for a, b in zip(x0, y1, strict=True)]
    centres = np.column_stack([x0 + t.a / 2, y1 + t.e / 2])
    villages = demo.villages.to_crs(METRIC_CRS).geometry.to_numpy()
    areas: list[dict[int, float]] = []
    held = np.zeros(len(boxes))
    box_array = np.array(boxes, dtype=object)
    for village in villages:
        minx, miny, maxx, maxy = village.bounds
        near = np.flatnonzero((x0 < maxx) & (x0 + t.a > minx) & (y1 + t.e < maxy) & (y1 > miny))
        cut = shapely.area(shapely.intersection(box_array[near], village))
        pos = cut > 0
        areas.append(dict(zip(near[pos].tolist(), cut[pos].tolist(), strict=True)))
        np.add.at(held, near[pos], cut[pos])
    shares = [{c: a / held[c] for c, a in one.items()} for one in areas]
    return Reference(centres=centres, values=array[rows, cols], shares=shares)


def _nx_distances(demo: DemoLayers, settings: CoverageSettings, centres: np.ndarray) -> np.ndarray:
    """Metres from each cell centre to its nearest facility: networkx on the streets cut at every link
    (tests/edge_linking_reference.py), inf for no route."""
    lines = walkable_lines(demo.roads.to_crs(METRIC_CRS))
    fac = shapely.get_coordinates(demo.facilities.to_crs(METRIC_CRS).geometry.to_numpy())
    net = SplitNetwork(lines, np.vstack([centres, fac]), settings.access_m)
    m = len(centres)
    return net.nearest_source(range(m, m + len(fac)), range(m), cutoff=settings.threshold_m + 1.0)


def _reference_coverage(
    demo: DemoLayers, ref: Reference, covered_urban: np.ndarray, covered_rural: np.ndarray
) -> pd.DataFrame:
    rows = []
    for k, shares in enumerate(ref.shares):
        covered = covered_urban if demo.villages["type"].iloc[k] == "community" else covered_rural
        pop = sum(ref.values[c] * s for c, s in shares.items())
        cov = sum(ref.values[c] * s for c, s in shares.items() if covered[c])
        rows.append((demo.villages["village_code"].iloc[k], pop, 100.0 * cov / pop if pop > 0 else np.nan))
    return pd.DataFrame(rows, columns=["village_code", "population", "coverage_pct"]).set_index("village_code")


def test_demo_network_coverage_equals_networkx(demo: DemoLayers, reference: Reference) -> None:
    urban = CoverageSettings()
    rural = CoverageSettings(minutes=15.0, speed_kmh=4.0, access_m=300.0)
    table = village_coverage(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=demo.graph,
        rules=CoverageRules(urban=urban, rural=rural),
    ).set_index("village_code")
    expected = _reference_coverage(
        demo,
        reference,
        _nx_distances(demo, urban, reference.centres) <= urban.threshold_m + 1e-6,
        _nx_distances(demo, rural, reference.centres) <= rural.threshold_m + 1e-6,
    )
    diff = (table["coverage_pct"] - expected["coverage_pct"]).abs()
    assert diff.max() < 0.5, diff.sort_values().tail()
    np.testing.assert_allclose(table["population"], expected["population"], rtol=1e-9)
    # coverage varies (the demo leaves gaps on purpose) and the rural rule was really applied
    assert table["coverage_pct"].min() < 50.0 < table["coverage_pct"].max()


def test_demo_euclidean_coverage_equals_shapely_distances(demo: DemoLayers, reference: Reference) -> None:
    flat = CoverageSettings(mode="euclidean")
    table = village_coverage(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=None,
        rules=CoverageRules(urban=flat, rural=flat),
    ).set_index("village_code")
    all_facilities = shapely.MultiPoint(demo.facilities.to_crs(METRIC_CRS).geometry.to_numpy())
    dist = shapely.distance(shapely.points(reference.centres), all_facilities)
    covered = dist <= 750.0
    expected = _reference_coverage(demo, reference, covered, covered)
    diff = (table["coverage_pct"] - expected["coverage_pct"]).abs()
    assert diff.max() < 1e-6


def test_demo_population_totals_and_inputs_untouched(demo: DemoLayers) -> None:
    before = (demo.villages.copy(), demo.facilities.copy(), demo.raster.array.copy())
    result = compute_coverage(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=demo.graph,
        rules=CoverageRules(),
        kinds=["文化站", "综合性文化服务中心"],
    )
    table = result.table
    assert table["population"].sum() + result.unassigned_population == pytest.approx(demo.raster.valid_sum(), abs=1e-6)
    # the villages' stored populations are the same exact zonal sums
    np.testing.assert_allclose(table["population"], demo.villages["population"], rtol=1e-9, atol=1e-6)
    assert district_total(table)["population"] == pytest.approx(demo.raster.valid_sum(), abs=1e-6)
    assert town_rollup(table)["population"].sum() == pytest.approx(demo.raster.valid_sum(), abs=1e-6)
    kinds = set(demo.facilities.set_index("facility_id").loc[table["nearest_facility"].dropna(), "kind"])
    assert kinds <= {"文化站", "综合性文化服务中心"}
    pd.testing.assert_frame_equal(demo.villages, before[0])
    pd.testing.assert_frame_equal(demo.facilities, before[1])
    np.testing.assert_array_equal(demo.raster.array, before[2])
