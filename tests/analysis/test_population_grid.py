"""Count-preserving regridding and calibration, against exact shapely polygon overlap."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine

from geoplan.analysis.population_calibration import calibrate
from geoplan.analysis.population_grid import (
    NODATA,
    SourceGrid,
    copy_on_grid,
    on_grid,
    regrid_population,
    target_grid,
    valid_cells,
)
from tests.rasters import ARCSEC3, cell_polygons, exact_kept_total, exact_target_values

METRIC = "EPSG:4547"
# a small district with a bent edge, in EPSG:4547 near 高明 (cell centre 112.80E 22.90N ≈ 376,500 / 2,533,400)
DISTRICT = shapely.Polygon(
    [(375_030, 2_531_020), (378_460, 2_531_300), (377_900, 2_533_170), (376_640, 2_532_410), (375_310, 2_534_050)]
)


def _source(seed: int = 1, nrows: int = 40, ncols: int = 42) -> tuple[np.ndarray, Affine]:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(1.0, 1.0, (nrows, ncols))
    values[rng.random((nrows, ncols)) < 0.05] = np.nan  # nodata
    return values, Affine(ARCSEC3, 0.0, 112.7830, 0.0, -ARCSEC3, 22.9050)


def test_the_district_total_is_the_exact_area_weighted_total_and_cells_match_the_exact_overlap() -> None:
    values, transform = _source()
    grid = target_grid(DISTRICT.bounds)
    result = regrid_population(
        source=SourceGrid(values, transform, "EPSG:4326"), district=DISTRICT, grid=grid, metric_crs=METRIC
    )
    filled = np.nan_to_num(values, nan=-1.0)
    polys = cell_polygons(filled, transform, "EPSG:4326", METRIC)
    exact_total = exact_kept_total(filled, polys, DISTRICT)
    got = result.array[result.array != NODATA].astype(np.float64)
    assert exact_total > 1000
    assert got.sum() == pytest.approx(exact_total, rel=1e-6)  # the issue asks 0.1 %
    assert result.kept == pytest.approx(exact_total, rel=1e-9)

    exact = exact_target_values(filled, polys, DISTRICT, grid.transform, (grid.nrows, grid.ncols))
    stored = np.where(result.array == NODATA, 0.0, result.array.astype(np.float64))
    # the overlap areas are exact: every cell as the brute-force overlay gives it, to float32 storage
    assert np.abs(stored - exact).max() <= 1e-5 * max(float(exact.max()), 1.0), np.abs(stored - exact).max()
    # nodata exactly where a cell does not touch the district
    boxes = [
        shapely.box(
            grid.transform.c + c * 100,
            grid.transform.f - (r + 1) * 100,
            grid.transform.c + (c + 1) * 100,
            grid.transform.f - r * 100,
        )
        for r in range(grid.nrows)
        for c in range(grid.ncols)
    ]
    touching = np.array([b.intersects(DISTRICT) for b in boxes]).reshape(grid.nrows, grid.ncols)
    assert np.array_equal(result.array != NODATA, touching)


def test_people_outside_the_district_are_dropped_and_inputs_are_not_mutated() -> None:
    values, transform = _source(seed=2)
    before = values.copy()
    grid = target_grid(DISTRICT.bounds)
    result = regrid_population(
        source=SourceGrid(values, transform, "EPSG:4326"), district=DISTRICT, grid=grid, metric_crs=METRIC
    )
    assert np.array_equal(values, before, equal_nan=True)
    assert result.source_total == pytest.approx(np.nansum(values))
    assert result.kept < 0.9 * result.source_total  # the raster reaches well outside the district


def test_a_source_finer_than_the_grid_lands_cell_for_cell_as_the_exact_overlay() -> None:
    rng = np.random.default_rng(3)
    fine = rng.uniform(0, 3, (60, 70))
    transform = Affine(ARCSEC3 / 4, 0.0, 112.7900, 0.0, -ARCSEC3 / 4, 22.8980)
    grid = target_grid(DISTRICT.bounds)
    result = regrid_population(
        source=SourceGrid(fine, transform, "EPSG:4326"), district=DISTRICT, grid=grid, metric_crs=METRIC
    )
    polys = cell_polygons(fine, transform, "EPSG:4326", METRIC)
    exact_total = exact_kept_total(fine, polys, DISTRICT)
    assert float(result.array[result.array != NODATA].sum(dtype=np.float64)) == pytest.approx(exact_total, rel=1e-6)
    exact = exact_target_values(fine, polys, DISTRICT, grid.transform, (grid.nrows, grid.ncols))
    stored = np.where(result.array == NODATA, 0.0, result.array.astype(np.float64))
    assert np.abs(stored - exact).max() <= 1e-4


def test_a_raster_on_the_catalogue_grid_is_copied_bit_for_bit() -> None:
    grid = target_grid(DISTRICT.bounds)
    valid = valid_cells(grid, DISTRICT)
    rng = np.random.default_rng(4)
    array = np.where(valid, rng.uniform(0, 50, valid.shape), NODATA).astype(np.float32)
    assert on_grid(grid.transform, array.shape, grid) == (0, 0)
    assert on_grid(grid.transform @ Affine.translation(0.5, 0), array.shape, grid) is None
    copied = copy_on_grid(values=array, offset=(0, 0), grid=grid, valid=valid)
    assert copied.tobytes() == array.tobytes()


def _zonal(array: np.ndarray, transform: Affine, units: list[shapely.Geometry]) -> np.ndarray:
    """Each unit's sum, a shared cell split by the areas of its parts (brute force shapely)."""
    sums = np.zeros(len(units))
    for r, c in zip(*np.nonzero(array != NODATA), strict=True):
        x, y = transform.c + c * 100, transform.f - r * 100
        cell = shapely.box(x, y - 100, x + 100, y)
        areas = np.array([cell.intersection(u).area for u in units])
        if areas.sum() > 0:
            sums += float(array[r, c]) * areas / areas.sum()
    return sums


def test_calibration_brings_every_unit_within_one_person_and_keeps_the_units_without_a_total() -> None:
    values, transform = _source(seed=5)
    grid = target_grid(DISTRICT.bounds)
    regridded = regrid_population(
        source=SourceGrid(values, transform, "EPSG:4326"), district=DISTRICT, grid=grid, metric_crs=METRIC
    )
    cut_x, cut_y = 376_810.0, 2_532_130.0  # bent cuts, so many cells are shared
    west = DISTRICT.intersection(shapely.box(0, 0, cut_x, 3e6))
    east_south = DISTRICT.intersection(shapely.box(cut_x, 0, 1e6, cut_y))
    east_north = DISTRICT.difference(west).difference(east_south)
    units = [west, east_south, east_north]
    before = _zonal(regridded.array, grid.transform, units)
    totals = np.array([before[0] * 1.7, before[1] * 0.6, np.nan])
    result = calibrate(
        array=regridded.array, grid=grid, units=np.array(units, dtype=object), totals=totals, names=["w", "s", "n"]
    )
    after = _zonal(result.array, grid.transform, units)
    assert np.abs(after[:2] - totals[:2]).max() <= 1.0, after[:2] - totals[:2]
    assert abs(after[2] - before[2]) <= 1.0
    assert np.allclose(result.before, before, rtol=1e-6)
    assert np.array_equal(result.array == NODATA, regridded.array == NODATA)


def test_a_unit_with_no_people_receives_its_total_spread_evenly() -> None:
    grid = target_grid(DISTRICT.bounds)
    valid = valid_cells(grid, DISTRICT)
    array = np.where(valid, 10.0, NODATA).astype(np.float32)
    cut_x = 376_540.0  # 40 m into a column of cells: the west's only people are its slivers of the shared cells
    units = [DISTRICT.intersection(shapely.box(0, 0, cut_x, 3e6)), DISTRICT.difference(shapely.box(0, 0, cut_x, 3e6))]
    right_edges = grid.transform.c + (np.arange(grid.ncols) + 1.0) * 100
    west = right_edges <= cut_x
    array[:, west] = np.where(valid[:, west], 0.0, NODATA)  # the west's whole cells are empty
    array[:, np.flatnonzero(~west)[0]] = np.where(valid[:, np.flatnonzero(~west)[0]], 0.01, NODATA)
    result = calibrate(
        array=array, grid=grid, units=np.array(units, dtype=object), totals=np.array([5000.0, np.nan]), names=["w", "e"]
    )
    assert result.spread_evenly == [0]
    after = _zonal(result.array, grid.transform, units)
    assert after[0] == pytest.approx(5000.0, abs=1.0)
    inner = [
        float(result.array[r, c])
        for r, c in zip(*np.nonzero(valid), strict=True)
        if units[0].contains(
            shapely.box(
                grid.transform.c + c * 100,
                grid.transform.f - (r + 1) * 100,
                grid.transform.c + (c + 1) * 100,
                grid.transform.f - r * 100,
            )
        )
    ]
    assert len(inner) > 10
    assert max(inner) == pytest.approx(min(inner), rel=1e-3)  # evenly: the same people per whole cell
