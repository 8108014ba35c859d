"""Noding surveyed centre lines: cut where walkable lines meet without a shared vertex, counted exactly."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoplan.analysis.network import build_walk_graph
from geoplan.analysis.noding import node_lines
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.storage.gpkg import GeoPackageStore


def _random_lines(seed: int, n: int = 60) -> gpd.GeoDataFrame:
    """Bent lines over a 2 km square in EPSG:4547 that cross each other without shared vertices."""
    rng = np.random.default_rng(seed)
    lines: list[shapely.LineString] = []
    while len(lines) < n:
        start = rng.uniform(0, 2000, 2)
        steps = rng.normal(0, 250, (rng.integers(1, 5), 2))
        line = shapely.LineString(np.vstack([start, start + np.cumsum(steps, axis=0)]) + np.array([350_000, 2_520_000]))
        if line.is_simple:  # a street crossing itself is not what noding is about
            lines.append(line)
    walkable = rng.random(n) < 0.8
    return gpd.GeoDataFrame(
        {"road_id": [f"S-{i}" for i in range(n)], "name": [f"路{i}" for i in range(n)], "walkable": walkable},
        geometry=[shapely.MultiLineString([line]) for line in lines],
        crs="EPSG:4547",
    )


def _brute_force_new_nodes(frame: gpd.GeoDataFrame) -> int:
    """Distinct points where two walkable lines meet, not already an end point of a walkable line."""
    lines = [shapely.get_parts(g)[0] for g in frame.geometry[frame["walkable"]]]
    ends = {(round(x, 3), round(y, 3)) for line in lines for x, y in shapely.get_coordinates(shapely.boundary(line))}
    meets: set[tuple[float, float]] = set()
    for a, b in itertools.combinations(lines, 2):
        for part in shapely.get_parts(a.intersection(b)):
            points = shapely.get_parts(part.boundary) if part.geom_type == "LineString" else [part]
            meets |= {(round(p.x, 3), round(p.y, 3)) for p in points}
    return len(meets - ends)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_added_nodes_equal_a_pairwise_intersection_count(seed: int) -> None:
    frame = _random_lines(seed)
    before = frame.copy()
    result = node_lines(lines=frame, id_field="road_id")
    expected = _brute_force_new_nodes(frame)
    assert expected > 10  # the layout really has crossings
    assert result.added_nodes == expected
    assert frame.equals(before)  # the input is not touched
    out = result.frame
    # Each source line's pieces add up to it, and keep its attributes.
    source = (
        out["road_id"].str.replace(r"-\d+$", "", regex=True).where(out["road_id"].str.count("-") == 2, out["road_id"])
    )
    lengths = out.geometry.length.groupby(source.to_numpy()).sum()
    assert np.allclose(lengths.loc[frame["road_id"]].to_numpy(), frame.geometry.length.to_numpy(), atol=1e-6)
    assert (out["name"].to_numpy() == frame.set_index("road_id").loc[source, "name"].to_numpy()).all()
    # After noding, walkable pieces meet only at end points: the graph equals that of the fully noded union.
    walk = out[out["walkable"]]
    pieces = shapely.get_parts(walk.geometry.to_numpy())
    ends = {(round(x, 2), round(y, 2)) for x, y in shapely.get_coordinates(shapely.boundary(pieces))}
    union_nodes = shapely.get_parts(shapely.node(shapely.MultiLineString(list(pieces))))
    noded_ends = {(round(x, 2), round(y, 2)) for x, y in shapely.get_coordinates(shapely.boundary(union_nodes))}
    assert ends == noded_ends
    graph = build_walk_graph(roads=out)
    assert graph.n_nodes == len(noded_ends)
    # Non-walkable lines are not cut.
    assert set(out.loc[~out["walkable"], "road_id"]) == set(frame.loc[~frame["walkable"], "road_id"])


def test_lines_meeting_at_shared_end_points_are_left_exactly_as_they_are() -> None:
    square = [(0, 0), (100, 0), (100, 100), (0, 100)]
    frame = gpd.GeoDataFrame(
        {"road_id": ["a", "b", "c", "d"], "walkable": [True] * 4},
        geometry=[shapely.MultiLineString([[p, q]]) for p, q in itertools.pairwise([*square, square[0]])],
        crs="EPSG:4547",
    )
    result = node_lines(lines=frame, id_field="road_id")
    assert (result.added_nodes, result.split_lines) == (0, 0)
    assert result.frame.equals(frame)


def test_a_t_junction_splits_the_through_line_without_a_new_node() -> None:
    frame = gpd.GeoDataFrame(
        {"road_id": ["through", "stub"], "walkable": [True, True]},
        geometry=[shapely.MultiLineString([[(0, 0), (100, 0)]]), shapely.MultiLineString([[(40, 0), (40, 50)]])],
        crs="EPSG:4547",
    )
    result = node_lines(lines=frame, id_field="road_id")
    assert (result.added_nodes, result.split_lines) == (0, 1)
    assert list(result.frame["road_id"]) == ["through-1", "through-2", "stub"]
    assert build_walk_graph(roads=result.frame).matrix.nnz == 2 * 3


def test_demo_roads_crossings_are_counted_as_geos_nodes_them(demo_store_path: Path, catalog: Catalog) -> None:
    """The demo's wiggly country roads cross each other in a few places without a shared vertex (they are not
    connected there in the demo's graph). Noding them finds exactly the points GEOS's own noder adds, and the
    demo's own loading path (import_frame, no noding) keeps its roads as built: no piece ids."""
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        roads = store.read("roads")
    finally:
        store.close()
    assert roads["road_id"].str.fullmatch(r"RD-\d{5}").all()
    lines = shapely.get_parts(roads.geometry[roads["walkable"]].to_numpy())
    ends = {(round(x, 8), round(y, 8)) for x, y in shapely.get_coordinates(shapely.boundary(lines))}
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString(list(lines))))
    noded_ends = {(round(x, 8), round(y, 8)) for x, y in shapely.get_coordinates(shapely.boundary(noded))}
    result = node_lines(lines=roads, id_field="road_id")
    assert result.added_nodes == len(noded_ends - ends)
    assert 0 < result.added_nodes < 0.01 * len(roads)  # a handful: the demo meets at shared end points otherwise
    again = node_lines(lines=result.frame, id_field="road_id")
    assert (again.added_nodes, again.split_lines) == (0, 0)  # noding is idempotent
    assert again.frame.equals(result.frame)


def test_centre_line_import_reports_the_added_nodes(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _random_lines(7)
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        district = store.read("district").to_crs("EPSG:4547").geometry.union_all()
    finally:
        store.close()
    inner = shapely.point_on_surface(district.buffer(-3000))
    frame = frame.set_geometry(frame.geometry.translate(inner.x - 351_000, inner.y - 2_521_000))
    frame["road_class"] = "支路"
    frame.to_crs("EPSG:4490").to_file(path := tmp_path / "centrelines.gpkg", driver="GPKG")
    assert main(["import", "roads", str(path), "--store", str(demo_store_copy)]) == 0
    expected = _brute_force_new_nodes(frame)
    message = " ".join(capsys.readouterr().err.split())
    assert f"noded on import: {expected} node(s) added" in message, message
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        stored = store.read("roads")
    finally:
        store.close()
    assert len(stored) > len(frame)
