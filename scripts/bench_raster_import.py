"""Benchmark: importing a WorldPop-like population grid (660 × 480 cells of 3" in EPSG:4326) over the district.

Runs, in one process on the same grid and district:
  * geoplan's regridding (exact overlap areas by quadrant integrals; shapely only on the district's edge),
  * the obvious exact peer: shapely polygon overlap of every source cell with every target cell ∩ district,
  * GDAL's `sum` resampling (rasterio.warp.reproject), masked to the district's cells,
and prints their times, the ratio, and each one's error against the exact peer (district total and worst cell).
Then the whole `geoplan import population FILE` in a child process: wall time and peak memory.

    python scripts/bench_raster_import.py [--store demo.gpkg] [--cols 660 --rows 480]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasterio.warp import Resampling, reproject  # noqa: E402

from geoplan.analysis.population_grid import (  # noqa: E402
    CELL,
    NODATA,
    SourceGrid,
    regrid_population,
    source_cell_quads,
    target_grid,
    valid_cells,
)
from geoplan.catalog import load_catalog  # noqa: E402
from geoplan.crs import METRIC_CRS  # noqa: E402
from geoplan.storage.gpkg import GeoPackageStore  # noqa: E402
from tests.rasters import WORLDPOP_NODATA, worldpop_like, write_tif  # noqa: E402

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from geoplan.catalog import load_catalog
from geoplan.peak_memory import current_rss_mb, peak_rss_mb
from geoplan.services.raster_import import import_raster
from geoplan.storage.gpkg import GeoPackageStore
store = GeoPackageStore(Path({store!r}), load_catalog(Path({root!r}) / "layers"))
base = current_rss_mb()
start = time.perf_counter()
report = import_raster(store, "population", Path({tif!r}), actor="bench")
print(f"{{time.perf_counter() - start:.2f}} {{peak_rss_mb():.0f}} {{base:.0f}} {{report.written_total:.3f}}")
"""


def exact_by_shapely(
    values: np.ndarray, src: SourceGrid, district: shapely.Geometry, grid_shape: tuple[int, int], transform: object
) -> np.ndarray:
    """Every source cell polygon ∩ every target cell ∩ district, vectorised shapely (the obvious exact method)."""
    quads = source_cell_quads(src, METRIC_CRS)
    polys = shapely.polygons(np.concatenate([quads, quads[:, :1]], axis=1))
    nrows, ncols = grid_shape
    row, col = np.divmod(np.arange(nrows * ncols), ncols)
    x0 = transform.c + col * CELL  # type: ignore[attr-defined]
    y1 = transform.f - row * CELL  # type: ignore[attr-defined]
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    tree = shapely.STRtree(boxes)
    hit = tree.query(district, predicate="intersects")
    clip = np.full(len(boxes), None, dtype=object)
    clip[hit] = shapely.intersection(boxes[hit], district)
    people = np.flatnonzero(values.ravel() > 0)
    si, ti = tree.query(polys[people], predicate="intersects")
    keep = clip[ti] != None  # noqa: E711 - an object array compared elementwise
    si, ti = si[keep], ti[keep]
    area = shapely.area(shapely.intersection(polys[people][si], clip[ti]))
    weight = values.ravel()[people][si] * area / shapely.area(polys[people][si])
    return np.bincount(ti, weights=weight, minlength=nrows * ncols).reshape(nrows, ncols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="a demo store (built in a temporary folder if not given)")
    parser.add_argument("--cols", type=int, default=660)
    parser.add_argument("--rows", type=int, default=480)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store_path = args.store
        if store_path is None:
            from geoplan.cli import main as cli

            store_path = Path(tmp) / "demo.gpkg"
            assert cli(["demo", "--store", str(store_path), "--no-snapshots"]) == 0
        catalog = load_catalog(ROOT / "layers")
        store = GeoPackageStore(store_path, catalog)
        district = shapely.union_all(store.read("district").to_crs(METRIC_CRS).geometry.values)
        store.close()
        grid = target_grid(district.bounds)
        valid = valid_cells(grid, district)

        raw, transform = worldpop_like(args.cols, args.rows)
        values = np.where(raw == WORLDPOP_NODATA, np.nan, raw.astype(np.float64))
        src = SourceGrid(values, transform, "EPSG:4326")
        print(
            f'source: {args.cols} × {args.rows} cells of 3" (EPSG:4326), {np.nansum(values):,.1f} persons; '
            f"target: {grid.nrows} × {grid.ncols} cells of 100 m, {int(valid.sum()):,} touch the district"
        )

        start = time.perf_counter()
        ours = regrid_population(source=src, district=district, grid=grid, metric_crs=METRIC_CRS, valid=valid)
        t_ours = time.perf_counter() - start

        start = time.perf_counter()
        exact = exact_by_shapely(np.nan_to_num(values), src, district, (grid.nrows, grid.ncols), grid.transform)
        t_exact = time.perf_counter() - start

        start = time.perf_counter()
        gdal = np.zeros((grid.nrows, grid.ncols), dtype=np.float64)
        reproject(
            np.nan_to_num(values, nan=-99999.0),
            gdal,
            src_transform=transform,
            src_crs="EPSG:4326",
            src_nodata=-99999.0,
            dst_transform=grid.transform,
            dst_crs=METRIC_CRS,
            dst_nodata=0.0,
            resampling=Resampling.sum,
        )
        gdal = np.where(valid, gdal, 0.0)
        t_gdal = time.perf_counter() - start

        total = float(exact.sum())
        mine = np.where(ours.array == NODATA, 0.0, ours.array.astype(np.float64))
        print(f"exact district total (shapely overlap): {total:,.3f}")
        for name, grid_values, seconds in (
            ("geoplan", mine, t_ours),
            ("shapely exact", exact, t_exact),
            ("GDAL sum", gdal, t_gdal),
        ):
            err = float(grid_values.sum()) - total
            worst = float(np.abs(grid_values - exact).max())
            print(
                f"  {name:14s} {seconds:7.2f} s  total off by {err:+,.3f} ({err / total:+.2e}), "
                f"worst cell off by {worst:.2e} persons"
            )
        print(f"ratio shapely exact / geoplan: {t_exact / t_ours:.1f}×; GDAL sum / geoplan: {t_gdal / t_ours:.2f}×")

        tif = write_tif(Path(tmp) / "worldpop.tif", raw, transform)
        copy = Path(tmp) / "copy.gpkg"
        copy.write_bytes(store_path.read_bytes())
        code = CHILD.format(root=str(ROOT), store=str(copy), tif=str(tif))
        took, peak, base, written = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        print(
            f"whole import (read, check, regrid, write to the GeoPackage) in a fresh process: {took} s, "
            f"peak memory {peak} MB ({base} MB before the import: the libraries and the store), "
            f"{float(written):,.1f} persons written"
        )


if __name__ == "__main__":
    main()
