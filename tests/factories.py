"""Catalogue-driven sample frames: valid features for any vector layer, placed inside Gaoming."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geoplan.catalog import FieldDef, LayerDef

# 荷城 town seat, comfortably inside the district.
ORIGIN = (112.86, 22.89)
# The district's lon/lat bounding box (minLon, minLat, maxLon, maxLat).
GAOMING_EXTENT = (112.39, 22.65, 112.92, 23.01)


def sample_value(field: FieldDef, index: int) -> Any:
    if field.allowed:
        return field.allowed[index % len(field.allowed)]
    if field.type == "integer":
        low = int(field.minimum) if field.minimum is not None else 0
        high = int(field.maximum) if field.maximum is not None else low + 1000
        return low + (2024 - low if low <= 2024 <= high else index) % (high - low + 1)
    if field.type == "float":
        low = field.minimum if field.minimum is not None else 0.0
        high = field.maximum if field.maximum is not None else low + 1000.0
        return low + (index * 7.25) % (high - low)
    if field.type == "boolean":
        return index % 2 == 0
    return f"{field.name[:4]}-{index:06d}"[: field.max_length or 500]


def sample_geometry(layer: LayerDef, index: int, *, size: float = 0.002) -> shapely.Geometry:
    x = ORIGIN[0] + (index % 20) * size * 1.5
    y = ORIGIN[1] + (index // 20) * size * 1.5
    if layer.geometry == "Point":
        return shapely.Point(x, y)
    if layer.geometry == "MultiLineString":
        return shapely.MultiLineString([[(x, y), (x + size, y + size / 2)]])
    return shapely.MultiPolygon([shapely.box(x, y, x + size, y + size)])


def sample_frame(layer: LayerDef, n: int, *, start: int = 0) -> gpd.GeoDataFrame:
    """`n` valid features of `layer`, ids numbered from `start`."""
    indexes = range(start, start + n)
    data = {f.name: [sample_value(f, i) for i in indexes] for f in layer.fields}
    geometry = [sample_geometry(layer, i) for i in indexes]
    return gpd.GeoDataFrame(data, geometry=geometry, crs="EPSG:4490")


def _spread_geometry(layer: LayerDef, x: float, y: float, dx: float, dy: float) -> shapely.Geometry:
    if layer.geometry == "Point":
        return shapely.Point(x, y)
    if layer.geometry == "MultiLineString":
        return shapely.MultiLineString([[(x, y), (x + dx, y + dy)]])
    return shapely.MultiPolygon([shapely.box(x, y, x + abs(dx) + 1e-5, y + abs(dy) + 1e-5)])


def spread_frame(
    layer: LayerDef,
    n: int,
    *,
    extent: tuple[float, float, float, float] = GAOMING_EXTENT,
    size: float = 0.0015,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """`n` valid features of `layer` scattered uniformly over `extent` (seeded, so reproducible).

    `sample_frame` packs features into a small grid at ORIGIN; this spreads them over the whole district, so a
    big layer has realistic density: a street-level view holds a few hundred of 30,000, not all or none.
    Lines are segments of length `size` degrees in random directions; polygons are boxes of at most that size.
    """
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = extent
    xs = rng.uniform(minx + size, maxx - size, n)
    ys = rng.uniform(miny + size, maxy - size, n)
    angles = rng.uniform(0.0, 2.0 * np.pi, n)
    dxs, dys = size * np.cos(angles), size * np.sin(angles)
    data = {f.name: [sample_value(f, i) for i in range(n)] for f in layer.fields}
    geometry = [_spread_geometry(layer, *values) for values in zip(xs, ys, dxs, dys, strict=True)]
    return gpd.GeoDataFrame(data, geometry=geometry, crs="EPSG:4490")
