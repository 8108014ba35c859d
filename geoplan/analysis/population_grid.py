"""Count-preserving regridding of a population raster onto the catalogue's 100 m grid.

People are counts, so a cell's value is moved, never interpolated. The rule, per source cell:

* its people are spread evenly over its area (the cell's four corners projected to the metric CRS; at 3
  arc-seconds the edges between them are straight to well under a millimetre);
* only the part inside the district is kept: the cell keeps `value * area(cell ∩ district) / area(cell)`, computed
  exactly with polygons for cells on the district's edge;
* that kept number is split among the target cells in proportion to the share of the source cell's inside part
  each one holds, measured by supersampling the target cells (at least 3 samples across a source cell's shortest
  side). A source cell too small or too thin to catch a sample is split by exact polygon overlap instead.

Every source cell's kept number therefore lands in the target grid in full: the district total equals the exact
area-weighted total to floating-point precision, and only the split between neighbouring target cells is sampled.
Target cells that do not touch the district are nodata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.features import rasterize

FloatArray = NDArray[np.float64]

CELL = 100.0
NODATA = -1.0
_MIN_SAMPLES_ACROSS = 3  # samples across a source cell's shortest side
_MAX_SUPERSAMPLE = 20  # at most 20 × 20 samples per 100 m cell (5 m)
_ROWS_PER_BLOCK = 64  # target rows processed at once, so memory stays flat


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
    supersample: int


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


def source_cell_polygons(src: SourceGrid, metric_crs: str) -> shapely.Geometry:
    """Every source cell as a quadrilateral in `metric_crs` (row-major array of polygons)."""
    nrows, ncols = src.values.shape
    cols, rows = np.meshgrid(np.arange(ncols + 1), np.arange(nrows + 1))
    t = src.transform
    xs = t.c + t.a * cols + t.b * rows
    ys = t.f + t.d * cols + t.e * rows
    to_metric = Transformer.from_crs(src.crs, metric_crs, always_xy=True)
    mx, my = to_metric.transform(np.asarray(xs), np.asarray(ys))
    mx, my = np.asarray(mx), np.asarray(my)
    corners = [(slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None))]
    corners += [(slice(1, None), slice(1, None)), (slice(1, None), slice(None, -1))]
    ring = np.stack([np.stack([mx[r, c], my[r, c]], axis=-1) for r, c in corners], axis=2)
    ring = np.concatenate([ring, ring[:, :, :1]], axis=2).reshape(nrows * ncols, 5, 2)
    return shapely.polygons(ring)


def inside_fractions(polys: NDArray[np.object_], district: shapely.Geometry) -> FloatArray:
    """Per source cell: area(cell ∩ district) / area(cell), exact (polygons only for cells on the edge)."""
    tree = shapely.STRtree(polys)
    touching = tree.query(district, predicate="intersects")
    inside = tree.query(district, predicate="contains_properly")
    frac = np.zeros(len(polys))
    frac[inside] = 1.0
    edge = np.setdiff1d(touching, inside)
    if len(edge):
        frac[edge] = shapely.area(shapely.intersection(polys[edge], district)) / shapely.area(polys[edge])
    return frac


def regrid_population(
    *,
    source: SourceGrid,
    district: shapely.Geometry,
    grid: TargetGrid,
    metric_crs: str,
    valid: NDArray[np.bool_] | None = None,
) -> Regridded:
    """Move the source's people onto `grid` (in `metric_crs`), keeping only each source cell's inside part."""
    values = np.where(np.isfinite(source.values), source.values, 0.0)
    nrows, ncols = values.shape
    polys = source_cell_polygons(source, metric_crs)
    frac = inside_fractions(polys, district)
    kept_per_cell = values.ravel() * frac
    areas = shapely.area(polys)
    widths = np.sqrt(areas.min()) if len(areas) else CELL
    s = int(np.clip(np.ceil(_MIN_SAMPLES_ACROSS * CELL / max(widths, 1e-9)), 1, _MAX_SUPERSAMPLE))
    sub = CELL / s

    # the district on the sample lattice: a sample counts when its centre is inside (rasterize's rule)
    sample_t = Affine(sub, 0.0, grid.transform.c, 0.0, -sub, grid.transform.f)
    in_district = rasterize(
        [(district, 1)], out_shape=(grid.nrows * s, grid.ncols * s), transform=sample_t, dtype="uint8"
    )

    to_source = Transformer.from_crs(metric_crs, source.crs, always_xy=True)
    inverse = ~source.transform
    n_src = nrows * ncols
    hits_src: list[NDArray[np.int64]] = []
    hits_tgt: list[NDArray[np.int64]] = []
    counts = np.zeros(n_src, dtype=np.int64)
    for r0 in range(0, grid.nrows, _ROWS_PER_BLOCK):
        r1 = min(grid.nrows, r0 + _ROWS_PER_BLOCK)
        srow, scol = np.nonzero(in_district[r0 * s : r1 * s])
        if not len(srow):
            continue
        srow = srow + r0 * s
        x = grid.transform.c + (scol + 0.5) * sub
        y = grid.transform.f - (srow + 0.5) * sub
        sx, sy = _project_smoothly(to_source, x.astype(np.float64), y.astype(np.float64), grid)
        fc, fr = inverse * (sx, sy)
        c = np.floor(np.asarray(fc)).astype(np.int64)
        r = np.floor(np.asarray(fr)).astype(np.int64)
        ok = (c >= 0) & (c < ncols) & (r >= 0) & (r < nrows)
        src_idx = r[ok] * ncols + c[ok]
        tgt_idx = (srow[ok] // s).astype(np.int64) * grid.ncols + (scol[ok] // s)
        keep = kept_per_cell[src_idx] > 0
        counts += np.bincount(src_idx, minlength=n_src)
        hits_src.append(src_idx[keep])
        hits_tgt.append(tgt_idx[keep])

    out = np.zeros(grid.nrows * grid.ncols, dtype=np.float64)
    if hits_src:
        src_idx = np.concatenate(hits_src)
        tgt_idx = np.concatenate(hits_tgt)
        weight = kept_per_cell[src_idx] / counts[src_idx]
        out += np.bincount(tgt_idx, weights=weight, minlength=out.size)
    orphans = np.flatnonzero((kept_per_cell > 0) & (counts == 0))
    if len(orphans):
        _exact_split(out, polys[orphans], kept_per_cell[orphans], district, grid)

    valid = (valid_cells(grid, district) if valid is None else valid).ravel()
    result = np.full(out.size, NODATA, dtype=np.float32)
    result[valid] = out[valid].astype(np.float32)
    return Regridded(
        array=result.reshape(grid.nrows, grid.ncols),
        kept=float(kept_per_cell.sum()),
        source_total=float(values.sum()),
        supersample=s,
    )


def _project_smoothly(
    transformer: Transformer, x: FloatArray, y: FloatArray, grid: TargetGrid
) -> tuple[FloatArray, FloatArray]:
    """Project sample points by interpolating the exact projection of the target cells' corners: the projection
    is smooth, so within 100 m the bilinear interpolation is exact to far below a millimetre, and it costs one
    pyproj call per corner instead of one per sample."""
    fc = (x - grid.transform.c) / CELL
    fr = (grid.transform.f - y) / CELL
    c0 = np.clip(np.floor(fc).astype(np.int64), 0, grid.ncols - 1)
    r0 = np.clip(np.floor(fr).astype(np.int64), 0, grid.nrows - 1)
    r_lo, r_hi = int(r0.min()), int(r0.max()) + 1
    cols, rows = np.meshgrid(np.arange(grid.ncols + 1), np.arange(r_lo, r_hi + 1))
    cx = grid.transform.c + cols * CELL
    cy = grid.transform.f - rows * CELL
    px, py = transformer.transform(cx.astype(np.float64), cy.astype(np.float64))
    px, py = np.asarray(px), np.asarray(py)
    tc, tr = fc - c0, fr - r0
    rr = r0 - r_lo

    def lerp(p: FloatArray) -> FloatArray:
        top = p[rr, c0] * (1 - tc) + p[rr, c0 + 1] * tc
        bottom = p[rr + 1, c0] * (1 - tc) + p[rr + 1, c0 + 1] * tc
        return np.asarray(top * (1 - tr) + bottom * tr, dtype=np.float64)

    return lerp(px), lerp(py)


def _exact_split(
    out: FloatArray, polys: NDArray[np.object_], kept: FloatArray, district: shapely.Geometry, grid: TargetGrid
) -> None:
    """Split source cells that caught no sample by exact overlap of their inside part with the target cells."""
    parts = shapely.intersection(polys, district)
    for part, people in zip(parts, kept, strict=True):
        x0, y0, x1, y1 = part.bounds
        c0 = max(int(np.floor((x0 - grid.transform.c) / CELL)), 0)
        c1 = min(int(np.ceil((x1 - grid.transform.c) / CELL)), grid.ncols)
        r0 = max(int(np.floor((grid.transform.f - y1) / CELL)), 0)
        r1 = min(int(np.ceil((grid.transform.f - y0) / CELL)), grid.nrows)
        rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
        bx = grid.transform.c + cols.ravel() * CELL
        by = grid.transform.f - rows.ravel() * CELL
        area = shapely.area(shapely.intersection(shapely.box(bx, by - CELL, bx + CELL, by), part))
        if area.sum() > 0:
            np.add.at(out, rows.ravel() * grid.ncols + cols.ravel(), people * area / area.sum())


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
