"""Vector tiles from the GeoPackage: the tile's candidates from the layer's R-tree in one SQL query (GDAL's
`rtree_<table>_geom`, whose float32 boxes are rounded outward, so no candidate is lost), their blobs decoded,
then clipped and encoded in process by `geoplan.storage.mvt`, which keeps only the true intersections. A CQL2
filter runs on the candidates' frame (`geoplan.cql2.frame_mask`), as the items endpoint filters the GeoPackage.

Reading through SQLite directly, not through GDAL, matters here: a tile holds a few dozen features, and opening a
GDAL read costs about 10 ms, ten times the clipping and encoding.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import pandas as pd

from geoplan.catalog import LayerDef
from geoplan.cql2 import Node, frame_mask
from geoplan.storage import gpkg_blob
from geoplan.storage.base import frame_from_records
from geoplan.storage.mvt import encode_tile
from geoplan.storage.tile_matrix import TileKey


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def vector_tile(
    connection: sqlite3.Connection, layer: LayerDef, tile: TileKey, fields: Sequence[str], node: Node | None = None
) -> bytes:
    """The tile of `layer` with catalogue `fields` (checked names), of the features the checked filter `node`
    selects (all when None)."""
    west, south, east, north = tile.lonlat_bounds
    # the filter may name any catalogue field, so with one every field is read (and only `fields` encoded)
    read = list(fields) if node is None else list(dict.fromkeys([*fields, *layer.field_names]))
    columns = "".join(f"t.{_quote(name)}, " for name in read)
    rtree = _quote(f"rtree_{layer.name}_geom")
    rows = connection.execute(
        f"SELECT {columns}t.geom FROM {_quote(layer.name)} AS t JOIN {rtree} AS r ON t.fid = r.id "
        "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?",
        (east, west, north, south),
    ).fetchall()
    records = pd.DataFrame([r[:-1] for r in rows], columns=read)
    frame = frame_from_records(layer, records, gpkg_blob.decode([r[-1] for r in rows]))
    if node is not None and len(frame):
        frame = frame[frame_mask(node, frame)]
    return encode_tile(frame, tile, layer.name, fields)
