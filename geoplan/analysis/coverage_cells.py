"""Population cells shared among villages: which people of the raster each village holds, exactly.

Every populated cell stands at its centre. A village receives each cell by the exact share of the cell's area
that lies in it, area(cell ∩ village) / area(cell ∩ all villages); exact intersections are computed only where a
village outline crosses a cell, every other cell lies wholly in one village. People in cells that touch no
village are `unassigned_population`. A raster in another CRS than EPSG:4547 is placed cell by cell: its
outlines and centres are transformed, so the shares stay exact. The coverage and capacity engines start here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from scipy import ndimage

from geoplan.crs import METRIC_CRS, crs_label
from geoplan.errors import CRSError
from geoplan.rasterdata import RasterData

__all__ = ["CellShares", "cell_shares"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class CellShares:
    """Populated cells (centres, values) and every (village, cell) share of their people."""

    centres: FloatArray
    values: FloatArray
    village: IntArray
    cell: IntArray
    people: FloatArray
    unassigned_population: float


_MEMO: OrderedDict[str, CellShares] = OrderedDict()
_MEMO_SIZE = 4
_MEMO_LOCK = threading.Lock()


def cell_shares(population: RasterData, village_geoms: NDArray[np.object_]) -> CellShares:
    """Populated cells and the exact area share of each that every village holds (see the module docstring).

    Remembered for the last few inputs, by their contents: the shares depend only on the cells and the village
    outlines, which stay the same from one quarter's indicators to the next (and from the cultural to the
    library coverage of one run). The arrays returned are read-only, shared by every caller.
    """
    key = _digest(population, village_geoms)
    with _MEMO_LOCK:
        known = _MEMO.get(key)
        if known is not None:
            _MEMO.move_to_end(key)
            return known
    shares = _cell_shares(population, village_geoms)
    for array in (shares.centres, shares.values, shares.village, shares.cell, shares.people):
        array.flags.writeable = False
    with _MEMO_LOCK:
        _MEMO[key] = shares
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return shares


def _digest(population: RasterData, village_geoms: NDArray[np.object_]) -> str:
    h = hashlib.sha256()
    array = np.ascontiguousarray(population.array)
    h.update(f"{array.dtype}|{array.shape}|{tuple(population.transform)}|{population.crs}|{population.nodata}".encode())
    h.update(array.tobytes())
    geoms = np.asarray(village_geoms, dtype=object)
    for wkb in shapely.to_wkb(geoms):
        h.update(b"-" if wkb is None else wkb)
    return h.hexdigest()


def _cell_shares(population: RasterData, village_geoms: NDArray[np.object_]) -> CellShares:
    """`cell_shares`, computed.

    Only cells that a village outline crosses need a polygon intersection. For a north-up raster in the metric
    CRS those are found by burning the outlines into the grid (every cell they touch, grown by one cell so no
    grazing touch is missed); every other cell lies wholly in the village at its centre, or in none. A raster in
    another CRS (or rotated) has its cell outlines transformed to EPSG:4547 and intersected one by one.
    """
    data = np.asarray(population.array, dtype=np.float64)
    ok = np.isfinite(data) & (data > 0)
    if population.nodata is not None:
        ok &= data != population.nodata
    rows, cols = np.nonzero(ok)
    values = data[rows, cols]
    centres = _cell_centres(population, rows, cols)

    geoms = np.asarray(village_geoms, dtype=object).copy()
    geoms[shapely.is_missing(geoms) | shapely.is_empty(geoms)] = None  # a missing village holds no cell
    n = len(values)
    if _is_metric_north_up(population):
        crossed = _crossed_cells(population, geoms)[rows, cols]
        whole = np.flatnonzero(~crossed)
        holder = _centre_village(geoms, centres[whole])
        ci_in = whole[holder >= 0]
        vi_in = holder[holder >= 0]
        area_in = np.full(len(ci_in), population.cell_area_m2)
        exact = np.flatnonzero(crossed)
    else:
        vi_in, ci_in, area_in = np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
        exact = np.arange(n)
    vi_x, ci_x, area_x = _exact_shares(geoms, _cell_outlines(population, rows[exact], cols[exact]))
    vi = np.concatenate([vi_in, vi_x]).astype(np.intp)
    ci = np.concatenate([ci_in, exact[ci_x]]).astype(np.intp)
    area = np.concatenate([area_in, area_x])
    held = np.bincount(ci, weights=area, minlength=n)
    people = values[ci] * area / held[ci]
    unassigned = float(values[held <= 0].sum())
    return CellShares(centres, values, vi, ci, people, unassigned)


def _is_metric_north_up(population: RasterData) -> bool:
    t = population.transform
    return t.b == 0 and t.d == 0 and CRS.from_user_input(population.crs).equals(CRS.from_user_input(METRIC_CRS))


def _to_metric(population: RasterData, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Raster CRS coordinates -> EPSG:4547 (unchanged when the raster is already there)."""
    source = CRS.from_user_input(population.crs)
    if source.equals(CRS.from_user_input(METRIC_CRS)):
        return x, y
    if not (source.is_geographic or source.is_projected):
        raise CRSError(f"the population raster's CRS {crs_label(source)} is neither geographic nor projected")
    mx, my = Transformer.from_crs(source, METRIC_CRS, always_xy=True).transform(x, y)
    mx, my = np.asarray(mx, dtype=np.float64), np.asarray(my, dtype=np.float64)
    if not (np.all(np.isfinite(mx)) and np.all(np.isfinite(my))):
        raise CRSError(f"the population raster's cells cannot be placed in {METRIC_CRS} from {population.crs}")
    return mx, my


def _cell_centres(population: RasterData, rows: IntArray, cols: IntArray) -> FloatArray:
    t = population.transform
    cx = t.c + (cols + 0.5) * t.a + (rows + 0.5) * t.b
    cy = t.f + (cols + 0.5) * t.d + (rows + 0.5) * t.e
    mx, my = _to_metric(population, cx, cy)
    return np.column_stack([mx, my])


def _cell_outlines(population: RasterData, rows: IntArray, cols: IntArray) -> NDArray[np.object_]:
    """Each cell's outline in EPSG:4547 (its corners transformed when the raster is in another CRS)."""
    t = population.transform
    corner_cols = np.stack([cols, cols + 1, cols + 1, cols, cols], axis=1).astype(np.float64)
    corner_rows = np.stack([rows, rows, rows + 1, rows + 1, rows], axis=1).astype(np.float64)
    x = t.c + corner_cols * t.a + corner_rows * t.b
    y = t.f + corner_cols * t.d + corner_rows * t.e
    mx, my = _to_metric(population, x, y)
    return np.asarray(shapely.polygons(np.stack([mx, my], axis=2)), dtype=object)


def _crossed_cells(population: RasterData, geoms: NDArray[np.object_]) -> BoolArray:
    """Per grid cell: may a village outline pass through it?

    The outlines are cut into pieces shorter than half a cell, and the cells of their vertices marked and grown
    by one cell: a piece that short cannot pass through a cell beyond its end points' neighbours.
    """
    t = population.transform
    rows, cols = population.array.shape
    crossed = np.zeros((rows, cols), dtype=bool)
    present = geoms[np.array([g is not None for g in geoms], dtype=bool)]
    if len(present) == 0:
        return crossed
    step = min(abs(t.a), abs(t.e)) / 2.0
    xy = shapely.get_coordinates(shapely.segmentize(shapely.boundary(present), step))
    col = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    row = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    crossed[row[inside], col[inside]] = True
    return np.asarray(ndimage.binary_dilation(crossed, structure=np.ones((3, 3), dtype=bool)), dtype=bool)


def _centre_village(geoms: NDArray[np.object_], centres: FloatArray) -> IntArray:
    """The village holding each point (-1: none), by prepared point-in-polygon tests."""
    found = np.full(len(centres), -1, dtype=np.intp)
    if len(centres) == 0:
        return found
    tree = shapely.STRtree(shapely.points(centres))
    vi, pi = tree.query(geoms, predicate="contains")
    found[pi] = vi
    return found


def _exact_shares(geoms: NDArray[np.object_], outlines: NDArray[np.object_]) -> tuple[IntArray, IntArray, FloatArray]:
    """Every (village, cell) pair with a positive intersection area, by polygon intersection."""
    if len(outlines) == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
    tree = shapely.STRtree(outlines)
    vi, ci = tree.query(geoms, predicate="intersects")
    vf, cf = tree.query(geoms, predicate="contains_properly")  # prepared and cheap: these need no intersection
    n = len(outlines)
    full = np.isin(vi.astype(np.int64) * n + ci, vf.astype(np.int64) * n + cf)
    area = np.asarray(shapely.area(outlines[ci]), dtype=np.float64)
    cut = np.flatnonzero(~full)
    area[cut] = shapely.area(shapely.intersection(geoms[vi[cut]], outlines[ci[cut]]))
    keep = area > 0
    return vi[keep].astype(np.intp), ci[keep].astype(np.intp), area[keep]
