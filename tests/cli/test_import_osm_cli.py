"""`geoplan import roads|water|waterways FILE.osm.pbf`: an extract written here with pyosmium, on a demo store copy.

The walking graph the import gives is checked against a networkx graph built independently from the same ways:
its nodes are the OSM nodes at way ends and at nodes two or more highway ways share, its edges the stretches of
walkable ways between them, measured along the way in EPSG:4547.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
import shapely
from osmium.osm.mutable import Node, Relation, Way
from pyproj import Transformer
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geoplan.analysis.network import build_walk_graph
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.io.osm import clip_lines
from geoplan.storage.gpkg import GeoPackageStore

TO_METRIC = Transformer.from_crs("EPSG:4490", "EPSG:4547", always_xy=True)
TO_LONLAT = Transformer.from_crs("EPSG:4547", "EPSG:4490", always_xy=True)


@dataclass(frozen=True)
class OsmWay:
    way_id: int
    nodes: list[int]
    tags: dict[str, str]


# Metric offsets from an origin well inside the district; node ids are the dict keys.
POINTS: dict[int, tuple[float, float]] = {
    # way 100: a long bent residential street
    1: (0, 0),
    2: (200, 30),
    3: (400, 0),
    4: (600, 40),
    5: (800, 0),
    6: (1000, 20),
    # way 101: a footway through node 3 (shared mid-way by both)
    10: (400, -300),
    11: (390, -150),
    12: (410, 150),
    13: (400, 300),
    # way 102: a primary road on from node 6; way 103: a path sharing node 22 mid-way
    20: (1000, 300),
    21: (1050, 380),
    22: (1100, 400),
    23: (1200, 500),
    24: (900, 420),
    25: (1300, 300),
    # way 104: a motorway sharing node 10 with the footway
    30: (0, -500),
    31: (300, -420),
    32: (600, -300),
    33: (1000, -500),
    # way 105: foot=no service road from node 5; way 106: access=private from node 2
    40: (800, -200),
    41: (200, 250),
    # way 107: a footbridge over way 100 between nodes 4 and 5, no shared node; on to node 13's far side
    50: (700, -100),
    51: (705, 0),
    52: (700, 100),
    53: (600, 300),
    # way 108: a building (not a highway) on nodes 1 and 3: must not split anything
    # way 109: cycleway (not walkable in OSMnx's walk network) from node 23
    60: (1400, 600),
    # way 110: a construction way; way 111: steps that loop back to their start (a self-loop piece)
    70: (-200, 0),
    71: (-100, 150),
    72: (-150, 250),
}
WAYS = [
    OsmWay(100, [1, 2, 3, 4, 5, 6], {"highway": "residential", "name": "Way 100", "name:zh": "荷城路"}),
    OsmWay(101, [10, 11, 3, 12, 13], {"highway": "footway"}),
    OsmWay(102, [6, 20, 21, 22, 23], {"highway": "primary", "name": "Primary"}),
    OsmWay(103, [24, 22, 25], {"highway": "path"}),
    OsmWay(104, [30, 31, 10, 32, 33], {"highway": "motorway"}),
    OsmWay(105, [5, 40], {"highway": "service", "foot": "no"}),
    OsmWay(106, [2, 41], {"highway": "residential", "access": "private"}),
    OsmWay(107, [50, 51, 52, 53], {"highway": "footway", "bridge": "yes", "layer": "1"}),
    OsmWay(108, [1, 3, 12, 1], {"building": "yes"}),
    OsmWay(109, [23, 60], {"highway": "cycleway"}),
    OsmWay(110, [1, 70], {"highway": "construction"}),
    OsmWay(111, [70, 71, 72, 70], {"highway": "steps"}),
]
WALKABLE = {100, 101, 102, 103, 107, 111}


def _origin(store_path: Path, catalog: Catalog) -> tuple[float, float]:
    store = GeoPackageStore(store_path, catalog)
    try:
        district = store.read("district").to_crs("EPSG:4547").geometry.union_all()
    finally:
        store.close()
    point = shapely.point_on_surface(district.buffer(-2500))
    return float(point.x), float(point.y)


def _lonlat(origin: tuple[float, float]) -> dict[int, tuple[float, float]]:
    ids = sorted(POINTS)
    xs = np.array([POINTS[i][0] for i in ids], dtype=float) + origin[0]
    ys = np.array([POINTS[i][1] for i in ids], dtype=float) + origin[1]
    lon, lat = TO_LONLAT.transform(xs, ys)
    # OSM stores 7 decimals; round here so the reference uses exactly what the file holds.
    return {i: (round(float(x), 7), round(float(y), 7)) for i, x, y in zip(ids, lon, lat, strict=True)}


def write_pbf(path: Path, lonlat: dict[int, tuple[float, float]], ways: list[OsmWay]) -> None:
    writer = osmium.SimpleWriter(str(path))
    try:
        for node_id in sorted(lonlat):
            writer.add_node(Node(id=node_id, location=lonlat[node_id], tags={}))
        for way in ways:
            writer.add_way(Way(id=way.way_id, nodes=way.nodes, tags=way.tags))
    finally:
        writer.close()


def reference_graph(lonlat: dict[int, tuple[float, float]]) -> nx.Graph:
    """Independent: split walkable highway ways at nodes shared by two or more highway ways, lengths in metres."""
    metric = {i: TO_METRIC.transform(*xy) for i, xy in lonlat.items()}
    highways = [w for w in WAYS if "highway" in w.tags]
    uses: dict[int, int] = {}
    for way in highways:
        for node in way.nodes:
            uses[node] = uses.get(node, 0) + 1
    graph = nx.Graph()
    for way in highways:
        if way.way_id not in WALKABLE:
            continue
        piece = [way.nodes[0]]
        for position, node in enumerate(way.nodes[1:], start=1):
            piece.append(node)
            if position == len(way.nodes) - 1 or uses[node] >= 2:
                length = sum(
                    float(np.hypot(metric[b][0] - metric[a][0], metric[b][1] - metric[a][1]))
                    for a, b in itertools.pairwise(piece)
                )
                u, v = piece[0], piece[-1]
                graph.add_node(u, xy=metric[u])
                graph.add_node(v, xy=metric[v])
                if u != v and (not graph.has_edge(u, v) or graph[u][v]["weight"] > length):
                    graph.add_edge(u, v, weight=length)
                piece = [node]
    return graph


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_osm_roads_import_to_the_walkable_graph_networkx_builds(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lonlat = _lonlat(_origin(demo_store_copy, catalog))
    write_pbf(pbf := tmp_path / "gaoming.osm.pbf", lonlat, WAYS)
    assert main(["import", "roads", str(pbf), "--store", str(demo_store_copy)]) == 0
    assert "split at shared nodes" in " ".join(capsys.readouterr().err.split())
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        roads = store.read("roads")
    finally:
        store.close()
    # Every highway piece is stored, walkable or not; the building is not.
    assert not roads["road_id"].str.startswith("osm-w108-").any()
    by_way = roads.assign(way=roads["road_id"].str.split("-").str[1].str[1:].astype(int))
    assert set(by_way["way"]) == {w.way_id for w in WAYS if "highway" in w.tags}
    assert dict(zip(by_way["way"], by_way["walkable"], strict=False)) == {
        w.way_id: w.way_id in WALKABLE for w in WAYS if "highway" in w.tags
    }
    assert sorted(by_way.loc[by_way["way"] == 100, "road_id"]) == [f"osm-w100-{i}" for i in range(4)]
    assert set(by_way.loc[by_way["way"] == 100, "name"]) == {"荷城路"}
    assert set(by_way.loc[by_way["way"] == 104, "road_class"]) == {"高速公路"}
    assert (by_way["way"] == 104).sum() == 2  # the motorway is split at the node it shares with the footway

    graph = build_walk_graph(roads=roads)
    want = reference_graph(lonlat)
    assert graph.n_nodes == want.number_of_nodes()
    # Match nodes by position, then every edge by its length.
    nodes = list(want)
    distance, index = cKDTree(graph.coords).query(np.array([want.nodes[n]["xy"] for n in nodes]))
    assert distance.max() < 0.01
    assert len(set(index.tolist())) == len(nodes)
    where = dict(zip(nodes, index.tolist(), strict=True))
    got_edges = sorted(
        float(w) for w in np.asarray(graph.matrix[np.triu_indices_from(graph.matrix.toarray(), 1)]).ravel() if w > 0
    )
    want_edges = sorted(float(d["weight"]) for _, _, d in want.edges(data=True))
    assert len(got_edges) == len(want_edges)
    assert np.allclose(got_edges, want_edges, atol=0.01)
    for u, v, data in want.edges(data=True):
        assert abs(graph.matrix[where[u], where[v]] - data["weight"]) < 0.01
    n_components, labels = connected_components(graph.matrix, directed=False)
    assert n_components == nx.number_connected_components(want)
    for component in nx.connected_components(want):
        assert len({int(labels[where[n]]) for n in component}) == 1
    # The bridge crosses way 100 without a shared node: not connected to it.
    assert not nx.has_path(want, 50, 1)
    assert labels[where[50]] != labels[where[1]]


def test_clip_cuts_pieces_at_the_district_boundary() -> None:
    square = shapely.box(0, 0, 10, 10)
    lines = np.array(
        [
            shapely.LineString([(2, 2), (8, 8)]),
            shapely.LineString([(5, 5), (15, 5)]),
            shapely.LineString([(20, 0), (30, 0)]),
        ],
        dtype=object,
    )
    clipped = clip_lines(lines, square)
    assert shapely.equals(clipped[0], shapely.MultiLineString([[(2, 2), (8, 8)]]))
    assert shapely.equals(clipped[1], shapely.MultiLineString([[(5, 5), (10, 5)]]))
    assert clipped[2] is None


def test_osm_water_and_waterways_import(demo_store_copy: Path, catalog: Catalog, tmp_path: Path) -> None:
    origin = _origin(demo_store_copy, catalog)
    square = {900 + i: xy for i, xy in enumerate([(0, 0), (300, 0), (300, 200), (0, 200)])}
    outer = {910 + i: xy for i, xy in enumerate([(500, 0), (900, 0), (900, 400), (500, 400)])}
    inner = {920 + i: xy for i, xy in enumerate([(600, 100), (700, 100), (700, 200), (600, 200)])}
    river = {930 + i: xy for i, xy in enumerate([(-200, -100), (400, -50), (1000, -100)])}
    points = {**square, **outer, **inner, **river}
    xs = np.array([points[i][0] for i in sorted(points)], dtype=float) + origin[0]
    ys = np.array([points[i][1] for i in sorted(points)], dtype=float) + origin[1]
    lon, lat = TO_LONLAT.transform(xs, ys)
    lonlat = {i: (float(x), float(y)) for i, x, y in zip(sorted(points), lon, lat, strict=True)}
    path = tmp_path / "water.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    try:
        for node_id in sorted(lonlat):
            writer.add_node(Node(id=node_id, location=lonlat[node_id], tags={}))
        writer.add_way(Way(id=1, nodes=[900, 901, 902, 903, 900], tags={"natural": "water", "water": "pond"}))
        writer.add_way(Way(id=2, nodes=[910, 911, 912, 913, 910], tags={}))
        writer.add_way(Way(id=3, nodes=[920, 921, 922, 923, 920], tags={}))
        writer.add_way(Way(id=4, nodes=[930, 931, 932], tags={"waterway": "river", "name": "沧江"}))
        members = [("w", 2, "outer"), ("w", 3, "inner")]
        writer.add_relation(
            Relation(id=5, members=members, tags={"type": "multipolygon", "landuse": "reservoir", "name": "水库"})
        )
    finally:
        writer.close()
    assert main(["import", "water", str(path), "--store", str(demo_store_copy)]) == 0
    assert main(["import", "waterways", str(path), "--store", str(demo_store_copy)]) == 0
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        water = store.read("water").to_crs("EPSG:4547").set_index("water_id")
        waterways = store.read("waterways").to_crs("EPSG:4547").set_index("waterway_id")
    finally:
        store.close()
    assert sorted(water.index) == ["osm-r5", "osm-w1"]
    assert water.loc["osm-w1", "geometry"].area == pytest.approx(300 * 200, rel=1e-3)
    assert water.loc["osm-r5", "geometry"].area == pytest.approx(400 * 400 - 100 * 100, rel=1e-3)
    assert water.loc["osm-r5", "name"] == "水库"
    assert list(waterways.index) == ["osm-w4"]
    assert waterways.loc["osm-w4", "name"] == "沧江"
    assert waterways.loc["osm-w4", "geometry"].length == pytest.approx(
        float(np.hypot(600, 50) + np.hypot(600, 50)), rel=1e-3
    )


@pytest.mark.parametrize("case", ["corrupt", "outside", "no highways", "wrong layer"])
def test_bad_osm_files_exit_2_and_leave_the_store_unchanged(
    case: str, demo_store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.osm.pbf"
    layer = "roads"
    expected = {
        "corrupt": "not a readable OpenStreetMap file",
        "outside": "lies in the district",
        "no highways": "holds no highway ways",
        "wrong layer": "not 'projects'",
    }[case]
    far = {1: (100.0, 40.0), 2: (100.01, 40.0)}
    if case == "corrupt":
        write_pbf(path, far, [OsmWay(1, [1, 2], {"highway": "residential"})])
        data = bytearray(path.read_bytes())
        data[20:60] = bytes(range(40))
        path.write_bytes(bytes(data))
    elif case == "outside":
        write_pbf(path, far, [OsmWay(1, [1, 2], {"highway": "residential"})])
    elif case == "no highways":
        write_pbf(path, far, [OsmWay(1, [1, 2], {"building": "yes"})])
    else:
        write_pbf(path, far, [OsmWay(1, [1, 2], {"highway": "residential"})])
        layer = "projects"
    before = _digest(demo_store_copy)
    assert main(["import", layer, str(path), "--store", str(demo_store_copy)]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert expected in message, message
    assert "Traceback" not in message
    assert _digest(demo_store_copy) == before
