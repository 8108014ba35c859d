"""Calibrate a population grid so that each unit (town or village) sums to a given total.

A cell shared by several units belongs to each in proportion to the area of the cell's in-district part it holds
(the same rule as the villages' zonal sums). A unit's sum is therefore `Σ value(cell) · share(cell, unit)`.

Each cell's value is split into its units' parts, every unit's parts are scaled by a factor, and the cell's new
value is the sum of its scaled parts. Because the new value is split again by area, one scaling is not enough
where cells are shared: the factors are updated multiplicatively (iterative proportional fitting) until every
unit's sum is within `tolerance` of its total. Units with no people in the grid but a positive total receive it
spread evenly over their area (also units with under one person: scaling a sliver of a shared edge cell up
would pile their whole total onto it); units without a total keep their sums (they are fitted to their own
current sum, so a shared edge cell does not shift people into or out of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from geoplan.analysis.population_grid import CELL, NODATA, TargetGrid
from geoplan.errors import InputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Calibrated:
    array: NDArray[np.float32]
    before: FloatArray  # per unit, the grid's sum before calibration
    after: FloatArray  # per unit, after (float32 as stored)
    spread_evenly: list[int]  # units that had no people and received their total spread over their area
    iterations: int


def unit_overlay(
    grid: TargetGrid, units: NDArray[np.object_], valid: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]:
    """Every (cell, unit, area) with a positive overlap between a valid cell and a unit polygon (metres)."""
    flat = np.flatnonzero(valid.ravel())
    row, col = np.divmod(flat, grid.ncols)
    x0 = grid.transform.c + col * CELL
    y1 = grid.transform.f - row * CELL
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    tree = shapely.STRtree(boxes)
    ui, bi = tree.query(units, predicate="intersects")
    uc, bc = tree.query(units, predicate="contains_properly")
    n = len(boxes)
    full = np.isin(ui.astype(np.int64) * n + bi, uc.astype(np.int64) * n + bc)
    area = np.where(full, CELL * CELL, 0.0)
    rest = np.flatnonzero(~full)
    area[rest] = shapely.area(shapely.intersection(units[ui[rest]], boxes[bi[rest]]))
    pos = area > 0
    return flat[bi[pos]].astype(np.int64), ui[pos].astype(np.int64), area[pos]


def calibrate(
    *,
    array: NDArray[np.float32],
    grid: TargetGrid,
    units: NDArray[np.object_],
    totals: FloatArray,
    names: list[str],
    tolerance: float = 0.01,
    max_iterations: int = 1000,
) -> Calibrated:
    """Scale `array` so that each unit with a finite `totals` entry sums to it (NaN: keep the unit's sum)."""
    valid = array != NODATA
    cell, unit, area = unit_overlay(grid, units, valid)
    values = np.where(valid, array, 0.0).astype(np.float64).ravel()
    cell_area = np.bincount(cell, weights=area, minlength=values.size)
    share = area / cell_area[cell]
    n_units = len(units)
    before = np.bincount(unit, weights=values[cell] * share, minlength=n_units).astype(np.float64)
    target = np.where(np.isnan(totals), before, totals)

    part = values[cell] * share  # each unit's part of each cell
    # under one person (e.g. only slivers of shared edge cells) cannot be scaled up sensibly: spread evenly
    empty = [u for u in range(n_units) if before[u] < 1.0 and target[u] >= 1.0]
    unit_area = np.bincount(unit, weights=area, minlength=n_units)
    for u in empty:
        mine = unit == u
        if unit_area[u] <= 0:
            raise InputError(f"cannot calibrate: {names[u]} covers no cell of the grid")
        part[mine] = target[u] * area[mine] / unit_area[u]  # spread evenly over the unit's area

    factor = np.ones(n_units)
    sums = before
    iterations = 0
    new = values
    held = cell_area > 0  # cells no unit holds keep their value
    while iterations < max_iterations:
        iterations += 1
        new = np.where(held, np.bincount(cell, weights=part * factor[unit], minlength=values.size), values)
        sums = np.bincount(unit, weights=new[cell] * share, minlength=n_units).astype(np.float64)
        if np.all(np.abs(sums - target) <= tolerance):
            break
        factor = np.where(sums > 0, factor * target / np.where(sums > 0, sums, 1.0), factor)
    off = np.flatnonzero(np.abs(sums - target) > 1.0)
    if len(off):
        shown = ", ".join(f"{names[u]} ({sums[u]:.0f} of {target[u]:.0f})" for u in off[:5])
        raise InputError(
            f"cannot calibrate to these totals: cells shared by units make {len(off)} unit(s) unreachable: {shown}"
        )
    out = np.full(values.size, NODATA, dtype=np.float32)
    out[valid.ravel()] = new[valid.ravel()].astype(np.float32)
    stored = np.where(out == NODATA, 0.0, out.astype(np.float64))
    after = np.bincount(unit, weights=stored[cell] * share, minlength=n_units).astype(np.float64)
    return Calibrated(out.reshape(array.shape), before, after, empty, iterations)
