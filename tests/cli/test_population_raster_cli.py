"""`geoplan import population FILE` and `geoplan export population out.tif` on a copy of the demo store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from geoplan.analysis.population_grid import NODATA
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import METRIC_CRS
from geoplan.rasterdata import RasterData
from geoplan.storage.gpkg import GeoPackageStore
from tests.rasters import (
    ARCSEC3,
    WORLDPOP_NODATA,
    cell_polygons,
    exact_kept_total,
    exact_target_values,
    worldpop_like,
    write_tif,
)

# a 3" patch over the district's eastern edge near 荷城 (part inside, part outside)
EDGE_PATCH = Affine(ARCSEC3, 0.0, 112.880, 0.0, -ARCSEC3, 22.915)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open(path: Path, catalog: Catalog) -> GeoPackageStore:
    return GeoPackageStore(path, catalog)


def _district_metric(store: GeoPackageStore) -> shapely.Geometry:
    return shapely.union_all(store.read("district").to_crs(METRIC_CRS).geometry.values)


def _stored(path: Path, catalog: Catalog) -> RasterData:
    store = _open(path, catalog)
    try:
        return store.read_raster("population")
    finally:
        store.close()


def test_an_epsg4326_geotiff_keeps_its_people_inside_the_district_exactly(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    values = rng.lognormal(1.0, 1.0, (36, 40)).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = WORLDPOP_NODATA
    tif = write_tif(tmp_path / "ppp_2020_patch.tif", values, EDGE_PATCH)
    assert main(["import", "population", str(tif), "--store", str(demo_store_copy)]) == 0

    store = _open(demo_store_copy, catalog)
    try:
        stored = store.read_raster("population")
        district = _district_metric(store)
        audit = store.audit_log(layer="population", limit=1)[0]
    finally:
        store.close()
    polys = cell_polygons(values, EDGE_PATCH, "EPSG:4326", METRIC_CRS)
    exact = exact_kept_total(values, polys, district)
    assert 0 < exact < 0.95 * values[values >= 0].sum(dtype=np.float64)  # the patch reaches outside
    assert stored.valid_sum() == pytest.approx(exact, rel=1e-3)  # the 0.1 %
    assert stored.valid_sum() == pytest.approx(exact, rel=1e-6)  # in fact exact, to float32 storage
    want = exact_target_values(values, polys, district, stored.transform, stored.array.shape)
    got = np.where(stored.array == NODATA, 0.0, stored.array.astype(np.float64))
    assert np.abs(got - want).max() <= 1e-4
    assert stored.crs == "EPSG:4547" and stored.nodata == NODATA and stored.array.dtype == np.float32
    assert (audit.action, audit.actor.startswith("cli:")) == ("write:raster", True)
    assert audit.detail["sum"] == pytest.approx(stored.valid_sum())


def _units_zonal(raster: RasterData, units: gpd.GeoDataFrame, key: str) -> dict[str, float]:
    """Each unit's sum, a shared cell split by the areas of its parts: geopandas overlay (independent of the
    engine's STRtree overlay)."""
    rows, cols = np.nonzero(raster.array != NODATA)
    x = raster.transform.c + cols * 100.0
    y = raster.transform.f - rows * 100.0
    cells = gpd.GeoDataFrame(
        {"cell": np.arange(len(rows)), "value": raster.array[rows, cols].astype(np.float64)},
        geometry=shapely.box(x, y - 100, x + 100, y),
        crs=METRIC_CRS,
    )
    pieces = gpd.overlay(cells, units[[key, "geometry"]].to_crs(METRIC_CRS), how="intersection", keep_geom_type=True)
    pieces["area"] = pieces.geometry.area
    pieces["share"] = pieces["area"] / pieces.groupby("cell")["area"].transform("sum")
    pieces["people"] = pieces["value"] * pieces["share"]
    return {str(k): float(v) for k, v in pieces.groupby(key)["people"].sum().items()}


@pytest.mark.parametrize(
    ("level", "key", "header", "encoding"),
    [
        ("towns", "town_name", "镇街名称,常住人口", "gbk"),
        ("villages", "village_code", "village_code,population", "utf-8"),
    ],
)
def test_calibration_to_unit_totals(
    level: str, key: str, header: str, encoding: str, demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    values, transform = worldpop_like(seed=12)
    tif = write_tif(tmp_path / "worldpop.tif", values, transform)
    assert main(["import", "population", str(tif), "--store", str(demo_store_copy)]) == 0
    store = _open(demo_store_copy, catalog)
    try:
        units = store.read(level)
    finally:
        store.close()
    plain = _units_zonal(_stored(demo_store_copy, catalog), units, key)
    keys = [str(k) for k in units[key]]
    left_out = keys[-1]
    factors = np.random.default_rng(5).uniform(0.6, 1.5, len(keys) - 1)
    totals = {k: round(plain[k] * f) for k, f in zip(keys[:-1], factors, strict=True)}
    csv = tmp_path / "七普人口.csv"
    csv.write_bytes("\n".join([header] + [f"{k},{t}" for k, t in totals.items()]).encode(encoding))

    args = ["import", "population", str(tif), "--calibrate-to", level, "--totals", str(csv)]
    assert main([*args, "--store", str(demo_store_copy)]) == 0
    after = _units_zonal(_stored(demo_store_copy, catalog), units, key)
    for k, total in totals.items():
        assert abs(after[k] - total) <= 1.0, (k, after[k], total)
    assert abs(after[left_out] - plain[left_out]) <= 1.0  # absent from the CSV: keeps its sum


def test_export_then_import_is_the_identity(demo_store_copy: Path, catalog: Catalog, tmp_path: Path) -> None:
    before = _stored(demo_store_copy, catalog)
    cog = tmp_path / "population.tif"
    assert main(["export", "population", str(cog), "--store", str(demo_store_copy)]) == 0
    with rasterio.open(cog) as src:
        assert src.crs.to_epsg() == 4547
        assert src.nodata == NODATA
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.transform == before.transform
        assert np.array_equal(src.read(1), before.array)
    # a different raster in between, so the identity is not the store keeping its old value
    write_tif(tmp_path / "other.tif", *worldpop_like(seed=3))
    assert main(["import", "population", str(tmp_path / "other.tif"), "--store", str(demo_store_copy)]) == 0
    assert _stored(demo_store_copy, catalog).array.tobytes() != before.array.tobytes()
    assert main(["import", "population", str(cog), "--store", str(demo_store_copy)]) == 0
    after = _stored(demo_store_copy, catalog)
    assert after.array.tobytes() == before.array.tobytes()  # bit for bit
    assert after.transform == before.transform and after.crs == before.crs and after.nodata == before.nodata


def _bad_raster(case: str, tmp_path: Path) -> tuple[list[str], str]:
    values = np.full((30, 30), 5.0, dtype=np.float32)
    path = tmp_path / f"{case.replace(' ', '_')}.tif"
    if case == "no crs":
        write_tif(path, values, EDGE_PATCH, crs=None)
        return [str(path)], "has no coordinate system"
    if case == "outside the district":
        write_tif(path, values, Affine(ARCSEC3, 0.0, 113.5, 0.0, -ARCSEC3, 23.5))
        return [str(path)], "lies outside the district"
    if case == "negative":
        values[3, 4] = -3.0
        write_tif(path, values, EDGE_PATCH)
        return [str(path)], "1 cell(s) are negative"
    if case == "nan garbage":
        values[2, 2] = np.nan
        write_tif(path, values, EDGE_PATCH)
        return [str(path)], "are NaN"
    if case == "infinite":
        values[2, 2] = np.inf
        write_tif(path, values, EDGE_PATCH)
        return [str(path)], "are infinite"
    if case == "not a raster":
        path = tmp_path / "pop.tif"
        path.write_text("population,100\n", encoding="utf-8")
        return [str(path)], "not a raster file"
    if case == "a vector geopackage":
        path = tmp_path / "points.gpkg"
        gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(112.8, 22.9)], crs="EPSG:4326").to_file(path)
        return [str(path)], "not a raster file"
    if case == "too many cells":
        big = np.zeros((4000, 6000), dtype=np.uint8)
        write_tif(path, big, Affine(0.0001, 0.0, 112.38, 0.0, -0.0001, 23.02), nodata=None)
        return [str(path)], "more than the limit"
    if case == "append":
        write_tif(path, values, EDGE_PATCH)
        return [str(path), "--mode", "append"], "--mode append does not apply"
    if case == "crs contradicts":
        write_tif(path, values, EDGE_PATCH)
        return [str(path), "--crs", "EPSG:4547"], "--crs says"
    if case == "unknown town":
        write_tif(path, values, EDGE_PATCH)
        csv = tmp_path / "totals.csv"
        csv.write_text("town_name,population\n荷城街道,1000\n不存在镇,5\n", encoding="utf-8")
        return [str(path), "--calibrate-to", "towns", "--totals", str(csv)], "no unit '不存在镇'"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "no crs",
        "outside the district",
        "negative",
        "nan garbage",
        "infinite",
        "not a raster",
        "a vector geopackage",
        "too many cells",
        "append",
        "crs contradicts",
        "unknown town",
    ],
)
def test_bad_rasters_exit_2_and_leave_the_store_unchanged(
    case: str,
    demo_store_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("geoplan.services.raster_import.DEFAULT_MAX_CELLS", 5_000_000)
    args, expected = _bad_raster(case, tmp_path)
    before = _digest(demo_store_copy)
    assert main(["import", "population", *args, "--store", str(demo_store_copy)]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert expected in message, message
    assert "Traceback" not in message
    assert _digest(demo_store_copy) == before


def test_a_multiband_raster_imports_band_1_with_a_warning(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = np.full((30, 30), 2.0, dtype=np.float32)
    tif = write_tif(tmp_path / "two_bands.tif", values, EDGE_PATCH, bands=2)  # band 2 is zeros
    assert main(["import", "population", str(tif), "--store", str(demo_store_copy)]) == 0
    assert "2 bands; band 1 is imported" in " ".join(capsys.readouterr().err.split())
    assert _stored(demo_store_copy, catalog).valid_sum() > 0


def test_a_raster_without_crs_imports_with_crs_option(demo_store_copy: Path, catalog: Catalog, tmp_path: Path) -> None:
    values = np.full((30, 30), 2.0, dtype=np.float32)
    with_crs = write_tif(tmp_path / "a.tif", values, EDGE_PATCH)
    without = write_tif(tmp_path / "b.tif", values, EDGE_PATCH, crs=None)
    assert main(["import", "population", str(with_crs), "--store", str(demo_store_copy)]) == 0
    first = _stored(demo_store_copy, catalog)
    assert main(["import", "population", str(without), "--crs", "EPSG:4326", "--store", str(demo_store_copy)]) == 0
    assert _stored(demo_store_copy, catalog).array.tobytes() == first.array.tobytes()


def test_the_demo_grid_matches_the_catalogue_grid_the_import_builds(demo_store_path: Path, catalog: Catalog) -> None:
    from geoplan.analysis.population_grid import target_grid

    store = _open(demo_store_path, catalog)
    try:
        demo = store.read_raster("population")
        grid = target_grid(_district_metric(store).bounds)
    finally:
        store.close()
    assert (grid.nrows, grid.ncols, grid.transform) == (*demo.array.shape, demo.transform)


def test_a_geopackage_raster_imports_like_the_same_geotiff(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    values = np.random.default_rng(13).uniform(0, 9, (30, 34)).astype(np.float32)
    tif = write_tif(tmp_path / "p.tif", values, EDGE_PATCH, nodata=None)
    gpkg = tmp_path / "p.gpkg"
    profile = {"driver": "GPKG", "width": 34, "height": 30, "count": 1, "dtype": "float32", "crs": "EPSG:4326"}
    with rasterio.open(gpkg, "w", transform=EDGE_PATCH, RASTER_TABLE="pop", **profile) as dst:
        dst.write(values, 1)
    assert main(["import", "population", str(tif), "--store", str(demo_store_copy)]) == 0
    from_tif = _stored(demo_store_copy, catalog)
    assert main(["import", "population", str(gpkg), "--store", str(demo_store_copy)]) == 0
    assert np.allclose(_stored(demo_store_copy, catalog).array, from_tif.array, rtol=1e-6, atol=1e-6)


def test_an_integer_raster_on_the_grid_with_its_own_nodata_is_copied(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    demo = _stored(demo_store_copy, catalog)
    counts = np.where(demo.array == NODATA, -9999, np.round(demo.array)).astype(np.int32)
    tif = write_tif(tmp_path / "counts.tif", counts, demo.transform, crs="EPSG:4547", nodata=-9999)
    assert main(["import", "population", str(tif), "--store", str(demo_store_copy)]) == 0
    stored = _stored(demo_store_copy, catalog)
    assert np.array_equal(stored.array, np.where(counts == -9999, NODATA, counts).astype(np.float32))
