"""The coverage tables a person reads: whole people, unit types in Chinese, facilities by name, "no route" in words.

The engine's village table (`coverage.COVERAGE_COLUMNS`) keeps exact fractional shares of people, unit type
codes, facility ids and `inf` for a 90th percentile that does not exist (more than 10 % of a village's people
have no route). That is right for computing on, wrong for reading: these helpers turn it, and the town rollup,
into what the command line, the files (CSV, Excel, GeoPackage), the API and the report show.

"No route" (无路径) means a person's cell is farther than the access distance from every walkable street, or
its street part reaches no facility within the search horizon. Their share is stated with them; P90 is left
empty where it is undefined, never shown as inf or nan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from geoplan.analysis.life_circle_scorecard import whole_people
from geoplan.analysis.unit_groups import group_of, type_zh

__all__ = [
    "NO_ROUTE_NOTE_ZH",
    "NO_ROUTE_ZH",
    "VILLAGE_OUTPUT_COLUMNS",
    "no_route_words",
    "village_output",
    "whole",
]

NO_ROUTE_ZH = "无路径"
NO_ROUTE_NOTE_ZH = (
    "无路径：所在人口格网距可步行道路超过接入距离，或在搜索上限内到不了任何设施；"
    "无路径人口超过 10% 时 P90 用时无定义，留空。人口为四舍五入的整数人。"
)
VILLAGE_OUTPUT_COLUMNS = [
    "village_code",
    "village_name",
    "town",
    "group",
    "type",
    "population",
    "covered_population",
    "coverage_pct",
    "mean_minutes",
    "p90_minutes",
    "no_route_population",
    "no_route_pct",
    "off_network_population",
    "nearest_facility",
    "nearest_facility_name",
    "note",
]


def whole(people: float) -> int:
    """One count of people as whole persons, rounded half up (0 for an undefined value)."""
    return math.floor(people + 0.5) if math.isfinite(people) else 0


def no_route_words(no_route: float, population: float) -> str:
    """ "无路径 1,234 人（12.3%）", or "" when everyone has a route (or nobody lives there)."""
    people = whole(no_route)
    if people <= 0 or not population > 0:
        return ""
    return f"{NO_ROUTE_ZH} {people:,} 人（{100.0 * no_route / population:.1f}%）"


def _finite_or_nan(values: pd.Series, decimals: int) -> pd.Series:
    array = values.to_numpy(dtype=np.float64)
    return pd.Series(np.where(np.isfinite(array), np.round(array, decimals), np.nan), index=values.index)


def village_output(table: pd.DataFrame, *, facility_names: Mapping[str, str]) -> pd.DataFrame:
    """VILLAGE_OUTPUT_COLUMNS from an engine village table (COVERAGE_COLUMNS), in its row order.

    People are whole (rounded half up), percentages and minutes to one decimal, undefined values empty (NaN in
    the frame: an empty CSV cell, NULL in a GeoPackage); `group` is the reporting group (the town, or 虚拟单位).
    """
    population = table["population"].astype(np.float64)
    no_route = (population - table["routed_population"].astype(np.float64)).clip(lower=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(population > 0, 100.0 * no_route / population, np.nan)
    p90 = table["p90_minutes"].to_numpy(dtype=np.float64)
    notes = []
    for people, missing, value in zip(population.to_numpy(), no_route.to_numpy(), p90, strict=True):
        if not people > 0:
            notes.append("无人口")
            continue
        words = no_route_words(float(missing), float(people))
        if not math.isfinite(value):
            words += "，P90 无定义"
        notes.append(words)
    ids = table["nearest_facility"]
    names = [facility_names.get(str(i)) if isinstance(i, str) else None for i in ids]
    out = pd.DataFrame(
        {
            "village_code": table["village_code"].astype(str).to_numpy(),
            "village_name": table["village_name"].astype(str).to_numpy(),
            "town": table["town"].astype(str).to_numpy(),
            "group": group_of(table).to_numpy(),
            "type": type_zh(table["type"]).to_numpy(),
            "population": whole_people(population).to_numpy(),
            "covered_population": whole_people(table["covered_population"]).to_numpy(),
            "coverage_pct": _finite_or_nan(table["coverage_pct"], 1).to_numpy(),
            "mean_minutes": _finite_or_nan(table["mean_minutes"], 1).to_numpy(),
            "p90_minutes": _finite_or_nan(table["p90_minutes"], 1).to_numpy(),
            "no_route_population": whole_people(no_route).to_numpy(),
            "no_route_pct": np.round(share, 1),
            "off_network_population": whole_people(table["off_network_population"]).to_numpy(),
            "nearest_facility": [i if isinstance(i, str) else None for i in ids],
            "nearest_facility_name": names,
            "note": notes,
        },
        index=table.index,
    )
    return out[VILLAGE_OUTPUT_COLUMNS]
