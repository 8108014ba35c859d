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
import shapely.errors
import shapely.geometry
from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from geoplan.crs import STORE_CRS, to_store_crs
from geoplan.errors import CRSError, InputError


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


def frame_from_geojson(document: Any, *, source: str) -> gpd.GeoDataFrame:
    """A GeoJSON Feature or FeatureCollection (lon/lat, as RFC 7946 says) as a frame in EPSG:4490.

    Geometry errors are reported per feature; nothing here trusts the document's shape.
    """
    if not isinstance(document, dict) or document.get("type") not in ("Feature", "FeatureCollection"):
        raise InputError(f"{source}: expected a GeoJSON Feature or FeatureCollection")
    features = document.get("features") if document["type"] == "FeatureCollection" else [document]
    if not isinstance(features, list) or not features:
        raise InputError(f"{source}: the FeatureCollection holds no features")
    records: list[dict[str, Any]] = []
    geometries = []
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InputError(f"{source}: item #{number} is not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise InputError(f"{source}: feature #{number}: properties must be an object")
        try:
            geometry = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
            raise InputError(f"{source}: feature #{number}: unreadable geometry ({exc})") from None
        records.append(dict(properties))
        geometries.append(geometry)
    declared = _crs_member(document, source)
    frame = gpd.GeoDataFrame(pd.DataFrame.from_records(records), geometry=geometries, crs=declared or STORE_CRS)
    # A `crs` member (GeoJSON 2008, still written by GDAL and QGIS) goes through the same gate as a file's CRS:
    # coordinates it contradicts are refused, projected ones are converted; without it, RFC 7946 lon/lat holds.
    return to_store_crs(frame, declared=None, source=source) if declared is not None else frame


def _crs_member(document: dict[str, Any], source: str) -> CRS | None:
    """The CRS a document's `crs` member names ({"type": "name", "properties": {"name": "EPSG:4547"}})."""
    member = document.get("crs")
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(member, dict) or member.get("type") != "name" or not isinstance(name, str):
        raise CRSError(f'{source}: the "crs" member must be {{"type": "name", "properties": {{"name": "EPSG:…"}}}}')
    try:
        return CRS.from_user_input(name)
    except ProjCRSError:
        raise CRSError(f'{source}: the "crs" member names an unknown coordinate system {name[:80]!r}') from None
