"""Vector tiles from PostGIS: selection, clipping and encoding all in SQL (ST_AsMVTGeom + ST_AsMVT), with the
rules of `geoplan.storage.mvt` so a PostGIS tile holds what the GeoPackage's in-process tile holds. A CQL2 filter
(the bound expression of `geoplan.storage.postgis_filter`) joins the query's WHERE, so only its features are read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from geoplan.catalog import LayerDef
from geoplan.storage.tile_matrix import BUFFER, EXTENT, TileKey

STORE_SRID = 4490


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def tile_sql(layer: LayerDef, fields: Sequence[str], schema: str | None, where: str = "") -> str:
    """The tile query for catalogue `fields` (checked names) of `layer`; bound parameters tile_z, tile_x, tile_y
    and the lon/lat rectangle tile_w, tile_s, tile_e, tile_n of the tile; `where` an extra SQL condition on `t`.
    The feature whose geometry collapses on the tile grid is kept as its point nearest the tile's centre
    (ST_AsMVTGeom gives NULL for it)."""
    table = f"{_quote(schema)}.{_quote(layer.name)}" if schema else _quote(layer.name)
    columns = "".join(f"t.{_quote(name)}, " for name in fields)
    envelope = "ST_TileEnvelope(:tile_z, :tile_x, :tile_y)"
    mercator = "ST_Transform(t.geom, 3857)"
    return f"""
        WITH box AS (SELECT ST_MakeEnvelope(:tile_w, :tile_s, :tile_e, :tile_n, {STORE_SRID}) AS geom),
        features AS (
            SELECT {columns}COALESCE(
                ST_AsMVTGeom({mercator}, {envelope}, {EXTENT}, {BUFFER}, true),
                ST_AsMVTGeom(ST_ClosestPoint({mercator}, ST_Centroid({envelope})), {envelope}, {EXTENT}, {BUFFER}, true)
            ) AS mvt_geom
            FROM {table} AS t, box
            WHERE t.geom && box.geom AND ST_Intersects(t.geom, box.geom){f" AND ({where})" if where else ""}
        )
        SELECT ST_AsMVT(features, :tile_layer, {EXTENT}, 'mvt_geom') FROM features
    """


def _compiled(where: ColumnElement[bool]) -> tuple[str, dict[str, Any]]:
    """The filter as SQL text with named parameters (its literals stay bound: nothing of the filter text reaches
    the SQL), IN lists expanded, so it joins the text query above."""
    compiled = where.compile(
        dialect=postgresql.psycopg.dialect(paramstyle="named"), compile_kwargs={"render_postcompile": True}
    )
    # text() reads ":name" as a parameter; the dialect's casts (":p::VARCHAR") are escaped so it keeps them
    return str(compiled).replace("::", "\\:\\:"), dict(compiled.params)


def vector_tile(
    connection: Connection,
    layer: LayerDef,
    tile: TileKey,
    fields: Sequence[str],
    schema: str | None,
    where: ColumnElement[bool] | None = None,
) -> bytes:
    west, south, east, north = tile.lonlat_bounds
    params: dict[str, Any] = {
        **{"tile_z": tile.z, "tile_x": tile.x, "tile_y": tile.y, "tile_layer": layer.name},
        **{"tile_w": west, "tile_s": south, "tile_e": east, "tile_n": north},
    }
    condition = ""
    if where is not None:
        condition, filter_params = _compiled(where)
        params |= filter_params
    data = connection.execute(text(tile_sql(layer, fields, schema, condition)), params).scalar_one()
    return bytes(data) if data is not None else b""
