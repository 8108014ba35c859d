"""The out-of-core overlap: layers staged from a real store (GeoPackage and PostGIS), sorted by dask-geopandas,
run task by task with the patches written to disk; checked against the in-memory engine and brute force.

The reference is the in-memory `find_conflicts` over `store.read` (same ids, attributes and areas; the order is
the tasks', so rows are matched by patch id) and the plain shapely double loop of tests/analysis/plans.py. The
synthetic set is the partitioned engine's: most patches cross partition boundaries.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client

from geoplan.analysis.overlap import PATCH_COLUMNS, OverlapSettings, find_conflicts
from geoplan.analysis.rules import Exemption
from geoplan.analysis.summary import summarise
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.services.overlap import run_overlaps
from geoplan.services.overlap_out_of_core import OutOfCoreResult, id_digest, run_overlaps_out_of_core
from geoplan.services.rule_files import rules_for
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.plans import box, brute_force, crossing_plans, pairs_crossing_partitions, plan, rule

SETTINGS = OverlapSettings(min_area_m2=10.0, min_width_m=2.0)
SPARED = Exemption("测试豁免", (("parcel_id", tuple(f"A-{i:04d}" for i in range(0, 576, 7))),), "测试依据")
RULES = [
    dataclasses.replace(rule("intersection", code="CROSS"), exempt=(SPARED,)),
    dataclasses.replace(rule("difference", code="REST"), exempt=(SPARED,)),
]
PARTITION_ROWS = 40
SAME = ["rule", "severity", "exempt", "exempt_basis", "layer_a", "id_a", "layer_b", "id_b", "town", "village_code"]


def _write_plans(store: LayerStore, a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    for name, frame in (("urban_plan", a), ("landuse_plan", b)):
        frame = frame.to_crs(STORE_CRS)
        frame.geometry = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in frame.geometry]
        store.write(name, frame)


def _in_memory(store: LayerStore, catalog: Catalog) -> gpd.GeoDataFrame:
    layers = {name: store.read(name) for name in ("urban_plan", "landuse_plan")}
    return find_conflicts(layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS)


def _assert_same_patches(result: OutOfCoreResult, expected: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Same ids, attributes, areas (1e-6) and totals; returns the out-of-core patches."""
    got = result.read()
    assert list(got.columns) == list(expected.columns) == PATCH_COLUMNS
    assert got.crs == expected.crs
    assert got["patch_id"].is_unique
    assert len(got) == len(expected) == result.patches
    left = pd.DataFrame(got.set_index("patch_id").sort_index())
    right = pd.DataFrame(expected.set_index("patch_id").sort_index())
    assert left.index.tolist() == right.index.tolist()
    pd.testing.assert_frame_equal(left[SAME], right[SAME], check_dtype=False, check_index_type=False)
    np.testing.assert_allclose(left["area_m2"], right["area_m2"], rtol=0, atol=1e-6)
    assert shapely.equals_exact(left.geometry.values, right.geometry.values, tolerance=1e-9).all()
    assert result.area_m2 == pytest.approx(float(expected["area_m2"].sum()), abs=1e-6)
    assert result.id_digest == id_digest(expected["patch_id"])
    return got


def test_out_of_core_equals_in_memory_on_both_stores(
    store: LayerStore, dask_client: Client, catalog: Catalog, tmp_path: Path
) -> None:
    a, b = crossing_plans()
    _write_plans(store, a, b)
    expected = _in_memory(store, catalog)
    assert len(expected) > 500
    result = run_overlaps_out_of_core(
        store,
        rules=RULES,
        client=dask_client,
        work_dir=tmp_path / "work",
        settings=SETTINGS,
        partition_rows=PARTITION_ROWS,
        with_marks=False,
    )
    got = _assert_same_patches(result, expected)
    assert len(result.files) > 5  # written task by task, not as one frame
    assert result.input_rows == len(a) + len(b)
    # The double loop, by shapely alone.
    for relation, code in (("intersection", "CROSS"), ("difference", "REST")):
        want = brute_force(a, b, relation, min_area=SETTINGS.min_area_m2, min_width=SETTINGS.min_width_m)
        rows = got[got["rule"] == code]
        found = {(r.id_a, r.id_b): r.area_m2 for r in rows.itertuples()}
        assert set(found) == set(want)
        for key, area in want.items():
            assert found[key] == pytest.approx(area, rel=1e-6, abs=1e-6)
    # The totals a planner reads, summed from the tasks' summaries, equal those of the whole table.
    whole = summarise(expected, rules=RULES)
    pd.testing.assert_frame_equal(result.summary.by_rule, whole.by_rule, check_dtype=False)
    assert 0 < whole.exempt_patches == int(got["exempt"].sum()) < len(got)  # listed, never in a total
    pd.testing.assert_frame_equal(result.summary.exempt, whole.exempt, check_dtype=False)
    by_town = result.summary.by_town.set_index("town").sort_index()
    pd.testing.assert_frame_equal(
        by_town, whole.by_town.set_index("town").sort_index(), check_dtype=False, check_index_type=False
    )


def _gpkg(catalog: Catalog, tmp_path: Path) -> LayerStore:
    store = GeoPackageStore(tmp_path / "plans.gpkg", catalog)
    store.init()
    return store


def test_patches_crossing_partitions_come_back_once(dask_client: Client, catalog: Catalog, tmp_path: Path) -> None:
    """Partitions are read back from the staged files, so the crossing pairs are those of this very run."""
    store = _gpkg(catalog, tmp_path)
    a, b = crossing_plans()
    _write_plans(store, a, b)
    work = tmp_path / "work"
    result = run_overlaps_out_of_core(
        store,
        rules=RULES[:1],
        client=dask_client,
        work_dir=work,
        settings=SETTINGS,
        partition_rows=PARTITION_ROWS,
        with_marks=False,
    )
    files = sorted((work / "staged" / "urban_plan" / "sorted").glob("*.parquet"))
    assert len(files) == -(-len(a) // PARTITION_ROWS)
    partition_of = {pid: k for k, path in enumerate(files) for pid in pd.read_parquet(path)["parcel_id"]}
    assert sorted(partition_of) == sorted(a["parcel_id"])  # every A parcel in exactly one partition
    part_of = np.array([partition_of[pid] for pid in a["parcel_id"]])
    crossing = pairs_crossing_partitions(a, b, part_of)
    want = brute_force(a, b, "intersection", min_area=SETTINGS.min_area_m2, min_width=SETTINGS.min_width_m)
    crossing_want = {pair: area for pair, area in want.items() if pair in crossing}
    assert len(crossing_want) > 300
    got = result.read()
    counts = got.groupby(["id_a", "id_b"]).size()
    areas = got.set_index(["id_a", "id_b"])["area_m2"]
    for pair, area in crossing_want.items():
        assert counts.get(pair, 0) == 1, pair  # neither lost (0) nor doubled (2+)
        assert areas.loc[pair] == pytest.approx(area, rel=1e-6, abs=1e-6)


def test_no_task_reads_more_than_its_neighbourhood(dask_client: Client, catalog: Catalog, tmp_path: Path) -> None:
    """What bounds a worker's memory: each task reads its A partition and the few B partitions near it, a small
    share of the input, and the answer is still the whole layer's."""
    rng = np.random.default_rng(3)
    cells = [(i * 40.0, j * 40.0) for i in range(50) for j in range(50)]  # 2,500 parcels a layer, 2 km square
    shapes_a = [box(x, y, x + rng.uniform(35, 50), y + rng.uniform(35, 50)) for x, y in cells]
    shapes_b = [box(x + 20, y + 20, x + rng.uniform(50, 65), y + rng.uniform(50, 65)) for x, y in cells]
    order = rng.permutation(len(shapes_b))  # the store order is not the spatial order
    a = plan(shapes_a, prefix="A")
    b = plan([shapes_b[i] for i in order], prefix="B")
    store = _gpkg(catalog, tmp_path)
    _write_plans(store, a, b)
    expected = _in_memory(store, catalog)
    result = run_overlaps_out_of_core(
        store,
        rules=RULES,
        client=dask_client,
        work_dir=tmp_path / "w",
        settings=SETTINGS,
        partition_rows=50,
        with_marks=False,
    )
    _assert_same_patches(result, expected)
    assert result.largest_task_rows <= 0.2 * result.input_rows
    assert result.worker_peak_mb and all(peak > 0 for peak in result.worker_peak_mb.values())


def test_layers_without_features_and_empty_partitions(dask_client: Client, catalog: Catalog, tmp_path: Path) -> None:
    store = _gpkg(catalog, tmp_path)
    a, b = crossing_plans()
    _write_plans(store, a.iloc[:0], b)
    result = run_overlaps_out_of_core(store, rules=RULES, client=dask_client, work_dir=tmp_path / "w1")
    assert result.patches == 0 and result.files == () and result.summary.by_rule["patches"].tolist() == [0, 0]
    with pytest.raises(InputError, match="no patches"):
        result.read()
    _write_plans(store, a.iloc[:3], b.iloc[:0])  # no B at all: the difference rule keeps each A whole
    result = run_overlaps_out_of_core(
        store, rules=RULES, client=dask_client, work_dir=tmp_path / "w2", partition_rows=1, with_marks=False
    )
    got = result.read()
    assert set(got["rule"]) == {"REST"} and len(got) == 3
    np.testing.assert_allclose(sorted(got["area_m2"]), sorted(a.iloc[:3].to_crs(METRIC_CRS).area), rtol=1e-9)


def test_the_engine_checks_run_before_anything_is_staged(dask_client: Client, catalog: Catalog, tmp_path: Path) -> None:
    store = _gpkg(catalog, tmp_path)
    bad = [rule("intersection", code="BAD", filter_a=(("no_such_column", (True,)),))]
    with pytest.raises(InputError, match="no_such_column"):
        run_overlaps_out_of_core(store, rules=bad, client=dask_client, work_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------------------------- the CLI


def test_cli_out_of_core_writes_the_demo_patches_with_their_marks(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two worker processes with a memory limit, the demo's rules and a planner's mark: the GeoPackage written
    task by task holds the in-memory run's patches, mark included."""
    store_option = ["--store", str(demo_store_copy)]
    first = tmp_path / "first.gpkg"
    assert main(["overlaps", *store_option, "-o", str(first)]) == 0
    target = gpd.read_file(first)["patch_id"].iloc[0]
    assert main(["mark", target, "--status", "accepted", "--note", "已核", *store_option]) == 0
    out = tmp_path / "ooc.gpkg"
    capsys.readouterr()
    argv = ["overlaps", *store_option, "--partitioned", "--out-of-core", "--workers", "2", "-o", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GEOPLAN_DASK_MEMORY_LIMIT", "1GB")
        assert main([*argv, "--work-dir", str(tmp_path / "work")]) == 0
    printed = capsys.readouterr().out
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        rules = rules_for(catalog, LAYERS_DIR)
        direct = run_overlaps(store, rules=rules)
    finally:
        store.close()
    written = gpd.read_file(out)
    assert sorted(written["patch_id"]) == sorted(direct["patch_id"])
    assert written.set_index("patch_id").loc[target, "mark_status"] == "accepted"
    assert f"{len(direct):,} patch(es)" in printed and f"id digest {id_digest(direct['patch_id'])}" in printed
    counted = direct[~direct["exempt"].astype(bool)]
    for code, total in counted.groupby("rule")["area_m2"].sum().items():
        assert f"{total:,.1f}" in printed, code
    assert sorted(written.loc[written["exempt"].astype(bool), "patch_id"]) == sorted(
        direct.loc[direct["exempt"].astype(bool), "patch_id"]
    )
    exempt = direct[direct["exempt"].astype(bool)]
    assert f"{len(exempt):,} patch(es), {exempt['area_m2'].sum():,.1f} m²" in printed
    peaks = printed.split("workers ", 1)[1].split(" MB", 1)[0]
    assert all(0 < float(value.replace(",", "")) < 1000 for value in peaks.split(", "))  # under the 1 GB limit


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--out-of-core"], "go with --partitioned"),
        (["--partitioned", "--work-dir", "w"], "go with --out-of-core"),
        (["--partitioned", "--partition-rows", "50"], "go with --out-of-core"),
        (["--partitioned", "--out-of-core", "--partition-rows", "0"], "at least 1"),
        (["--partitioned", "--out-of-core", "-o", "patches.csv"], ".gpkg file only"),
    ],
)
def test_cli_refuses_out_of_core_misuse(
    demo_store_path: Path, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["overlaps", *arguments, "--store", str(demo_store_path)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
