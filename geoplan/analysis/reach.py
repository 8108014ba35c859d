"""Which network nodes and which population cells each facility reaches within a distance: one sparse answer.

The same model as `coverage.py` (see its docstring): a facility is linked to its nearest network node when that
node is within `access_m`, and the link is walked; a cell centre likewise. `facility_node_reach` runs one bounded
Dijkstra (`scipy.sparse.csgraph.dijkstra(..., indices=..., limit=...)`) from the distinct nodes of the linked
facilities, in chunks of rows, and keeps every (facility, node) pair within the limit as a sparse matrix.
`cell_facility_pairs` turns it into (cell, facility, metres) pairs, in network or Euclidean mode. Service areas
(`service_areas.py`) and the capacity check (`capacity.py`) both stand on these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geoplan.analysis.coverage import CoverageSettings
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
    """Per facility, the nodes it reaches within `limit_m`, link included."""

    metres: sparse.csr_matrix
    """(facilities, nodes): distance in metres + 1 (so 0 m is stored); absent = not reached."""
    link_m: FloatArray
    """Per facility: straight distance to its nearest node (inf on an empty graph)."""
    node: IntArray
    """Per facility: its nearest node (n_nodes on an empty graph)."""
    linked: BoolArray
    """Per facility: within access_m of the network (an unlinked facility reaches nothing)."""
    limit_m: float

    def pairs(self) -> tuple[IntArray, IntArray, FloatArray]:
        """(facility, node, metres) of every reached pair, sorted by facility then node."""
        coo = self.metres.tocoo()
        order = np.lexsort((coo.col, coo.row))
        rows = np.asarray(coo.row[order], dtype=np.intp)
        cols = np.asarray(coo.col[order], dtype=np.intp)
        return rows, cols, np.asarray(coo.data[order], dtype=np.float64) - _OFFSET


def facility_node_reach(graph: WalkGraph, fac_xy: FloatArray, *, access_m: float, limit_m: float) -> NodeReach:
    """Every (facility, node) pair with link + network distance <= limit_m (one bounded Dijkstra, chunked)."""
    fac_xy = np.asarray(fac_xy, dtype=np.float64).reshape(-1, 2)
    n, k = graph.n_nodes, len(fac_xy)
    link, node = graph.nearest(fac_xy)
    linked = link <= access_m
    empty = sparse.csr_matrix((k, n), dtype=np.float64)
    on = np.flatnonzero(linked & (link <= limit_m + TOLERANCE_M))
    if n == 0 or len(on) == 0:
        return NodeReach(empty, link, node, linked, limit_m)
    sources, source_of = np.unique(node[on], return_inverse=True)
    budget = limit_m + TOLERANCE_M - float(link[on].min())
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
        vals.append(dist.reshape(len(block), n)[s, t] + _OFFSET)
    by_source = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(sources), n)
    )
    # one row per linked facility: its source node's row, plus its own link, cut at the limit
    per_fac = by_source[source_of.ravel()].tocsr()
    counts = np.diff(per_fac.indptr)
    per_fac.data = per_fac.data + np.repeat(link[on], counts)
    per_fac.data[per_fac.data > limit_m + TOLERANCE_M + _OFFSET] = 0.0
    per_fac.eliminate_zeros()
    coo = per_fac.tocoo()
    metres = sparse.csr_matrix((coo.data, (on[coo.row], coo.col)), shape=(k, n))
    return NodeReach(metres, link, node, linked, limit_m)


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
    centres: FloatArray, fac_xy: FloatArray, graph: WalkGraph | None, settings: CoverageSettings
) -> CellPairs:
    """Every (cell centre, facility) pair whose travel distance is within `settings.threshold_m`.

    Network mode: cell link + network distance + facility link, as `coverage.cell_times` measures it, but for
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
    reach = facility_node_reach(graph, fac_xy, access_m=settings.access_m, limit_m=limit)
    cell_link, cell_node = graph.nearest(centres)
    off = ~(cell_link <= settings.access_m)
    on = np.flatnonzero(~off)
    if len(on) == 0 or reach.metres.nnz == 0:
        return CellPairs(nothing, nothing, np.empty(0), off, ~reach.linked)
    by_node = reach.metres.T.tocsr()  # (nodes, facilities)
    rows = by_node[cell_node[on]].tocsr()
    counts = np.diff(rows.indptr)
    cell = np.repeat(on, counts)
    total = rows.data - _OFFSET + cell_link[cell]
    keep = total <= limit + TOLERANCE_M
    return CellPairs(
        cell[keep].astype(np.intp),
        np.asarray(rows.indices[keep], dtype=np.intp),
        total[keep],
        off,
        ~reach.linked,
    )
