"""A raster in PostGIS as postgis_raster tiles: one row per 256 x 256 tile in a table named after the layer
(`rid`, `rast`), with the constraints `AddRasterConstraints` sets, so `raster_columns` describes it and GDAL's
PostGISRaster driver and QGIS open it.

Tiles travel as raster WKB built here (`ST_RastFromWKB`), not through `ST_FromGDALRaster`, which needs GDAL
drivers a cluster may not enable (`postgis.gdal_enabled_drivers`). Edge tiles are padded with nodata to the
full tile size, as `raster2pgsql -P` does, so every tile has the same size and the blocksize constraints hold;
the raster's exact size is kept in the history table beside it.
"""

from __future__ import annotations

import struct

import numpy as np
from sqlalchemy import Connection

from geoplan.rasterdata import RasterData
from geoplan.storage import raster_grid
from geoplan.storage.raster_grid import TILE

__all__ = ["ensure_extension", "ensure_table", "qualified", "read_tiles", "tile_wkbs", "write_tiles"]

_HEADER = struct.Struct("<BHHddddddiHH")  # endian, version, bands, scale x/y, upper left x/y, skew x/y, srid, w, h
_PIXTYPE_32BF = 10
_HAS_NODATA = 0x40


def qualified(table: str, schema: str | None) -> str:
    name = '"' + table.replace('"', '""') + '"'
    return name if schema is None else '"' + schema.replace('"', '""') + '".' + name


def ensure_extension(connection: Connection) -> None:
    """Only when missing: a read replica refuses even CREATE EXTENSION IF NOT EXISTS."""
    if connection.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis_raster'").first() is None:
        connection.exec_driver_sql("CREATE EXTENSION postgis_raster")


def ensure_table(connection: Connection, table: str, schema: str | None) -> None:
    name = qualified(table, schema)
    if connection.exec_driver_sql("SELECT to_regclass(%s::text)", (name,)).scalar() is not None:
        return
    # No GiST index on ST_ConvexHull(rast), unlike raster2pgsql -I: with it beside the primary key, GDAL 3.6's
    # PostGISRaster driver finds no tiles at all (it reads everything without it). A district's raster is a few
    # dozen tiles, so the index would gain nothing anyway.
    connection.exec_driver_sql(f"CREATE TABLE {name} (rid serial PRIMARY KEY, rast raster NOT NULL)")


def tile_wkbs(raster: RasterData) -> list[bytes]:
    """Every tile of a checked (float32) raster as raster WKB, little-endian, one float32 band."""
    t = raster.transform
    srid = raster_grid.epsg_code(raster.crs)
    flags = _PIXTYPE_32BF | (_HAS_NODATA if raster.nodata is not None else 0)
    band_header = struct.pack("<Bf", flags, 0.0 if raster.nodata is None else raster.nodata)
    wkbs = []
    for tile in raster_grid.tiles(raster):
        x0 = t.c + tile.col * TILE * t.a
        y0 = t.f + tile.row * TILE * t.e
        header = _HEADER.pack(1, 0, 1, t.a, t.e, x0, y0, 0.0, 0.0, srid, TILE, TILE)
        wkbs.append(header + band_header + tile.data.astype("<f4", copy=False).tobytes())
    return wkbs


def write_tiles(connection: Connection, table: str, schema: str | None, wkbs: list[bytes]) -> None:
    """Replace the table's tiles inside the caller's transaction; the constraints are dropped first (a new
    raster may have another extent) and set again from the new tiles."""
    name = qualified(table, schema)
    owner = "current_schema()" if schema is None else "%s::name"
    args: tuple[str, ...] = (table,) if schema is None else (schema, table)
    connection.exec_driver_sql(f"SELECT DropRasterConstraints({owner}, %s::name, 'rast'::name)", args)
    connection.exec_driver_sql(f"DELETE FROM {name}")
    connection.exec_driver_sql(f"INSERT INTO {name} (rast) VALUES (ST_RastFromWKB(%s))", [(w,) for w in wkbs])
    connection.exec_driver_sql(f"SELECT AddRasterConstraints({owner}, %s::name, 'rast'::name)", args)


def read_tiles(
    connection: Connection, table: str, schema: str | None, *, shape: tuple[int, int], origin: tuple[float, float]
) -> np.ndarray:
    """The grid of `shape` whose top-left corner is `origin`, from the table's tiles."""
    rows = connection.exec_driver_sql(f"SELECT ST_AsBinary(rast) FROM {qualified(table, schema)}").all()
    placed = []
    fill = 0.0
    for (blob,) in rows:
        x0, y0, scale_x, scale_y, nodata, cells = _parse(bytes(blob))
        fill = nodata if nodata is not None else fill
        placed.append((round((y0 - origin[1]) / scale_y / TILE), round((x0 - origin[0]) / scale_x / TILE), cells))
    return raster_grid.assemble(shape, iter(placed), fill)


def _parse(wkb: bytes) -> tuple[float, float, float, float, float | None, np.ndarray]:
    order = "<" if wkb[0] == 1 else ">"
    header = struct.Struct(order + "BHHddddddiHH")
    _, _, bands, scale_x, scale_y, x0, y0, _, _, _, width, height = header.unpack_from(wkb)
    flags = wkb[header.size]
    if bands != 1 or flags & 0x0F != _PIXTYPE_32BF or flags & 0x80:
        raise ValueError("expected one in-database float32 band")
    (nodata,) = struct.unpack_from(order + "f", wkb, header.size + 1)
    start = header.size + 5
    cells = np.frombuffer(wkb, dtype=order + "f4", count=width * height, offset=start).reshape(height, width)
    return x0, y0, scale_x, scale_y, float(nodata) if flags & _HAS_NODATA else None, cells.astype(np.float32)
