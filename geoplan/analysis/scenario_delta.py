"""What a scenario changes, from the results of the same analysis run on the live layers and on the scenario.

Pure: tables in, tables out. Conflict patches are compared by their stable ids (a patch id is a hash of the rule
and the two features, so an untouched pair keeps its id on both sides); life-circle coverage per village and
service, and indicators per scope, are set side by side with their change. Nothing is NaN for a person to read:
a value one side lacks is left empty (pandas NA), and the change is empty with it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = [
    "CHANGE_TITLES",
    "COVERAGE_CHANGE_COLUMNS",
    "INDICATOR_CHANGE_COLUMNS",
    "coverage_changes",
    "indicator_changes",
    "patch_changes",
]

CHANGE_TITLES = {"added": "新增", "removed": "消除"}
COVERAGE_CHANGE_COLUMNS = [
    "village_code",
    "village_name",
    "town",
    "type",
    "service",
    "circle",
    "population_live",
    "population_scenario",
    "covered_live",
    "covered_scenario",
    "coverage_pct_live",
    "coverage_pct_scenario",
    "delta_pp",
]
INDICATOR_CHANGE_COLUMNS = [
    "indicator",
    "scope",
    "scope_key",
    "unit",
    "target",
    "target_op",
    "value_live",
    "value_scenario",
    "delta",
    "target_met_live",
    "target_met_scenario",
]


def patch_changes(*, live: gpd.GeoDataFrame, scenario: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The patches the scenario adds (ids only it has) and removes (ids only live has), with `change` (added,
    removed) and `change_zh`; added ones first, each part in its own side's order."""
    for side, frame in (("live", live), ("scenario", scenario)):
        if "patch_id" not in frame.columns:
            raise ValueError(f"the {side} patches have no patch_id column")
    live_ids, scenario_ids = set(live["patch_id"]), set(scenario["patch_id"])
    added = scenario[~scenario["patch_id"].isin(live_ids)]
    removed = live[~live["patch_id"].isin(scenario_ids)]
    parts = [
        part.assign(change=change, change_zh=CHANGE_TITLES[change])
        for change, part in (("added", added), ("removed", removed))
    ]
    columns = [*[c for c in scenario.columns if c != "geometry"], "change", "change_zh", "geometry"]
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out[columns], geometry="geometry", crs=scenario.crs if scenario.crs else live.crs)


def coverage_changes(*, live: pd.DataFrame, scenario: pd.DataFrame) -> pd.DataFrame:
    """Two life-circle scorecards (`life_circle_scorecard.SCORECARD_COLUMNS`) side by side, one row per village
    and service either side has: people, covered people and coverage % live and in the scenario, and the change
    in percentage points (`delta_pp`, from the rounded percentages people see)."""
    keys = ["village_code", "service"]
    labels = ["village_name", "town", "type", "circle"]
    measures = {"population": "population", "covered_population": "covered", "coverage_pct": "coverage_pct"}
    left = live[keys + labels + list(measures)].rename(columns={k: f"{v}_live" for k, v in measures.items()})
    right = scenario[keys + labels + list(measures)].rename(columns={k: f"{v}_scenario" for k, v in measures.items()})
    merged = left.merge(right, on=keys, how="outer", suffixes=("", "_s"), sort=False)
    for label in labels:  # a village only the scenario has takes its labels from there
        merged[label] = merged[label].where(merged[label].notna(), merged[f"{label}_s"])
    for column in ("population_live", "population_scenario", "covered_live", "covered_scenario"):
        merged[column] = merged[column].astype("Int64")
    for column in ("coverage_pct_live", "coverage_pct_scenario"):
        merged[column] = merged[column].astype("Float64")
    merged["delta_pp"] = (merged["coverage_pct_scenario"] - merged["coverage_pct_live"]).round(1)
    return merged[COVERAGE_CHANGE_COLUMNS].reset_index(drop=True)


def indicator_changes(*, live: pd.DataFrame, scenario: pd.DataFrame) -> pd.DataFrame:
    """Two indicator tables (`indicators_table.RESULT_COLUMNS`) side by side, one row per indicator, scope and
    scope key: the value live and in the scenario, the change, and whether the target is met before and after."""
    keys = ["indicator", "scope", "scope_key"]
    labels = ["unit", "target", "target_op"]
    left = live[keys + labels + ["value", "target_met"]].rename(
        columns={"value": "value_live", "target_met": "target_met_live"}
    )
    right = scenario[keys + labels + ["value", "target_met"]].rename(
        columns={"value": "value_scenario", "target_met": "target_met_scenario"}
    )
    merged = left.merge(right, on=keys, how="outer", suffixes=("", "_s"), sort=False)
    for label in labels:
        merged[label] = merged[label].where(merged[label].notna(), merged[f"{label}_s"])
    values = {}
    for column in ("value_live", "value_scenario"):
        values[column] = pd.to_numeric(merged[column], errors="coerce").astype("Float64")
        merged[column] = values[column]
    delta = values["value_scenario"] - values["value_live"]
    merged["delta"] = delta.where(~np.isinf(delta.fillna(0).to_numpy(dtype=float)))
    merged["target"] = pd.to_numeric(merged["target"], errors="coerce").astype("Float64")
    for column in ("target_met_live", "target_met_scenario"):
        merged[column] = merged[column].astype("boolean")
    return merged[INDICATOR_CHANGE_COLUMNS].reset_index(drop=True)
