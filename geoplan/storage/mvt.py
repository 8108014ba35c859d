"""Mapbox Vector Tiles made in process (the GeoPackage store, and frames computed in memory such as conflict
patches), with the same rules as PostGIS's ST_AsMVTGeom + ST_AsMVT so both stores give the same tile:

- a feature is in the tile when its geometry truly intersects the tile's lon/lat rectangle (as the OGC items
  query with that bbox selects);
- geometry goes to tile units (EXTENT a side, y down), is clipped BUFFER units beyond the edges and snapped to
  the integer grid;
- a geometry that collapses on that grid (smaller than a tile unit at this zoom) is kept as one point: the point
  of the feature nearest the tile's centre. So every feature of the items query is in the tile, clickable, at
  every zoom;
- properties are the given fields, missing values left out (MVT has no null).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from geoplan.storage.tile_matrix import BUFFER, EXTENT, HALF_WORLD, TileKey

_OPTIONS = {
    "extents": EXTENT,
    "y_coord_down": True,
    "quantize_bounds": None,
    "check_winding_order": True,
    "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid,
}


def in_tile(geometries: np.ndarray, tile: TileKey) -> np.ndarray:
    """Positions of the lon/lat geometries that intersect the tile (bounding boxes first: cheap on big frames)."""
    if len(geometries) == 0:
        return np.empty(0, dtype=np.int64)
    west, south, east, north = tile.lonlat_bounds
    bounds = shapely.bounds(geometries)
    near = np.flatnonzero(
        (bounds[:, 0] <= east) & (bounds[:, 2] >= west) & (bounds[:, 1] <= north) & (bounds[:, 3] >= south)
    )
    hits = shapely.intersects(geometries[near], shapely.box(west, south, east, north))
    return near[hits]


def to_tile_units(geometries: np.ndarray, tile: TileKey) -> np.ndarray:
    """Lon/lat geometries in the tile's units: x east, y down from the tile's north-west corner."""
    min_x, _, _, max_y = tile.mercator_bounds
    unit = tile.unit_m

    def project(coords: np.ndarray) -> np.ndarray:
        x = coords[:, 0] / 180.0 * HALF_WORLD
        lat = np.radians(np.clip(coords[:, 1], -85.06, 85.06))
        y = np.log(np.tan(math.pi / 4 + lat / 2)) * HALF_WORLD / math.pi
        return np.column_stack([(x - min_x) / unit, (max_y - y) / unit])

    return shapely.transform(geometries, project)


def tile_geometries(geometries: np.ndarray, tile: TileKey) -> np.ndarray:
    """Tile-unit geometries clipped and snapped as ST_AsMVTGeom does, collapsed ones kept as a point."""
    projected = to_tile_units(geometries, tile)
    edge = (-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    clipped = shapely.clip_by_rect(projected, *edge)
    snapped = shapely.set_precision(clipped, 1.0)
    collapsed = shapely.is_empty(snapped) | shapely.is_missing(snapped)
    if collapsed.any():
        centre = shapely.Point(EXTENT / 2, EXTENT / 2)
        nearest = shapely.shortest_line(projected[collapsed], centre)
        points = shapely.get_point(nearest, 0)
        snapped[collapsed] = shapely.set_precision(points, 1.0)
    return snapped


def encode_tile(frame: gpd.GeoDataFrame, tile: TileKey, name: str, fields: Sequence[str]) -> bytes:
    """One MVT layer `name` with the features of `frame` (lon/lat, the storage CRS) in the tile; b"" when none."""
    geometries = np.asarray(frame.geometry.values, dtype=object)
    rows = in_tile(geometries, tile)
    if len(rows) == 0:
        return b""
    shapes = tile_geometries(geometries[rows], tile)
    columns = [frame[field].iloc[rows].astype(object).to_numpy() for field in fields]
    features = [
        {"geometry": shape, "properties": _properties(fields, [column[i] for column in columns])}
        for i, shape in enumerate(shapes)
    ]
    data: bytes = mapbox_vector_tile.encode([{"name": name, "features": features}], default_options=_OPTIONS)
    return data


def _properties(fields: Sequence[str], values: list[Any]) -> dict[str, Any]:
    return {field: _plain(value) for field, value in zip(fields, values, strict=True) if not _missing(value)}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values, which the encoder maps to MVT's value types."""
    if isinstance(value, np.generic):
        return value.item()
    return value
