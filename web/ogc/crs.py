"""OGC API – Features Part 2: the CRSs the API can answer in, named by URI, and the transforms between them.

Stored coordinates are CGCS2000 (EPSG:4490) longitude, latitude. Part 2 says coordinates follow the axis order
of the CRS named: CRS84 is lon,lat; EPSG:4490 and EPSG:4326 are lat,lon; EPSG:4547 (the district's metric
Gauss-Krüger zone) is northing,easting (X north, Y east). pyproj without `always_xy` gives exactly that
authority order, so the transforms here never swap by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import shapely
from fastapi import HTTPException
from pyproj import CRS, Transformer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
STORAGE_CRS = f"{EPSG}4490"
SUPPORTED_CRS = [CRS84, STORAGE_CRS, f"{EPSG}4326", f"{EPSG}4547"]

_PYPROJ_NAME = {CRS84: "OGC:CRS84", **{uri: "EPSG:" + uri.rsplit("/", 1)[1] for uri in SUPPORTED_CRS[1:]}}


def check_crs(uri: str | None, *, parameter: str = "crs") -> str:
    """The CRS URI, CRS84 when absent; 400 for one this API does not offer."""
    if uri is None or uri == "":
        return CRS84
    uri = uri.strip().strip("<>")  # a Content-Crs style <uri> is accepted too
    if uri not in _PYPROJ_NAME:
        raise HTTPException(400, f"{parameter} {uri!r} is not supported; use one of: {', '.join(SUPPORTED_CRS)}")
    return uri


@cache
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(CRS(_PYPROJ_NAME[source]), CRS(_PYPROJ_NAME[target]))


def _stored_as_authority(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return y, x  # stored lon,lat -> EPSG:4490's lat,lon


def from_storage(uri: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A coordinate function (N x 2 -> N x 2) from stored lon/lat into `uri`'s axis order; None for CRS84."""
    if uri == CRS84:
        return None
    transformer = _transformer(STORAGE_CRS, uri)

    def apply(coords: np.ndarray) -> np.ndarray:
        a, b = _stored_as_authority(coords[:, 0], coords[:, 1])
        return np.column_stack(transformer.transform(a, b))

    return apply


def to_storage(uri: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A coordinate function from `uri`'s axis order into stored lon/lat; None for CRS84."""
    if uri == CRS84:
        return None
    transformer = _transformer(uri, STORAGE_CRS)

    def apply(coords: np.ndarray) -> np.ndarray:
        lat, lon = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return apply


def transform_geometries(geometries: np.ndarray, function: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    return geometries if function is None else shapely.transform(geometries, function)


def bbox_to_storage(bbox: tuple[float, float, float, float], uri: str) -> tuple[float, float, float, float]:
    """A bbox given in `uri` as stored lon/lat bounds (the transformed box's envelope, densified)."""
    function = to_storage(uri)
    if function is None:
        return bbox
    box = shapely.segmentize(shapely.box(*bbox), max_segment_length=max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / 16)
    bounds = shapely.bounds(shapely.transform(box, function))
    return (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))


def content_crs(uri: str) -> dict[str, str]:
    return {"Content-Crs": f"<{uri}>"}
