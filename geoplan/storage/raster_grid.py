"""What both stores share for rasters: the checks a raster passes before it is stored, its cut into 256 x 256
tiles, and the compressed form each written version keeps in the history table.

The stores keep a raster where other tools see it (the GeoPackage as an OGC tiled gridded coverage, PostGIS as
postgis_raster tiles); this module knows nothing of either format, only of the grid.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from affine import Affine
from pyproj import CRS

from geoplan.catalog import LayerDef
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = [
    "LEGACY_RASTER_TABLE",
    "RASTER_VERSIONS_TABLE",
    "TILE",
    "Tile",
    "Version",
    "Write",
    "assemble",
    "checked",
    "decode_version",
    "encode_version",
    "epsg_code",
    "history_time",
    "prepared_write",
    "tiles",
]

TILE = 256
"""Tile width and height in cells, in both stores (GDAL's and raster2pgsql's usual block)."""
RASTER_VERSIONS_TABLE = "geoplan_raster_versions"
LEGACY_RASTER_TABLE = "geoplan_rasters"
"""Where stores before the tiled form kept each raster as one GeoTIFF blob; `init()` migrates it away."""
_CODEC = "float32-shuffle-zlib"


def epsg_code(crs: str) -> int:
    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise InputError(f"the raster CRS {crs} has no EPSG code")
    return int(code)


def checked(layer: LayerDef, raster: RasterData) -> RasterData:
    """The raster as the store keeps it: 2-D, north-up, in the catalogue's CRS, float32, every cell finite or
    nodata. A value too large for float32 is refused; any other is rounded to the nearest float32."""
    name = layer.name
    crs = str(layer.raster.get("crs") or "")
    array = np.asarray(raster.array)
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"raster '{name}': a single-band 2-D grid is needed, not an array of shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InputError(f"raster '{name}': cells must be numbers, not {array.dtype}")
    if not raster.crs or not CRS.from_user_input(raster.crs).equals(CRS.from_user_input(crs)):
        raise InputError(f"raster '{name}': the store keeps it in {crs}, not {raster.crs or 'no CRS'}; reproject first")
    t = raster.transform
    if t.b != 0 or t.d != 0 or not t.a > 0 or not t.e < 0 or not all(map(math.isfinite, (t.a, t.e, t.c, t.f))):
        raise InputError(f"raster '{name}': the grid must be north-up (no rotation, rows running south), not {t}")
    nodata = raster.nodata
    if nodata is not None and (not math.isfinite(nodata) or float(np.float32(nodata)) != float(nodata)):
        raise InputError(f"raster '{name}': nodata must be a finite float32 number, not {nodata}")
    with np.errstate(over="ignore", invalid="ignore"):
        data = array.astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InputError(
            f"raster '{name}': {bad} cell(s) are NaN, infinite or too large for float32; "
            f"use the nodata value ({nodata}) for cells without data"
        )
    return RasterData(np.ascontiguousarray(data), t, crs, None if nodata is None else float(nodata))


def fill_value(raster: RasterData) -> np.float32:
    """What padding and missing tiles hold: nodata, or 0 for a raster without one (both sum-neutral)."""
    return np.float32(0.0 if raster.nodata is None else raster.nodata)


@dataclass(frozen=True)
class Tile:
    row: int
    """Tile row, 0 at the top (north) edge."""
    col: int
    data: np.ndarray
    """TILE x TILE float32 cells; cells beyond the raster's edge hold `fill_value`."""
    empty: bool
    """Every cell is nodata (a GeoPackage omits such tiles; readers show nodata there)."""


def matrix_size(raster: RasterData) -> tuple[int, int]:
    """(tile rows, tile columns) covering the raster."""
    rows, cols = raster.array.shape
    return -(-rows // TILE), -(-cols // TILE)


def tiles(raster: RasterData) -> Iterator[Tile]:
    """The raster cut into TILE x TILE tiles, row by row from the top left; edge tiles are padded."""
    fill = fill_value(raster)
    tile_rows, tile_cols = matrix_size(raster)
    for r in range(tile_rows):
        for c in range(tile_cols):
            part = raster.array[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            data = np.full((TILE, TILE), fill, dtype=np.float32)
            data[: part.shape[0], : part.shape[1]] = part
            empty = raster.nodata is not None and bool((part == fill).all())
            yield Tile(r, c, data, empty)


def assemble(shape: tuple[int, int], placed: Iterator[tuple[int, int, np.ndarray]], fill: float) -> np.ndarray:
    """The grid of `shape` from (tile row, tile col, cells) triples; cells no tile covers hold `fill`."""
    array = np.full(shape, np.float32(fill), dtype=np.float32)
    for r, c, data in placed:
        if r < 0 or c < 0:
            continue
        target = array[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        target[...] = data[: target.shape[0], : target.shape[1]]
    return array


# --------------------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Version:
    """One written version as a history row holds it: the grid's description and its compressed cells."""

    crs: str
    width: int
    height: int
    transform: str
    nodata: float | None
    codec: str
    data: bytes

    COLUMNS: ClassVar[tuple[str, ...]] = ("crs", "width", "height", "transform", "nodata", "codec", "data")
    """The history table's columns for a version, in this order (both stores)."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Version:
        crs, width, height, transform, nodata, codec, data = row
        nodata = None if nodata is None else float(nodata)
        return cls(str(crs), int(width), int(height), str(transform), nodata, str(codec), bytes(data))

    def row(self) -> tuple[Any, ...]:
        return (self.crs, self.width, self.height, self.transform, self.nodata, self.codec, self.data)


def encode_version(raster: RasterData) -> Version:
    """Byte-shuffled, then deflated: the four bytes of each float32 compress far better apart (as Blosc does)."""
    rows, cols = raster.array.shape
    shuffled = np.ascontiguousarray(raster.array.astype("<f4", copy=False).view(np.uint8).reshape(-1, 4).T)
    t = raster.transform
    return Version(
        crs=raster.crs,
        width=cols,
        height=rows,
        transform=json.dumps([t.a, t.b, t.c, t.d, t.e, t.f]),
        nodata=raster.nodata,
        codec=_CODEC,
        data=zlib.compress(shuffled.tobytes(), 1),
    )


@dataclass(frozen=True)
class Write:
    """What a store needs for one raster write besides its own tiles: the checked grid, the history copy and
    the audit entry's cell count and detail (the same in both stores)."""

    grid: RasterData
    version: Version
    cells: int
    detail: str


def prepared_write(layer: LayerDef, raster: RasterData) -> Write:
    """Check `raster` for `layer` and do the CPU work of a write before any store is locked."""
    grid = checked(layer, raster)
    rows, cols = grid.array.shape
    detail = json.dumps({"shape": [rows, cols], "crs": grid.crs, "sum": grid.valid_sum()})
    return Write(grid, encode_version(grid), rows * cols, detail)


def decode_version(version: Version) -> RasterData:
    if version.codec != _CODEC:
        raise ValueError(f"unknown raster history codec {version.codec!r}")
    raw = np.frombuffer(zlib.decompress(version.data), dtype=np.uint8)
    cells = np.ascontiguousarray(raw.reshape(4, -1).T).view("<f4").reshape(version.height, version.width)
    transform = Affine(*json.loads(version.transform))
    return RasterData(cells.astype(np.float32), transform, version.crs, version.nodata)


def history_time(at: datetime) -> str:
    """An instant as the history (and the audit log) store it: UTC ISO text to the second."""
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return moment.isoformat(timespec="seconds")
