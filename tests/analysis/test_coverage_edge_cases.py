"""Awkward inputs the coverage engine must handle and report, not crash on: a road network in pieces,
facilities off the network, villages without people, and a population raster in another CRS.

Each expectation is computed here by brute force (shapely polygons, plain loops), not by the engine's helpers.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from affine import Affine

from geoplan.analysis.coverage import CoverageRules, CoverageSettings, compute_coverage, district_total
from geoplan.analysis.network import build_walk_graph
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import CRSError
from geoplan.rasterdata import RasterData
from geoplan.storage.gpkg import GeoPackageStore

X0, Y0 = 330_000.0, 2_510_000.0  # EPSG:4547 metres, inside Gaoming
WALK = CoverageRules()
EUCLID = CoverageRules(urban=CoverageSettings(mode="euclidean"), rural=CoverageSettings(mode="euclidean"))


def _villages(boxes: list[tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    n = len(boxes)
    return gpd.GeoDataFrame(
        {
            "village_code": [f"V{i}" for i in range(n)],
            "village_name": [f"村{i}" for i in range(n)],
            "town_code": ["T"] * n,
            "town": ["镇"] * n,
            "type": ["village"] * n,
            "population": [0.0] * n,
        },
        geometry=[shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes],
        crs=METRIC_CRS,
    )


def _facilities(points: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "facility_id": [f"F{i}" for i in range(len(points))],
            "name": [f"站{i}" for i in range(len(points))],
            "kind": ["文化站"] * len(points),
        },
        geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in points],
        crs=METRIC_CRS,
    )


def _street(x_from: float, x_to: float, y: float) -> list[list[tuple[float, float]]]:
    """An east-west street cut every 100 m: links go to nodes, so the network needs a node beside each cell."""
    xs = np.arange(x_from, x_to + 1.0, 100.0)
    return [[(float(a), y), (float(b), y)] for a, b in itertools.pairwise(xs.tolist())]


def _roads(lines: list[list[tuple[float, float]]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"road_id": [f"R{i}" for i in range(len(lines))], "road_class": "支路", "walkable": True},
        geometry=[shapely.LineString([(X0 + x, Y0 + y) for x, y in line]) for line in lines],
        crs=METRIC_CRS,
    )


def _grid(rows: int, cols: int, cell: float = 100.0) -> RasterData:
    """One person per cell, cells of `cell` metres, the grid's north-west corner at (X0, Y0 + rows * cell)."""
    return RasterData(
        array=np.ones((rows, cols), dtype=np.float32),
        transform=Affine(cell, 0.0, X0, 0.0, -cell, Y0 + rows * cell),
        crs=METRIC_CRS,
        nodata=-1.0,
    )


def test_a_network_in_pieces_leaves_the_part_without_a_facility_unrouted() -> None:
    # two road pieces 2 km apart, a facility only on the west one; one village over each
    roads = _roads(_street(50, 1050, 150) + _street(3050, 4050, 150))
    villages = _villages([(0, 0, 1000, 300), (3000, 0, 4000, 300)])
    facilities = _facilities([(50, 150)])
    graph = build_walk_graph(roads=roads)
    assert graph.components == 2
    result = compute_coverage(
        villages=villages, facilities=facilities, population=_grid(3, 40), graph=graph, rules=WALK
    )
    west, east = result.table.iloc[0], result.table.iloc[1]
    assert east["population"] == pytest.approx(30.0)
    assert east["covered_population"] == 0.0
    assert east["routed_population"] == 0.0  # linked to the network, but no facility on its piece
    assert east["off_network_population"] == 0.0
    assert math.isnan(east["mean_minutes"]) and math.isinf(east["p90_minutes"])
    # west: cell centres (50 + 100c, 50 | 150 | 250) lie on or 100 m beside the node at x = 50 + 100c, and the
    # facility stands on the first node: walk = |y - 150| + 100c
    covered = sum(1 for c in range(10) for y in (50, 150, 250) if abs(y - 150) + 100 * c <= 750)
    assert west["covered_population"] == pytest.approx(covered)
    assert result.unreachable_population == pytest.approx(30.0)


def test_facilities_off_the_network_serve_nobody_and_are_listed() -> None:
    roads = _roads(_street(0, 1000, 150))
    villages = _villages([(0, 0, 1000, 300)])
    facilities = _facilities([(500, 150), (500, 900)])  # F1 is 750 m from the road
    graph = build_walk_graph(roads=roads)
    both = compute_coverage(villages=villages, facilities=facilities, population=_grid(3, 10), graph=graph, rules=WALK)
    alone = compute_coverage(
        villages=villages, facilities=facilities.iloc[:1], population=_grid(3, 10), graph=graph, rules=WALK
    )
    assert both.facilities_off_network == ["F1"]
    assert both.table["covered_population"].tolist() == alone.table["covered_population"].tolist()


def test_villages_without_people_get_no_percentage_and_do_not_disturb_the_totals() -> None:
    roads = _roads(_street(0, 1000, 150))
    # V1 lies beyond the raster; V2 lies over cells that hold nobody
    villages = _villages([(0, 0, 1000, 300), (5000, 5000, 6000, 6000), (0, 300, 1000, 400)])
    raster = _grid(4, 10)
    raster.array[0, :] = 0.0  # the top row (y 300-400) is empty
    result = compute_coverage(
        villages=villages,
        facilities=_facilities([(0, 150)]),
        population=raster,
        graph=build_walk_graph(roads=roads),
        rules=WALK,
    )
    table = result.table.set_index("village_code")
    for code in ("V1", "V2"):
        assert table.loc[code, "population"] == 0.0
        assert math.isnan(table.loc[code, "coverage_pct"])
    total = district_total(result.table)
    assert total["population"] == pytest.approx(30.0)
    assert total["coverage_pct"] == pytest.approx(100.0 * table.loc["V0", "covered_population"] / 30.0)


def _lonlat_raster() -> RasterData:
    """A CGCS2000 lon/lat grid of 0.001 degree cells over the test area, 1 to 40 people per cell."""
    to_geo = pyproj.Transformer.from_crs(METRIC_CRS, STORE_CRS, always_xy=True)
    lon0, lat0 = to_geo.transform(X0 - 200.0, Y0 + 1400.0)
    rows, cols = 14, 14
    values = (np.arange(rows * cols, dtype=np.float32) % 40 + 1).reshape(rows, cols)
    return RasterData(array=values, transform=Affine(0.001, 0.0, lon0, 0.0, -0.001, lat0), crs=STORE_CRS, nodata=-1.0)


def test_a_raster_in_another_crs_is_placed_cell_by_cell_in_metres() -> None:
    villages = _villages([(0, 0, 600, 1200), (600, 0, 1200, 1200)])
    facilities = _facilities([(300, 600)])
    raster = _lonlat_raster()
    result = compute_coverage(villages=villages, facilities=facilities, population=raster, graph=None, rules=EUCLID)

    # brute force: every cell's four corners to metres, its polygon cut by each village, its centre's distance
    to_metric = pyproj.Transformer.from_crs(STORE_CRS, METRIC_CRS, always_xy=True)
    t = raster.transform
    geoms = villages.geometry.to_numpy()
    pieces: list[list[tuple[float, bool]]] = [[] for _ in geoms]  # (people, covered) per village
    for r in range(raster.array.shape[0]):
        for c in range(raster.array.shape[1]):
            corners = [to_metric.transform(*(t @ (c + dc, r + dr))) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
            cell = shapely.Polygon(corners)
            cx, cy = to_metric.transform(*(t @ (c + 0.5, r + 0.5)))
            near = math.dist((cx, cy), (X0 + 300.0, Y0 + 600.0)) <= 750.0
            areas = [cell.intersection(g).area for g in geoms]
            held = sum(areas)
            for i, area in enumerate(areas):
                if area > 0:
                    pieces[i].append((float(raster.array[r, c]) * area / held, near))
    for i, row in enumerate(result.table.itertuples()):
        population = sum(p for p, _ in pieces[i])
        covered = sum(p for p, near in pieces[i] if near)
        assert row.population == pytest.approx(population, rel=1e-9)
        assert row.covered_population == pytest.approx(covered, rel=1e-9)
    assert result.table["population"].sum() + result.unassigned_population == pytest.approx(
        float(raster.array.sum()), rel=1e-9
    )


def test_a_raster_in_an_unplaceable_crs_is_refused_clearly() -> None:
    engineering = 'LOCAL_CS["site grid",LOCAL_DATUM["local",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    raster = RasterData(
        array=np.ones((2, 2), dtype=np.float32), transform=Affine(1, 0, 0, 0, -1, 2), crs=engineering, nodata=-1.0
    )
    with pytest.raises(CRSError, match="population raster"):
        compute_coverage(
            villages=_villages([(0, 0, 10, 10)]),
            facilities=_facilities([(5, 5)]),
            population=raster,
            graph=None,
            rules=EUCLID,
        )


def test_euclidean_coverage_is_never_below_network_coverage_on_the_demo(
    demo_store_path: Path, catalog: Catalog
) -> None:
    """Every network route is at least as long as the straight line (links and segments are straight or longer),
    so with radius = speed x time no village may lose people by switching to the Euclidean mode."""
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        inputs = {
            "villages": store.read("villages"),
            "facilities": store.read("culture_facilities"),
            "population": store.read_raster("population"),
        }
        graph = build_walk_graph(roads=store.read("roads"))
    finally:
        store.close()
    network = compute_coverage(**inputs, graph=graph, rules=WALK).table.set_index("village_code")
    flat = compute_coverage(**inputs, graph=None, rules=EUCLID).table.set_index("village_code")
    assert (flat["covered_population"] >= network["covered_population"] - 1e-6).all()
    assert flat["covered_population"].sum() > network["covered_population"].sum()  # and the walk really costs
