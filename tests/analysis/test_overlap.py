"""The conflict engine: known answers by hand, a brute-force double loop, geopandas.overlay, stable ids, marks."""

from __future__ import annotations

import copy
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geoplan.analysis.overlap import PATCH_COLUMNS, OverlapSettings, find_conflicts, patch_id
from geoplan.analysis.summary import NO_TOWN, summarise
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, ellipsoidal_area_m2
from geoplan.errors import CRSError, InputError
from geoplan.services.overlap import run_overlaps
from geoplan.services.overlap_marks import mark_registry
from geoplan.storage.gpkg import GeoPackageStore
from tests.plans import box, brute_force, overlay_peer, plan, random_shapes, rule

NO_SLIVER_RULE = OverlapSettings(min_area_m2=0.0, min_width_m=0.0)


def run(
    catalog: Catalog,
    a: gpd.GeoDataFrame,
    b: gpd.GeoDataFrame,
    *rules: object,
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008
    **kwargs: object,
) -> gpd.GeoDataFrame:
    chosen = list(rules) or [rule()]
    return find_conflicts(
        layers={"urban_plan": a, "landuse_plan": b},
        catalog=catalog,
        rules=chosen,  # type: ignore[arg-type]
        settings=settings,
        **kwargs,  # type: ignore[arg-type]
    )


def metric_area(geometry: object) -> float:
    return float(gpd.GeoSeries([geometry], crs=STORE_CRS).to_crs(METRIC_CRS).area.iloc[0])


# --------------------------------------------------------------------------------------------- known answers


def test_two_squares_overlapping_by_a_known_area(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(50, 60, 150, 160)], prefix="B")
    patches = run(catalog, a, b)
    assert list(patches.columns) == PATCH_COLUMNS
    assert len(patches) == 1
    row = patches.iloc[0]
    assert (row.rule, row.layer_a, row.id_a, row.layer_b, row.id_b) == (
        "T",
        "urban_plan",
        "A-0000",
        "landuse_plan",
        "B-0000",
    )
    assert row.area_m2 == pytest.approx(50 * 40, rel=1e-9)
    assert patches.crs == STORE_CRS and row.geometry.geom_type == "MultiPolygon"
    assert metric_area(row.geometry) == pytest.approx(2000, rel=1e-6)  # the stored geometry is the patch
    assert row.area_ellipsoid_m2 == pytest.approx(ellipsoidal_area_m2([row.geometry])[0], rel=1e-6)
    assert row.area_ellipsoid_m2 != pytest.approx(row.area_m2, rel=1e-5)  # Gauss-Krüger scale is not 1 here
    assert row.patch_id == patch_id("T", "urban_plan", "A-0000", "landuse_plan", "B-0000")


def test_a_strip_narrower_than_min_width_is_dropped_though_its_area_is_large(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(99, 0, 200, 100)], prefix="B")  # overlap: 1 m x 100 m = 100 m²
    assert run(catalog, a, b).empty
    kept = run(catalog, a, b, settings=OverlapSettings(min_area_m2=10, min_width_m=0.5))
    assert kept["area_m2"].tolist() == pytest.approx([100.0])


def test_a_crumb_smaller_than_min_area_is_dropped_though_it_is_wide(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(97, 97, 200, 200)], prefix="B")  # overlap: 3 m x 3 m = 9 m², 3 m wide
    assert run(catalog, a, b).empty
    kept = run(catalog, a, b, settings=OverlapSettings(min_area_m2=5, min_width_m=2))
    assert kept["area_m2"].tolist() == pytest.approx([9.0])


@pytest.mark.parametrize(
    ("overlap", "kept"),
    [
        ((97.5, 96, 200, 200), True),  # 2.5 m x 4 m = 10 m² exactly: not smaller than 10 m², kept
        ((97.5, 96.1, 200, 200), False),  # 2.5 m x 3.9 m = 9.75 m²
        ((97.95, 0, 200, 200), True),  # a 2.05 m strip: 2 m wide somewhere, kept
        ((98.05, 0, 200, 200), False),  # a 1.95 m strip
        ((98, 0, 200, 200), False),  # exactly 2 m: buffer(part, -1 m) is empty, so it is not wider than 2 m
    ],
)
def test_the_thresholds_themselves(catalog: Catalog, overlap: tuple[float, float, float, float], kept: bool) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(*overlap)], prefix="B")
    assert len(run(catalog, a, b)) == int(kept)


def test_only_the_parts_of_a_patch_that_survive_count(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    # A U-shape: a 40 x 100 block inside A plus an arm that re-enters A as a 1 m strip along its top.
    u_shape = shapely.union_all(
        [box(-20, 0, 40, 100), box(-20, 100, 200, 130), box(150, 0, 200, 130), box(60, 99, 200, 100)]
    )
    b = plan([u_shape], prefix="B")
    patches = run(catalog, a, b)
    assert patches["area_m2"].tolist() == pytest.approx([40 * 100])
    assert len(patches.geometry.iloc[0].geoms) == 1
    both = run(catalog, a, b, settings=NO_SLIVER_RULE)
    assert both["area_m2"].tolist() == pytest.approx([40 * 100 + 40 * 1])


def test_difference_rule_subtracts_the_union_of_the_b_features(catalog: Catalog) -> None:
    a = plan(
        [
            box(0, 0, 100, 100),  # B covers 0..90 (two overlapping features): 10 x 100 left
            box(200, 0, 300, 100),  # inside one B feature: nothing left
            box(500, 0, 540, 50),  # far from every B: all of it
            box(0, 300, 100, 400),  # B covers all but a 1 m strip: a sliver, dropped
        ],
        prefix="A",
    )
    b = plan([box(0, 0, 60, 100), box(50, 0, 90, 100), box(190, -10, 310, 110), box(1, 290, 110, 410)], prefix="B")
    patches = run(catalog, a, b, rule("difference"))
    assert patches["id_a"].tolist() == ["A-0000", "A-0002"]
    assert patches["id_b"].tolist() == [None, None]
    assert patches["area_m2"].tolist() == pytest.approx([1000.0, 2000.0], rel=1e-9)
    assert patches["patch_id"].tolist() == [
        patch_id("T", "urban_plan", f"A-000{i}", "landuse_plan", None) for i in (0, 2)
    ]


def test_filters_choose_the_features_that_take_part(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100), box(200, 0, 300, 100)], prefix="A", construction=[True, False])
    b = plan([box(0, 0, 300, 100)] * 2, prefix="B", construction=[False, True])
    chosen = rule(filter_a=(("construction", (True,)),), filter_b=(("construction", (False,)),))
    patches = run(catalog, a, b, chosen)
    assert list(zip(patches["id_a"], patches["id_b"], strict=True)) == [("A-0000", "B-0000")]


def test_patches_are_placed_in_their_town_and_village(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100), box(1000, 0, 1100, 100)], prefix="A")
    b = plan([box(0, 0, 1100, 100)], prefix="B")
    towns = gpd.GeoDataFrame({"town_name": ["荷城街道"]}, geometry=[box(-10, -10, 500, 500)], crs=METRIC_CRS)
    villages = gpd.GeoDataFrame(
        {"village_code": ["440608004001", "440608004002"]},
        geometry=[box(-10, -10, 200, 500), box(900, 70, 1200, 500)],  # the second holds only a corner of patch 2
        crs=METRIC_CRS,
    )
    patches = run(catalog, a, b, towns=towns, villages=villages)
    assert patches["town"].tolist() == ["荷城街道", None]
    assert patches["village_code"].tolist() == ["440608004001", None]
    summary = summarise(patches, rules=[rule(), rule(code="NONE")])
    assert summary.by_rule[["rule", "patches"]].values.tolist() == [["T", 2], ["NONE", 0]]
    assert summary.by_rule["area_m2"].tolist() == pytest.approx([20_000.0, 0.0])
    by_town = summary.by_town.set_index("town")
    assert by_town.loc["荷城街道", "patches"] == 1 and by_town.loc[NO_TOWN, "patches"] == 1
    assert by_town.loc[NO_TOWN, "area_m2"] == pytest.approx(10_000.0)
    assert by_town["medium"].sum() == 2 and by_town["high"].sum() == 0


# --------------------------------------------------------------------------------------------- references


@pytest.fixture(scope="module")
def random_plans() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return plan(random_shapes(90, seed=1), prefix="A"), plan(random_shapes(90, seed=2), prefix="B")


@pytest.mark.parametrize("relation", ["intersection", "difference"])
@pytest.mark.parametrize(
    "settings", [OverlapSettings(), OverlapSettings(min_area_m2=25, min_width_m=4), NO_SLIVER_RULE]
)
def test_engine_matches_a_brute_force_double_loop(
    catalog: Catalog,
    random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame],
    relation: str,
    settings: OverlapSettings,
) -> None:
    a, b = random_plans
    patches = run(catalog, a, b, rule(relation), settings=settings)  # type: ignore[arg-type]
    expected = brute_force(a, b, relation, min_area=settings.min_area_m2, min_width=settings.min_width_m)  # type: ignore[arg-type]
    found = {(r.id_a, r.id_b): r.area_m2 for r in patches.itertuples()}
    assert len(expected) > 40  # the random layers really do overlap
    assert set(found) == set(expected)
    for key, area in expected.items():
        assert found[key] == pytest.approx(area, rel=1e-9), key
    assert patches["patch_id"].is_unique


def test_engine_matches_geopandas_overlay_under_the_same_sliver_rule(
    catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    a, b = random_plans
    settings = OverlapSettings()
    patches = run(catalog, a, b, settings=settings)
    expected = overlay_peer(a, b, min_area=settings.min_area_m2, min_width=settings.min_width_m)
    found = {(r.id_a, r.id_b): r.area_m2 for r in patches.itertuples()}
    assert set(found) == set(expected)
    assert sum(found.values()) == pytest.approx(sum(expected.values()), rel=1e-9)
    for key, area in expected.items():
        assert found[key] == pytest.approx(area, rel=1e-9), key


def test_ellipsoidal_areas_agree_with_pyproj_geod(
    catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    patches = run(catalog, *random_plans)
    geod = ellipsoidal_area_m2(patches.geometry.to_numpy())
    assert patches["area_ellipsoid_m2"].to_numpy() == pytest.approx(geod, rel=1e-6, abs=1e-3)


def test_one_or_two_workers_give_the_same_patches(
    catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    one = run(catalog, *random_plans, rule(), rule("difference", code="D"), workers=1)
    two = run(catalog, *random_plans, rule(), rule("difference", code="D"), workers=2)
    pd.testing.assert_frame_equal(one.drop(columns="geometry"), two.drop(columns="geometry"))
    assert shapely.equals_exact(one.geometry.to_numpy(), two.geometry.to_numpy(), tolerance=0).all()


# --------------------------------------------------------------------------------------------- stable ids


def test_patch_ids_are_stable_when_another_feature_moves(
    catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    a, b = random_plans
    rules = [rule(), rule("difference", code="D")]
    before = run(catalog, a, b, *rules)
    moved_id = before["id_a"].value_counts().index[0]  # the A feature in the most patches
    moved = a.copy()
    where = moved["parcel_id"] == moved_id
    moved.loc[where, "geometry"] = moved.loc[where].geometry.translate(35, -20)
    # Shuffled rows too: ids must not depend on row order.
    after = run(catalog, moved.sample(frac=1, random_state=3), b.sample(frac=1, random_state=4), *rules)
    untouched_before = before[before["id_a"] != moved_id].set_index("patch_id").sort_index()
    untouched_after = after[after["id_a"] != moved_id].set_index("patch_id").sort_index()
    assert len(untouched_before) > 50
    assert untouched_before.index.equals(untouched_after.index)
    cols = ["rule", "id_a", "id_b"]
    pd.testing.assert_frame_equal(untouched_before[cols], untouched_after[cols])
    assert untouched_after["area_m2"].to_numpy() == pytest.approx(untouched_before["area_m2"].to_numpy(), rel=1e-12)
    changed = set(before.loc[before["id_a"] == moved_id, "id_b"]) ^ set(after.loc[after["id_a"] == moved_id, "id_b"])
    assert changed  # the moved feature really meets other features now


def test_same_inputs_give_the_same_ids(
    catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    first = run(catalog, *random_plans)
    second = run(catalog, *random_plans)
    assert first["patch_id"].tolist() == second["patch_id"].tolist()
    assert len(set(first["patch_id"])) == len(first)


def test_marks_survive_a_rerun_after_an_edit(catalog: Catalog, tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path / "marks.gpkg", catalog)
    store.init()
    a = plan([box(0, 0, 100, 100), box(300, 0, 400, 100)], prefix="UP", crs=METRIC_CRS).to_crs(STORE_CRS)
    b = plan([box(50, 0, 350, 100)], prefix="LU", crs=METRIC_CRS).to_crs(STORE_CRS)
    a["geometry"] = shapely.multipolygons(a.geometry.to_numpy()[:, None])
    b["geometry"] = shapely.multipolygons(b.geometry.to_numpy()[:, None])
    store.write("urban_plan", a)
    store.write("landuse_plan", b)
    rules = [rule()]
    try:
        first = run_overlaps(store, rules=rules)
        assert len(first) == 2 and first["mark_status"].isna().all()
        target = first.loc[first["id_a"] == "UP-0000", "patch_id"].iloc[0]
        registry = mark_registry(store)
        try:
            registry.mark(target, rule="T", status="to_adjust", note="红线需核实", actor="planner-1")
            registry.mark(target, rule="T", status="accepted", note="经论证予以保留", actor="planner-2")
        finally:
            registry.close()
        edited = a[a["parcel_id"] == "UP-0001"].copy()
        edited["geometry"] = edited.geometry.translate(-0.0003, 0)  # move the other parcel ~30 m west
        store.update_features("urban_plan", edited)
        second = run_overlaps(store, rules=rules)
        row = second.set_index("patch_id").loc[target]
        assert (row.mark_status, row.mark_note, row.mark_actor) == ("accepted", "经论证予以保留", "planner-2")
        other = second[second["patch_id"] != target]
        assert len(other) == 1 and other["mark_status"].isna().all()
        assert other["area_m2"].iloc[0] != pytest.approx(first.loc[first["patch_id"] != target, "area_m2"].iloc[0])
        registry = mark_registry(store)
        try:
            assert [m.status for m in registry.history(target)] == ["to_adjust", "accepted"]
        finally:
            registry.close()
    finally:
        store.close()


# --------------------------------------------------------------------------------------------- contract


def test_inputs_are_not_modified(catalog: Catalog, random_plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    a, b = random_plans
    towns = gpd.GeoDataFrame({"town_name": ["t"]}, geometry=[box(0, 0, 300, 300)], crs=METRIC_CRS)
    snapshot = [copy.deepcopy(f) for f in (a, b, towns)]
    run(catalog, a, b, rule(), rule("difference", code="D"), towns=towns)
    for before, after in zip(snapshot, (a, b, towns), strict=True):
        pd.testing.assert_frame_equal(before.drop(columns="geometry"), after.drop(columns="geometry"))
        assert shapely.equals_exact(before.geometry.to_numpy(), after.geometry.to_numpy(), tolerance=0).all()
        assert after.crs == before.crs
        assert not shapely.is_prepared(after.geometry.to_numpy()).any()


def test_mixed_crss_are_refused(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(0, 0, 100, 100)], prefix="B").to_crs(STORE_CRS)
    with pytest.raises(CRSError, match="mixed coordinate systems"):
        run(catalog, a, b)
    towns = gpd.GeoDataFrame({"town_name": ["t"]}, geometry=[box(0, 0, 1, 1)], crs=STORE_CRS)
    with pytest.raises(CRSError, match="mixed"):
        run(catalog, a, a, towns=towns)
    with pytest.raises(CRSError, match="no CRS"):
        run(catalog, a, b.set_crs(None, allow_override=True))


def test_inputs_in_the_store_crs_give_the_same_patches(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A")
    b = plan([box(50, 60, 150, 160)], prefix="B")
    metric = run(catalog, a, b)
    stored = run(catalog, a.to_crs(STORE_CRS), b.to_crs(STORE_CRS))
    assert stored["area_m2"].to_numpy() == pytest.approx(metric["area_m2"].to_numpy(), rel=1e-7)
    assert stored["patch_id"].tolist() == metric["patch_id"].tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, b: ({"urban_plan": a}, {}), "not given"),
        (lambda a, b: ({"urban_plan": a.assign(parcel_id="same"), "landuse_plan": b}, {}), "duplicate ids"),
        (lambda a, b: ({"urban_plan": a.assign(parcel_id=None), "landuse_plan": b}, {}), "without an id"),
        (lambda a, b: ({"urban_plan": a.drop(columns="parcel_id"), "landuse_plan": b}, {}), "no id column"),
        (lambda a, b: ({"urban_plan": a, "landuse_plan": b}, {"workers": 0}), "workers"),
        (lambda a, b: ({"urban_plan": a, "landuse_plan": pd.DataFrame(b)}, {}), "GeoDataFrame"),
    ],
)
def test_bad_inputs_are_refused(catalog: Catalog, change: object, message: str) -> None:
    a = plan([box(0, 0, 100, 100), box(200, 0, 300, 100)], prefix="A")
    b = plan([box(0, 0, 100, 100)], prefix="B")
    layers, extra = change(a, b)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        find_conflicts(layers=layers, catalog=catalog, rules=[rule()], **extra)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True])
def test_bad_settings_are_refused(value: float) -> None:
    with pytest.raises(InputError):
        OverlapSettings(min_area_m2=value)
    with pytest.raises(InputError):
        OverlapSettings(min_width_m=value)


def test_empty_inputs_give_an_empty_table_with_every_column(catalog: Catalog) -> None:
    a = plan([box(0, 0, 100, 100)], prefix="A").iloc[:0]
    b = plan([box(0, 0, 100, 100)], prefix="B")
    for rules in ([rule()], [rule("difference")], []):
        patches = run(catalog, a, b, *rules) if rules else find_conflicts(layers={}, catalog=catalog, rules=[])
        assert patches.empty and list(patches.columns) == PATCH_COLUMNS
        assert patches.crs == STORE_CRS
    summary = summarise(run(catalog, a, b), rules=[rule()])
    assert summary.by_rule["patches"].tolist() == [0] and summary.by_town.empty


def test_an_invalid_input_polygon_is_repaired_not_fatal(catalog: Catalog) -> None:
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    a = plan([shapely.affinity.translate(bowtie, 360_000, 2_526_000)], prefix="A")
    b = plan([box(0, 0, 100, 100)], prefix="B")
    patches = run(catalog, a, b)
    assert patches["area_m2"].tolist() == pytest.approx([5000.0])
    assert not shapely.is_valid(a.geometry.iloc[0])  # the caller's geometry is left as it was
