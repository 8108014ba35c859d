"""A raster in a GeoPackage as an OGC tiled gridded coverage (OGC 17-066r1, the 2D Gridded Coverage Extension).

GDAL (`GPKG:store.gpkg:population`) and QGIS open it as they open any GeoPackage raster. One zoom level at the
raster's own resolution, in its own CRS, 256 x 256 float32 TIFF tiles (LZW, as the extension prescribes);
tiles whose cells are all nodata are left out, which the extension allows and readers show as nodata.

Everything is written through the store's sqlite3 connection inside its write transaction, so a failed write
leaves nothing behind.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.io import MemoryFile

from geoplan.rasterdata import RasterData
from geoplan.storage import raster_grid
from geoplan.storage.raster_grid import TILE

__all__ = ["encode_tiles", "ensure_schema", "has_coverage", "read_coverage", "write_coverage"]

_EXTENSION = "gpkg_2d_gridded_coverage"
_DEFINITION = "http://docs.opengeospatial.org/is/17-066r1/17-066r1.html"
EncodedTile = tuple[int, int, bytes, tuple[float | None, float | None, float | None, float | None]]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS gpkg_tile_matrix_set (
        table_name TEXT NOT NULL PRIMARY KEY, srs_id INTEGER NOT NULL,
        min_x DOUBLE NOT NULL, min_y DOUBLE NOT NULL, max_x DOUBLE NOT NULL, max_y DOUBLE NOT NULL,
        CONSTRAINT fk_gtms_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
        CONSTRAINT fk_gtms_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))""",
    """CREATE TABLE IF NOT EXISTS gpkg_tile_matrix (
        table_name TEXT NOT NULL, zoom_level INTEGER NOT NULL, matrix_width INTEGER NOT NULL,
        matrix_height INTEGER NOT NULL, tile_width INTEGER NOT NULL, tile_height INTEGER NOT NULL,
        pixel_x_size DOUBLE NOT NULL, pixel_y_size DOUBLE NOT NULL,
        CONSTRAINT pk_ttm PRIMARY KEY (table_name, zoom_level),
        CONSTRAINT fk_tmm_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name))""",
    """CREATE TABLE IF NOT EXISTS gpkg_extensions (
        table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
        scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""",
    """CREATE TABLE IF NOT EXISTS gpkg_2d_gridded_coverage_ancillary (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tile_matrix_set_name TEXT NOT NULL UNIQUE,
        datatype TEXT NOT NULL DEFAULT 'integer', scale REAL NOT NULL DEFAULT 1.0, offset REAL NOT NULL DEFAULT 0.0,
        precision REAL DEFAULT 1.0, data_null REAL, grid_cell_encoding TEXT DEFAULT 'grid-value-is-center',
        uom TEXT, field_name TEXT DEFAULT 'Height', quantity_definition TEXT DEFAULT 'Height',
        CONSTRAINT fk_g2dgtct_name FOREIGN KEY (tile_matrix_set_name) REFERENCES gpkg_tile_matrix_set (table_name),
        CHECK (datatype in ('integer','float')))""",
    """CREATE TABLE IF NOT EXISTS gpkg_2d_gridded_tile_ancillary (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tpudt_name TEXT NOT NULL, tpudt_id INTEGER NOT NULL,
        scale REAL NOT NULL DEFAULT 1.0, offset REAL NOT NULL DEFAULT 0.0,
        min REAL DEFAULT NULL, max REAL DEFAULT NULL, mean REAL DEFAULT NULL, std_dev REAL DEFAULT NULL,
        CONSTRAINT fk_g2dgtat_name FOREIGN KEY (tpudt_name) REFERENCES gpkg_contents(table_name),
        UNIQUE (tpudt_name, tpudt_id))""",
]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def ensure_schema(connection: sqlite3.Connection) -> None:
    """The tile and gridded-coverage tables, and the extension's registration of its two ancillary tables."""
    for statement in _SCHEMA:
        connection.execute(statement)
    for table in ("gpkg_2d_gridded_coverage_ancillary", "gpkg_2d_gridded_tile_ancillary"):
        _register(connection, table, None)


def _register(connection: sqlite3.Connection, table: str, column: str | None) -> None:
    found = connection.execute(
        "SELECT 1 FROM gpkg_extensions WHERE table_name = ? AND column_name IS ? AND extension_name = ?",
        (table, column, _EXTENSION),
    ).fetchone()
    if found is None:
        connection.execute(
            "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) "
            "VALUES (?, ?, ?, ?, 'read-write')",
            (table, column, _EXTENSION, _DEFINITION),
        )


def _ensure_srs(connection: sqlite3.Connection, srs_id: int) -> None:
    if connection.execute("SELECT 1 FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)).fetchone():
        return
    crs = CRS.from_epsg(srs_id)
    connection.execute(
        "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, organization_coordsys_id, definition, "
        "description) VALUES (?, ?, 'EPSG', ?, ?, ?)",
        (crs.name, srs_id, srs_id, crs.to_wkt("WKT1_GDAL"), crs.name),
    )


def encode_tiles(raster: RasterData) -> list[EncodedTile]:
    """Each non-empty tile as a float32 TIFF with its statistics (min, max, mean, std of valid cells).

    Done before the write transaction opens, so the file is locked only while rows are inserted; GDAL releases
    the GIL while it compresses, so a few threads share the work."""
    wanted = [tile for tile in raster_grid.tiles(raster) if not tile.empty]
    # tiles carry no georeferencing (the tile matrix does); the filter is process-wide, so it is set around the
    # whole pool rather than per thread (catch_warnings is not thread-safe)
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        blobs = list(pool.map(_tiff, (tile.data for tile in wanted)))
    return [
        (tile.row, tile.col, blob, _stats(tile.data, raster.nodata)) for tile, blob in zip(wanted, blobs, strict=True)
    ]


def _tiff(data: np.ndarray) -> bytes:
    profile = {"driver": "GTiff", "width": TILE, "height": TILE, "count": 1, "dtype": "float32", "compress": "lzw"}
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(data, 1)
        return bytes(memfile.read())


def _stats(data: np.ndarray, nodata: float | None) -> tuple[float | None, float | None, float | None, float | None]:
    valid = data[data != np.float32(nodata)] if nodata is not None else data.ravel()
    if valid.size == 0:
        return (None, None, None, None)
    values = valid.astype(np.float64)
    return (float(values.min()), float(values.max()), float(values.mean()), float(values.std()))


def write_coverage(
    connection: sqlite3.Connection,
    name: str,
    raster: RasterData,
    tiles: list[EncodedTile],
    *,
    description: str,
    last_change: str,
) -> None:
    """Replace the coverage `name` by `raster` (checked, float32) and its `encode_tiles`, inside the caller's
    transaction."""
    srs_id = raster_grid.epsg_code(raster.crs)
    t = raster.transform
    rows, cols = raster.array.shape
    tile_rows, tile_cols = raster_grid.matrix_size(raster)
    min_x, max_y = t.c, t.f
    max_x, min_y = t.c + cols * t.a, t.f + rows * t.e
    ensure_schema(connection)
    _ensure_srs(connection, srs_id)
    table = _quote(name)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, zoom_level INTEGER NOT NULL, "
        "tile_column INTEGER NOT NULL, tile_row INTEGER NOT NULL, tile_data BLOB NOT NULL, "
        "UNIQUE (zoom_level, tile_column, tile_row))"
    )
    connection.execute(f"DELETE FROM {table}")
    for statement in (
        "DELETE FROM gpkg_2d_gridded_tile_ancillary WHERE tpudt_name = ?",
        "DELETE FROM gpkg_2d_gridded_coverage_ancillary WHERE tile_matrix_set_name = ?",
        "DELETE FROM gpkg_tile_matrix WHERE table_name = ?",
        "DELETE FROM gpkg_tile_matrix_set WHERE table_name = ?",
        "DELETE FROM gpkg_contents WHERE table_name = ?",
    ):
        connection.execute(statement, (name,))
    connection.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, "
        "min_x, min_y, max_x, max_y, srs_id) VALUES (?, '2d-gridded-coverage', ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, name, description, last_change, min_x, min_y, max_x, max_y, srs_id),
    )
    # The tile matrix set starts at the raster's top-left corner, so tile (0, 0) holds cell (0, 0).
    connection.execute(
        "INSERT INTO gpkg_tile_matrix_set (table_name, srs_id, min_x, min_y, max_x, max_y) VALUES (?, ?, ?, ?, ?, ?)",
        (name, srs_id, min_x, max_y + tile_rows * TILE * t.e, min_x + tile_cols * TILE * t.a, max_y),
    )
    connection.execute(
        "INSERT INTO gpkg_tile_matrix (table_name, zoom_level, matrix_width, matrix_height, tile_width, "
        "tile_height, pixel_x_size, pixel_y_size) VALUES (?, 0, ?, ?, ?, ?, ?, ?)",
        (name, tile_cols, tile_rows, TILE, TILE, t.a, -t.e),
    )
    # People are counts per cell: the value describes the whole cell (grid-value-is-area, GDAL's PixelIsArea).
    connection.execute(
        "INSERT INTO gpkg_2d_gridded_coverage_ancillary (tile_matrix_set_name, datatype, scale, offset, precision, "
        "data_null, grid_cell_encoding, uom, field_name, quantity_definition) "
        "VALUES (?, 'float', 1.0, 0.0, NULL, ?, 'grid-value-is-area', NULL, ?, ?)",
        (name, raster.nodata, name, description),
    )
    _register(connection, name, "tile_data")
    for row, col, blob, stats in tiles:
        cursor = connection.execute(
            f"INSERT INTO {table} (zoom_level, tile_column, tile_row, tile_data) VALUES (0, ?, ?, ?)",
            (col, row, blob),
        )
        connection.execute(
            "INSERT INTO gpkg_2d_gridded_tile_ancillary (tpudt_name, tpudt_id, scale, offset, min, max, mean, "
            "std_dev) VALUES (?, ?, 1.0, 0.0, ?, ?, ?, ?)",
            (name, cursor.lastrowid, *stats),
        )


def has_coverage(connection: sqlite3.Connection, name: str) -> bool:
    row = (
        connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_contents'").fetchone()
        and connection.execute(
            "SELECT 1 FROM gpkg_contents WHERE table_name = ? AND data_type = '2d-gridded-coverage'", (name,)
        ).fetchone()
    )
    return bool(row)


def read_coverage(connection: sqlite3.Connection, name: str) -> RasterData | None:
    """The coverage as written (None if there is none). Tiles are read at zoom level 0 with scale 1, offset 0,
    as `write_coverage` writes them."""
    if not has_coverage(connection, name):
        return None
    row = connection.execute(
        "SELECT c.min_x, c.min_y, c.max_x, c.max_y, c.srs_id, m.pixel_x_size, m.pixel_y_size, a.data_null "
        "FROM gpkg_contents c JOIN gpkg_tile_matrix m ON m.table_name = c.table_name AND m.zoom_level = 0 "
        "JOIN gpkg_2d_gridded_coverage_ancillary a ON a.tile_matrix_set_name = c.table_name "
        "WHERE c.table_name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    min_x, min_y, max_x, max_y, srs_id, size_x, size_y, nodata = row
    shape = (round((max_y - min_y) / size_y), round((max_x - min_x) / size_x))
    fill = 0.0 if nodata is None else float(nodata)
    tiles = connection.execute(f"SELECT tile_row, tile_column, tile_data FROM {_quote(name)} WHERE zoom_level = 0")
    array = raster_grid.assemble(shape, _decoded(tiles), fill)
    transform = Affine(size_x, 0.0, min_x, 0.0, -size_y, max_y)
    return RasterData(array, transform, f"EPSG:{srs_id}", None if nodata is None else float(nodata))


def _decoded(rows: sqlite3.Cursor) -> Iterator[tuple[int, int, np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        for tile_row, tile_col, blob in rows:
            with MemoryFile(bytes(blob)) as memfile, memfile.open() as src:
                yield int(tile_row), int(tile_col), src.read(1).astype(np.float32, copy=False)
