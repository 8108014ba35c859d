"""Service areas (isochrones, 服务范围): for each facility, the area it serves within the coverage threshold.

What the polygon is (network mode), and why
--------------------------------------------
It is drawn from what the coverage model itself counts (`linking.py`): a person (a cell centre) at p joins the
network at the nearest point q of the nearest walkable street, if |p − q| <= `access_m`, and is reached by
facility F when |p − q| + d_F(q) <= threshold, where d_F(q) is F's walk to q (its link, along its street, the
network, along q's street). So the reached places are those within min(access_m, budget(q)) of a reached street
point q, budget(q) = threshold − d_F(q). The polygon is the union, per facility, of its reached street pieces:

1. From every node i that F reaches with budget b_i = threshold − d_F(i) > 0, along each street (edge) leaving
   i, the first min(b_i, length) metres of the street's shape; and from F's own join point along its street,
   both ways, with budget threshold − F's link.
2. Each piece is buffered by the budget at its start capped at `access_m` (the largest it has; a circle drawn
   as a polygon circumscribing it), cut into steps of at most 25 m where the budget falls below `access_m`, so
   the buffer follows the falling budget within a step.
3. The street pieces are also buffered by at least a fixed walk-side offset (`street_buffer_m`, default 50 m),
   and F's own link to its street by that offset, so the polygon follows the reached streets as a map reader
   expects of an isochrone.

So every cell centre the model counts as covered by F lies in F's polygon (q lies on a piece, and the piece's
radius there is at least |p − q|). The polygon may also hold places that the model links to another, unreached
street (it is not clipped to the places nearest each street). Every point of it is within threshold of F
(budget used + buffer <= threshold), up to the circumscribing margin (0.12 % of the radius) and the street
offset; so the area is at most π (threshold + street_buffer_m)². A facility farther than `access_m` from every
street reaches nothing: empty geometry, `off_network` True.

Euclidean mode: a circle of radius threshold (a circumscribing 64-gon) around every facility.

One bounded Dijkstra from all facilities' edge ends gives every (facility, node) distance (`reach.py`); the
pieces are cut from the street shapes vectorised; the only Python loop is the final union per facility.
"""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geoplan.analysis.coverage import CoverageSettings, facility_xy
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.reach import TOLERANCE_M, facility_node_reach
from geoplan.crs import METRIC_CRS
from geoplan.errors import CRSError, InputError

__all__ = ["SERVICE_AREA_COLUMNS", "STREET_BUFFER_M", "service_areas"]

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
GeomArray = NDArray[np.object_]

SERVICE_AREA_COLUMNS = ["facility_id", "name", "kind", "reach_m", "area_m2", "off_network"]
STREET_BUFFER_M = 50.0
"""The walk-side offset drawn around the reached streets (metres)."""
_QUAD_SEGS = 16  # 64-gons
_STEP_M = 25.0
"""Where the budget is below access_m, pieces are cut this short, so a buffer is at most this much too wide."""
_OUTWARD = 1.0 / math.cos(math.pi / (4 * _QUAD_SEGS))
"""A 64-gon of circumradius r/cos(π/64) circumscribes the circle of radius r."""


def service_areas(
    *,
    graph: WalkGraph | None,
    facilities: gpd.GeoDataFrame,
    settings: CoverageSettings,
    street_buffer_m: float = STREET_BUFFER_M,
) -> gpd.GeoDataFrame:
    """One service-area polygon per facility (EPSG:4547): SERVICE_AREA_COLUMNS + geometry; see the module doc."""
    if not isinstance(facilities, gpd.GeoDataFrame):
        raise InputError(f"facilities must be a GeoDataFrame, not {type(facilities).__name__}")
    if facilities.crs is None:
        raise CRSError("layer 'culture_facilities' has no CRS; set it first")
    for column in ("facility_id", "kind"):
        if column not in facilities.columns:
            raise InputError(f"layer 'culture_facilities' has no '{column}' field")
    if not (math.isfinite(street_buffer_m) and street_buffer_m >= 0):
        raise InputError(f"street_buffer_m must be a number >= 0, not {street_buffer_m!r}")
    fac_xy = facility_xy(facilities)

    threshold = settings.threshold_m
    if settings.mode == "euclidean":
        areas = shapely.buffer(shapely.points(fac_xy), threshold * _OUTWARD, quad_segs=_QUAD_SEGS)
        off_network = np.zeros(len(fac_xy), dtype=bool)
    else:
        if graph is None:
            raise InputError("network service areas need the walking graph (build_walk_graph); pass graph=")
        areas, off_network = _network_areas(graph, fac_xy, settings, street_buffer_m)

    names = facilities["name"] if "name" in facilities.columns else pd.Series([None] * len(facilities))
    table = pd.DataFrame(
        {
            "facility_id": [str(v) for v in facilities["facility_id"].to_numpy()],
            "name": names.to_numpy(),
            "kind": facilities["kind"].to_numpy(),
            "reach_m": np.full(len(fac_xy), threshold),
            "area_m2": np.asarray(shapely.area(areas), dtype=np.float64),
            "off_network": off_network,
        },
        columns=SERVICE_AREA_COLUMNS,
    )
    return gpd.GeoDataFrame(table, geometry=list(areas), crs=METRIC_CRS)


def _network_areas(
    graph: WalkGraph, fac_xy: FloatArray, settings: CoverageSettings, street_buffer_m: float
) -> tuple[GeomArray, NDArray[np.bool_]]:
    k = len(fac_xy)
    threshold = settings.threshold_m
    reach = facility_node_reach(graph, fac_xy, access_m=settings.access_m, limit_m=threshold)
    links = reach.links
    out = np.array([shapely.Polygon() for _ in range(k)], dtype=object)
    fac, node, dist = reach.pairs()
    budget = threshold + TOLERANCE_M - dist  # metres left on arriving at the node

    # 1. from every reached node along each street leaving it (a loop leaves its node twice)
    ends = graph.edge_ends
    incident_edge = np.concatenate([np.arange(len(ends)), np.arange(len(ends))])
    incident_end = np.repeat([0, 1], len(ends))
    by_node = np.argsort(ends.T.ravel(), kind="stable")
    first = np.searchsorted(ends.T.ravel()[by_node], np.arange(graph.n_nodes + 1))
    count = np.diff(first)[node]
    pair = np.repeat(np.arange(len(node)), count)
    slot = by_node[np.repeat(first[node], count) + np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)]
    edge = incident_edge[slot]
    length = graph.edge_length[edge]
    from_last = incident_end[slot] == 1
    piece_fac = [fac[pair]]
    piece_edge = [edge]
    piece_origin = [np.where(from_last, length, 0.0)]
    piece_dir = [np.where(from_last, -1.0, 1.0)]
    piece_budget = [budget[pair]]
    piece_reach = [np.minimum(budget[pair], length)]
    # and from each linked facility's join point, both ways along its own street
    own = np.flatnonzero(links.linked & (links.edge >= 0) & (links.link_m <= threshold + TOLERANCE_M))
    own_budget = threshold + TOLERANCE_M - links.link_m[own]
    own_length = graph.edge_length[links.edge[own]]
    for direction, room in ((1.0, own_length - links.along[own]), (-1.0, links.along[own])):
        piece_fac.append(own)
        piece_edge.append(links.edge[own])
        piece_origin.append(links.along[own])
        piece_dir.append(np.full(len(own), direction))
        piece_budget.append(own_budget)
        piece_reach.append(np.minimum(own_budget, room))
    lines, radius, line_fac = _buffered_pieces(
        graph,
        fac=np.concatenate(piece_fac),
        edge=np.concatenate(piece_edge),
        origin=np.concatenate(piece_origin),
        direction=np.concatenate(piece_dir),
        budget=np.concatenate(piece_budget),
        reach=np.concatenate(piece_reach),
        access_m=settings.access_m,
    )
    radius = np.maximum(radius * _OUTWARD, street_buffer_m)
    strips = shapely.buffer(lines, radius, quad_segs=_QUAD_SEGS)
    # 2. each facility's own link to its street, walked
    joined = np.flatnonzero(links.linked & (links.edge >= 0))
    if street_buffer_m > 0 and len(joined):
        join_xy = shapely.get_coordinates(
            shapely.line_interpolate_point(graph.edge_geoms[links.edge[joined]], links.along[joined])
        )
        link_lines = shapely.linestrings(np.stack([fac_xy[joined], join_xy], axis=1))
        strips = np.concatenate([strips, shapely.buffer(link_lines, street_buffer_m, quad_segs=_QUAD_SEGS)])
        line_fac = np.concatenate([line_fac, joined])
    keep = ~shapely.is_empty(strips)
    strips, line_fac = strips[keep], line_fac[keep]
    order = np.argsort(line_fac, kind="stable")
    strips, line_fac = strips[order], line_fac[order]
    if len(strips) == 0:  # nothing linked (e.g. access_m 0 with no facility on a street): all empty
        return out, ~links.linked
    present, starts = np.unique(line_fac, return_index=True)
    for f, group in zip(present.tolist(), np.split(strips, starts[1:]), strict=True):
        out[f] = shapely.union_all(group)
    return out, ~links.linked


def _buffered_pieces(
    graph: WalkGraph,
    *,
    fac: IntArray,
    edge: IntArray,
    origin: FloatArray,
    direction: FloatArray,
    budget: FloatArray,
    reach: FloatArray,
    access_m: float,
) -> tuple[GeomArray, FloatArray, IntArray]:
    """Street pieces walked: per input, `reach` metres of `edge` from `origin` (metres along it) in `direction`,
    with `budget` left at the origin. Returns the pieces (cut into steps where the budget is below access_m),
    each one's buffer radius (the budget at its start, at most access_m) and its facility."""
    walked = reach > 0
    fac, edge = fac[walked], edge[walked]
    origin, direction, budget, reach = origin[walked], direction[walked], budget[walked], reach[walked]
    # t in [0, flat]: budget >= access_m, one piece of radius access_m; then steps of at most _STEP_M
    flat = np.clip(budget - access_m, 0.0, reach)
    steps = np.ceil((reach - flat) / _STEP_M).astype(np.intp)
    has_flat = flat > 0
    t0 = [flat[has_flat] * 0.0]
    t1 = [flat[has_flat]]
    which = [np.flatnonzero(has_flat)]
    item = np.repeat(np.arange(len(reach)), steps)
    k = np.arange(len(item)) - np.repeat(np.cumsum(steps) - steps, steps)
    step_len = (reach - flat) / np.maximum(steps, 1)
    t0.append(flat[item] + k * step_len[item])
    t1.append(flat[item] + (k + 1) * step_len[item])
    which.append(item)
    start, stop, at = np.concatenate(t0), np.concatenate(t1), np.concatenate(which)
    radius = np.minimum(budget[at] - start, access_m)
    a = origin[at] + direction[at] * start
    b = origin[at] + direction[at] * stop
    lines = _substrings(graph, edge[at], np.minimum(a, b), np.maximum(a, b))
    return lines, np.maximum(radius, 0.0), fac[at]


def _substrings(graph: WalkGraph, edge: IntArray, s0: FloatArray, s1: FloatArray) -> GeomArray:
    """The part of each edge's shape between s0 and s1 metres from its first point (vectorised substring)."""
    geoms = graph.edge_geoms
    if len(edge) == 0:
        return np.empty(0, dtype=object)
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    step = np.r_[0.0, np.hypot(*np.diff(xy, axis=0).T)]
    first = np.r_[True, owner[1:] != owner[:-1]]
    step[first] = 0.0
    cum = np.cumsum(step)
    cum -= np.maximum.accumulate(np.where(first, cum, 0.0))  # metres from each edge's first point
    span = float(graph.edge_length.max()) + 1.0
    key = owner * span + cum  # increasing over all vertices: edges in order, metres within
    lo = np.searchsorted(key, edge * span + s0, side="right")
    hi = np.maximum(np.searchsorted(key, edge * span + s1, side="left"), lo)
    inner = hi - lo
    count = inner + 2
    piece = np.repeat(np.arange(len(edge)), count)
    j = np.arange(len(piece)) - np.repeat(np.cumsum(count) - count, count)
    head = shapely.get_coordinates(shapely.line_interpolate_point(geoms[edge], s0))
    tail = shapely.get_coordinates(shapely.line_interpolate_point(geoms[edge], s1))
    coords = xy[np.clip(lo[piece] + j - 1, 0, len(xy) - 1)]
    coords[j == 0] = head
    coords[j == count[piece] - 1] = tail
    return np.asarray(shapely.linestrings(coords, indices=piece), dtype=object)
