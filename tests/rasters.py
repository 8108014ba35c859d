"""Population rasters for tests and benchmarks: WorldPop-like grids written with rasterio, and the independent
exact answer (shapely polygon overlap of every source cell with every target cell and the district)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer

ARCSEC3 = 1.0 / 1200.0  # 3 arc-seconds in degrees, WorldPop's 100 m product
WORLDPOP_NODATA = -99999.0
# 3" cells over the district's lon/lat box with a margin: 660 × 480 cells
GAOMING_WEST, GAOMING_NORTH = 112.375, 23.03


def worldpop_like(
    ncols: int = 660, nrows: int = 480, *, west: float = GAOMING_WEST, north: float = GAOMING_NORTH, seed: int = 7
) -> tuple[NDArray[np.float32], Affine]:
    """A 3" EPSG:4326 grid of persons per cell: lognormal counts, a dense blob, a few nodata cells (water)."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 1.0, (nrows, ncols)).astype(np.float32)
    rows, cols = np.mgrid[0:nrows, 0:ncols]
    values += (40.0 * np.exp(-((rows - nrows * 0.4) ** 2 + (cols - ncols * 0.7) ** 2) / (2 * 30.0**2))).astype(
        np.float32
    )
    values[rng.random((nrows, ncols)) < 0.02] = WORLDPOP_NODATA
    return values, Affine(ARCSEC3, 0.0, west, 0.0, -ARCSEC3, north)


def write_tif(
    path: Path,
    array: NDArray[Any],
    transform: Affine,
    *,
    crs: str | None = "EPSG:4326",
    nodata: float | None = WORLDPOP_NODATA,
    bands: int = 1,
) -> Path:
    import rasterio

    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": bands,
        "dtype": str(array.dtype),
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        for band in range(1, bands + 1):
            dst.write(array if band == 1 else np.zeros_like(array), band)
    return path


def cell_polygons(array: NDArray[Any], transform: Affine, crs: str, metric: str) -> list[shapely.Polygon]:
    """Each source cell (row-major) as the polygon of its four projected corners, one pyproj call per cell."""
    to_metric = Transformer.from_crs(crs, metric, always_xy=True)
    polys = []
    for r in range(array.shape[0]):
        for c in range(array.shape[1]):
            corners = [transform @ (c, r), transform @ (c + 1, r), transform @ (c + 1, r + 1), transform @ (c, r + 1)]
            xs, ys = to_metric.transform([p[0] for p in corners], [p[1] for p in corners])
            polys.append(shapely.Polygon(list(zip(xs, ys, strict=True))))
    return polys


def exact_kept_total(values: NDArray[Any], polys: list[shapely.Polygon], district: shapely.Geometry) -> float:
    """Σ value × area(cell ∩ district) / area(cell) over the valid cells."""
    flat = values.ravel().astype(np.float64)
    ok = flat >= 0
    geoms = np.array(polys, dtype=object)[ok]
    share = shapely.area(shapely.intersection(geoms, district)) / shapely.area(geoms)
    return float((flat[ok] * share).sum())


def exact_target_values(
    values: NDArray[Any],
    polys: list[shapely.Polygon],
    district: shapely.Geometry,
    transform: Affine,
    shape: tuple[int, int],
) -> NDArray[np.float64]:
    """Per target cell: Σ over source cells of value × area(cell ∩ target ∩ district) / area(cell)."""
    out = np.zeros(shape)
    size = transform.a
    for value, poly in zip(values.ravel().astype(np.float64), polys, strict=True):
        if value <= 0:
            continue
        part = poly.intersection(district)
        if part.is_empty:
            continue
        x0, y0, x1, y1 = part.bounds
        for r in range(int((transform.f - y1) // size), int((transform.f - y0) // size) + 1):
            for c in range(int((x0 - transform.c) // size), int((x1 - transform.c) // size) + 1):
                left, top = transform.c + c * size, transform.f - r * size
                a = part.intersection(shapely.box(left, top - size, left + size, top)).area
                if a > 0:
                    out[r, c] += value * a / poly.area
    return out
