"""The diff of a scenario equals the analyses run on a copy of the store with the edits written into it.

The independent path: `shutil.copy` the demo store, apply the same edits through the ordinary store writes
(append, update_features, delete_features), run the overlaps, the life circles and the indicators on it, and
compare with the diff's scenario side, which came from the scenario view (live + edits, no copy). The live side
is compared with the same analyses run on the untouched demo store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pandas.testing import assert_frame_equal

from geoplan.analysis.life_circle_scorecard import scorecard
from geoplan.analysis.life_circles import life_circle_coverage
from geoplan.analysis.network import build_walk_graph
from geoplan.catalog import Catalog
from geoplan.services import scenarios as sc
from geoplan.services.compliance import check_site_in_store
from geoplan.services.coverage_inputs import life_circle_inputs, walk_graph_for
from geoplan.services.indicators import compute_indicators
from geoplan.services.overlap import run_overlaps
from geoplan.services.rule_files import default_life_circles_path, load_life_circles, rules_for
from geoplan.services.scenario_diff import ScenarioDiff, scenario_diff, write_diff
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

WHO = "planner:test"
NAME = "西江新城调整方案"


def _analyses(store: LayerStore) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Overlaps, life-circle scorecard and indicators, run straight through the services (not through the diff)."""
    patches = run_overlaps(store, rules=rules_for(store.catalog, LAYERS_DIR), with_marks=False)
    services = load_life_circles(default_life_circles_path(LAYERS_DIR), store.catalog)
    network = any(rule.mode == "network" for rule in services.values())
    villages, layers, population, graph = life_circle_inputs(
        store, sorted({rule.layer for rule in services.values()}), network=network
    )
    card = scorecard(
        villages,
        life_circle_coverage(villages=villages, layers=layers, population=population, graph=graph, rules=services),
    )
    indicators = compute_indicators(store, layers_dir=LAYERS_DIR).table
    return patches, card, indicators


def _same_patches(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame) -> None:
    a = left.sort_values("patch_id").reset_index(drop=True)
    b = right.sort_values("patch_id").reset_index(drop=True)
    assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals(b.geometry).all()


def _same_card(left: pd.DataFrame, right: pd.DataFrame) -> None:
    keys = ["service", "village_code"]
    assert_frame_equal(left.sort_values(keys).reset_index(drop=True), right.sort_values(keys).reset_index(drop=True))


def _same_indicators(left: pd.DataFrame, right: pd.DataFrame) -> None:
    keys = ["indicator", "scope", "scope_key"]

    def tidy(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns="as_of").sort_values(keys).reset_index(drop=True)  # as_of: when each run ran

    assert_frame_equal(tidy(left), tidy(right))


@pytest.fixture(scope="module")
def edits(demo_store_path: Path, catalog: Catalog) -> dict[str, gpd.GeoDataFrame | list[str]]:
    """Edits that move all three analyses: a project moved out of the development boundary and one with
    conflicts deleted (patches added and removed), a project renamed, two cultural facilities closed, a
    new kindergarten and the streets around the district library closed (life circles and coverage indicators;
    the scenario's walking graph is its own)."""
    live = GeoPackageStore(demo_store_path, catalog)
    try:
        patches = run_overlaps(live, rules=rules_for(catalog, LAYERS_DIR), with_marks=False)
        projects = live.read("projects")
        public = live.read("public_facilities")
        library = live.read("culture_facilities", where={"facility_id": "CF-0003"}).geometry.iloc[0]
        roads = live.read("roads", bbox=library.buffer(0.003).bounds)
    finally:
        live.close()
    conflicted = patches.loc[patches["layer_a"] == "projects", "id_a"].astype(str).value_counts().index[0]
    others = projects[projects["project_id"].astype(str) != conflicted]
    moved = others.iloc[[0]].copy()
    moved["project_id"] = "GM-2099-001"
    moved["name"] = "方案新增项目"
    moved = moved.set_geometry(moved.geometry.translate(0.01, 0.0), crs=moved.crs)
    renamed = others.iloc[[1]].copy()
    renamed["name"] = "方案中改名的项目"
    kindergarten = public[public["service"] == "kindergarten"].iloc[[0]].copy()
    kindergarten["facility_id"] = "PF-9001"
    kindergarten = kindergarten.set_geometry([shapely.Point(112.70, 22.80)], crs=kindergarten.crs)
    return {
        "projects_new": moved,
        "projects_replaced": renamed,
        "projects_deleted": [conflicted],
        "public_new": kindergarten,
        "culture_deleted": ["CF-0001", "CF-0002"],
        "roads_deleted": sorted(roads["road_id"].astype(str)),
    }


def _draft(store: LayerStore, edits: dict[str, gpd.GeoDataFrame | list[str]]) -> None:
    sc.create_scenario(store, NAME, author=WHO)
    sc.add_features(store, NAME, "projects", edits["projects_new"], actor=WHO)  # type: ignore[arg-type]
    sc.add_features(store, NAME, "projects", edits["projects_replaced"], actor=WHO, replace=True)  # type: ignore[arg-type]
    sc.remove_features(store, NAME, "projects", edits["projects_deleted"], actor=WHO)  # type: ignore[arg-type]
    sc.add_features(store, NAME, "public_facilities", edits["public_new"], actor=WHO)  # type: ignore[arg-type]
    sc.remove_features(store, NAME, "culture_facilities", edits["culture_deleted"], actor=WHO)  # type: ignore[arg-type]
    sc.remove_features(store, NAME, "roads", edits["roads_deleted"], actor=WHO)  # type: ignore[arg-type]


def _write_through_the_store(store: LayerStore, edits: dict[str, gpd.GeoDataFrame | list[str]]) -> None:
    store.write("projects", edits["projects_new"], mode="append")  # type: ignore[arg-type]
    store.update_features("projects", edits["projects_replaced"])  # type: ignore[arg-type]
    store.delete_features("projects", edits["projects_deleted"])  # type: ignore[arg-type]
    store.write("public_facilities", edits["public_new"], mode="append")  # type: ignore[arg-type]
    store.delete_features("culture_facilities", edits["culture_deleted"])  # type: ignore[arg-type]
    store.delete_features("roads", edits["roads_deleted"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def compared(
    demo_store_path: Path,
    catalog: Catalog,
    edits: dict[str, gpd.GeoDataFrame | list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ScenarioDiff, tuple, tuple]:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("scenario-diff")
    drafted, independent = folder / "drafted.gpkg", folder / "independent.gpkg"
    shutil.copy(demo_store_path, drafted)
    shutil.copy(demo_store_path, independent)
    store = GeoPackageStore(drafted, catalog)
    copy = GeoPackageStore(independent, catalog)
    original = GeoPackageStore(demo_store_path, catalog)
    try:
        _draft(store, edits)
        diff = scenario_diff(store, NAME, layers_dir=LAYERS_DIR)
        _write_through_the_store(copy, edits)
        return diff, _analyses(copy), _analyses(original)
    finally:
        for opened in (store, copy, original):
            opened.close()


def test_the_scenario_side_equals_the_analyses_of_an_edited_copy(compared: tuple) -> None:  # type: ignore[type-arg]
    diff, (patches, card, indicators), _ = compared
    _same_patches(diff.draft.patches, patches)
    _same_card(diff.draft.life_circles, card)
    _same_indicators(diff.draft.indicators, indicators)


def test_the_live_side_equals_the_analyses_of_the_untouched_store(compared: tuple) -> None:  # type: ignore[type-arg]
    diff, _, (patches, card, indicators) = compared
    _same_patches(diff.live.patches, patches)
    _same_card(diff.live.life_circles, card)
    _same_indicators(diff.live.indicators, indicators)


def test_the_changes_are_the_differences_of_the_two_sides(compared: tuple) -> None:  # type: ignore[type-arg]
    diff, (edited, edited_card, edited_indicators), (original, original_card, original_indicators) = compared
    added = set(edited["patch_id"]) - set(original["patch_id"])
    removed = set(original["patch_id"]) - set(edited["patch_id"])
    assert added and removed  # the edits were chosen to do both
    changes = diff.patches
    assert set(changes.loc[changes["change"] == "added", "patch_id"]) == added
    assert set(changes.loc[changes["change"] == "removed", "patch_id"]) == removed
    assert set(changes["change_zh"]) == {"新增", "消除"}

    keys = ["village_code", "service"]
    before = original_card.set_index(keys)["coverage_pct"]
    after = edited_card.set_index(keys)["coverage_pct"]
    coverage = diff.coverage.set_index(keys)
    assert len(coverage) == len(before) == len(after)
    expected = (after - before).round(1)
    assert (coverage["delta_pp"].reindex(expected.index) == expected).fillna(expected.isna()).all()
    lost = diff.coverage_changed()
    assert not lost.empty and set(lost["service"]) >= {"culture"}
    assert (lost.loc[lost["service"] == "culture", "delta_pp"] < 0).all()

    ikeys = ["indicator", "scope", "scope_key"]
    table = diff.indicators.set_index(ikeys)
    live_values = pd.to_numeric(original_indicators.set_index(ikeys)["value"])
    draft_values = pd.to_numeric(edited_indicators.set_index(ikeys)["value"])
    assert (table["value_live"].reindex(live_values.index) == live_values).fillna(live_values.isna()).all()
    assert (table["value_scenario"].reindex(draft_values.index) == draft_values).fillna(draft_values.isna()).all()
    moved = diff.indicators_changed()
    assert {"culture_coverage", "lc_culture"} <= set(moved["indicator"])
    row = moved[(moved["indicator"] == "culture_coverage") & (moved["scope"] == "district")].iloc[0]
    assert row["delta"] == pytest.approx(row["value_scenario"] - row["value_live"]) and row["delta"] < 0


def test_the_diff_is_written_by_suffix(compared: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    diff = compared[0]
    write_diff(diff, tmp_path / "diff.xlsx")
    sheets = pd.read_excel(tmp_path / "diff.xlsx", sheet_name=None)
    assert list(sheets) == ["冲突图斑变化", "生活圈覆盖变化", "指标变化"]
    assert len(sheets["冲突图斑变化"]) == len(diff.patches) and len(sheets["生活圈覆盖变化"]) == len(diff.coverage)
    write_diff(diff, tmp_path / "diff.geojson")
    features = gpd.read_file(tmp_path / "diff.geojson")
    assert sorted(features["patch_id"]) == sorted(diff.patches["patch_id"])
    write_diff(diff, tmp_path / "diff.csv")
    assert len(pd.read_csv(tmp_path / "diff.indicators.csv")) == len(diff.indicators)


def test_the_site_check_runs_on_a_scenario(demo_store_copy: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        farmland = store.read("basic_farmland").iloc[[0]]
        site = gpd.GeoDataFrame(
            geometry=[farmland.geometry.iloc[0].representative_point().buffer(1e-4)], crs=farmland.crs
        )
        rules = rules_for(catalog, LAYERS_DIR)
        live_report = check_site_in_store(store, site, rules=rules)
        hit_ids = {i for hit in live_report.hits for i in hit.feature_ids}
        assert str(farmland["farmland_id"].iloc[0]) in hit_ids
        sc.create_scenario(store, "s", author=WHO)
        sc.remove_features(store, "s", "basic_farmland", [str(farmland["farmland_id"].iloc[0])], actor=WHO)
        view_report = check_site_in_store(sc.open_view(store, "s"), site, rules=rules)
        assert str(farmland["farmland_id"].iloc[0]) not in {i for hit in view_report.hits for i in hit.feature_ids}
        assert view_report.data["layer_versions"]["basic_farmland"] < 0
    finally:
        store.close()


def test_a_scenario_that_closes_streets_walks_its_own_graph(
    demo_store_copy: Path, catalog: Catalog, edits: dict[str, gpd.GeoDataFrame | list[str]]
) -> None:
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        closed = edits["roads_deleted"]
        assert len(closed) >= 5
        live_graph = walk_graph_for(store)
        sc.create_scenario(store, "s", author=WHO)
        sc.remove_features(store, "s", "roads", closed, actor=WHO)  # type: ignore[arg-type]
        view = sc.open_view(store, "s")
        assert view.layer_version("roads") != store.layer_version("roads")
        graph = walk_graph_for(view)
        expected = build_walk_graph(roads=store.read("roads").query("road_id not in @closed"))
        assert graph is not live_graph and graph.n_edges == expected.n_edges < live_graph.n_edges
        assert walk_graph_for(store) is live_graph  # the live graph stays cached for the live store
    finally:
        store.close()
