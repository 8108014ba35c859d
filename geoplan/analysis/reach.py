"""Which network nodes and which population cells each facility reaches within a distance: one sparse answer.

The same model as `coverage.py`: cells and facilities are linked to the nearest point of the nearest walkable
edge within `access_m` (`linking.py`), entering the network by either end of that edge, and the link and the
walk along the edge count. `facility_node_reach` runs one bounded Dijkstra
(`scipy.sparse.csgraph.dijkstra(..., indices=..., limit=...)`) from the distinct anchor nodes of the linked
facilities, in chunks of rows, and keeps every (facility, node) pair within the limit as a sparse matrix.
`cell_facility_pairs` turns it into (cell, facility, metres) pairs, adding the direct walk where a cell and a
facility share an edge, in network or Euclidean mode. Service areas (`service_areas.py`), the capacity check
(`capacity.py`) and the site suggestions (`siting.py`) all stand on these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geoplan.analysis.coverage import CoverageSettings
from geoplan.analysis.linking import Linker, Links, link_points, same_edge_pairs
from geoplan.analysis.network import WalkGraph

__all__ = ["TOLERANCE_M", "CellPairs", "NodeReach", "cell_facility_pairs", "facility_node_reach"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

TOLERANCE_M = 1e-6
"""As in coverage.py: reached when the distance is at most the limit to a micrometre."""
_OFFSET = 1.0
"""Added to every stored distance so that a distance of 0 (a facility on its node) survives in a sparse matrix."""
_CHUNK_ENTRIES = 4_000_000  # dense Dijkstra rows per chunk: about 32 MB of float64


@dataclass(frozen=True)
class NodeReach:
    """Per facility, the nodes it reaches within `limit_m`, link and walk along its edge included."""

    metres: sparse.csr_matrix
    """(facilities, nodes): distance in metres + 1 (so 0 m is stored); absent = not reached."""
    links: Links
    """Where each facility joins the network."""
    limit_m: float

    @property
    def linked(self) -> BoolArray:
        """Per facility: within access_m of the network (an unlinked facility reaches nothing)."""
        return self.links.linked

    def pairs(self) -> tuple[IntArray, IntArray, FloatArray]:
        """(facility, node, metres) of every reached pair, sorted by facility then node."""
        coo = self.metres.tocoo()
        order = np.lexsort((coo.col, coo.row))
        rows = np.asarray(coo.row[order], dtype=np.intp)
        cols = np.asarray(coo.col[order], dtype=np.intp)
        return rows, cols, np.asarray(coo.data[order], dtype=np.float64) - _OFFSET


def facility_node_reach(
    graph: WalkGraph, fac_xy: FloatArray, *, access_m: float, limit_m: float, linker: Linker = "edge"
) -> NodeReach:
    """Every (facility, node) pair with offset + network distance <= limit_m (one bounded Dijkstra, chunked)."""
    fac_xy = np.asarray(fac_xy, dtype=np.float64).reshape(-1, 2)
    n, k = graph.n_nodes, len(fac_xy)
    links = link_points(graph, fac_xy, access_m=access_m, linker=linker)
    empty = sparse.csr_matrix((k, n), dtype=np.float64)
    near = links.offset <= limit_m + TOLERANCE_M  # (k, 2): the anchors within the limit
    fac, end = np.nonzero(near)
    if n == 0 or len(fac) == 0:
        return NodeReach(empty, links, limit_m)
    anchor, offset = links.anchor[fac, end], links.offset[fac, end]
    sources, source_of = np.unique(anchor, return_inverse=True)
    budget = limit_m + TOLERANCE_M - float(offset.min())
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    chunk = max(1, _CHUNK_ENTRIES // n)
    for start in range(0, len(sources), chunk):
        block = sources[start : start + chunk]
        dist = np.asarray(dijkstra(graph.matrix, directed=False, indices=block, limit=budget), dtype=np.float64)
        s, t = np.nonzero(np.isfinite(dist.reshape(len(block), n)))
        rows.append(s.astype(np.intp) + start)
        cols.append(t.astype(np.intp))
        vals.append(dist.reshape(len(block), n)[s, t])
    by_source = sparse.csr_matrix(
        (np.concatenate(vals) + _OFFSET, (np.concatenate(rows), np.concatenate(cols))), shape=(len(sources), n)
    )
    # one row per (facility, anchor): its anchor's row plus the offset; then per (facility, node) the shorter
    per_end = by_source[source_of.ravel()].tocoo()
    f = fac[per_end.row]
    metres = per_end.data + offset[per_end.row]
    f, node, metres = _shortest(f, np.asarray(per_end.col, dtype=np.intp), metres, n)
    keep = metres <= limit_m + TOLERANCE_M + _OFFSET
    matrix = sparse.csr_matrix((metres[keep], (f[keep], node[keep])), shape=(k, n))
    return NodeReach(matrix, links, limit_m)


def _shortest(a: IntArray, b: IntArray, metres: FloatArray, nb: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Of repeated (a, b) pairs, the one with the fewest metres."""
    key = a.astype(np.int64) * nb + b
    order = np.lexsort((metres, key))
    key, metres = key[order], metres[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    key, metres = key[first], metres[first]
    return (key // nb).astype(np.intp), (key % nb).astype(np.intp), metres


@dataclass(frozen=True)
class CellPairs:
    """(cell, facility) pairs within the threshold, with the travel distance in metres."""

    cell: IntArray
    facility: IntArray
    metres: FloatArray
    off_network: BoolArray
    """Per cell: farther than access_m from the network (network mode; never reached)."""
    facilities_off_network: BoolArray

    def matrix(self, n_cells: int, n_facilities: int) -> sparse.csr_matrix:
        """(cells, facilities) boolean reach matrix as float 0/1."""
        ones = np.ones(len(self.cell), dtype=np.float64)
        return sparse.csr_matrix((ones, (self.cell, self.facility)), shape=(n_cells, n_facilities))


def cell_facility_pairs(
    centres: FloatArray,
    fac_xy: FloatArray,
    graph: WalkGraph | None,
    settings: CoverageSettings,
    *,
    linker: Linker = "edge",
) -> CellPairs:
    """Every (cell centre, facility) pair whose travel distance is within `settings.threshold_m`.

    Network mode: the travel distance as `coverage.cell_times` measures it (links, along the edges, network, or
    the direct walk along a shared edge), but for
    every facility in reach rather than only the nearest. Euclidean mode: the straight distance.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    fac_xy = np.asarray(fac_xy, dtype=np.float64).reshape(-1, 2)
    m, k = len(centres), len(fac_xy)
    limit = settings.threshold_m
    nothing = np.empty(0, dtype=np.intp)
    if settings.mode == "euclidean":
        off = np.zeros(m, dtype=bool)
        fac_off = np.zeros(k, dtype=bool)
        if m == 0 or k == 0:
            return CellPairs(nothing, nothing, np.empty(0), off, fac_off)
        found = cKDTree(centres).sparse_distance_matrix(cKDTree(fac_xy), limit + TOLERANCE_M, output_type="ndarray")
        return CellPairs(
            np.asarray(found["i"], dtype=np.intp),
            np.asarray(found["j"], dtype=np.intp),
            np.asarray(found["v"], dtype=np.float64),
            off,
            fac_off,
        )
    if graph is None:
        raise ValueError("network mode needs the walking graph")
    reach = facility_node_reach(graph, fac_xy, access_m=settings.access_m, limit_m=limit, linker=linker)
    cells = link_points(graph, centres, access_m=settings.access_m, linker=linker)
    off = ~cells.linked
    cell_parts: list[IntArray] = []
    fac_parts: list[IntArray] = []
    metre_parts: list[FloatArray] = []
    if reach.metres.nnz:
        by_node = reach.metres.T.tocsr()  # (nodes, facilities)
        for end in (0, 1):  # in by either end of the cell's edge
            on = np.flatnonzero(cells.offset[:, end] <= limit + TOLERANCE_M)
            rows = by_node[cells.anchor[on, end]].tocsr()
            cell = np.repeat(on, np.diff(rows.indptr))
            cell_parts.append(cell)
            fac_parts.append(np.asarray(rows.indices, dtype=np.intp))
            metre_parts.append(rows.data - _OFFSET + cells.offset[cell, end])
    same = same_edge_pairs(cells, reach.links, limit_m=limit + TOLERANCE_M)
    cell_parts.append(same[0])
    fac_parts.append(same[1])
    metre_parts.append(same[2])
    cell, fac, metres = _shortest(
        np.concatenate(cell_parts), np.concatenate(fac_parts), np.concatenate(metre_parts), max(k, 1)
    )
    keep = metres <= limit + TOLERANCE_M
    return CellPairs(cell[keep], fac[keep], metres[keep], off, ~reach.linked)
