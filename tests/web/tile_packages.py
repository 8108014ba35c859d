"""Small tile packages made in the tests: MBTiles (sqlite3, TMS rows) and PMTiles (the pmtiles writer), each
holding solid-colour PNG tiles, so a test can tell by a pixel's colour which tile the page shows."""

from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

Tiles = dict[tuple[int, int, int], bytes]
"""(z, x, y) in XYZ numbering (rows from the north) -> the tile's bytes."""


def solid_png(rgb: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (x, y) of the tile holding (lon, lat) at zoom z (the Web Mercator formula)."""
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tiles_around(lon: float, lat: float, zooms: range, rgb: tuple[int, int, int], radius: int = 3) -> Tiles:
    """A block of (2 radius + 1)² solid tiles around (lon, lat) at each zoom."""
    png = solid_png(rgb)
    tiles: Tiles = {}
    for z in zooms:
        cx, cy = tile_of(lon, lat, z)
        for x in range(cx - radius, cx + radius + 1):
            for y in range(cy - radius, cy + radius + 1):
                tiles[(z, x, y)] = png
    return tiles


def vector_tile() -> bytes:
    """A gzipped MVT tile with one area (most of the tile) and one line across it, in a layer named `land`."""
    import gzip

    import mapbox_vector_tile

    layer = {
        "name": "land",
        "features": [
            {"geometry": "POLYGON ((200 200, 3900 200, 3900 3900, 200 3900, 200 200))", "properties": {"k": "a"}},
            {"geometry": "LINESTRING (0 2000, 4096 2100)", "properties": {"k": "b"}},
        ],
    }
    return gzip.compress(mapbox_vector_tile.encode([layer]), mtime=0)


def write_mbtiles(path: Path, tiles: Tiles, *, fmt: str = "png", name: str = "测试瓦片包") -> Path:
    zooms = [z for z, _, _ in tiles]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        meta = {"name": name, "format": fmt, "minzoom": str(min(zooms)), "maxzoom": str(max(zooms))}
        db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in tiles.items()],  # MBTiles rows are TMS
        )
    return path


def write_pmtiles(path: Path, tiles: Tiles, *, name: str = "测试瓦片包") -> Path:
    with path.open("wb") as f:
        writer = Writer(f)
        for tile_id, data in sorted((zxy_to_tileid(z, x, y), data) for (z, x, y), data in tiles.items()):
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_lon_e7": int(112.3 * 1e7),
                "min_lat_e7": int(22.6 * 1e7),
                "max_lon_e7": int(113.0 * 1e7),
                "max_lat_e7": int(23.1 * 1e7),
                "center_zoom": 11,
                "center_lon_e7": int(112.7 * 1e7),
                "center_lat_e7": int(22.85 * 1e7),
            },
            {"name": name},
        )
    return path
