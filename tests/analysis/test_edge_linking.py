"""Linking to the nearest street (issue 14, item 4) on a layout of long bent ways, written here: junctions about
450 m apart joined by bent streets, a longer parallel street, a loop, a dead end, a way that is not walkable,
facilities beside the middle of streets (two on one street) and one far from every street.

Checked against tests/edge_linking_reference.py (networkx on the streets really cut at every link, shapely
distances for the links, exact cell fractions by shapely box intersections), which shares no code with the
engine; the people off the network against plain shapely distances to the walkable lines.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from geoplan.analysis.coverage import CoverageRules, CoverageSettings, compute_coverage
from geoplan.analysis.linking import link_points
from geoplan.analysis.network import build_walk_graph
from geoplan.analysis.reach import cell_facility_pairs
from geoplan.analysis.service_areas import service_areas
from geoplan.analysis.siting import suggest_sites
from geoplan.crs import METRIC_CRS
from geoplan.rasterdata import RasterData
from tests.edge_linking_reference import SplitNetwork

URBAN = CoverageSettings()  # 750 m, access 200 m
RURAL = CoverageSettings(minutes=15.0, speed_kmh=4.0, access_m=150.0)  # 1000 m, access 150 m
CELL = 100.0
X0, Y0, COLS, ROWS = -400.0, 2300.0, 27, 27  # raster: x from -400, y down from 2300


def _bent(a: tuple[float, float], b: tuple[float, float], amplitude: float, waves: int = 1) -> shapely.LineString:
    """A street from a to b bending sideways (a sine of `amplitude` metres), 9 vertices."""
    t = np.linspace(0.0, 1.0, 9)
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    nx_, ny_ = -dy / length, dx / length
    side = amplitude * np.sin(math.pi * waves * t)
    return shapely.LineString(np.column_stack([ax + dx * t + nx_ * side, ay + dy * t + ny_ * side]))


def _layout() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, gpd.GeoDataFrame]:
    rng = np.random.default_rng(14)
    junction = {
        (i, j): (i * 450.0 + rng.uniform(-40, 40), j * 450.0 + rng.uniform(-40, 40)) for i in range(5) for j in range(5)
    }
    lines: list[shapely.LineString] = []
    walkable: list[bool] = []
    for (i, j), a in junction.items():
        for di, dj in ((1, 0), (0, 1)):
            if (i + di, j + dj) not in junction or (i, j, di) in {(1, 1, 1), (3, 2, 0), (2, 3, 1)}:
                continue  # a few streets missing: longer detours
            amplitude = rng.uniform(-70, 70)
            lines.append(_bent(a, junction[(i + di, j + dj)], amplitude, waves=int(rng.integers(1, 3))))
            walkable.append(True)
    # a longer parallel street between two junctions, a loop from a junction, a dead end
    lines.append(_bent(junction[(0, 0)], junction[(1, 0)], -160.0))
    walkable.append(True)
    jx, jy = junction[(4, 4)]
    lines.append(
        shapely.LineString([(jx, jy), (jx + 150, jy + 60), (jx + 180, jy + 200), (jx + 20, jy + 170), (jx, jy)])
    )
    walkable.append(True)
    lines.append(_bent(junction[(2, 2)], (junction[(2, 2)][0] + 310.0, junction[(2, 2)][1] + 205.0), 35.0))
    walkable.append(True)
    # a motorway straight across, not walkable: it must be neither walked nor linked to
    lines.append(shapely.LineString([(-300.0, 1210.0), (2150.0, 1030.0)]))
    walkable.append(False)
    roads = gpd.GeoDataFrame(
        {"road_id": [f"R{i}" for i in range(len(lines))], "walkable": walkable}, geometry=lines, crs=METRIC_CRS
    )

    # facilities beside the middle of streets (the nearest junction is far), two on one street, one far away
    def beside(k: int, share: float, offset: float) -> tuple[float, float]:
        line = lines[k]
        p = line.interpolate(share, normalized=True)
        q = line.interpolate(min(share + 0.01, 1.0), normalized=True)
        dx, dy = q.x - p.x, q.y - p.y
        n = math.hypot(dx, dy)
        return (p.x - dy / n * offset, p.y + dx / n * offset)

    spots = [beside(3, 0.45, 35.0), beside(3, 0.8, -20.0), beside(17, 0.5, 60.0), beside(29, 0.3, 12.0)]
    spots.append((2600.0, -350.0))  # 600 m from every street
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": [f"F{i}" for i in range(len(spots))],
            "name": [f"站{i}" for i in range(len(spots))],
            "kind": "文化站",
            "capacity": [300.0, 200.0, 500.0, 400.0, 100.0],
        },
        geometry=[shapely.Point(p) for p in spots],
        crs=METRIC_CRS,
    )
    people = rng.integers(0, 40, size=(ROWS, COLS)).astype(np.float32)
    people[rng.random((ROWS, COLS)) < 0.1] = 0.0
    raster = RasterData(array=people, transform=Affine(CELL, 0.0, X0, 0.0, -CELL, Y0), crs=METRIC_CRS, nodata=-1.0)
    # four villages cut by two slanted lines, so many cells are split between villages
    extent = shapely.box(X0, Y0 - ROWS * CELL, X0 + COLS * CELL, Y0)
    west = shapely.Polygon([(-1e4, -1e4), (830 + 0.21 * -1e4, -1e4), (830 + 0.21 * 1e4, 1e4), (-1e4, 1e4)])
    south = shapely.Polygon([(-1e4, -1e4), (1e4, -1e4), (1e4, 1010 - 0.17 * 1e4), (-1e4, 1010 + 0.17 * 1e4)])
    parts = [
        extent & west & south,
        extent & west - south,
        (extent - west) & south,
        extent - west - south,
    ]
    villages = gpd.GeoDataFrame(
        {
            "village_code": ["V0", "V1", "V2", "V3"],
            "village_name": ["甲", "乙", "丙", "丁"],
            "town_code": "T",
            "town": "镇",
            "type": ["community", "village", "community", "village"],
        },
        geometry=parts,
        crs=METRIC_CRS,
    )
    return villages, facilities, raster, roads


def _cells(raster: RasterData, villages: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Populated cell centres, their people, and (villages x cells) exact area fractions, by shapely boxes."""
    rows, cols = np.nonzero(raster.array > 0)
    x0 = X0 + cols * CELL
    y1 = Y0 - rows * CELL
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    fractions = np.array([shapely.area(shapely.intersection(boxes, v)) / CELL**2 for v in villages.geometry])
    assert np.allclose(fractions.sum(axis=0), 1.0)  # the villages tile the raster
    return np.column_stack([x0 + CELL / 2, y1 - CELL / 2]), raster.array[rows, cols].astype(float), fractions


@pytest.fixture(scope="module")
def layout() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, gpd.GeoDataFrame]:
    return _layout()


def _reference(
    layout: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, gpd.GeoDataFrame], settings: CoverageSettings
) -> tuple[np.ndarray, np.ndarray, SplitNetwork]:
    """Per populated cell: metres to the nearest facility, and whether it is off the network."""
    villages, facilities, raster, roads = layout
    centres, _, _ = _cells(raster, villages)
    fac = shapely.get_coordinates(facilities.geometry.to_numpy())
    lines = list(roads.geometry[roads["walkable"]])
    net = SplitNetwork(lines, np.vstack([centres, fac]), settings.access_m)
    m = len(centres)
    dist = net.nearest_source(range(m, m + len(fac)), range(m), cutoff=settings.horizon_m)
    return dist, ~net.linked[:m], net


def test_per_village_coverage_equals_the_split_network(layout) -> None:  # type: ignore[no-untyped-def]
    villages, facilities, raster, roads = layout
    graph = build_walk_graph(roads=roads)
    assert graph.n_edges < len(graph.edge_geoms)  # the parallel street and the loop are kept as edges only
    result = compute_coverage(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=graph,
        rules=CoverageRules(urban=URBAN, rural=RURAL),
    )
    table = result.table.set_index("village_code")
    centres, people, fractions = _cells(raster, villages)
    expected = {}
    for settings, grid in ((URBAN, result.urban), (RURAL, result.rural)):
        dist, off, _ = _reference(layout, settings)
        # per cell the same metres (the engine's cells come in its own order: match them by centre)
        grid_centres = result.cells.centres
        order = np.lexsort((grid_centres[:, 1], grid_centres[:, 0]))
        ref_order = np.lexsort((centres[:, 1], centres[:, 0]))
        assert np.allclose(grid_centres[order], centres[ref_order])
        mine = np.full(len(centres), np.nan)
        mine[ref_order] = (grid.minutes * settings.metres_per_minute)[order]
        both = np.isfinite(dist)
        assert np.array_equal(np.isfinite(mine), both)
        assert np.allclose(mine[both], dist[both], rtol=0, atol=1e-6)
        expected[settings] = (dist <= settings.threshold_m + 1e-6, off)
    for k, code in enumerate(villages["village_code"]):
        settings = URBAN if villages["type"].iloc[k] == "community" else RURAL
        covered, off = expected[settings]
        pop = float((people * fractions[k]).sum())
        pct = 100.0 * float((people * fractions[k] * covered).sum()) / pop
        assert table.loc[code, "population"] == pytest.approx(pop, rel=1e-9)
        assert abs(table.loc[code, "coverage_pct"] - pct) < 0.5
        assert table.loc[code, "coverage_pct"] == pytest.approx(pct, abs=1e-6)  # in fact exactly
        assert table.loc[code, "off_network_population"] == pytest.approx(float((people * fractions[k] * off).sum()))
    # not vacuous: every village partly covered, the far facility reported
    assert ((table["coverage_pct"] > 5) & (table["coverage_pct"] < 95)).all()
    assert result.facilities_off_network == ["F4"]


@pytest.mark.parametrize("settings", [URBAN, RURAL])
def test_off_network_population_is_the_people_beyond_access_m_of_every_walkable_line(layout, settings) -> None:  # type: ignore[no-untyped-def]
    villages, facilities, raster, roads = layout
    graph = build_walk_graph(roads=roads)
    result = compute_coverage(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=graph,
        rules=CoverageRules(urban=settings, rural=settings),
    )
    centres, people, _ = _cells(raster, villages)
    streets = shapely.MultiLineString(list(roads.geometry[roads["walkable"]]))
    far = shapely.distance(shapely.points(centres), streets) > settings.access_m
    assert 0 < far.sum() < len(far)
    assert result.table["off_network_population"].sum() == pytest.approx(float(people[far].sum()), rel=1e-12)
    # the nearest-node model puts far more people off this network: the point of the change
    node = compute_coverage(
        villages=villages,
        facilities=facilities,
        population=raster,
        graph=graph,
        rules=CoverageRules(urban=settings, rural=settings),
        linker="node",
    )
    assert node.table["off_network_population"].sum() > 1.5 * result.table["off_network_population"].sum()


def test_links_to_the_middle_of_a_bent_street(layout) -> None:  # type: ignore[no-untyped-def]
    """Each facility's link and position along its street, against shapely on the street itself."""
    _, facilities, _, roads = layout
    graph = build_walk_graph(roads=roads)
    fac = shapely.get_coordinates(facilities.geometry.to_numpy())
    links = link_points(graph, fac, access_m=200.0)
    assert links.linked.tolist() == [True, True, True, True, False]
    streets = list(roads.geometry[roads["walkable"]])
    for i in range(4):
        p = shapely.Point(fac[i])
        d = [s.distance(p) for s in streets]
        street = streets[int(np.argmin(d))]
        assert links.link_m[i] == pytest.approx(min(d), abs=1e-9)
        assert graph.edge_geoms[links.edge[i]].equals(street)
        assert links.along[i] == pytest.approx(street.project(p), abs=1e-6)
        # far from either end: the nearest node would have been a poor link
        assert links.offset[i].min() > links.link_m[i] + 50.0
    assert links.edge[0] == links.edge[1]  # two facilities on one street: the direct walk between them counts


def test_pairs_capacity_reach_equal_the_split_network(layout) -> None:  # type: ignore[no-untyped-def]
    """Every (cell, facility) pair within the threshold, as the capacity check and siting use them."""
    villages, facilities, raster, roads = layout
    graph = build_walk_graph(roads=roads)
    centres, _, _ = _cells(raster, villages)
    fac = shapely.get_coordinates(facilities.geometry.to_numpy())
    pairs = cell_facility_pairs(centres, fac, graph, URBAN)
    _, _, net = _reference(layout, URBAN)
    m = len(centres)
    mine = pd.Series(pairs.metres, index=pd.MultiIndex.from_arrays([pairs.cell, pairs.facility]))
    count = 0
    for f in range(len(fac)):
        dist = net.from_source(m + f, range(m), cutoff=URBAN.threshold_m + 1e-6)
        hits = np.flatnonzero(np.isfinite(dist))
        got = mine.xs(f, level=1) if f in set(pairs.facility.tolist()) else pd.Series(dtype=float)
        assert sorted(got.index.tolist()) == hits.tolist()
        assert np.allclose(got.sort_index().to_numpy(), dist[hits], atol=1e-6)
        count += len(hits)
    assert count > 50


def test_service_areas_hold_every_covered_cell_and_siting_runs(layout) -> None:  # type: ignore[no-untyped-def]
    villages, facilities, raster, roads = layout
    graph = build_walk_graph(roads=roads)
    rules = CoverageRules(urban=URBAN, rural=URBAN)
    result = compute_coverage(villages=villages, facilities=facilities, population=raster, graph=graph, rules=rules)
    areas = service_areas(graph=graph, facilities=facilities, settings=URBAN).geometry.to_numpy()
    covered = np.flatnonzero(result.urban.covered)
    assert len(covered) > 50
    owner = result.urban.facility[covered]
    assert shapely.contains_xy(areas[owner], *result.cells.centres[covered].T).all()
    # within the circle the walk allows (+ the 50 m street offset and the polygons' outward margin)
    fac = shapely.get_coordinates(facilities.geometry.to_numpy())
    xy, which = shapely.get_coordinates(areas, return_index=True)
    assert (np.hypot(*(xy - fac[which]).T) <= URBAN.threshold_m + 50.0 + 1.0).all()
    # a suggested site really adds what it says: recompute with it as a facility
    sites = suggest_sites(result=result, rules=rules, k=1, graph=graph).to_crs(METRIC_CRS)
    added = pd.concat(
        [
            facilities,
            gpd.GeoDataFrame(
                {"facility_id": ["new"], "kind": ["文化站"]}, geometry=sites.geometry.to_list(), crs=METRIC_CRS
            ),
        ],
        ignore_index=True,
    )
    after = compute_coverage(villages=villages, facilities=added, population=raster, graph=graph, rules=rules)
    gained = after.table["covered_population"].sum() - result.table["covered_population"].sum()
    assert gained == pytest.approx(sites["gain_population"].iloc[0], rel=1e-9)
    assert gained > 0
