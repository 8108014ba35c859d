"""Service areas: answers on hand-built networks, and on the demo store the two promises of the module
docstring checked independently: every cell the coverage engine counts as covered by F lies in F's polygon, and
every polygon lies in the circle the triangle inequality allows; the reached nodes against networkx on the
streets cut at the links.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geoplan.analysis.coverage import CoverageRules, CoverageSettings
from geoplan.analysis.network import build_walk_graph, graph_of_lines
from geoplan.analysis.reach import facility_node_reach
from geoplan.analysis.service_areas import SERVICE_AREA_COLUMNS, STREET_BUFFER_M, service_areas
from geoplan.crs import METRIC_CRS
from geoplan.errors import CRSError, InputError
from tests.demo_layers import DemoLayers
from tests.edge_linking_reference import SplitNetwork, walkable_lines

# 6 km/h = 100 m per minute: minutes x 100 = metres
QUARTER_KM = CoverageSettings(minutes=2.5, speed_kmh=6.0, access_m=30.0)  # 250 m


def _roads(*lines: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"road_id": [f"R{i}" for i in range(len(lines))], "walkable": [True] * len(lines)},
        geometry=[shapely.LineString(line) for line in lines],
        crs=METRIC_CRS,
    )


def _facilities(*points: tuple[float, float], crs: str = METRIC_CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "facility_id": [f"F{i}" for i in range(len(points))],
            "name": [f"设施{i}" for i in range(len(points))],
            "kind": ["文化站"] * len(points),
        },
        geometry=[shapely.Point(p) for p in points],
        crs=crs,
    )


def _circumscribed_64gon_area(r: float) -> float:
    return 64 * r * r * math.tan(math.pi / 64)


# ------------------------------------------------------------------------------------------ hand-built networks


def _inscribed_64gon_area(r: float) -> float:
    return 32 * r * r * math.sin(2 * math.pi / 64)


def test_a_straight_street_budget_buffers_and_a_partial_edge() -> None:
    """Nodes every 100 m along y = 0; the facility on node 0; 250 m reach, access 30 m. A place (x, y) beside
    the street is covered when |y| <= 30 and x + |y| <= 250."""
    graph = build_walk_graph(roads=_roads(*[[(x, 0.0), (x + 100.0, 0.0)] for x in range(0, 500, 100)]))
    facilities = _facilities((0.0, 0.0))
    areas = service_areas(graph=graph, facilities=facilities, settings=QUARTER_KM, street_buffer_m=0.0)
    assert list(areas.columns) == [*SERVICE_AREA_COLUMNS, "geometry"]
    assert areas.crs == METRIC_CRS
    row = areas.iloc[0]
    assert (row["facility_id"], row["name"], row["kind"]) == ("F0", "设施0", "文化站")
    assert row["reach_m"] == pytest.approx(250.0)
    assert not row["off_network"]
    assert row["area_m2"] == pytest.approx(row.geometry.area)
    geom = row.geometry
    # every covered place is inside: the full 30 m up to x = 220, then less and less
    for x, y in [(0.0, 29.9), (100.0, -29.9), (220.0, 29.9), (235.0, 14.9), (249.0, 0.9), (-29.9, 0.0)]:
        assert geom.contains(shapely.Point(x, y)), (x, y)
    # nothing beyond the access distance, nor beyond the reach plus one 25 m step of the falling budget
    for x, y in [(100.0, 30.1), (150.0, -30.1), (276.0, 0.0), (300.0, 0.0)]:
        assert not geom.intersects(shapely.Point(x, y)), (x, y)
    assert 2 * 30.0 * 220.0 < row["area_m2"] < 2 * 30.1 * 275.0 + math.pi * 30.1**2

    # access 0: only the street walked, 250 m of it, buffered by the 10 m street offset
    streets = service_areas(
        graph=graph,
        facilities=facilities,
        settings=CoverageSettings(minutes=2.5, speed_kmh=6.0, access_m=0.0),
        street_buffer_m=10.0,
    ).geometry.iloc[0]
    assert streets.bounds == pytest.approx((-10.0, -10.0, 260.0, 10.0))
    assert streets.area == pytest.approx(250.0 * 20.0 + _inscribed_64gon_area(10.0), rel=1e-7)  # budget + 1 µm


def test_a_facility_beside_the_middle_of_a_long_street() -> None:
    """A 1 km street with nodes only at its ends; the facility 20 m beside its middle. The nearest node is 500 m
    away (the node-linked model had it off the network); linked to the street, it serves 230 m each way."""
    graph = build_walk_graph(roads=_roads([(0.0, 0.0), (1000.0, 0.0)]))
    areas = service_areas(graph=graph, facilities=_facilities((500.0, 20.0)), settings=QUARTER_KM, street_buffer_m=0)
    assert not areas["off_network"].iloc[0]
    geom = areas.geometry.iloc[0]
    # covered: 20 + |x - 500| + |y| <= 250 with |y| <= 30
    for x, y in [(700.0, 29.0), (300.0, -29.0), (729.0, 0.5), (500.0, -29.9)]:
        assert geom.contains(shapely.Point(x, y)), (x, y)
    for x, y in [(0.0, 0.0), (1000.0, 0.0), (500.0, 31.0), (760.0, 0.0)]:
        assert not geom.intersects(shapely.Point(x, y)), (x, y)


def test_a_partial_edge_follows_the_street_shape() -> None:
    """The edge 200 -> 300 bends up to (250, 50); the 50 m of budget left at (200, 0) walk along its shape to
    (235.36, 35.36), not along the chord."""
    graph = build_walk_graph(
        roads=_roads(
            [(0.0, 0.0), (100.0, 0.0)], [(100.0, 0.0), (200.0, 0.0)], [(200.0, 0.0), (250.0, 50.0), (300.0, 0.0)]
        )
    )
    settings = CoverageSettings(minutes=2.5, speed_kmh=6.0, access_m=0.0)
    area = service_areas(graph=graph, facilities=_facilities((0.0, 0.0)), settings=settings, street_buffer_m=5.0)
    end = 50.0 / math.sqrt(2.0)
    _, _, maxx, maxy = area.geometry.iloc[0].bounds
    assert maxx == pytest.approx(200.0 + end + 5.0, abs=0.05)
    assert maxy == pytest.approx(end + 5.0, abs=0.05)


def test_an_edge_reached_from_both_ends_and_a_linked_facility() -> None:
    """A 100 m square, the facility 20 m south of the corner (0, 0): reach 170 m, so (100, 0) and (0, 100) keep
    50 m each and walk half of the two far edges; the far corner (100, 100) is not reached."""
    square = [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0), (0.0, 0.0)]
    graph = build_walk_graph(roads=_roads(*[[a, b] for a, b in itertools.pairwise(square)]))
    settings = CoverageSettings(minutes=1.7, speed_kmh=6.0, access_m=25.0)
    geom = service_areas(
        graph=graph, facilities=_facilities((0.0, -20.0)), settings=settings, street_buffer_m=2.0
    ).geometry.iloc[0]
    assert geom.contains(shapely.Point(0.0, -19.0))  # the link to the network is walked
    assert geom.contains(shapely.Point(100.0, 49.0)) and geom.contains(shapely.Point(49.0, 100.0))
    assert geom.contains(shapely.Point(124.0, 20.0))  # 24 m beside a street point reached with 30 m left
    assert not geom.intersects(shapely.Point(100.0, 80.0)) and not geom.intersects(shapely.Point(80.0, 100.0))
    assert not geom.intersects(shapely.Point(100.0, 100.0))


def test_off_network_facilities_and_the_euclidean_mode() -> None:
    graph = build_walk_graph(roads=_roads([(0.0, 0.0), (100.0, 0.0)]))
    facilities = _facilities((0.0, 10.0), (0.0, 500.0))
    areas = service_areas(graph=graph, facilities=facilities, settings=QUARTER_KM)
    assert list(areas["off_network"]) == [False, True]
    assert areas.geometry.iloc[1].is_empty and areas["area_m2"].iloc[1] == 0.0
    assert areas["area_m2"].iloc[0] > 0

    circles = service_areas(graph=None, facilities=facilities, settings=replace(QUARTER_KM, mode="euclidean"))
    assert not circles["off_network"].any()
    for point, geom in zip(facilities.geometry, circles.geometry, strict=True):
        assert geom.area == pytest.approx(_circumscribed_64gon_area(250.0), rel=1e-9)
        assert geom.area == pytest.approx(math.pi * 250.0**2, rel=1e-3)
        ring = shapely.get_coordinates(shapely.Point(point.x, point.y).buffer(249.999, quad_segs=64).exterior)
        assert shapely.contains_xy(geom, ring[:, 0], ring[:, 1]).all()  # the whole circle is inside


def test_inputs_are_checked() -> None:
    graph = build_walk_graph(roads=_roads([(0.0, 0.0), (100.0, 0.0)]))
    with pytest.raises(InputError, match="walking graph"):
        service_areas(graph=None, facilities=_facilities((0.0, 0.0)), settings=QUARTER_KM)
    with pytest.raises(CRSError):
        service_areas(
            graph=graph, facilities=_facilities((0.0, 0.0)).set_crs(None, allow_override=True), settings=QUARTER_KM
        )
    lines = _facilities((0.0, 0.0)).set_geometry([shapely.LineString([(0, 0), (1, 1)])], crs=METRIC_CRS)
    with pytest.raises(InputError, match="Point"):
        service_areas(graph=graph, facilities=lines, settings=QUARTER_KM)
    with pytest.raises(InputError, match="kind"):
        service_areas(graph=graph, facilities=_facilities((0.0, 0.0)).drop(columns="kind"), settings=QUARTER_KM)
    original = _facilities((0.0, 0.0), crs=METRIC_CRS).to_crs("EPSG:4490")
    before = original.copy()
    areas = service_areas(graph=graph, facilities=original, settings=QUARTER_KM)
    assert areas.crs == METRIC_CRS
    assert original.equals(before)  # inputs are not mutated


# ------------------------------------------------------------------------------------------ the demo store


@pytest.mark.parametrize("settings", [CoverageSettings(), CoverageSettings(minutes=6, access_m=120)])
def test_every_covered_cell_lies_in_its_facilitys_area(demo: DemoLayers, settings: CoverageSettings) -> None:
    """Covered by F (F the nearest) => inside F's polygon. Tolerance 1 mm: a cell centre exactly on the
    bisector of two nodes may be linked to either, and its Voronoi cell is then decided by floating point."""
    areas = service_areas(graph=demo.graph, facilities=demo.facilities, settings=settings)
    result = demo.coverage(CoverageRules(urban=settings, rural=settings))
    covered = np.flatnonzero(result.urban.covered)
    assert len(covered) > 1000  # not vacuous
    owner = result.urban.facility[covered]
    geoms = areas.geometry.to_numpy()[owner]
    points = shapely.points(result.cells.centres[covered])
    inside = shapely.dwithin(geoms, points, 1e-3)
    assert inside.all(), f"{(~inside).sum()} covered cells outside their facility's area"
    # and the facilities that serve nobody are exactly the off-network ones
    assert set(areas.loc[areas["off_network"], "facility_id"]) == set(result.facilities_off_network)


@pytest.mark.parametrize("settings", [CoverageSettings(), CoverageSettings(minutes=6, access_m=120)])
def test_every_area_lies_in_the_circle_the_triangle_inequality_allows(
    demo: DemoLayers, settings: CoverageSettings
) -> None:
    areas = service_areas(graph=demo.graph, facilities=demo.facilities, settings=settings)
    r = settings.threshold_m
    # the discs' 64-gons reach 1/cos(pi/64) of a disc radius (at most access_m) outwards
    outward = settings.access_m * (1 / math.cos(math.pi / 64) - 1)
    bound = math.pi * (r + STREET_BUFFER_M) ** 2
    assert (areas["area_m2"] <= bound).all()
    assert (areas["area_m2"] > 0).sum() >= len(areas) - areas["off_network"].sum()
    geoms = areas.geometry.to_numpy()
    centres = shapely.get_coordinates(demo.facilities.to_crs(METRIC_CRS).geometry.to_numpy())
    # a polygon's farthest point from the facility is one of its vertices
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    farthest = np.hypot(*(xy - centres[owner]).T)
    assert len(farthest) > 0
    assert (farthest <= r + STREET_BUFFER_M + outward + 1e-6).all()
    assert np.allclose(areas["area_m2"], shapely.area(geoms))


def test_reached_nodes_match_networkx(demo: DemoLayers) -> None:
    """Per facility, the network nodes within the threshold and their distances, against networkx on the streets
    cut at every facility's link (tests/edge_linking_reference.py)."""
    settings = CoverageSettings()
    r = settings.threshold_m
    fac_xy = shapely.get_coordinates(demo.facilities.to_crs(METRIC_CRS).geometry.to_numpy())
    reach = facility_node_reach(demo.graph, fac_xy, access_m=settings.access_m, limit_m=r)
    fac, node, dist = reach.pairs()
    net = SplitNetwork(walkable_lines(demo.roads.to_crs(METRIC_CRS)), fac_xy, settings.access_m)
    keys = [("junction", round(float(x), 2), round(float(y), 2)) for x, y in demo.graph.coords]
    checked = 0
    for f in range(len(fac_xy)):
        mine = {keys[k]: d for k, d in zip(node[fac == f].tolist(), dist[fac == f].tolist(), strict=True)}
        if not net.linked[f]:
            assert not mine
            continue
        lengths = nx.single_source_dijkstra_path_length(net.graph, ("point", f), cutoff=r)
        theirs = {k: v for k, v in lengths.items() if k[0] == "junction"}
        assert set(mine) == set(theirs)
        assert np.allclose([mine[k] for k in theirs], list(theirs.values()))
        checked += 1
    assert checked > 100


def test_service_areas_of_the_demo_in_the_store_crs(demo: DemoLayers) -> None:
    """Same areas whatever CRS the facilities come in (the store's EPSG:4490 or the metric one)."""
    a = service_areas(graph=demo.graph, facilities=demo.facilities, settings=CoverageSettings())
    b = service_areas(graph=demo.graph, facilities=demo.facilities.to_crs(METRIC_CRS), settings=CoverageSettings())
    assert list(a["facility_id"]) == list(demo.facilities["facility_id"].astype(str))
    assert np.allclose(a["area_m2"], b["area_m2"], rtol=1e-6)


def test_no_facility_on_a_street_gives_empty_areas_not_an_error() -> None:
    """access_m 0 and facilities off the streets: every area is empty and every facility off the network."""
    graph = graph_of_lines(np.array([shapely.LineString([(0, 0), (500, 0)])], dtype=object))
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["A", "B"], "kind": ["图书馆", "文化站"]},
        geometry=[shapely.Point(100, 30), shapely.Point(300, -40)],
        crs=METRIC_CRS,
    )
    areas = service_areas(graph=graph, facilities=facilities, settings=CoverageSettings(access_m=0.0))
    assert len(areas) == 2 and areas.geometry.is_empty.all() and areas["off_network"].all()
