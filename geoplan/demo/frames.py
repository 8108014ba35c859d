"""Turning builder output into catalogue-shaped GeoDataFrames in EPSG:4490.

Each builder states its columns and their catalogue types next to the code that fills them; this module
gives every column the matching pandas dtype (string -> str, integer -> int64, float -> float64,
boolean -> bool) and transforms the metric geometries to CGCS2000 lon/lat once, at the very end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.demo.geometry import GEO_CRS, METRIC_CRS, reproject

Spec = Sequence[tuple[str, str]]  # (column, catalogue type)

# pandas 3 has a dedicated string dtype ("str", missing = NaN); pandas 2 keeps strings as objects.
_STRING_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def column(values: Sequence[Any], ftype: str) -> pd.Series:
    """One column with the dtype of its catalogue type."""
    if ftype == "string":
        return pd.Series(pd.array(list(values), dtype=_STRING_DTYPE))
    if ftype == "integer":
        return pd.Series(np.asarray(values, dtype=np.int64))
    if ftype == "float":
        return pd.Series(np.asarray(values, dtype=np.float64))
    if ftype == "boolean":
        return pd.Series(np.asarray(values, dtype=np.bool_))
    raise ValueError(f"unknown field type {ftype!r}")


def make_frame(
    rows: Mapping[str, Sequence[Any]], spec: Spec, geoms: Sequence[Any], *, metric: bool = True
) -> gpd.GeoDataFrame:
    """A frame with exactly `spec`'s columns plus `geometry`, in EPSG:4490.

    `geoms` are in EPSG:4547 (transformed here) unless `metric` is False, when they already are lon/lat.
    """
    arr = np.asarray(list(geoms), dtype=object)
    if metric and len(arr):
        arr = reproject(arr, METRIC_CRS, GEO_CRS)
    data = {name: column(rows[name], ftype) for name, ftype in spec}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(arr, crs=GEO_CRS), crs=GEO_CRS)
