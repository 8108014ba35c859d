"""The synthetic walking network: street grids at the four town seats and roads between village centres.

Built as a node table plus segments between node indices. Node coordinates are transformed to EPSG:4490
once and every segment is then made from the transformed nodes, so segments that share a node share its
coordinates bit for bit and a graph built from segment end points is connected as designed.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from geoplan.demo.geometry import (
    GEO_CRS,
    METRIC_CRS,
    FloatArray,
    GeomArray,
    IntArray,
    inside,
    reproject_xy,
    wiggly_path,
)
from geoplan.demo.layout import GENGHE, HECHENG, TOWN_SEAT_CODES, URBAN
from geoplan.demo.partition import Partition, urban_radius
from geoplan.demo.sources import Sources

EDGE_MARGIN = 30.0  # m: roads keep this far inside the district outline
NECK_MARGIN = 5.0  # m: the margin where a road must thread a narrow neck of the outline
LATTICE = 50.0  # m: spacing of the lattice that routes such roads
SEGMENT = 200.0  # m: target length of a segment on roads between villages
MAX_LINK = 4_500.0  # m: longest extra (non-tree) link between neighbouring centres
GATEWAYS = 12  # grid edge nodes per town that country roads may join
SNAP = 350.0  # m: a unit centre this close to a street corner uses that corner as its centre

log = logging.getLogger(__name__)

SHORT_NAMES = {HECHENG: "荷城", "440608106": "杨和", "440608107": "明城", GENGHE: "更合"}


@dataclass
class _Builder:
    """Accumulates nodes and segments while the network is assembled."""

    nodes: list[FloatArray] = field(default_factory=list)
    count: int = 0
    a: list[int] = field(default_factory=list)
    b: list[int] = field(default_factory=list)
    road_class: list[str] = field(default_factory=list)
    name: list[str | None] = field(default_factory=list)
    walkable: list[bool] = field(default_factory=list)

    def add_nodes(self, xy: FloatArray) -> IntArray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        ids = np.arange(self.count, self.count + len(xy), dtype=np.int64)
        self.nodes.append(xy)
        self.count += len(xy)
        return ids

    def add_segment(self, a: int, b: int, road_class: str, name: str | None, walkable: bool = True) -> None:
        self.a.append(int(a))
        self.b.append(int(b))
        self.road_class.append(road_class)
        self.name.append(name)
        self.walkable.append(walkable)

    def add_path(self, ids: IntArray, road_class: str, name: str | None, walkable: bool = True) -> None:
        for a, b in itertools.pairwise(ids):
            self.add_segment(int(a), int(b), road_class, name, walkable)

    def xy(self) -> FloatArray:
        return np.vstack(self.nodes) if self.nodes else np.zeros((0, 2))


@dataclass(frozen=True)
class RoadNetwork:
    """Nodes and segments of the walking network."""

    nodes: FloatArray  # (n, 2) EPSG:4547
    nodes_ll: FloatArray  # (n, 2) EPSG:4490, transformed once
    edges: IntArray  # (m, 2) node indices
    road_class: list[str]
    name: list[str | None]
    walkable: list[bool]
    grid_nodes: dict[str, IntArray]  # town code -> nodes of its street grid
    seat_node: dict[str, int]
    hub_node: IntArray  # per village row: the node at its centre

    def lines_ll(self) -> list[shapely.MultiLineString]:
        """One MultiLineString per segment, built from the shared transformed nodes."""
        pairs = self.nodes_ll[self.edges]
        return [shapely.MultiLineString([p]) for p in pairs]

    def walkable_lines(self) -> GeomArray:
        """The walkable segments as lines in EPSG:4547."""
        keep = np.asarray(self.walkable, dtype=bool)
        return np.asarray(shapely.linestrings(self.nodes[self.edges[keep]]), dtype=object)

    def path(self, a: int, b: int, *, walkable_only: bool = True) -> IntArray:
        """Node indices of a shortest path between two nodes."""
        from scipy.sparse.csgraph import shortest_path

        keep = np.asarray(self.walkable) if walkable_only else np.ones(len(self.edges), bool)
        e = self.edges[keep]
        w = np.hypot(*(self.nodes[e[:, 0]] - self.nodes[e[:, 1]]).T)
        n = len(self.nodes)
        g = coo_matrix((np.concatenate([w, w]), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
        _, pred = shortest_path(g.tocsr(), directed=False, indices=a, return_predecessors=True)
        out = [b]
        while out[-1] != a:
            prev = int(pred[out[-1]])
            if prev < 0:
                raise ValueError("nodes are not connected")
            out.append(prev)
        return np.asarray(out[::-1], dtype=np.int64)


def _segment_ok(inner: shapely.Geometry, pts: FloatArray) -> bool:
    return bool(inner.contains(shapely.LineString(pts)))


def _grid(
    b: _Builder, code: str, seat: tuple[float, float], inner: shapely.Geometry, rng: np.random.Generator
) -> tuple[IntArray, int, shapely.Geometry]:
    """A slightly rotated, slightly irregular street grid filling the town's urban ellipse."""
    u = URBAN[code]
    s = u.grid_spacing * rng.uniform(0.92, 1.08)
    theta = np.radians(rng.uniform(-14.0, 14.0))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    reach = int(np.ceil((max(u.a, u.b) + np.hypot(u.dx, u.dy)) * 1.2 / s))
    ii, jj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    ij = np.column_stack([ii.ravel(), jj.ravel()])
    xy = np.asarray(seat) + (ij * s) @ rot.T
    xy = xy + rng.uniform(-0.08, 0.08, xy.shape) * s * (np.abs(ij).sum(axis=1) > 0)[:, None]
    keep = (urban_radius(xy, seat, u) < 1.1) & inside(inner, xy)
    index = {(int(i), int(j)): k for k, (i, j) in enumerate(ij) if keep[k]}
    edges: list[tuple[int, int, int, int]] = []  # local a, local b, line index, direction
    for (i, j), k in index.items():
        for di, dj, line, direction in ((1, 0, j, 0), (0, 1, i, 1)):
            other = index.get((i + di, j + dj))
            if other is None:
                continue
            if line % 4 != 0 and rng.random() < 0.07:  # a few missing blocks: grids are never perfect
                continue
            edges.append((k, other, line, direction))
    ea = np.array([e[0] for e in edges])
    eb = np.array([e[1] for e in edges])
    lines = shapely.linestrings(np.stack([xy[ea], xy[eb]], axis=1))
    ok = shapely.contains(inner, lines)
    ea, eb = ea[ok], eb[ok]
    meta = [e for e, good in zip(edges, ok, strict=True) if good]
    # keep the part of the grid connected to the seat
    n = len(xy)
    g = coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    seat_local = index[(0, 0)]
    alive = comp == comp[seat_local]
    used = sorted({k for k in index.values() if alive[k]})
    ids = b.add_nodes(xy[used])
    to_global = dict(zip(used, ids.tolist(), strict=True))
    short = SHORT_NAMES[code]
    for (ka, kb, line, direction), a_ in zip(meta, ea, strict=True):
        if not alive[a_]:
            continue
        if line % 8 == 0:
            cls = "主干路"
        elif line % 4 == 0:
            cls = "次干路"
        else:
            cls = "支路"
        number = (line + reach) // 2 + 1
        name = f"{short}{'横' if direction == 0 else '纵'}{number}路" if cls != "支路" else None
        b.add_segment(to_global[ka], to_global[kb], cls, name)
    hull = shapely.MultiPoint(xy[used]).convex_hull
    return ids, to_global[seat_local], hull


def _gateways(nodes: FloatArray, ids: IntArray, seat: tuple[float, float]) -> IntArray:
    """The outermost grid node in each of GATEWAYS angular sectors around the seat."""
    rel = nodes[ids] - np.asarray(seat)
    ang = np.floor((np.arctan2(rel[:, 1], rel[:, 0]) + np.pi) / (2 * np.pi) * GATEWAYS).astype(int)
    dist = np.hypot(*rel.T)
    out = []
    for sector in range(GATEWAYS):
        m = np.flatnonzero(ang == sector)
        if len(m):
            out.append(ids[m[np.argmax(dist[m])]])
    return np.asarray(out, dtype=np.int64)


def build_roads(src: Sources, part: Partition, rng: np.random.Generator) -> RoadNetwork:
    """Street grids, then a spanning tree plus short Gabriel links between village centres and grid edges."""
    inner = src.district.buffer(-EDGE_MARGIN)
    shapely.prepare(inner)
    b = _Builder()
    grid_nodes: dict[str, IntArray] = {}
    seat_node: dict[str, int] = {}
    hulls: dict[str, shapely.Geometry] = {}
    for code in TOWN_SEAT_CODES:
        ids, seat_id, hull = _grid(b, code, src.seats[code], inner, rng)
        grid_nodes[code], seat_node[code], hulls[code] = ids, seat_id, hull

    nodes = b.xy()
    hub_node = np.full(len(part.villages), -1, dtype=np.int64)
    all_grid = np.concatenate(list(grid_nodes.values()))
    for v, geom in enumerate(part.village_geoms):
        in_unit = all_grid[inside(geom, nodes[all_grid])]
        if len(in_unit):
            d = np.hypot(*(nodes[in_unit] - part.hubs[v]).T)
            if d.min() <= SNAP:  # the unit's centre lies in town: its centre is a street corner
                hub_node[v] = int(in_unit[np.argmin(d)])
    rural = np.flatnonzero(hub_node < 0)
    hub_xy = part.hubs[rural].copy()
    for i, v in enumerate(rural.tolist()):  # a centre hard against the outline moves inwards
        if not inner.contains(shapely.Point(hub_xy[i])):
            core = part.village_geoms[v].intersection(inner)
            p = core.point_on_surface()
            hub_xy[i] = (p.x, p.y)
    hub_node[rural] = b.add_nodes(hub_xy)

    # country roads between village centres and grid gateways
    gates = [_gateways(b.xy(), grid_nodes[c], src.seats[c]) for c in TOWN_SEAT_CODES]
    gate = np.concatenate(gates)
    gate_town = np.concatenate([np.full(len(g), k) for k, g in enumerate(gates)])
    pts_ids = np.concatenate([hub_node[rural], gate])
    owner = np.concatenate([np.full(len(rural), -1), gate_town])
    xy = b.xy()[pts_ids]
    tri = Delaunay(xy)
    simp = tri.simplices
    pairs = np.vstack([simp[:, [0, 1]], simp[:, [1, 2]], simp[:, [2, 0]]])
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    same_grid = (owner[pairs[:, 0]] >= 0) & (owner[pairs[:, 0]] == owner[pairs[:, 1]])
    pairs = pairs[~same_grid]
    lines = shapely.linestrings(np.stack([xy[pairs[:, 0]], xy[pairs[:, 1]]], axis=1))
    ok = shapely.contains(inner, lines)
    shrunk = [h.buffer(-150.0) for h in hulls.values()]
    for h in shrunk:
        if not h.is_empty:
            ok &= ~shapely.intersects(lines, h)
    pairs, lines = pairs[ok], lines[ok]
    length = shapely.length(lines)
    n = len(xy)
    g = coo_matrix((length, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    mst = minimum_spanning_tree(g).tocoo()
    in_tree = {(min(i, j), max(i, j)) for i, j in zip(mst.row.tolist(), mst.col.tolist(), strict=True)}
    mid = xy[pairs].mean(axis=1)
    radius = length / 2
    gabriel = np.ones(len(pairs), dtype=bool)
    for k in range(len(pairs)):
        d = np.hypot(*(xy - mid[k]).T)
        d[pairs[k]] = np.inf
        gabriel[k] = bool((d >= radius[k]).all())
    for k, (i, j) in enumerate(pairs.tolist()):
        tree_edge = (i, j) in in_tree
        between_towns = owner[i] >= 0 and owner[j] >= 0  # towns link through the tree only, not in bundles
        if not tree_edge and (between_towns or not gabriel[k] or length[k] > MAX_LINK):
            continue
        a, c = int(pts_ids[i]), int(pts_ids[j])
        path = wiggly_path(np.array([b.xy()[a], b.xy()[c]]), rng, step=SEGMENT, amplitude=0.05)
        if not _segment_ok(inner, path):
            path = wiggly_path(np.array([b.xy()[a], b.xy()[c]]), rng, step=SEGMENT, amplitude=0.0)
        mids = b.add_nodes(path[1:-1]) if len(path) > 2 else np.zeros(0, dtype=np.int64)
        ids = np.concatenate([[a], mids, [c]]).astype(np.int64)
        cls = "次干路" if owner[i] >= 0 or owner[j] >= 0 else "村道"
        b.add_path(ids, cls, None)

    _join_stranded(b, hub_node, seat_node[HECHENG], src.district, rng)
    _village_lanes(b, part, rural, hub_node, inner, rng)
    _expressway(b, src, grid_nodes, inner, rng)

    nodes = b.xy()
    edges = np.column_stack([np.asarray(b.a), np.asarray(b.b)]).astype(np.int64)
    nodes_ll = reproject_xy(nodes, METRIC_CRS, GEO_CRS)
    return RoadNetwork(
        nodes=nodes,
        nodes_ll=nodes_ll,
        edges=edges,
        road_class=b.road_class,
        name=b.name,
        walkable=b.walkable,
        grid_nodes=grid_nodes,
        seat_node=seat_node,
        hub_node=hub_node,
    )


def _join_stranded(
    b: _Builder, hub_node: IntArray, anchor: int, district: shapely.Geometry, rng: np.random.Generator
) -> None:
    """Link centres that straight roads cannot reach (behind a creek or a narrow neck of the outline).

    The link is the shortest path on a fine local lattice of points inside the district (with a small
    margin, so it also threads narrow necks), simplified where that stays inside: it bends around the
    outline the way a real road would.
    """
    loose = district.buffer(-NECK_MARGIN)
    shapely.prepare(loose)
    for _ in range(len(hub_node)):
        g = coo_matrix((np.ones(len(b.a)), (b.a, b.b)), shape=(b.count, b.count))
        _, comp = connected_components(g, directed=False)
        stranded = [int(h) for h in hub_node if comp[h] != comp[anchor]]
        if not stranded:
            return
        xy = b.xy()
        start = stranded[0]
        main = np.flatnonzero(comp == comp[anchor])
        near = main[np.argsort(np.hypot(*(xy[main] - xy[start]).T), kind="stable")[:40]]
        way = None
        for margin in (1_500.0, 4_000.0):
            way, reached = _lattice_route(loose, xy[start], xy[near], margin)
            if way is not None:
                break
        if way is None:
            log.warning("demo roads: village centre node %d could not be linked to the network", start)
            return
        path = wiggly_path(way, rng, step=SEGMENT, amplitude=0.0)
        ids = np.concatenate([[start], b.add_nodes(path[1:-1]), [near[reached]]]).astype(np.int64)
        b.add_path(ids, "村道", None)


def _lattice_route(
    area: shapely.Geometry, start: FloatArray, targets: FloatArray, margin: float
) -> tuple[FloatArray | None, int]:
    """Shortest path inside `area` from `start` to the nearest (by path) of `targets`, on a 50 m lattice."""
    step = LATTICE
    lo = np.minimum(start, targets.min(axis=0)) - margin
    hi = np.maximum(start, targets.max(axis=0)) + margin
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step))
    lattice = np.column_stack([gx.ravel(), gy.ravel()])
    lattice = lattice[inside(area, lattice)]
    pts = np.vstack([start, targets, lattice])
    tree = cKDTree(pts)
    pairs = tree.query_pairs(step * 1.5, output_type="ndarray")
    segs = shapely.linestrings(np.stack([pts[pairs[:, 0]], pts[pairs[:, 1]]], axis=1))
    ok = shapely.contains(area, segs)
    pairs, w = pairs[ok], shapely.length(segs[ok])
    n = len(pts)
    graph = coo_matrix((np.r_[w, w], (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])), shape=(n, n))
    dist, pred = dijkstra(graph.tocsr(), directed=False, indices=0, return_predecessors=True)
    reach = dist[1 : 1 + len(targets)]
    if not np.isfinite(reach).any():
        return None, -1
    best = int(np.argmin(reach))
    chain = [1 + best]
    while chain[-1] != 0:
        chain.append(int(pred[chain[-1]]))
    line = shapely.LineString(pts[chain[::-1]])
    simple = line.simplify(LATTICE / 2)
    if area.contains(simple):
        line = simple
    return shapely.get_coordinates(line), best


def _village_lanes(
    b: _Builder,
    part: Partition,
    rural: IntArray,
    hub_node: IntArray,
    inner: shapely.Geometry,
    rng: np.random.Generator,
) -> None:
    """A few dead-end lanes out of each village centre, kept inside the village."""
    for v in rural:
        unit = part.village_geoms[v].intersection(inner)
        shapely.prepare(unit)
        start = b.xy()[hub_node[v]]
        for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(3, 6))):
            length = rng.uniform(250.0, 650.0)
            end = start + length * np.array([np.cos(angle), np.sin(angle)])
            path = wiggly_path(np.array([start, end]), rng, step=160.0, amplitude=0.08)
            if not unit.contains(shapely.LineString(path)):
                continue
            ids = np.concatenate([[hub_node[v]], b.add_nodes(path[1:])]).astype(np.int64)
            b.add_path(ids, "村道", None)


def _expressway(
    b: _Builder, src: Sources, grid_nodes: dict[str, IntArray], inner: shapely.Geometry, rng: np.random.Generator
) -> None:
    """An expressway from the 荷城 grid to the 更合 grid: part of the network, but not walkable."""
    nodes = b.xy()
    east = grid_nodes[HECHENG][np.argmin(nodes[grid_nodes[HECHENG], 0])]
    west = grid_nodes[GENGHE][np.argmax(nodes[grid_nodes[GENGHE], 0])]
    mc, yh = np.asarray(src.seats["440608107"]), np.asarray(src.seats["440608106"])
    turns = np.vstack(
        [yh + np.array([[-1_500.0, -2_600.0]]), mc + np.array([[1_500.0, -3_000.0], [-4_000.0, -3_500.0]])]
    )
    via = np.vstack([nodes[east], turns])
    path = wiggly_path(np.vstack([via, nodes[west]]), rng, step=500.0, amplitude=0.03)
    if not _segment_ok(inner, path):
        return
    ids = np.concatenate([[east], b.add_nodes(path[1:-1]), [west]]).astype(np.int64)
    b.add_path(ids, "主干路", "高速公路（不可步行）", walkable=False)
