"""Other tools open the stored raster as it is: GDAL (`gdalinfo`, the GPKG and PostGISRaster drivers) and QGIS
3.22 (Debian's python3-qgis, in its own Python). Their statistics are checked against the array geoplan wrote."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from affine import Affine

from geoplan.catalog import Catalog
from geoplan.rasterdata import RasterData
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore, engine_url
from tests.conftest import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian installs QGIS's bindings
PROBE = ROOT / "tests" / "storage" / "qgis_raster_probe.py"
CENSUS_2020 = 469_038
TRANSFORM = Affine(100.0, 0.0, 371_000.0, 0.0, -100.0, 2_540_000.0)


def _raster() -> RasterData:
    """600 x 700 cells (3 x 3 tiles, the last row and column partly filled), a fifth of them nodata."""
    rng = np.random.default_rng(7)
    array = (rng.gamma(2.0, 3.0, (600, 700))).astype("float32")
    array[rng.random(array.shape) < 0.2] = -1
    array[:256, :256] = -1  # a whole tile without data
    return RasterData(array, TRANSFORM, "EPSG:4547", -1.0)


def _written_sum(raster: RasterData) -> tuple[float, int]:
    valid = raster.array[raster.array != raster.nodata]
    return float(valid.astype("float64").sum()), int(valid.size)


def _gdalinfo(source: str) -> dict[str, Any]:
    # PAM off: statistics are computed and printed, never written back beside or into the store
    env = {**os.environ, "GDAL_PAM_ENABLED": "NO"}
    run = subprocess.run(
        ["gdalinfo", "-json", "-stats", source], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    info: dict[str, Any] = json.loads(run.stdout)
    return info


def _check_band(info: dict[str, Any], raster: RasterData, *, cells: int) -> None:
    total, count = _written_sum(raster)
    (band,) = info["bands"]
    assert band["type"] == "Float32" and band["noDataValue"] == -1
    stats = {k: float(v) for k, v in band["metadata"][""].items() if k.startswith("STATISTICS_")}  # full precision
    assert stats["STATISTICS_VALID_PERCENT"] == pytest.approx(100 * count / cells, abs=0.006)
    assert stats["STATISTICS_MEAN"] * count == pytest.approx(total, rel=1e-9)  # the sum GDAL saw is the sum written
    valid = raster.array[raster.array != -1]
    assert stats["STATISTICS_MINIMUM"] == pytest.approx(float(valid.min()), rel=1e-9)
    assert stats["STATISTICS_MAXIMUM"] == pytest.approx(float(valid.max()), rel=1e-9)


def test_gdal_opens_the_geopackage_raster(tmp_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(tmp_path / "store.gpkg", catalog)
    store.init()
    raster = _raster()
    store.write_raster("population", raster)
    digest = hashlib.sha256(store.path.read_bytes()).hexdigest()
    info = _gdalinfo(f"GPKG:{store.path}:population")
    assert hashlib.sha256(store.path.read_bytes()).hexdigest() == digest  # reading changed nothing
    assert info["driverShortName"] == "GPKG"
    assert info["size"] == [700, 600]
    assert info["geoTransform"] == [371_000.0, 100.0, 0.0, 2_540_000.0, 0.0, -100.0]
    assert 'ID["EPSG",4547]' in info["coordinateSystem"]["wkt"]
    assert info["metadata"][""]["AREA_OR_POINT"] == "Area"
    _check_band(info, raster, cells=700 * 600)
    # the vector layers are still there beside it, and GDAL lists the coverage among the file's rasters
    listing = subprocess.run(["gdalinfo", str(store.path)], capture_output=True, text=True, check=True).stdout
    assert "Size is 700, 600" in listing  # the file's only raster: GDAL opens it without naming it
    ogr = subprocess.run(["ogrinfo", "-so", "-q", str(store.path)], capture_output=True, text=True, check=True)
    assert "villages" in ogr.stdout and "population" not in ogr.stdout


@pytest.mark.postgis
def test_gdal_opens_the_postgis_raster(postgis_url: str, catalog: Catalog) -> None:
    store = PostGISStore(postgis_url, catalog)
    store.init()
    raster = _raster()
    store.write_raster("population", raster)
    engine = sa.create_engine(engine_url(postgis_url))
    try:
        with engine.connect() as connection:
            columns = connection.execute(
                sa.text(
                    "SELECT srid, scale_x, scale_y, blocksize_x, blocksize_y, num_bands, pixel_types, nodata_values "
                    "FROM raster_columns WHERE r_table_name = 'population' AND r_raster_column = 'rast'"
                )
            ).one()
            tiles = connection.execute(sa.text("SELECT count(*) FROM population")).scalar_one()
            # PostGIS's own statistics over the tiles (nodata excluded) agree with the written sum
            stats = (
                connection.execute(sa.text("SELECT (ST_SummaryStatsAgg(rast, 1, true)).* FROM population"))
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    assert tuple(columns) == (4547, 100.0, -100.0, 256, 256, 1, ["32BF"], [-1.0])
    assert tiles == 9
    total, count = _written_sum(raster)
    assert stats["count"] == count and stats["sum"] == pytest.approx(total, rel=1e-9)

    url = sa.make_url(postgis_url)
    source = (
        f"PG:host={url.host} port={url.port} dbname={url.database} user={url.username} "
        "schema=public table=population column=rast mode=2"
    )
    info = _gdalinfo(source)
    assert info["driverShortName"] == "PostGISRaster"
    # edge tiles are padded with nodata to 256 x 256 (as raster2pgsql -P does): three tiles each way
    assert info["size"] == [768, 768]
    assert info["geoTransform"] == [371_000.0, 100.0, 0.0, 2_540_000.0, 0.0, -100.0]
    _check_band(info, raster, cells=768 * 768)
    # QGIS opens the same table through its GDAL provider
    seen = _qgis_probe(source)
    assert seen["valid"] and (seen["width"], seen["height"], seen["crs"]) == (768, 768, "EPSG:4547")
    assert seen["count"] == count and seen["sum"] == pytest.approx(total, rel=1e-9)


def _qgis_probe(source: str) -> dict[str, Any]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PROJ_DATA": "/usr/share/proj", "PYTHONPATH": ""}
    env.pop("PYTHONHOME", None)
    run = subprocess.run(
        [SYSTEM_PYTHON, str(PROBE), source], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return seen


def test_qgis_opens_the_geopackage_raster(tmp_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(tmp_path / "store.gpkg", catalog)
    store.init()
    raster = _raster()
    store.write_raster("population", raster)
    seen = _qgis_probe(f"GPKG:{store.path}:population")
    assert seen["version"].startswith("3.") and seen["valid"]
    assert (seen["width"], seen["height"], seen["crs"]) == (700, 600, "EPSG:4547")
    assert seen["extent"] == pytest.approx([371_000.0, 2_480_000.0, 441_000.0, 2_540_000.0])
    total, count = _written_sum(raster)
    assert seen["nodata"] == -1 and seen["count"] == count
    assert seen["sum"] == pytest.approx(total, rel=1e-9)


def test_the_demo_store_raster_opens_in_gdal_and_qgis(demo_store_copy: Path, catalog: Catalog) -> None:
    """`geoplan demo --store x.gpkg` (the session's demo store), then gdalinfo and QGIS on it."""
    raster = GeoPackageStore(demo_store_copy, catalog).read_raster("population")
    rows, cols = raster.array.shape
    info = _gdalinfo(f"GPKG:{demo_store_copy}:population")
    assert info["size"] == [cols, rows]
    t = raster.transform
    assert info["geoTransform"] == [t.c, t.a, t.b, t.f, t.d, t.e]
    _check_band(info, raster, cells=rows * cols)
    assert _written_sum(raster)[0] == pytest.approx(CENSUS_2020, rel=0.001)
    seen = _qgis_probe(f"GPKG:{demo_store_copy}:population")
    assert seen["valid"] and (seen["width"], seen["height"], seen["crs"]) == (cols, rows, "EPSG:4547")
    assert seen["sum"] == pytest.approx(CENSUS_2020, rel=0.001)
