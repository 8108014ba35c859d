"""The pure comparisons of a scenario diff, on small hand-made tables whose answers are counted by hand."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from geoplan.analysis.scenario_delta import (
    COVERAGE_CHANGE_COLUMNS,
    INDICATOR_CHANGE_COLUMNS,
    coverage_changes,
    indicator_changes,
    patch_changes,
)


def _patches(ids: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"patch_id": ids, "rule": ["R"] * len(ids), "area_m2": [float(len(i)) for i in ids]},
        geometry=[shapely.Point(i, 0) for i in range(len(ids))],
        crs="EPSG:4490",
    )


def test_patches_added_and_removed_by_id() -> None:
    live, scenario = _patches(["a", "bb", "ccc"]), _patches(["bb", "dddd", "eeeee"])
    inputs = (live.copy(), scenario.copy())
    changes = patch_changes(live=live, scenario=scenario)
    assert list(zip(changes["patch_id"], changes["change"], changes["change_zh"], strict=True)) == [
        ("dddd", "added", "新增"),
        ("eeeee", "added", "新增"),
        ("a", "removed", "消除"),
        ("ccc", "removed", "消除"),
    ]
    assert list(changes["area_m2"]) == [4.0, 5.0, 1.0, 3.0]
    assert changes.crs == live.crs and list(changes.columns)[-1] == "geometry"
    assert live.equals(inputs[0]) and scenario.equals(inputs[1])  # inputs untouched
    assert patch_changes(live=live, scenario=live).empty


def _card(rows: list[tuple[str, str, int, int, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "village_code": [r[0] for r in rows],
            "village_name": [f"村{r[0]}" for r in rows],
            "town": ["荷城街道"] * len(rows),
            "type": ["村"] * len(rows),
            "service": [r[1] for r in rows],
            "circle": ["15分钟"] * len(rows),
            "radius_m": [500] * len(rows),
            "population": [r[2] for r in rows],
            "covered_population": [r[3] for r in rows],
            "coverage_pct": pd.array([r[4] for r in rows], dtype="Float64"),
        }
    )


def test_coverage_side_by_side_with_the_change_in_points() -> None:
    live = _card([("v1", "school", 100, 50, 50.0), ("v2", "school", 0, 0, None), ("v1", "clinic", 100, 90, 90.0)])
    scenario = _card([("v1", "school", 100, 75, 75.0), ("v2", "school", 0, 0, None), ("v1", "clinic", 100, 80, 80.0)])
    out = coverage_changes(live=live, scenario=scenario)
    assert list(out.columns) == COVERAGE_CHANGE_COLUMNS
    rows = {(r.village_code, r.service): r for r in out.itertuples()}
    assert rows[("v1", "school")].covered_live == 50 and rows[("v1", "school")].covered_scenario == 75
    assert rows[("v1", "school")].delta_pp == 25.0
    assert rows[("v1", "clinic")].delta_pp == -10.0
    assert pd.isna(rows[("v2", "school")].delta_pp)  # nobody lives there: no share, no change, never NaN shown
    assert str(out["delta_pp"].dtype) == "Float64"


def test_a_village_only_one_side_has_keeps_its_labels() -> None:
    live = _card([("v1", "school", 100, 50, 50.0)])
    scenario = _card([("v1", "school", 100, 50, 50.0), ("v9", "school", 10, 10, 100.0)])
    out = coverage_changes(live=live, scenario=scenario).set_index("village_code")
    assert out.loc["v9", "village_name"] == "村v9" and pd.isna(out.loc["v9", "covered_live"])
    assert out.loc["v9", "covered_scenario"] == 10 and pd.isna(out.loc["v9", "delta_pp"])


def _indicators(values: dict[tuple[str, str], float | None], met: dict[tuple[str, str], bool | None]) -> pd.DataFrame:
    keys = list(values)
    return pd.DataFrame(
        {
            "indicator": [k[0] for k in keys],
            "scope": [k[1] for k in keys],
            "scope_key": [""] * len(keys),
            "value": [values[k] for k in keys],
            "unit": ["%"] * len(keys),
            "target": [80.0 if k[0] == "cov" else None for k in keys],
            "target_op": [">=" if k[0] == "cov" else "" for k in keys],
            "target_met": [met[k] for k in keys],
        }
    )


def test_indicators_side_by_side_with_delta_and_target_verdicts() -> None:
    live = _indicators(
        {("cov", "district"): 78.5, ("count", "district"): 3.0},
        {("cov", "district"): False, ("count", "district"): None},
    )
    scenario = _indicators(
        {("cov", "district"): 81.0, ("count", "district"): None},
        {("cov", "district"): True, ("count", "district"): None},
    )
    out = indicator_changes(live=live, scenario=scenario)
    assert list(out.columns) == INDICATOR_CHANGE_COLUMNS
    cov = out[out["indicator"] == "cov"].iloc[0]
    assert (cov["value_live"], cov["value_scenario"], cov["delta"]) == (78.5, 81.0, 2.5)
    assert not cov["target_met_live"] and cov["target_met_scenario"]
    count = out[out["indicator"] == "count"].iloc[0]
    assert count["value_live"] == 3.0 and pd.isna(count["value_scenario"]) and pd.isna(count["delta"])
    assert pd.isna(count["target"])  # no target: empty, not NaN
    assert str(out["target"].dtype) == "Float64"
