"""The walking network as a graph: road segment end points are nodes, segments are edges weighted in metres.

Built from the `roads` layer (walkable segments only), in EPSG:4547. Each LineString part of a segment is one
edge between its first and last point; end points are snapped by their exact coordinates rounded to 0.01 m, so
segments that meet at a shared end point share a node (the catalogue promises that segments meet there).
The adjacency is a symmetric scipy.sparse CSR matrix; of parallel edges it keeps the shortest length, and
closed parts (first point = last point) add nothing to a shortest path, so it leaves them out. Every part is
still kept as an edge with its street shape (`edge_geoms`, `edge_ends`, `edge_length`): people and facilities
are linked to the nearest point of the nearest edge (`linking.py`), and a house may stand beside the longer of
two parallel streets or beside a loop. Node coordinates come with a KD-tree for nearest-node lookup.

`services.coverage_inputs.walk_graph_for` caches a store's graph per state of its roads layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geoplan.crs import METRIC_CRS
from geoplan.errors import CRSError, InputError

__all__ = ["ROADS_LAYER", "SNAP_DECIMALS", "WalkGraph", "build_walk_graph", "graph_of_lines"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

SNAP_DECIMALS = 2
"""End points are snapped by their EPSG:4547 coordinates rounded to 0.01 m."""
ROADS_LAYER = "roads"


@dataclass(frozen=True)
class WalkGraph:
    """An undirected walking network: `matrix[i, j]` = length in metres of the shortest segment i–j."""

    matrix: sparse.csr_matrix
    coords: FloatArray
    """Node coordinates in EPSG:4547, shape (n, 2)."""
    tree: cKDTree
    edge_geoms: NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    """Every walkable LineString part in EPSG:4547, parallel edges and loops included (shape (e,))."""
    edge_ends: IntArray = field(default_factory=lambda: np.empty((0, 2), dtype=np.intp))
    """Per edge: its first and last point's node (shape (e, 2); equal for a loop)."""
    edge_length: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    """Per edge: its length in metres along its shape."""

    @property
    def n_nodes(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.matrix.nnz // 2)

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """An R-tree of `edge_geoms`, for nearest-edge lookup."""
        return shapely.STRtree(self.edge_geoms)

    @cached_property
    def components(self) -> int:
        """Connected parts of the network: more than one means some people may have no route at all."""
        if self.n_nodes == 0:
            return 0
        count, _ = connected_components(self.matrix, directed=False)
        return int(count)

    def nearest(self, xy: FloatArray) -> tuple[FloatArray, IntArray]:
        """Distance in metres to, and index of, the nearest node of each point (inf, n when there is none)."""
        points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.n_nodes == 0 or len(points) == 0:
            return np.full(len(points), np.inf), np.full(len(points), self.n_nodes, dtype=np.intp)
        dist, idx = self.tree.query(points)
        return np.asarray(dist, dtype=np.float64), np.asarray(idx, dtype=np.intp)


def build_walk_graph(*, roads: gpd.GeoDataFrame) -> WalkGraph:
    """The walking graph of the walkable segments of `roads` (any CRS; measured in EPSG:4547)."""
    if not isinstance(roads, gpd.GeoDataFrame):
        raise InputError(f"roads must be a GeoDataFrame, not {type(roads).__name__}")
    if roads.crs is None:
        raise CRSError("layer 'roads' has no CRS; set it before building the walking graph")
    if "walkable" not in roads.columns:
        raise InputError("layer 'roads' has no 'walkable' field")
    walkable = roads["walkable"].fillna(False).astype(bool).to_numpy()
    geoms = roads.geometry.to_numpy()[walkable]
    if not CRS.from_user_input(roads.crs).equals(CRS.from_user_input(METRIC_CRS)):
        geoms = gpd.GeoSeries(geoms, crs=roads.crs).to_crs(METRIC_CRS).to_numpy()
    parts = shapely.get_parts(geoms[~shapely.is_missing(geoms)])
    parts = parts[(shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)]  # LineStrings only
    return graph_of_lines(parts)


def graph_of_lines(lines: NDArray[np.object_]) -> WalkGraph:
    """The walking graph of LineStrings already in EPSG:4547 (every line walkable; for tests and benchmarks)."""
    lines = np.asarray(lines, dtype=object)
    if len(lines) == 0:
        return WalkGraph(sparse.csr_matrix((0, 0)), np.empty((0, 2)), cKDTree(np.empty((0, 2))))
    first = shapely.get_coordinates(shapely.get_point(lines, 0))
    last = shapely.get_coordinates(shapely.get_point(lines, -1))
    length = np.asarray(shapely.length(lines), dtype=np.float64)
    ends = np.round(np.vstack([first, last]), SNAP_DECIMALS)
    coords, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    a, b = inverse[: len(lines)], inverse[len(lines) :]
    edge_ends = np.column_stack([a, b]).astype(np.intp)
    keep = a != b
    i, j, w = np.minimum(a, b)[keep], np.maximum(a, b)[keep], length[keep]
    order = np.lexsort((w, j, i))  # per (i, j) the shortest first
    i, j, w = i[order], j[order], w[order]
    first_of_pair = np.ones(len(i), dtype=bool)
    first_of_pair[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    i, j, w = i[first_of_pair], j[first_of_pair], w[first_of_pair]
    n = len(coords)
    matrix = sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))), (n, n))
    return WalkGraph(
        matrix=matrix,
        coords=np.asarray(coords, dtype=np.float64),
        tree=cKDTree(coords),
        edge_geoms=lines,
        edge_ends=edge_ends,
        edge_length=length,
    )
