"""Towns and villages: a reproducible two-level partition of the real district outline.

No public town or village boundaries exist, so the district is cut into a few thousand small Voronoi faces
(finer around the town seats) and the faces are handed out on their adjacency graph, whose edge lengths are
noisy so that boundaries meander:

- the four small special units grow first from their seeds until they reach their size;
- the four towns share the rest by shortest-path distance minus a per-town offset, tuned until each town
  has roughly its real area (each town is then a shortest-path forest, hence connected);
- within each town, communities (seeded around the seat) and villages (spread over the rest) grow at the
  same speed until each holds its target area, so small units stay compact.

Villages are built from the very faces that make up their town, so each lies inside its real town exactly,
and both levels tile the district with no slivers or gaps.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely.ops import polylabel

from geoplan.demo.geometry import (
    FloatArray,
    GeomArray,
    IntArray,
    coverage_union,
    eval_field,
    farthest_points,
    in_ellipse,
    inside,
    jittered_grid,
    rep_point,
    smooth_field,
    voronoi_faces,
)
from geoplan.demo.layout import TOWN_LAYOUT, URBAN, UrbanArea
from geoplan.demo.sources import Sources

log = logging.getLogger(__name__)

_Entry = tuple[float, float, int, int]  # growth queue: (priority, arrival time, unit, node)
RURAL_SPACING = 600.0  # m between face seeds in the countryside (faces of ~0.36 km²)
HUB_CLEARANCE = 150.0  # m: a unit centre closer than this to the unit's edge is moved inwards
URBAN_SPACING = 260.0  # m between face seeds in urban areas (faces of ~7 ha), so communities get shape


@dataclass(frozen=True)
class Faces:
    """The fine coverage of the district and its adjacency graph."""

    geoms: GeomArray
    areas: FloatArray
    centers: FloatArray  # (n, 2) representative points, inside each face
    graph: csr_matrix  # symmetric, weights = noisy centre distances


@dataclass(frozen=True)
class Partition:
    """Towns and villages as unions of faces (EPSG:4547)."""

    faces: Faces
    town_codes: list[str]  # NBS order
    town_of_face: IntArray  # index into town_codes
    towns: list[shapely.MultiPolygon]
    villages: pd.DataFrame  # sources.villages in NBS order
    village_of_face: IntArray  # index into villages rows
    village_geoms: list[shapely.MultiPolygon]
    hubs: FloatArray  # (81, 2) centre point of each village-level unit, inside it

    def village_at(self, pts: FloatArray) -> IntArray:
        """Index of the village-level unit strictly containing each point (-1 on a boundary or outside)."""
        tree = shapely.STRtree(np.asarray(self.village_geoms, dtype=object))
        pi, vi = tree.query(shapely.points(np.atleast_2d(pts)), predicate="within")
        out = np.full(len(np.atleast_2d(pts)), -1, dtype=np.int64)
        out[pi] = vi
        return out


def urban_center(seat: tuple[float, float], urban: UrbanArea) -> tuple[float, float]:
    return (seat[0] + urban.dx, seat[1] + urban.dy)


def urban_radius(pts: FloatArray, seat: tuple[float, float], urban: UrbanArea) -> FloatArray:
    """Normalised elliptical distance from a town's urban centre (< 1 inside its urban area)."""
    return in_ellipse(pts, urban_center(seat, urban), urban.a, urban.b, urban.angle)


def build_faces(src: Sources, rng: np.random.Generator) -> Faces:
    """Cut the district into small faces: fine in the urban areas, coarse elsewhere."""
    district = src.district
    bounds = district.buffer(RURAL_SPACING).bounds
    coarse = jittered_grid(bounds, RURAL_SPACING, rng)
    fine = jittered_grid(bounds, URBAN_SPACING, rng)
    r_coarse = np.full(len(coarse), np.inf)
    r_fine = np.full(len(fine), np.inf)
    for code, urban in URBAN.items():
        r_coarse = np.minimum(r_coarse, urban_radius(coarse, src.seats[code], urban))
        r_fine = np.minimum(r_fine, urban_radius(fine, src.seats[code], urban))
    sites = np.vstack([coarse[r_coarse >= 1.25], fine[r_fine < 1.25]])
    sites = sites[inside(district.buffer(RURAL_SPACING), sites)]
    geoms, _ = voronoi_faces(sites, district)
    areas = shapely.area(geoms)
    centers = np.array([rep_point(g) for g in geoms])
    graph = _adjacency(geoms, centers, rng)
    log.debug("district cut into %d faces", len(geoms))
    return Faces(geoms=geoms, areas=areas, centers=centers, graph=graph)


def _adjacency(geoms: GeomArray, centers: FloatArray, rng: np.random.Generator) -> csr_matrix:
    """Faces sharing an edge (not just a corner), weighted by a noisy distance so boundaries meander."""
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b])))
    a, b = a[shared > 1e-6], b[shared > 1e-6]
    field = smooth_field(rng, scale=4_000.0)
    mid = (centers[a] + centers[b]) / 2
    w = np.hypot(*(centers[a] - centers[b]).T) * np.exp(0.45 * eval_field(field, mid))
    n = len(geoms)
    m = coo_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    return m.tocsr()


def grow_weighted(
    graph: csr_matrix, sources: list[list[int]], targets: FloatArray, areas: FloatArray, iterations: int = 300
) -> IntArray:
    """Assign every node to one of the source groups so each group's area approaches its target.

    Node v goes to argmin_k (dist_k(v) - w_k) with additive offsets w_k tuned by a damped controller on
    sqrt(area) (a length, the unit of w). Additive offsets keep each unit a shortest-path forest, hence
    connected, and give the broad, meandering outlines of town boundaries; it suits a few units of similar
    size (tiny units next to huge ones are better served by `grow_regions`).
    """
    k_count = len(sources)
    flat = [s for group in sources for s in group]
    owner = np.array([k for k, group in enumerate(sources) for _ in group])
    dist = np.atleast_2d(dijkstra(graph, directed=False, indices=flat))
    d = np.full((k_count, graph.shape[0]), 1e12)
    for row, k in enumerate(owner):
        d[k] = np.minimum(d[k], np.where(np.isfinite(dist[row]), dist[row], 1e12))
    targets = targets / targets.sum() * areas.sum()
    w = np.zeros(k_count)
    best_w, best_err = w.copy(), np.inf
    for it in range(iterations):
        labels = np.argmin(d - w[:, None], axis=0)
        got = np.bincount(labels, weights=areas, minlength=k_count)
        score = float(np.abs(got - targets).sum())
        if score < best_err:
            best_w, best_err = w.copy(), score
        w = w + 0.7 * (0.993**it) * (np.sqrt(targets) - np.sqrt(got))
    labels = np.argmin(d - best_w[:, None], axis=0)
    for k, group in enumerate(sources):
        labels[group[0]] = k
    return make_contiguous(graph, labels, [g[0] for g in sources])


def grow_regions(graph: csr_matrix, sources: list[list[int]], targets: FloatArray, areas: FloatArray) -> IntArray:
    """Assign every node to one of the source groups so each group's area approaches its target.

    All units grow at once, at the same speed, along noisy shortest paths, and a unit stops claiming once
    it holds its target area (equal speeds let a small unit fill up before a big neighbour arrives). Claims
    spread only through a unit's own territory, so units stay connected and compact (unlike weighted Voronoi
    diagrams, where a large unit can reach across a small one). Whatever is left when every frontier is
    full goes to the least-filled unit that borders it.
    """
    k_count = len(sources)
    targets = targets / targets.sum() * areas.sum()
    indptr, indices, weights = graph.indptr, graph.indices, graph.data
    labels = np.full(graph.shape[0], -1, dtype=np.int64)
    held = np.zeros(k_count)

    def claim(v: int, k: int, t: float, heap: list[_Entry], by_fill: bool) -> None:
        labels[v] = k
        held[k] += areas[v]
        key = held[k] / targets[k] if by_fill else 0.0
        for j in range(indptr[v], indptr[v + 1]):
            u = int(indices[j])
            if labels[u] < 0:
                heapq.heappush(heap, (key, t + float(weights[j]), k, u))

    # phase 1: everyone grows at the same speed until full
    heap: list[_Entry] = [(0.0, 0.0, k, s) for k, group in enumerate(sources) for s in group]
    heapq.heapify(heap)
    deferred: list[_Entry] = []
    while heap:
        _, t, k, v = heapq.heappop(heap)
        if labels[v] >= 0:
            continue
        if held[k] >= targets[k]:
            deferred.append((0.0, t, k, v))
            continue
        claim(v, k, t, heap, by_fill=False)
    # phase 2: pockets left behind go to the least-filled unit bordering them, so no small unit (a
    # community, say) swallows a large remainder. Fill only grows, so stale keys are refreshed lazily.
    heap = [(held[k] / targets[k], t, k, v) for _, t, k, v in deferred]
    heapq.heapify(heap)
    while heap:
        key, t, k, v = heapq.heappop(heap)
        if labels[v] >= 0:
            continue
        if key < held[k] / targets[k]:
            heapq.heappush(heap, (held[k] / targets[k], t, k, v))
            continue
        claim(v, k, t, heap, by_fill=True)
    return make_contiguous(graph, labels, [g[0] for g in sources])


def make_contiguous(graph: csr_matrix, labels: IntArray, seeds: list[int]) -> IntArray:
    """Hand every detached piece of a region to the neighbour it shares most edges with."""
    labels = labels.copy()
    coo = graph.tocoo()
    for _ in range(50):
        changed = False
        for k, seed in enumerate(seeds):
            members = np.flatnonzero(labels == k)
            if len(members) == 0:
                continue
            sub = graph[members][:, members]
            _, comp = connected_components(sub, directed=False)
            main = comp[np.searchsorted(members, seed)] if labels[seed] == k else np.bincount(comp).argmax()
            stray = members[comp != main]
            if len(stray) == 0:
                continue
            stray_set = np.zeros(len(labels), dtype=bool)
            stray_set[stray] = True
            sel = stray_set[coo.row] & (labels[coo.col] != k)
            if not sel.any():
                continue
            tally = pd.DataFrame({"node": coo.row[sel], "to": labels[coo.col[sel]]})
            best = tally.groupby(["node", "to"]).size().reset_index(name="n")
            best = best.sort_values(["node", "n", "to"], ascending=[True, False, True]).drop_duplicates("node")
            labels[best["node"].to_numpy()] = best["to"].to_numpy()
            changed = True
        if not changed:
            break
    return labels


def _face_at(faces: Faces, xy: tuple[float, float]) -> int:
    """Index of the face containing a point (or the nearest face centre)."""
    tree = shapely.STRtree(faces.geoms)
    hits = tree.query(shapely.Point(xy), predicate="intersects")
    if len(hits):
        return int(np.min(hits))
    return int(np.argmin(np.hypot(*(faces.centers - np.asarray(xy)).T)))


def _lloyd(pts: FloatArray, weights: FloatArray, seeds: IntArray, fixed: int, iterations: int = 8) -> IntArray:
    """Relax seed choices towards the centres of the areas they serve (indices into pts)."""
    seeds = seeds.copy()
    for _ in range(iterations):
        d = np.hypot(pts[:, None, 0] - pts[None, seeds, 0], pts[:, None, 1] - pts[None, seeds, 1])
        nearest = d.argmin(axis=1)
        for j in range(len(seeds)):
            if j < fixed:
                continue
            mine = nearest == j
            if not mine.any():
                continue
            mean = np.average(pts[mine], axis=0, weights=weights[mine])
            cand = np.flatnonzero(mine)
            seeds[j] = cand[np.argmin(np.hypot(*(pts[cand] - mean).T))]
    return seeds


def build_partition(src: Sources, hills: shapely.MultiPolygon, rng: np.random.Generator) -> Partition:
    """Grow the eight town-level units, then each town's village-level units, from the fine faces."""
    faces = build_faces(src, rng)
    town_codes = list(src.towns["town_code"])
    town_of_face = _grow_towns(src, faces, town_codes)
    towns = [coverage_union(faces.geoms[town_of_face == k]) for k in range(len(town_codes))]

    villages = src.villages.reset_index(drop=True)
    village_of_face = np.full(len(faces.geoms), -1, dtype=np.int64)
    hubs = np.zeros((len(villages), 2))
    in_hills = inside(hills, faces.centers) if not hills.is_empty else np.zeros(len(faces.geoms), bool)
    for k, code in enumerate(town_codes):
        rows = np.flatnonzero(villages["town_code"].to_numpy() == code)
        members = np.flatnonzero(town_of_face == k)
        if len(rows) == 1:
            village_of_face[members] = rows[0]
            hubs[rows[0]] = rep_point(towns[k])
            continue
        labels_local, seed_faces = _grow_villages(
            src, code, villages.iloc[rows], faces, members, in_hills[members], rng
        )
        village_of_face[members] = rows[labels_local]
        for j, row in enumerate(rows):
            hubs[row] = faces.centers[seed_faces[j]]
    village_geoms = [coverage_union(faces.geoms[village_of_face == v]) for v in range(len(villages))]
    for v, geom in enumerate(village_geoms):
        hubs[v] = _settle_hub(hubs[v], geom, hills)
    return Partition(
        faces=faces,
        town_codes=town_codes,
        town_of_face=town_of_face,
        towns=towns,
        villages=villages,
        village_of_face=village_of_face,
        village_geoms=village_geoms,
        hubs=hubs,
    )


def _settle_hub(hub: FloatArray, geom: shapely.MultiPolygon, hills: shapely.MultiPolygon) -> FloatArray:
    """Keep a unit's centre where it grew from unless that is on (or hard against) its edge.

    Such a centre (a seed face in a creek, or one lost to contiguity repair) moves to the pole of
    inaccessibility of the unit's hill-free core: the point farthest from its edges, where a village centre,
    its roads and its facilities fit.
    """
    pt = shapely.Point(hub)
    if geom.contains(pt) and geom.boundary.distance(pt) >= HUB_CLEARANCE:
        return hub
    core = geom.buffer(-HUB_CLEARANCE / 2)
    flat = core.difference(hills) if not hills.is_empty else core
    for cand in (flat, core, geom):
        parts = [q for q in shapely.get_parts(cand) if isinstance(q, shapely.Polygon) and q.area > 0]
        if parts:
            best = max(parts, key=lambda q: q.area)
            c = polylabel(best, tolerance=10.0)
            return np.array([c.x, c.y])
    return np.asarray(rep_point(geom))


def _grow_towns(src: Sources, faces: Faces, town_codes: list[str]) -> IntArray:
    """Carve out the small special units first, then share the rest among the four towns.

    The special units (prisons, forest and tea farms) are grown to their size from their seeds before the
    towns compete for the remainder, so a big town can never swallow them.
    """
    n = len(faces.geoms)
    labels = np.full(n, -1, dtype=np.int64)
    special = [k for k, c in enumerate(town_codes) if TOWN_LAYOUT[c].kind == "special"]
    ordinary = [k for k in range(len(town_codes)) if k not in special]
    if special:
        seeds = [[_face_at(faces, TOWN_LAYOUT[town_codes[k]].anchors[0])] for k in special]
        area = np.array([TOWN_LAYOUT[town_codes[k]].target_km2 * 1e6 for k in special])
        # the rest of the district is one more "unit" that absorbs everything else
        rest_seed = [_face_at(faces, src.seats[town_codes[ordinary[0]]])]
        got = grow_regions(
            faces.graph, [*seeds, rest_seed], np.append(area, faces.areas.sum() - area.sum()), faces.areas
        )
        for j, k in enumerate(special):
            labels[got == j] = k
        _absorb_enclaves(faces, labels, _face_at(faces, src.seats[town_codes[ordinary[0]]]))
    free = np.flatnonzero(labels < 0)
    sub = faces.graph[free][:, free]
    local = {int(f): i for i, f in enumerate(free)}
    sources: list[list[int]] = []
    targets = []
    for k in ordinary:
        code = town_codes[k]
        pts = [src.seats[code], *TOWN_LAYOUT[code].anchors]
        sources.append([local[f] for f in (_face_at(faces, p) for p in pts) if f in local])
        targets.append(TOWN_LAYOUT[code].target_km2 * 1e6)
    got = grow_weighted(sub, sources, np.asarray(targets), faces.areas[free])
    for j, k in enumerate(ordinary):
        labels[free[got == j]] = k
    return labels


def _absorb_enclaves(faces: Faces, labels: IntArray, main_face: int) -> None:
    """Unlabelled pockets cut off from the main body (behind a special unit) join the unit around them."""
    free = np.flatnonzero(labels < 0)
    _, comp = connected_components(faces.graph[free][:, free], directed=False)
    main = comp[np.searchsorted(free, main_face)]
    coo = faces.graph.tocoo()
    for c in np.unique(comp[comp != main]):
        pocket = np.zeros(len(labels), dtype=bool)
        pocket[free[comp == c]] = True
        around = labels[coo.col[pocket[coo.row] & (labels[coo.col] >= 0)]]
        labels[pocket] = np.bincount(around).argmax()


def _grow_villages(
    src: Sources,
    code: str,
    units: pd.DataFrame,
    faces: Faces,
    members: IntArray,
    hilly: np.ndarray,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Seed communities around the seat and villages across the rest of the town, then grow them."""
    pts = faces.centers[members]
    areas = faces.areas[members]
    urban = URBAN[code]
    seat = src.seats[code]
    r = urban_radius(pts, seat, urban)
    is_comm = units["type"].to_numpy() == "community"
    n_comm, n_vill = int(is_comm.sum()), int((~is_comm).sum())
    local_sub = faces.graph[members][:, members]

    seat_local = int(np.argmin(np.hypot(*(pts - np.asarray(seat)).T)))
    comm_cand = np.flatnonzero(r < urban.communities_radius)
    seeds_c = np.zeros(0, dtype=np.int64)
    if n_comm:
        start = int(np.searchsorted(comm_cand, seat_local)) if seat_local in comm_cand else 0
        pick = farthest_points(pts[comm_cand], n_comm, start)
        pick = np.concatenate([[start], pick[pick != start]])[:n_comm]
        seeds_c = comm_cand[_lloyd(pts[comm_cand], areas[comm_cand], pick, fixed=1)]
    vill_cand = np.flatnonzero((r > 1.1) & ~hilly)
    if len(vill_cand) < n_vill:
        vill_cand = np.flatnonzero(r > 1.0)
    start = int(rng.integers(len(vill_cand)))
    pick = farthest_points(pts[vill_cand], n_vill, start, fixed=pts[seeds_c] if n_comm else None)
    seeds_v = vill_cand[_lloyd(pts[vill_cand], areas[vill_cand], pick, fixed=0)]

    urban_area = float(areas[r < 1.0].sum())
    total = float(areas.sum())
    comm_target = min(urban_area * 0.85, total * 0.5) / max(n_comm, 1)
    vill_share = rng.uniform(0.6, 1.4, n_vill)
    vill_target = (total - comm_target * n_comm) * vill_share / vill_share.sum()
    # units are listed communities first in the NBS table, but map explicitly anyway
    order_c = np.flatnonzero(is_comm)
    order_v = np.flatnonzero(~is_comm)
    seeds = np.zeros(len(units), dtype=np.int64)
    targets = np.zeros(len(units))
    seeds[order_c] = seeds_c
    seeds[order_v] = seeds_v
    targets[order_c] = comm_target * rng.uniform(0.7, 1.3, n_comm)
    targets[order_v] = vill_target
    labels = grow_regions(local_sub, [[int(s)] for s in seeds], targets, areas)
    return labels, members[seeds]
