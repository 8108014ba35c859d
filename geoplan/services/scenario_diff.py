"""A scenario against today: the same analyses run on the live store and on the scenario view, compared.

`scenario_diff` runs the overlaps (conflict patches), the life circles (every service × every village) and the
indicators once on the live layers and once on `scenario_view.ScenarioView` (the live layers with the scenario's
edits applied, no copy), with the same rule files, and compares them (`analysis.scenario_delta`): conflict patches
added and removed by their stable ids, covered share per village and service before and after, indicator values
and targets before and after. `write_diff` writes the comparison by the output's suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.life_circle_scorecard import scorecard
from geoplan.analysis.life_circles import life_circle_coverage
from geoplan.analysis.rules import ConflictRule
from geoplan.analysis.scenario_delta import coverage_changes, indicator_changes, patch_changes
from geoplan.errors import InputError
from geoplan.io import write_file
from geoplan.services.coverage_inputs import life_circle_inputs
from geoplan.services.indicators import compute_indicators, definitions_for
from geoplan.services.overlap import run_overlaps
from geoplan.services.rule_files import default_life_circles_path, load_life_circles, rules_for
from geoplan.services.scenarios import open_view
from geoplan.storage import LayerStore, require_initialised

__all__ = ["DIFF_SUFFIXES", "Analyses", "ScenarioDiff", "analyse", "compare", "scenario_diff", "write_diff"]

DIFF_SUFFIXES = (".xlsx", ".csv", ".geojson", ".gpkg")


@dataclass(frozen=True)
class Analyses:
    """One side of a diff: every conflict patch, the life-circle scorecard and the indicator table."""

    patches: gpd.GeoDataFrame
    life_circles: pd.DataFrame
    indicators: pd.DataFrame


@dataclass(frozen=True)
class ScenarioDiff:
    """A scenario against live: both sides in full, and the three comparisons."""

    scenario: str
    live: Analyses
    draft: Analyses
    """The scenario's side (live layers with its edits applied)."""
    patches: gpd.GeoDataFrame
    """Conflict patches added or removed (`change`, `change_zh`), `analysis.overlap.PATCH_COLUMNS` otherwise."""
    coverage: pd.DataFrame
    """`scenario_delta.COVERAGE_CHANGE_COLUMNS`: every village and service."""
    indicators: pd.DataFrame
    """`scenario_delta.INDICATOR_CHANGE_COLUMNS`: every indicator, scope and key."""

    def coverage_changed(self) -> pd.DataFrame:
        """The villages and services whose covered people or share change."""
        c = self.coverage
        moved = (c["covered_live"] != c["covered_scenario"]) | (c["coverage_pct_live"] != c["coverage_pct_scenario"])
        either_missing = c["covered_live"].isna() | c["covered_scenario"].isna()
        return c[(moved.fillna(False) | either_missing).to_numpy(dtype=bool)].reset_index(drop=True)

    def indicators_changed(self) -> pd.DataFrame:
        """The indicators whose value or target verdict changes."""
        i = self.indicators
        value = (i["value_live"] != i["value_scenario"]).fillna(i["value_live"].isna() != i["value_scenario"].isna())
        met = (i["target_met_live"] != i["target_met_scenario"]).fillna(
            i["target_met_live"].isna() != i["target_met_scenario"].isna()
        )
        return i[(value | met).to_numpy(dtype=bool)].reset_index(drop=True)


def analyse(store: LayerStore, *, rules: list[ConflictRule], layers_dir: Path) -> Analyses:
    """The analyses a diff compares, on one store (live or a scenario view), as the commands run them: every
    conflict patch (no marks), the life-circle scorecard of every service, and every indicator now."""
    require_initialised(store)
    patches = run_overlaps(store, rules=rules, with_marks=False)
    services = load_life_circles(default_life_circles_path(layers_dir), store.catalog)
    network = any(rule.mode == "network" for rule in services.values())
    villages, layers, population, graph = life_circle_inputs(
        store, sorted({rule.layer for rule in services.values()}), network=network
    )
    result = life_circle_coverage(villages=villages, layers=layers, population=population, graph=graph, rules=services)
    indicators = compute_indicators(store, layers_dir=layers_dir, definitions=definitions_for(store, layers_dir))
    return Analyses(patches=patches, life_circles=scorecard(villages, result), indicators=indicators.table)


def scenario_diff(store: LayerStore, name: str, *, layers_dir: Path) -> ScenarioDiff:
    """The scenario `name` against the live layers of `store` (the rule files of `layers_dir`)."""
    view = open_view(store, name)
    rules = rules_for(store.catalog, layers_dir)
    live, draft = analyse(store, rules=rules, layers_dir=layers_dir), analyse(view, rules=rules, layers_dir=layers_dir)
    return compare(view.name, live=live, draft=draft)


def compare(name: str, *, live: Analyses, draft: Analyses) -> ScenarioDiff:
    """The diff of two sides already analysed (the web app keeps each side in a cache keyed by its versions)."""
    return ScenarioDiff(
        scenario=name,
        live=live,
        draft=draft,
        patches=patch_changes(live=live.patches, scenario=draft.patches),
        coverage=coverage_changes(live=live.life_circles, scenario=draft.life_circles),
        indicators=indicator_changes(live=live.indicators, scenario=draft.indicators),
    )


def write_diff(diff: ScenarioDiff, path: Path) -> None:
    """By suffix: .xlsx, three sheets (conflict patches, coverage, indicators); .csv, the coverage and indicator
    changes in one table each (`NAME.coverage.csv`, `NAME.indicators.csv` beside `path`, the patch changes in
    `path`); .geojson or .gpkg, the added and removed conflict patches as features."""
    suffix = path.suffix.lower()
    if suffix not in DIFF_SUFFIXES:
        raise InputError(
            f"{path.name}: write a scenario diff as {', '.join(DIFF_SUFFIXES)}",
            zh=f"{path.name}：方案对比结果只能写成 {'、'.join(DIFF_SUFFIXES)} 文件。",
        )
    patches = pd.DataFrame(diff.patches.drop(columns="geometry"))
    if suffix in (".geojson", ".gpkg"):
        write_file(diff.patches, path, layer_name="scenario_patches")
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path) as book:
            patches.to_excel(book, sheet_name="冲突图斑变化", index=False)
            diff.coverage.to_excel(book, sheet_name="生活圈覆盖变化", index=False)
            diff.indicators.to_excel(book, sheet_name="指标变化", index=False)
    else:
        patches.to_csv(path, index=False, encoding="utf-8-sig")
        diff.coverage.to_csv(path.with_suffix(".coverage.csv"), index=False, encoding="utf-8-sig")
        diff.indicators.to_csv(path.with_suffix(".indicators.csv"), index=False, encoding="utf-8-sig")
