"""An in-memory raster (array + georeferencing) and its GeoTIFF round trip.

The GeoTIFF form is how a raster leaves geoplan as a file (and how stores before the tiled form kept it);
the stores themselves keep rasters as tiles (see `geoplan/storage/raster_grid.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from geoplan.errors import UnreadableFileError


@dataclass(frozen=True)
class RasterData:
    """A single-band raster: `array[row, col]`, `transform` maps (col, row) to CRS coordinates."""

    array: np.ndarray
    transform: Affine
    crs: str
    nodata: float | None = None

    @property
    def cell_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.array.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def valid_sum(self) -> float:
        """Sum of all cells that are not nodata (in float64, so large grids do not lose persons)."""
        data = self.array.astype("float64")
        if self.nodata is not None:
            data = np.where(data == self.nodata, 0.0, data)
        return float(np.nansum(data))

    def profile(self, driver: str = "GTiff") -> dict[str, Any]:
        """rasterio's profile for writing this raster as one deflated band with its CRS and nodata."""
        rows, cols = self.array.shape
        return {
            "driver": driver,
            "height": rows,
            "width": cols,
            "count": 1,
            "dtype": str(self.array.dtype),
            "crs": self.crs,
            "transform": self.transform,
            "nodata": self.nodata,
            "compress": "deflate",
        }

    def to_geotiff(self) -> bytes:
        with MemoryFile() as memfile:
            with memfile.open(**self.profile()) as dst:
                dst.write(self.array, 1)
            return bytes(memfile.read())

    @classmethod
    def from_geotiff(cls, data: bytes, *, source: str = "raster") -> RasterData:
        try:
            with MemoryFile(data) as memfile, memfile.open() as src:
                if src.crs is None:
                    raise UnreadableFileError(f"{source}: the GeoTIFF has no CRS")
                return cls(
                    array=src.read(1),
                    transform=src.transform,
                    crs=src.crs.to_string(),
                    nodata=src.nodata,
                )
        except rasterio.errors.RasterioIOError as exc:
            raise UnreadableFileError(f"{source}: not a readable GeoTIFF ({exc})") from None
