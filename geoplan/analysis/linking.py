"""Linking people and facilities to the walking network: the nearest point of the nearest street.

A point (a cell centre, a facility, a candidate site) joins the network at the nearest point q of the nearest
walkable edge, if that edge is within `access_m` (as R5's and OpenTripPlanner's street linking do: the edge
is split virtually at q, nothing is added to the graph). From q the walk goes along the edge to either end
node, so a linked point has two *anchors*: the edge's end nodes, each with an *offset* = straight link +
metres along the edge's shape from q to that end. Travel between a cell c and a facility f is then

    min over the anchors a of c and b of f:  offset_c(a) + network(a, b) + offset_f(b)

and, when both joined the same edge, also the direct walk  link_c + |along_c − along_f| + link_f.

`linker="node"` keeps the earlier model for comparison only (benchmarks, the note on what changed): the
nearest node within `access_m`, both anchors that node, offset = the straight link.

Everything is vectorised: one STRtree `query_nearest` over the edges, `shapely.line_locate_point` for the
position along them, and numpy for the rest; the multi-source search (`source_distances`) is one
`scipy.sparse.csgraph.dijkstra` from virtual source nodes, one per facility with an edge to each anchor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from geoplan.analysis.network import WalkGraph

__all__ = ["Linker", "Links", "link_points", "same_edge_nearest", "same_edge_pairs", "source_distances"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

Linker = Literal["edge", "node"]
LINK_OFFSET = 1.0
"""Added to every virtual source edge (and taken off again) so a facility standing on a node keeps its edge:
an explicit 0 in a sparse matrix would read as "no edge"."""


@dataclass(frozen=True)
class Links:
    """Where each of m points joins the network."""

    link_m: FloatArray
    """Straight distance to the network (the nearest edge; the nearest node for linker="node"); inf when
    nothing lies within access_m."""
    linked: BoolArray
    """link_m <= access_m: the point is on the network (an unlinked one reaches and is reached by nothing)."""
    edge: IntArray
    """The edge joined (index into graph.edge_geoms); -1 when unlinked or linker="node"."""
    along: FloatArray
    """Metres along that edge's shape from its first point to the join (0 when edge is -1)."""
    anchor: IntArray
    """(m, 2): the nodes the walk can enter the network by (the edge's ends); n_nodes when unlinked."""
    offset: FloatArray
    """(m, 2): metres from the point to each anchor, its link included; inf when unlinked."""


def link_points(graph: WalkGraph, xy: FloatArray, *, access_m: float, linker: Linker = "edge") -> Links:
    """Link every point to the network (see the module docstring)."""
    points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    m, n = len(points), graph.n_nodes
    link = np.full(m, np.inf)
    edge = np.full(m, -1, dtype=np.intp)
    along = np.zeros(m)
    anchor = np.full((m, 2), n, dtype=np.intp)
    offset = np.full((m, 2), np.inf)
    if linker not in ("edge", "node"):
        raise ValueError(f"unknown linker {linker!r}")
    if m and n:
        if linker == "node":
            dist, node = graph.nearest(points)
            on = dist <= access_m
            link[on] = dist[on]
            anchor[on] = node[on, None]
            offset[on] = dist[on, None]
        elif len(graph.edge_geoms):
            # max_distance must be positive; a point exactly access_m away is still linked (<= below)
            found, dist = graph.edge_tree.query_nearest(
                shapely.points(points), max_distance=access_m + 1e-9, return_distance=True, all_matches=False
            )
            at, e = np.asarray(found[0], dtype=np.intp), np.asarray(found[1], dtype=np.intp)
            ok = np.asarray(dist, dtype=np.float64) <= access_m
            at, e, d = at[ok], e[ok], np.asarray(dist, dtype=np.float64)[ok]
            length = graph.edge_length[e]
            pos = np.clip(shapely.line_locate_point(graph.edge_geoms[e], shapely.points(points[at])), 0.0, length)
            link[at] = d
            edge[at] = e
            along[at] = pos
            anchor[at] = graph.edge_ends[e]
            offset[at, 0] = d + pos
            offset[at, 1] = d + (length - pos)
    return Links(link_m=link, linked=np.isfinite(link), edge=edge, along=along, anchor=anchor, offset=offset)


def source_distances(graph: WalkGraph, sources: Links, *, limit_m: float) -> tuple[FloatArray, IntArray]:
    """Per network node: metres to the nearest linked source (its offset included) and that source (-1: none).

    One multi-source Dijkstra: each linked source is a virtual node with an edge to each of its anchors
    (weight = offset + LINK_OFFSET, taken off afterwards; every path leaves a source by exactly one such edge).
    `min_only=True` with `return_predecessors=True` also names the source. Distances beyond `limit_m` are inf.
    """
    n = graph.n_nodes
    linked = np.flatnonzero(sources.linked)
    if n == 0 or len(linked) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.intp)
    anchor, offset = sources.anchor[linked], sources.offset[linked]
    # a source whose two anchors are one node (a loop, the node linker) gets one edge, at the shorter offset
    same = anchor[:, 0] == anchor[:, 1]
    offset = np.where(same[:, None], offset.min(axis=1, keepdims=True), offset)
    use = np.column_stack([np.ones(len(linked), dtype=bool), ~same])
    augmented = _with_source_rows(graph.matrix, anchor, offset + LINK_OFFSET, use)
    dist, _, src = dijkstra(
        augmented,
        directed=True,
        indices=n + np.arange(len(linked)),
        min_only=True,
        limit=limit_m + LINK_OFFSET,
        return_predecessors=True,
    )
    node_dist = np.asarray(dist[:n], dtype=np.float64) - LINK_OFFSET
    source = np.asarray(src[:n], dtype=np.intp)
    reached = np.isfinite(node_dist) & (source >= n)
    node_source = np.full(n, -1, dtype=np.intp)
    node_source[reached] = linked[source[reached] - n]
    node_dist[~reached] = np.inf
    return node_dist, node_source


def _with_source_rows(
    matrix: sparse.csr_matrix, targets: IntArray, weights: FloatArray, use: BoolArray
) -> sparse.csr_matrix:
    """`matrix` (n x n) grown by one row per virtual source, row n+i holding its edges to targets[i][use[i]].

    The new rows go after the existing ones, so the CSR arrays are only appended to (a copy, no sort):
    rebuilding the matrix from coordinates cost more than the Dijkstra itself on a million-edge network.
    """
    n, k = matrix.shape[0], len(targets)
    csr = matrix.tocsr()
    count = use.sum(axis=1)
    nnz = csr.nnz + int(count.sum())
    # scipy's csgraph works on int32 indices; giving it int32 spares it a conversion copy
    index = np.int32 if nnz < np.iinfo(np.int32).max and n + k < np.iinfo(np.int32).max else np.int64
    indptr = np.concatenate([csr.indptr.astype(index), csr.indptr[-1] + np.cumsum(count).astype(index)])
    indices = np.concatenate([csr.indices.astype(index), np.asarray(targets[use], dtype=index)])
    data = np.concatenate([np.asarray(csr.data, dtype=np.float64), np.asarray(weights[use], dtype=np.float64)])
    return sparse.csr_matrix((data, indices, indptr), shape=(n + k, n + k))


def same_edge_pairs(points: Links, facilities: Links, *, limit_m: float) -> tuple[IntArray, IntArray, FloatArray]:
    """(point, facility, metres) for every linked pair on one edge whose direct walk along it is within limit_m:
    link + |along − along| + link. Only the edge linker has such pairs."""
    fac = np.flatnonzero(facilities.linked & (facilities.edge >= 0))
    pts = np.flatnonzero(points.linked & (points.edge >= 0))
    nothing = np.empty(0, dtype=np.intp)
    if len(fac) == 0 or len(pts) == 0:
        return nothing, nothing, np.empty(0)
    fac = fac[np.argsort(facilities.edge[fac], kind="stable")]
    fac_edge = facilities.edge[fac]
    lo = np.searchsorted(fac_edge, points.edge[pts], side="left")
    hi = np.searchsorted(fac_edge, points.edge[pts], side="right")
    count = hi - lo
    p = np.repeat(pts, count)
    start = np.repeat(lo, count)
    f = fac[start + np.arange(len(p)) - np.repeat(np.cumsum(count) - count, count)]
    metres = points.link_m[p] + np.abs(points.along[p] - facilities.along[f]) + facilities.link_m[f]
    keep = metres <= limit_m
    return p[keep], f[keep], metres[keep]


def same_edge_nearest(points: Links, facilities: Links, *, limit_m: float) -> tuple[FloatArray, IntArray]:
    """Per point: metres to the nearest facility on its own edge by the direct walk (inf, -1: none)."""
    m = len(points.link_m)
    dist, which = np.full(m, np.inf), np.full(m, -1, dtype=np.intp)
    p, f, metres = same_edge_pairs(points, facilities, limit_m=limit_m)
    if len(p):
        order = np.lexsort((f, metres, p))  # per point the shortest first (ties: the lower facility)
        p, f, metres = p[order], f[order], metres[order]
        first = np.r_[True, p[1:] != p[:-1]]
        dist[p[first]] = metres[first]
        which[p[first]] = f[first]
    return dist, which
