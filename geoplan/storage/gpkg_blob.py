"""GeoPackage geometry blobs (OGC 12-128r18, §2.1.3): a small header with an envelope, then standard WKB.

We write rows through sqlite3 ourselves (GDAL offers no transaction we could hold across a whole write), so we
encode the blobs here and supply the ST_* functions that GDAL's R-tree triggers call.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence

import numpy as np
import shapely

_MAGIC = b"GP"
_LITTLE_ENDIAN = 0x01
_ENVELOPE_XY = 0x01 << 1
_EMPTY = 0x10
_ENVELOPE_SIZES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_HEADER = struct.Struct("<2sBBi4d")


def encode(geoms: np.ndarray, srs_id: int) -> list[bytes]:
    """Encode shapely geometries (none empty) as GeoPackage blobs with an XY envelope."""
    wkbs = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    flags = _LITTLE_ENDIAN | _ENVELOPE_XY
    return [
        _HEADER.pack(_MAGIC, 0, flags, srs_id, b[0], b[2], b[1], b[3]) + wkb
        for wkb, b in zip(wkbs, bounds, strict=True)
    ]


def decode(blobs: Sequence[bytes | None]) -> np.ndarray:
    """GeoPackage blobs back to shapely geometries (None stays missing)."""
    return shapely.from_wkb([None if b is None else bytes(b[_header_size(b) :]) for b in blobs])


def _header_size(blob: bytes) -> int:
    return 8 + _ENVELOPE_SIZES.get((blob[3] >> 1) & 0x07, 0)


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) from the header, or from the WKB when the header carries no envelope."""
    if blob is None or blob[3] & _EMPTY:
        return None
    if (blob[3] >> 1) & 0x07:
        return struct.unpack_from("<4d", blob, 8)
    geom = shapely.from_wkb(bytes(blob[8:]))
    minx, miny, maxx, maxy = geom.bounds
    return (minx, maxx, miny, maxy)


def _is_empty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    return int(bool(blob[3] & _EMPTY) or _envelope(blob) is None)


def _coordinate(index: int):  # type: ignore[no-untyped-def]
    def extract(blob: bytes | None) -> float | None:
        env = _envelope(blob)
        return None if env is None else env[index]

    return extract


def register_functions(connection: sqlite3.Connection) -> None:
    """Provide the functions GDAL's R-tree maintenance triggers call (GDAL registers them in its own driver)."""
    connection.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    for index, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        connection.create_function(name, 1, _coordinate(index), deterministic=True)
