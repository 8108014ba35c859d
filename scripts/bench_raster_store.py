#!/usr/bin/env python3
"""Benchmark: writing and reading a raster in the stores' tiled forms against the old single-GeoTIFF-blob way,
side by side in one process.

    gpkg        GeoPackageStore.write_raster / read_raster: the OGC tiled gridded coverage (256 x 256 float32
                LZW TIFF tiles) plus the compressed history copy, in one SQLite transaction
    postgis     PostGISStore.write_raster / read_raster: postgis_raster tiles from WKB, AddRasterConstraints,
                plus the history copy (needs PostgreSQL + PostGIS; a throwaway cluster is started, or
                GEOPLAN_TEST_POSTGIS_URL is used)
    blob        what both stores did before: RasterData.to_geotiff (rasterio MemoryFile, deflate) into one
                BLOB row of a SQLite table, and back with from_geotiff

The raster is N x N float32 cells (default 4000, a county at 100 m is far smaller) of gamma-distributed
"persons" with a fifth of the cells nodata. Times are the best of --repeat runs in seconds; ratio = ours /
blob (above 1: ours is slower). Each read is checked to give the written array back exactly.

    python scripts/bench_raster_store.py --size 4000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from affine import Affine

from geoplan.catalog import load_catalog
from geoplan.rasterdata import RasterData
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from geoplan.testing import PostGISUnavailable, ThrowawayPostGIS, start_postgis

ROOT = Path(__file__).resolve().parents[1]


def _raster(size: int) -> RasterData:
    rng = np.random.default_rng(0)
    array = rng.gamma(2.0, 3.0, (size, size)).astype("float32")
    array[rng.random(array.shape) < 0.2] = -1
    return RasterData(array, Affine(100.0, 0.0, 300_000.0, 0.0, -100.0, 2_600_000.0), "EPSG:4547", -1.0)


def _best(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def _blob_store(path: Path) -> tuple[Callable[[RasterData], None], Callable[[], RasterData]]:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE rasters (name TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def write(raster: RasterData) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute("INSERT OR REPLACE INTO rasters VALUES ('population', ?)", (raster.to_geotiff(),))

    def read() -> RasterData:
        with sqlite3.connect(path) as connection:
            (data,) = connection.execute("SELECT data FROM rasters WHERE name = 'population'").fetchone()
        return RasterData.from_geotiff(bytes(data))

    return write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgis", action="store_true")
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "layers")
    raster = _raster(args.size)
    print(f"raster {args.size} x {args.size} float32 ({raster.array.nbytes / 1e6:.0f} MB), best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        blob_write, blob_read = _blob_store(work / "blob.sqlite")
        blob_w, _ = _best(args.repeat, lambda: blob_write(raster))
        blob_r, back = _best(args.repeat, blob_read)
        assert isinstance(back, RasterData) and np.array_equal(back.array, raster.array)
        print(
            f"{'blob (old)':12s} write {blob_w:7.3f}  read {blob_r:7.3f}  "
            f"size {(work / 'blob.sqlite').stat().st_size / 1e6:7.1f} MB"
        )

        rows: list[tuple[str, float, float]] = []
        gpkg = GeoPackageStore(work / "store.gpkg", catalog)
        gpkg.init()
        gpkg_w, _ = _best(args.repeat, lambda: gpkg.write_raster("population", raster))
        gpkg_r, back = _best(args.repeat, lambda: gpkg.read_raster("population"))
        assert isinstance(back, RasterData) and np.array_equal(back.array, raster.array)
        rows.append(("gpkg", gpkg_w, gpkg_r))
        # the file holds the coverage and one history copy per write: report a single write's file
        single = GeoPackageStore(work / "single.gpkg", catalog)
        single.init()
        single.write_raster("population", raster)
        with sqlite3.connect(single.path) as connection:
            tiles = connection.execute("SELECT sum(length(tile_data)) FROM population").fetchone()[0]
            history = connection.execute("SELECT sum(length(data)) FROM geoplan_raster_versions").fetchone()[0]
        print(f"{'':12s} gpkg tiles {tiles / 1e6:.1f} MB, history copy {history / 1e6:.1f} MB")
        print(
            f"{'gpkg':12s} write {gpkg_w:7.3f}  read {gpkg_r:7.3f}  size {single.path.stat().st_size / 1e6:7.1f} MB"
            " (coverage + one history copy)"
        )
        gpkg.close()
        single.close()

        if not args.no_postgis:
            server: ThrowawayPostGIS | None = None
            url = os.environ.get("GEOPLAN_TEST_POSTGIS_URL")
            try:
                if url is None:
                    server = start_postgis()
                    url = server.url
                pg = PostGISStore(url, catalog)
                pg.init()
                pg_w, _ = _best(args.repeat, lambda: pg.write_raster("population", raster))
                pg_r, back = _best(args.repeat, lambda: pg.read_raster("population"))
                assert isinstance(back, RasterData) and np.array_equal(back.array, raster.array)
                rows.append(("postgis", pg_w, pg_r))
                print(f"{'postgis':12s} write {pg_w:7.3f}  read {pg_r:7.3f}")
                pg.close()
            except PostGISUnavailable as exc:
                print(f"postgis: skipped ({exc})")
            finally:
                if server is not None:
                    server.stop()
    print("ratio = ours / old blob (above 1: slower than the blob)")
    for name, write, read in rows:
        print(f"{name:12s} write x{write / blob_w:5.2f}  read x{read / blob_r:5.2f}")


if __name__ == "__main__":
    main()
