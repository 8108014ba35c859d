"""Geometric building blocks shared by the demo builders (all in the metric CRS, EPSG:4547).

The demo layers must tile the district exactly (towns, villages, land-use parcels), so partitions are built by
noding all linework once and polygonising it: neighbouring faces then share identical vertices, which keeps
unions exact and overlay slivers at floating-point noise instead of metres.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

METRIC_CRS = "EPSG:4547"
GEO_CRS = "EPSG:4490"

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
GeomArray = NDArray[np.object_]


@lru_cache(maxsize=4)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def reproject_xy(xy: FloatArray, src: str, dst: str) -> FloatArray:
    """Transform an (n, 2) coordinate array; identical inputs always give identical outputs."""
    if len(xy) == 0:
        return np.zeros((0, 2))
    x, y = _transformer(src, dst).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def reproject(geoms: GeomArray, src: str, dst: str) -> GeomArray:
    """Transform an array of geometries vertex by vertex."""
    return np.asarray(shapely.transform(geoms, lambda xy: reproject_xy(xy, src, dst)), dtype=object)


def step_rng(seed: int, step: str) -> np.random.Generator:
    """An independent random stream per build step.

    Deriving each step's stream from (seed, step name) means a change in one step's draws never shifts the
    draws of another, so layers stay stable while the builder evolves.
    """
    return np.random.default_rng([seed, zlib.crc32(step.encode("utf-8"))])


def jittered_grid(
    bounds: tuple[float, float, float, float], spacing: float, rng: np.random.Generator, jitter: float = 0.4
) -> FloatArray:
    """Points on a square lattice, each moved by up to `jitter` * spacing: evenly spread but not regular."""
    x0, y0, x1, y1 = bounds
    xs = np.arange(x0 + spacing / 2, x1, spacing)
    ys = np.arange(y0 + spacing / 2, y1, spacing)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts + rng.uniform(-jitter, jitter, pts.shape) * spacing


def inside(geom: BaseGeometry, pts: FloatArray) -> NDArray[np.bool_]:
    """Vectorised point-in-polygon for an (n, 2) array."""
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    shapely.prepare(geom)
    return np.asarray(shapely.contains_xy(geom, pts[:, 0], pts[:, 1]), dtype=bool)


def voronoi_faces(
    sites: FloatArray, region: BaseGeometry, extra_lines: Sequence[BaseGeometry] = ()
) -> tuple[GeomArray, IntArray]:
    """Voronoi cells of `sites` cut to `region`, as a coverage of single polygons.

    Returns the faces and, for each, the index of its site. A cell cut into several pieces by the region's
    outline yields several faces with the same site. `extra_lines` (e.g. other parcels' outlines) are noded
    into the same linework so the faces also respect them.
    """
    mp = shapely.MultiPoint(sites)
    pad = 10_000.0
    env = shapely.box(*region.bounds).buffer(pad)
    cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=env, ordered=True)))
    edges = shapely.voronoi_polygons(mp, extend_to=env, only_edges=True)
    lines = [edges, region.boundary, *extra_lines]
    noded = shapely.union_all(shapely.get_parts(lines))
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    faces = faces[shapely.area(faces) > 0]
    reps = shapely.point_on_surface(faces)
    shapely.prepare(region)
    faces = faces[shapely.contains(region, reps)]
    reps = reps[shapely.contains(region, reps)]
    tree = shapely.STRtree(cells)
    rep_idx, cell_idx = tree.query(reps, predicate="within")
    site = np.full(len(faces), -1, dtype=np.int64)
    site[rep_idx] = cell_idx
    if (site < 0).any():  # a representative point exactly on a cell edge: take the nearest site
        missing = np.flatnonzero(site < 0)
        xy = shapely.get_coordinates(reps[missing])
        d2 = ((xy[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
        site[missing] = d2.argmin(axis=1)
    return faces, site


def coverage_union(parts: Sequence[BaseGeometry] | GeomArray) -> shapely.MultiPolygon:
    """Union of polygons that tile without overlap, as a MultiPolygon."""
    arr = np.asarray(parts, dtype=object)
    try:
        merged = shapely.coverage_union_all(arr)
    except shapely.errors.GEOSException:  # not a clean coverage: fall back to the general union
        merged = shapely.union_all(arr)
    return to_multipolygon(merged)


def to_multipolygon(geom: BaseGeometry) -> shapely.MultiPolygon:
    """Keep only the polygonal parts of `geom`, wrapped as a MultiPolygon (the catalogue's geometry type)."""
    polys = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and not p.is_empty and p.area > 0]
    nested = [
        q
        for p in shapely.get_parts(geom)
        if isinstance(p, shapely.GeometryCollection | shapely.MultiPolygon)
        for q in shapely.get_parts(p)
        if isinstance(q, shapely.Polygon) and q.area > 0
    ]
    return shapely.MultiPolygon(polys + nested)


def blob(
    center: tuple[float, float], radius: float, rng: np.random.Generator, *, roughness: float = 0.3, n: int = 96
) -> shapely.Polygon:
    """An irregular star-shaped outline (hills, zones): a circle whose radius wobbles with a few harmonics.

    Star-shaped with a positive radius everywhere, so the ring never self-intersects.
    """
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rng.uniform(0.3, 1.0) * roughness / (k - 1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.35, None)
    ring = np.column_stack([center[0] + r * np.cos(theta), center[1] + r * np.sin(theta)])
    return shapely.Polygon(ring)


def in_ellipse(pts: FloatArray, center: tuple[float, float], a: float, b: float, angle_deg: float) -> FloatArray:
    """Normalised elliptical radius of each point (< 1 inside)."""
    ca, sa = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    dx, dy = pts[:, 0] - center[0], pts[:, 1] - center[1]
    u, v = dx * ca + dy * sa, -dx * sa + dy * ca
    return np.asarray(np.sqrt((u / a) ** 2 + (v / b) ** 2), dtype=np.float64)


def wiggly_path(
    points: FloatArray, rng: np.random.Generator, *, step: float = 200.0, amplitude: float = 0.04
) -> FloatArray:
    """Densify a polyline to about `step` metres and bend it sideways with a smooth half-sine wobble.

    The end points stay fixed, so a wiggly road still meets its neighbours at the shared nodes. With
    `amplitude` 0 it only densifies (and draws nothing from `rng`).
    """
    out = [points[:1]]
    for a, b in itertools.pairwise(points):
        vec = b - a
        length = float(np.hypot(*vec))
        n = max(1, int(np.ceil(length / step)))
        t = np.linspace(0.0, 1.0, n + 1)[1:]
        if amplitude == 0:
            out.append(a + np.outer(t, vec))
            continue
        normal = np.array([-vec[1], vec[0]]) / max(length, 1e-9)
        k = rng.integers(1, 3)
        offset = amplitude * length * rng.uniform(-1, 1) * np.sin(np.pi * k * t)
        out.append(a + np.outer(t, vec) + np.outer(offset, normal))
    return np.vstack(out)


def smooth_field(
    rng: np.random.Generator, *, scale: float, n_waves: int = 12
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Random Fourier features of a smooth noise field with features about `scale` metres across.

    Returns (wave vectors, phases, amplitudes); evaluate with `eval_field`.
    """
    angles = rng.uniform(0, np.pi, n_waves)
    k = 2.0 * np.pi / (scale * rng.uniform(0.6, 1.6, n_waves))
    waves = np.column_stack([k * np.cos(angles), k * np.sin(angles)])
    return waves, rng.uniform(0, 2 * np.pi, n_waves), rng.normal(0, 1, n_waves) / np.sqrt(n_waves / 2)


def eval_field(field: tuple[FloatArray, FloatArray, FloatArray], pts: FloatArray) -> FloatArray:
    """Value of a `smooth_field` at points (roughly standard normal)."""
    waves, phases, amps = field
    return np.asarray(np.cos(pts @ waves.T + phases) @ amps, dtype=np.float64)


def rep_point(geom: BaseGeometry) -> tuple[float, float]:
    """A point guaranteed inside `geom` (its centroid when that is inside, else a surface point)."""
    c = geom.centroid
    if geom.contains(c):
        return (c.x, c.y)
    p = geom.point_on_surface()
    return (p.x, p.y)


def farthest_points(pts: FloatArray, k: int, start: int, fixed: FloatArray | None = None) -> IntArray:
    """Greedy farthest-point sampling: k indices into pts, evenly spread (also away from `fixed` points)."""
    d = np.full(len(pts), np.inf)
    if fixed is not None and len(fixed):
        for f in fixed:
            d = np.minimum(d, np.hypot(*(pts - f).T))
        chosen: list[int] = []
    else:
        chosen = [start]
        d = np.minimum(d, np.hypot(*(pts - pts[start]).T))
    while len(chosen) < k:
        i = int(d.argmax())
        chosen.append(i)
        d = np.minimum(d, np.hypot(*(pts - pts[i]).T))
    return np.asarray(chosen, dtype=np.int64)
