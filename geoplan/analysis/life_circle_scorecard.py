"""The life-circle scorecard: one row per village and service, in whole people and Chinese labels.

People are whole: each village's population and covered population are rounded half up (never truncated),
and the coverage % is computed from the unrounded numbers. A town or district total is the sum of these rows,
so a total always agrees with the rows it is made of (it differs from the unrounded sum by at most half a
person per village). Rounding is monotone, so a village's covered people never exceed its people. A unit
with nobody in it has no coverage %: the cell is left empty, never NaN or inf.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.analysis.coverage import URBAN_TYPE
from geoplan.analysis.life_circles import LifeCircleResult
from geoplan.analysis.unit_groups import TYPE_ZH, type_zh

__all__ = ["SCORECARD_COLUMNS", "TYPE_ZH", "scorecard", "whole_people"]

SCORECARD_COLUMNS = [
    "village_code",
    "village_name",
    "town",
    "type",
    "service",
    "circle",
    "radius_m",
    "population",
    "covered_population",
    "coverage_pct",
]


def whole_people(values: pd.Series) -> pd.Series:
    """People rounded half up to whole persons (int64)."""
    return pd.Series(np.floor(values.to_numpy(dtype=np.float64) + 0.5).astype(np.int64), index=values.index)


def scorecard(villages: gpd.GeoDataFrame, result: LifeCircleResult) -> pd.DataFrame:
    """SCORECARD_COLUMNS, villages in layer order within each service, services in rule order."""
    is_urban = villages["type"].astype(str).to_numpy() == URBAN_TYPE
    kinds = type_zh(villages["type"]).to_numpy()
    parts = []
    for name, service in result.services.items():
        t = service.table
        pct = t["coverage_pct"].to_numpy(dtype=np.float64)
        radius = np.where(is_urban, service.rule.urban.radius_m, service.rule.rural.radius_m)
        parts.append(
            pd.DataFrame(
                {
                    "village_code": t["village_code"].to_numpy(),
                    "village_name": t["village_name"].to_numpy(),
                    "town": t["town"].to_numpy(),
                    "type": kinds,
                    "service": name,
                    "circle": service.rule.circle,
                    "radius_m": np.rint(radius).astype(np.int64),
                    "population": whole_people(t["population"]).to_numpy(),
                    "covered_population": whole_people(t["covered_population"]).to_numpy(),
                    "coverage_pct": pd.array(
                        [round(float(p), 1) if np.isfinite(p) else None for p in pct], dtype="Float64"
                    ),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[SCORECARD_COLUMNS]
