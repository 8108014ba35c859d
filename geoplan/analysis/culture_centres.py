"""Which administrative villages and communities have a comprehensive cultural service centre (综合性文化服务中心).

The plan (and the national basic public cultural service standard) wants one in every administrative village
and community. A unit has one when a facility of that kind stands inside its boundary (on the boundary counts
for the unit it touches). Virtual units (prisons, farms) are listed in their own group and not expected to
have one.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.analysis.coverage import metric_geoms
from geoplan.analysis.unit_groups import VIRTUAL_TYPE, group_of, type_zh
from geoplan.errors import InputError

__all__ = ["CENTRE_COLUMNS", "CENTRE_KIND", "culture_centres"]

CENTRE_KIND = "综合性文化服务中心"
CENTRE_COLUMNS = ["village_code", "village_name", "group", "type", "expected", "has_centre", "centres", "count"]


def culture_centres(
    *, villages: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, kind: str = CENTRE_KIND
) -> pd.DataFrame:
    """CENTRE_COLUMNS, one row per unit in layer order: `expected` is False for virtual units; `centres` the
    names of the centres inside (、-joined, empty when none)."""
    for column in ("kind", "name"):
        if column not in facilities.columns:
            raise InputError(f"layer 'culture_facilities' has no '{column}' field")
    centres = facilities[facilities["kind"].astype(str) == kind]
    units = metric_geoms(villages)
    points = metric_geoms(centres) if len(centres) else np.empty(0, dtype=object)
    tree = shapely.STRtree(points)
    pairs = tree.query(units, predicate="intersects") if len(points) else np.empty((2, 0), dtype=np.intp)
    names = centres["name"].astype(str).to_numpy()
    found: list[list[str]] = [[] for _ in range(len(villages))]
    for unit, point in zip(pairs[0], pairs[1], strict=True):
        found[int(unit)].append(str(names[int(point)]))
    return pd.DataFrame(
        {
            "village_code": villages["village_code"].astype(str).to_numpy(),
            "village_name": villages["village_name"].astype(str).to_numpy(),
            "group": group_of(villages).to_numpy(),
            "type": type_zh(villages["type"]).to_numpy(),
            "expected": (villages["type"].astype(str) != VIRTUAL_TYPE).to_numpy(),
            "has_centre": np.array([bool(f) for f in found]),
            "centres": ["、".join(sorted(f)) for f in found],
            "count": np.array([len(f) for f in found], dtype=np.int64),
        }
    )
