"""Service areas (isochrones, 服务范围): for each facility, the area it serves within the coverage threshold.

What the polygon is (network mode), and why
--------------------------------------------
The walking graph keeps only node coordinates and edge lengths, not the street shapes, so the polygon is built
from what the coverage model itself counts, plus the streets walked, drawn as straight chords:

1. **Where people are reached.** `compute_coverage` links a person (a cell centre) to the nearest network node
   i, if that node is within `access_m`, and counts them reached by facility F when link + d_F(i) <= threshold,
   where d_F(i) is F's network distance to i (F's own link included). The set of such places is exactly
   ∪ over reached nodes i of  Voronoi(i) ∩ disc(i, min(access_m, threshold − d_F(i))).
   Each disc is drawn as a 64-gon *circumscribing* the circle, so the polygon holds every point the model
   counts: every cell centre covered by F (and whose nearest facility is F) lies inside F's polygon.
2. **The streets walked.** Every edge with a reached end i contributes its first threshold − d_F(i) metres
   from i (partial edges included; both ends reached and the budgets together at least its length: the
   whole edge), placed on the straight segment between the node coordinates in proportion to the walked
   length, and buffered by a fixed walk-side offset (`street_buffer_m`, default 50 m), so the polygon
   follows the reached streets as a map reader expects of an isochrone.

Both parts lie within the circle of radius `threshold` around the facility (a chord is never longer than
the walked length), up to the 64-gon's outward margin (0.12 % of a disc radius) and the street offset; so the
area is at most π (threshold + street_buffer_m)². A facility farther than `access_m` from the network reaches
nothing: empty geometry, `off_network` True.

Euclidean mode: a circle of radius threshold (a circumscribing 64-gon) around every facility.

One bounded Dijkstra from all facilities' nodes gives every (facility, node) distance (`reach.py`); the only
Python loop is the final union per facility.
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
    out = np.array([shapely.Polygon() for _ in range(k)], dtype=object)
    fac, node, dist = reach.pairs()
    if len(fac) == 0:
        return out, ~reach.linked
    budget = np.maximum(threshold + TOLERANCE_M - dist, 0.0)  # metres left on arriving at the node

    # 1. the places the coverage model reaches: Voronoi(node) ∩ disc(node, min(access_m, budget))
    radius = np.minimum(budget, settings.access_m)
    disc_at = np.flatnonzero(radius > 0)
    discs = shapely.buffer(
        shapely.points(graph.coords[node[disc_at]]), radius[disc_at] * _OUTWARD, quad_segs=_QUAD_SEGS
    )
    cells = _voronoi_cells(graph, np.unique(node[disc_at]), settings.access_m)
    if cells is not None:
        discs = shapely.intersection(discs, cells[node[disc_at]])
    disc_fac = fac[disc_at]

    # 2. the streets walked: from every reached node, the first `budget` metres of each of its edges
    adjacency = graph.matrix
    degree = np.diff(adjacency.indptr)[node]
    half = np.repeat(np.arange(len(node)), degree)  # one row per (reached pair, incident edge)
    offset = np.arange(len(half)) - np.repeat(np.cumsum(degree) - degree, degree)
    at = adjacency.indptr[node[half]] + offset
    other = np.asarray(adjacency.indices[at], dtype=np.intp)
    length = np.asarray(adjacency.data[at], dtype=np.float64)
    # the budget left at the other end (0 when it is not reached): pairs are sorted by (facility, node)
    n = graph.n_nodes
    keys = fac * n + node
    wanted = fac[half] * n + other
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    other_reached = keys[pos] == wanted
    budget_other = np.where(other_reached, budget[pos], 0.0)
    whole = budget[half] + budget_other >= length
    # an edge walked whole is drawn once (from its lower node), a partial one from each reached end
    share = np.where(whole, 1.0, np.minimum(budget[half] / length, 1.0))
    walked = (share > 0) & ~(whole & other_reached & (other < node[half]))
    start = graph.coords[node[half]][walked]
    end = start + (graph.coords[other][walked] - start) * share[walked, None]
    lines = shapely.linestrings(np.stack([start, end], axis=1))
    street_fac = fac[half][walked]
    # and each facility's own link to its node (an isolated node has no edge, but the walk to it counts)
    own = np.unique(fac)
    links = shapely.linestrings(np.stack([fac_xy[own], graph.coords[reach.node[own]]], axis=1))
    lines = np.concatenate([lines, links])
    street_fac = np.concatenate([street_fac, own])

    if street_buffer_m > 0:
        strips = shapely.buffer(lines, street_buffer_m, quad_segs=4)
    else:
        strips, street_fac = lines[:0], street_fac[:0]
    for f in np.unique(fac).tolist():
        reached = shapely.union_all(discs[disc_fac == f])
        mine = strips[street_fac == f]
        # most strips lie inside the discs already; only the rest need the (costly) union
        shapely.prepare(reached)
        extra = mine[~shapely.contains(reached, mine)]
        out[f] = shapely.union_all(np.concatenate([[reached], extra])) if len(extra) else reached
    return out, ~reach.linked


def _voronoi_cells(graph: WalkGraph, wanted: IntArray, access_m: float) -> GeomArray | None:
    """Per node, its Voronoi cell among all nodes (only `wanted` filled); None when GEOS gives no usable answer."""
    coords = graph.coords
    lo, hi = coords.min(axis=0) - access_m - 1.0, coords.max(axis=0) + access_m + 1.0
    frame = shapely.box(lo[0], lo[1], hi[0], hi[1])
    parts = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=frame))
    points = shapely.points(coords[wanted])
    at_point, at_part = shapely.STRtree(parts).query(points, predicate="within")
    if len(at_point) != len(wanted) or len(np.unique(at_point)) != len(wanted):
        log.warning("Voronoi cells did not match the network nodes; service areas drawn with unclipped discs")
        return None
    cells = np.empty(graph.n_nodes, dtype=object)
    cells[wanted[at_point]] = parts[at_part]
    return cells
