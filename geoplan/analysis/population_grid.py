"""Count-preserving regridding of a population raster onto the catalogue's 100 m grid.

People are counts, so a cell's value is moved, never interpolated. The rule, per source cell:

* its people are spread evenly over its area: the quadrilateral of its four corners projected to the metric CRS
  (at 3 arc-seconds the true edges bow from the straight ones by far under a millimetre);
* each target cell receives `value * area(source cell ∩ target cell ∩ district) / area(source cell)`;
  so only the part of a source cell inside the district is kept, and nothing is sampled or interpolated.

The overlap areas are exact. A quadrilateral's overlap with an axis-parallel target cell is the inclusion-exclusion
of its overlaps with four lower-left quadrants, and each of those is a closed-form line integral over the four
edges (Green's theorem), vectorised over all (source, target) pairs. Only target cells on the district's edge
need polygon clipping (shapely), a few thousand. Target cells that do not touch the district are nodata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer

FloatArray = NDArray[np.float64]

CELL = 100.0
NODATA = -1.0
_SOURCES_PER_BLOCK = 50_000  # source cells processed at once, so memory stays flat


@dataclass(frozen=True)
class TargetGrid:
    """The catalogue's grid over the district: `nrows × ncols` cells of `CELL` metres, aligned to multiples of it."""

    nrows: int
    ncols: int
    transform: Affine


@dataclass(frozen=True)
class SourceGrid:
    """A north-up source raster: values (NaN where nodata), its affine transform and CRS."""

    values: FloatArray
    transform: Affine
    crs: str


@dataclass(frozen=True)
class Regridded:
    array: NDArray[np.float32]  # the target grid, NODATA outside the district
    kept: float  # people of the source cells' inside parts (exact)
    source_total: float  # all people of the source window


def target_grid(bounds: tuple[float, float, float, float]) -> TargetGrid:
    """A 100 m grid aligned to multiples of 100 m that covers `bounds` (as the demo's grid does)."""
    x0 = np.floor(bounds[0] / CELL) * CELL
    y0 = np.floor(bounds[1] / CELL) * CELL
    x1 = np.ceil(bounds[2] / CELL) * CELL
    y1 = np.ceil(bounds[3] / CELL) * CELL
    ncols, nrows = round(float(x1 - x0) / CELL), round(float(y1 - y0) / CELL)
    return TargetGrid(nrows, ncols, Affine(CELL, 0.0, float(x0), 0.0, -CELL, float(y1)))


def valid_cells(grid: TargetGrid, district: shapely.Geometry) -> NDArray[np.bool_]:
    """Target cells that intersect (or touch) the district: the cells that hold a value, all others nodata."""
    row, col = np.divmod(np.arange(grid.nrows * grid.ncols), grid.ncols)
    x0 = grid.transform.c + col * CELL
    y1 = grid.transform.f - row * CELL
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    hit = shapely.STRtree(boxes).query(district, predicate="intersects")
    mask = np.zeros(grid.nrows * grid.ncols, dtype=bool)
    mask[hit] = True
    return mask.reshape(grid.nrows, grid.ncols)


def regrid_population(
    *,
    source: SourceGrid,
    district: shapely.Geometry,
    grid: TargetGrid,
    metric_crs: str,
    valid: NDArray[np.bool_] | None = None,
) -> Regridded:
    """Move the source's people onto `grid` (in `metric_crs`), keeping only each source cell's inside part."""
    values = np.where(np.isfinite(source.values), source.values, 0.0).ravel()
    quads = source_cell_quads(source, metric_crs)
    has_people = np.flatnonzero(values > 0)
    status, edge_parts = _cell_status(grid, district)
    out = np.zeros(grid.nrows * grid.ncols, dtype=np.float64)
    kept = 0.0
    for start in range(0, len(has_people), _SOURCES_PER_BLOCK):
        chunk = has_people[start : start + _SOURCES_PER_BLOCK]
        block = quads[chunk]
        src, tgt, area = overlap_areas(block, grid)
        where = status[tgt]
        edge = np.flatnonzero(where == _EDGE)
        if len(edge):
            polys = shapely.polygons(np.concatenate([block[src[edge]], block[src[edge], :1]], axis=1))
            area[edge] = shapely.area(shapely.intersection(polys, edge_parts[tgt[edge]]))
        take = where != _OUTSIDE
        people = values[chunk][src[take]] * area[take] / _shoelace(block)[src[take]]
        out += np.bincount(tgt[take], weights=people, minlength=out.size)
        kept += float(people.sum())

    valid = (status != _OUTSIDE if valid is None else valid).ravel()  # the cells touching the district
    result = np.full(out.size, NODATA, dtype=np.float32)
    result[valid] = out[valid].astype(np.float32)
    return Regridded(array=result.reshape(grid.nrows, grid.ncols), kept=kept, source_total=float(values.sum()))


_OUTSIDE, _INSIDE, _EDGE = 0, 1, 2


def _cell_status(grid: TargetGrid, district: shapely.Geometry) -> tuple[NDArray[np.int8], NDArray[np.object_]]:
    """Per target cell: outside, wholly inside, or on the district's edge (with its part inside the district)."""
    row, col = np.divmod(np.arange(grid.nrows * grid.ncols), grid.ncols)
    x0 = grid.transform.c + col * CELL
    y1 = grid.transform.f - row * CELL
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    tree = shapely.STRtree(boxes)
    status = np.zeros(len(boxes), dtype=np.int8)
    status[tree.query(district, predicate="intersects")] = _EDGE
    status[tree.query(district, predicate="contains_properly")] = _INSIDE
    parts = np.full(len(boxes), None, dtype=object)
    edge = np.flatnonzero(status == _EDGE)
    parts[edge] = shapely.intersection(boxes[edge], district)
    return status, parts


def source_cell_quads(src: SourceGrid, metric_crs: str) -> FloatArray:
    """Every source cell (row-major) as its four corners in `metric_crs`: an (n, 4, 2) array."""
    nrows, ncols = src.values.shape
    cols, rows = np.meshgrid(np.arange(ncols + 1.0), np.arange(nrows + 1.0))
    t = src.transform
    xs = t.c + t.a * cols + t.b * rows
    ys = t.f + t.d * cols + t.e * rows
    to_metric = Transformer.from_crs(src.crs, metric_crs, always_xy=True)
    mx, my = (np.asarray(v) for v in to_metric.transform(xs, ys))
    corners = [(slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None))]
    corners += [(slice(1, None), slice(1, None)), (slice(1, None), slice(None, -1))]
    quads = np.stack([np.stack([mx[r, c], my[r, c]], axis=-1) for r, c in corners], axis=2)
    return np.asarray(quads.reshape(nrows * ncols, 4, 2), dtype=np.float64)


def _signed_area(quads: FloatArray) -> FloatArray:
    x, y = quads[:, :, 0], quads[:, :, 1]
    return np.asarray(0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1))


def _shoelace(quads: FloatArray) -> FloatArray:
    return np.abs(_signed_area(quads))


def overlap_areas(quads: FloatArray, grid: TargetGrid) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]:
    """Every (quad, target cell) pair whose bounding boxes overlap, with the exact area of the overlap (m²):
    inclusion-exclusion of four quadrant areas."""
    x, y = quads[:, :, 0], quads[:, :, 1]
    c0 = np.clip(np.floor((x.min(axis=1) - grid.transform.c) / CELL), 0, grid.ncols).astype(np.int64)
    c1 = np.clip(np.ceil((x.max(axis=1) - grid.transform.c) / CELL), 0, grid.ncols).astype(np.int64)
    r0 = np.clip(np.floor((grid.transform.f - y.max(axis=1)) / CELL), 0, grid.nrows).astype(np.int64)
    r1 = np.clip(np.ceil((grid.transform.f - y.min(axis=1)) / CELL), 0, grid.nrows).astype(np.int64)
    nc = np.maximum(c1 - c0, 0)
    k = nc * np.maximum(r1 - r0, 0)
    src = np.repeat(np.arange(len(quads)), k)
    local = np.arange(len(src)) - np.repeat(np.cumsum(k) - k, k)
    row = r0[src] + local // np.maximum(nc[src], 1)
    col = c0[src] + local % np.maximum(nc[src], 1)
    left = grid.transform.c + col * CELL
    top = grid.transform.f - row * CELL
    v = quads[src]
    area = (
        _quadrant_area(v, left + CELL, top)
        - _quadrant_area(v, left, top)
        - _quadrant_area(v, left + CELL, top - CELL)
        + _quadrant_area(v, left, top - CELL)
    )
    orientation = np.sign(_signed_area(quads))[src]
    return src, row * grid.ncols + col, np.maximum(area * orientation, 0.0)


def _quadrant_area(v: FloatArray, qx: FloatArray, qy: FloatArray) -> FloatArray:
    """Signed area of each polygon `v` (n, k, 2) inside the quadrant x ≤ qx, y ≤ qy: by Green's theorem the
    boundary integral of min(x, qx)·[y ≤ qy] dy. Exact per edge: x is linear along an edge, so the edge's part
    below qy splits into at most two pieces on which min(x, qx) is linear, and its mean is its midpoint value."""
    total = np.zeros(len(v))
    k = v.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        for e in range(k):
            xa, ya = v[:, e, 0], v[:, e, 1]
            xb, yb = v[:, (e + 1) % k, 0], v[:, (e + 1) % k, 1]
            dy, dx = yb - ya, xb - xa
            ty = np.clip(np.where(dy != 0, (qy - ya) / dy, 0.0), 0.0, 1.0)
            t0 = np.where(dy > 0, 0.0, ty)
            t1 = np.where(dy > 0, ty, 1.0)
            tc = np.clip(np.where(dx != 0, (qx - xa) / dx, t0), t0, t1)
            m1, m2 = (t0 + tc) / 2, (tc + t1) / 2
            piece = (tc - t0) * np.minimum(xa + dx * m1, qx) + (t1 - tc) * np.minimum(xa + dx * m2, qx)
            total += dy * piece
    return total


def on_grid(transform: Affine, shape: tuple[int, int], grid: TargetGrid) -> tuple[int, int] | None:
    """The (row, col) offset of a raster in the metric CRS whose cells are the catalogue's cells, else None."""
    t = transform
    if (t.a, t.b, t.d, t.e) != (CELL, 0.0, 0.0, -CELL):
        return None
    dc = (t.c - grid.transform.c) / CELL
    dr = (grid.transform.f - t.f) / CELL
    if dc != round(dc) or dr != round(dr):
        return None
    return round(dr), round(dc)


def copy_on_grid(
    *, values: NDArray[np.floating], offset: tuple[int, int], grid: TargetGrid, valid: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """A raster already on the catalogue's grid, copied cell for cell (its values are already per-cell counts):
    cells outside the district or nodata (NaN) become NODATA, the rest keep their float32 value bit for bit."""
    out = np.full((grid.nrows, grid.ncols), NODATA, dtype=np.float32)
    dr, dc = offset
    rows, cols = values.shape
    r0, c0 = max(dr, 0), max(dc, 0)
    r1, c1 = min(dr + rows, grid.nrows), min(dc + cols, grid.ncols)
    if r0 < r1 and c0 < c1:
        out[r0:r1, c0:c1] = values[r0 - dr : r1 - dr, c0 - dc : c1 - dc].astype(np.float32)
    out[~valid | np.isnan(out)] = NODATA
    return out
