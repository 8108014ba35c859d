"""Vector tiles from PostGIS: selection, clipping and encoding all in SQL (ST_AsMVTGeom + ST_AsMVT), with the
rules of `geoplan.storage.mvt` so a PostGIS tile holds what the GeoPackage's in-process tile holds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

from geoplan.catalog import LayerDef
from geoplan.storage.tile_matrix import BUFFER, EXTENT, TileKey

STORE_SRID = 4490


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def tile_sql(layer: LayerDef, fields: Sequence[str], schema: str | None) -> str:
    """The tile query for catalogue `fields` (checked names) of `layer`; bound parameters z, x, y and the lon/lat
    rectangle w, s, e, n of the tile. The feature whose geometry collapses on the tile grid is kept as its point
    nearest the tile's centre (ST_AsMVTGeom gives NULL for it)."""
    table = f"{_quote(schema)}.{_quote(layer.name)}" if schema else _quote(layer.name)
    columns = "".join(f"t.{_quote(name)}, " for name in fields)
    envelope = "ST_TileEnvelope(:z, :x, :y)"
    mercator = "ST_Transform(t.geom, 3857)"
    return f"""
        WITH box AS (SELECT ST_MakeEnvelope(:w, :s, :e, :n, {STORE_SRID}) AS geom),
        features AS (
            SELECT {columns}COALESCE(
                ST_AsMVTGeom({mercator}, {envelope}, {EXTENT}, {BUFFER}, true),
                ST_AsMVTGeom(ST_ClosestPoint({mercator}, ST_Centroid({envelope})), {envelope}, {EXTENT}, {BUFFER}, true)
            ) AS mvt_geom
            FROM {table} AS t, box
            WHERE t.geom && box.geom AND ST_Intersects(t.geom, box.geom)
        )
        SELECT ST_AsMVT(features, :name, {EXTENT}, 'mvt_geom') FROM features
    """


def vector_tile(
    connection: Connection, layer: LayerDef, tile: TileKey, fields: Sequence[str], schema: str | None
) -> bytes:
    west, south, east, north = tile.lonlat_bounds
    params = {"z": tile.z, "x": tile.x, "y": tile.y, "w": west, "s": south, "e": east, "n": north, "name": layer.name}
    data = connection.execute(text(tile_sql(layer, fields, schema)), params).scalar_one()
    return bytes(data) if data is not None else b""
