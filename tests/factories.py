"""Catalogue-driven sample frames: valid features for any vector layer, placed inside Gaoming."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import shapely

from geoplan.catalog import FieldDef, LayerDef

# 荷城 town seat, comfortably inside the district.
ORIGIN = (112.86, 22.89)


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
