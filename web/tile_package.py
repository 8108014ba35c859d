"""Local tile packages as the basemap: an MBTiles or PMTiles file, raster (PNG/JPEG/WebP) or vector (MVT).

A user makes one with QGIS (Processing › "Generate XYZ tiles (MBTiles)") or obtains one (a surveying institute's
export, a PMTiles extract) and points `GEOPLAN_BASEMAP=mbtiles:PATH` or `pmtiles:PATH` at it; the app serves its
tiles from its own origin, so an offline intranet gets a real background without any outside host.

MBTiles is SQLite with rows numbered from the south (TMS); the web asks in XYZ (from the north), so the row is
flipped. The file is opened read-only: serving never writes to a file someone else made.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, MagicNumberNotFound, SpecVersionUnsupported, TileType

RASTER_FORMATS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
VECTOR_FORMAT = "pbf"
MEDIA_TYPES = {**RASTER_FORMATS, VECTOR_FORMAT: "application/vnd.mapbox-vector-tile"}
MAX_ZOOM = 24


class PackageError(ValueError):
    """The file is no tile package we can serve (the message says why, for the startup error)."""


@dataclass(frozen=True)
class PackageInfo:
    """What the page needs to know about a package: its tile format, zoom range and extent."""

    format: str
    """png, jpg, webp or pbf."""
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None
    """west, south, east, north in degrees, when the package says."""
    name: str = ""
    attribution: str = ""

    @property
    def vector(self) -> bool:
        return self.format == VECTOR_FORMAT

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class Tile:
    data: bytes
    gzipped: bool
    """The bytes are gzip-compressed (vector tiles usually are): served with Content-Encoding: gzip."""


class TilePackage(Protocol):
    info: PackageInfo

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        """The tile at XYZ (z, x, y), None outside the package."""
        ...


def _sniff(data: bytes) -> str:
    """A tile's format from its first bytes, for packages whose metadata does not say."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return VECTOR_FORMAT


def _bounds(text: str | None) -> tuple[float, float, float, float] | None:
    try:
        w, s, e, n = (float(v) for v in (text or "").split(","))
    except ValueError:
        return None
    return (w, s, e, n) if -180 <= w < e <= 180 and -90 <= s < n <= 90 else None


def _in_range(info: PackageInfo, z: int, x: int, y: int) -> bool:
    return info.min_zoom <= z <= info.max_zoom and 0 <= x < (1 << z) and 0 <= y < (1 << z)


class MBTiles:
    """An MBTiles file, read-only; one connection shared by the server's threads behind a lock."""

    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = self._db.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
            first = self._db.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise PackageError(f"{path}: not an MBTiles file ({exc})") from None
        if first is None:
            raise PackageError(f"{path}: the MBTiles file holds no tiles")
        fmt = str(meta.get("format", "")).lower() or _sniff(bytes(first[0]))
        if fmt not in MEDIA_TYPES:
            raise PackageError(f"{path}: tile format {fmt!r} is not one of {', '.join(sorted(MEDIA_TYPES))}")
        self.info = PackageInfo(
            format="jpg" if fmt == "jpeg" else fmt,
            min_zoom=_int(meta.get("minzoom"), zooms[0]),
            max_zoom=_int(meta.get("maxzoom"), zooms[1]),
            bounds=_bounds(meta.get("bounds")),
            name=str(meta.get("name", "")),
            attribution=str(meta.get("attribution", "")),
        )
        self._lock = threading.Lock()

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        if not _in_range(self.info, z, x, y):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),  # TMS rows count from the south
            ).fetchone()
        if row is None:
            return None
        data = bytes(row[0])
        return Tile(data, gzipped=data[:2] == b"\x1f\x8b")


def _int(value: object, fallback: int) -> int:
    try:
        return max(0, min(MAX_ZOOM, int(str(value))))
    except ValueError:
        return int(fallback)


_PMTILES_FORMATS = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp", TileType.MVT: VECTOR_FORMAT}


class PMTiles:
    """A PMTiles (v3) file, memory-mapped: a tile is a directory lookup and a slice."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = path.open("rb")
            self._reader = Reader(MmapSource(self._file))
            header = self._reader.header()
            metadata = self._reader.metadata()
        except (OSError, ValueError, struct.error, MagicNumberNotFound, SpecVersionUnsupported) as exc:
            raise PackageError(f"{path}: not a PMTiles v3 file ({exc})") from None
        fmt = _PMTILES_FORMATS.get(header["tile_type"])
        if fmt is None:
            raise PackageError(f"{path}: tile type {header['tile_type'].name} is not PNG, JPEG, WebP or MVT")
        self._gzipped = header["tile_compression"] == Compression.GZIP
        e7 = 10_000_000
        box = (
            header["min_lon_e7"] / e7,
            header["min_lat_e7"] / e7,
            header["max_lon_e7"] / e7,
            header["max_lat_e7"] / e7,
        )
        self.info = PackageInfo(
            format=fmt,
            min_zoom=header["min_zoom"],
            max_zoom=header["max_zoom"],
            bounds=_bounds(",".join(str(v) for v in box)),
            name=str(metadata.get("name", "")) if isinstance(metadata, dict) else "",
            attribution=str(metadata.get("attribution", "")) if isinstance(metadata, dict) else "",
        )
        self._lock = threading.Lock()

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        if not _in_range(self.info, z, x, y):
            return None
        with self._lock:
            data = self._reader.get(z, x, y)
        if not data:
            return None
        return Tile(bytes(data), gzipped=self._gzipped)


@cache
def open_package(kind: str, path: Path) -> TilePackage:
    """The package at `path` (kind mbtiles or pmtiles), opened once per process."""
    if not path.is_file():
        raise PackageError(f"{path}: no such file")
    return MBTiles(path) if kind == "mbtiles" else PMTiles(path)
