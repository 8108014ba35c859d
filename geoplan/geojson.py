"""Fast, safe GeoJSON: geometries through shapely's vectorised writer, properties through json.dumps.

User text only ever reaches a client as escaped JSON produced here, never spliced into HTML or JavaScript.
"""

from __future__ import annotations

import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def feature_strings(frame: gpd.GeoDataFrame, *, fields: list[str], id_field: str | None) -> list[str]:
    """One serialised GeoJSON Feature per row, with only `fields` as properties."""
    geometries = shapely.to_geojson(np.asarray(frame.geometry.values, dtype=object))
    columns = {name: frame[name].astype(object).tolist() for name in fields}
    ids = frame[id_field].astype(object).tolist() if id_field else [None] * len(frame)
    features = []
    for row, geometry in enumerate(geometries):
        properties = {name: _clean(values[row]) for name, values in columns.items()}
        feature_id = json.dumps(_clean(ids[row]), ensure_ascii=False)
        features.append(
            f'{{"type":"Feature","id":{feature_id},"geometry":{geometry},'
            f'"properties":{json.dumps(properties, ensure_ascii=False)}}}'
        )
    return features


def feature_collection(features: list[str], **members: Any) -> bytes:
    """Join serialised features into a FeatureCollection with extra top-level members (links, counts)."""
    extra = "".join(f",{json.dumps(key)}:{json.dumps(value, ensure_ascii=False)}" for key, value in members.items())
    return f'{{"type":"FeatureCollection","features":[{",".join(features)}]{extra}}}'.encode()
