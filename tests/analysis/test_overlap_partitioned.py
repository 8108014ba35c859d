"""The partitioned conflict engine: the same patches as the in-memory engine, on real dask clusters.

The reference is twofold: the in-memory `find_conflicts` (same ids, order, areas) and the plain double loop of
tests/analysis/plans.py (areas computed by shapely alone). The synthetic set is built so that most patches cross
partition boundaries: large B polygons span every partition, and the small A parcels overlap their neighbours.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster

from geoplan.analysis.overlap import PATCH_COLUMNS, OverlapSettings, find_conflicts
from geoplan.analysis.overlap_partitioned import find_conflicts_partitioned, partition_a
from geoplan.analysis.rules import ConflictRule, Exemption, layers_of
from geoplan.catalog import Catalog
from geoplan.crs import STORE_CRS
from geoplan.errors import CRSError, InputError
from geoplan.services.overlap import ADMIN_LAYERS
from geoplan.services.rule_files import rules_for
from geoplan.storage.gpkg import GeoPackageStore
from tests.plans import box, brute_force, crossing_plans, pairs_crossing_partitions, plan, rule

SETTINGS = OverlapSettings(min_area_m2=10.0, min_width_m=2.0)
PARTITIONS = 7
SPARED = Exemption("测试豁免", (("parcel_id", tuple(f"A-{i:04d}" for i in range(0, 576, 7))),), "测试依据")
RULES = [
    dataclasses.replace(rule("intersection", code="CROSS"), exempt=(SPARED,)),
    dataclasses.replace(rule("difference", code="REST"), exempt=(SPARED,)),
]


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def dask_client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A real LocalCluster (threads, not processes, to start fast) of one or two single-threaded workers."""
    with (
        LocalCluster(n_workers=request.param, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def crossing() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return crossing_plans()


def layers_of_plan(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    return {"urban_plan": a, "landuse_plan": b}


def assert_same_patches(partitioned: gpd.GeoDataFrame, in_memory: gpd.GeoDataFrame) -> None:
    """Same ids in the same order, same attributes, areas within 1e-6 (per patch, per rule, in total)."""
    assert list(partitioned.columns) == PATCH_COLUMNS
    assert partitioned.crs == in_memory.crs
    assert partitioned["patch_id"].tolist() == in_memory["patch_id"].tolist()
    assert partitioned["patch_id"].is_unique
    same = ["rule", "severity", "exempt", "exempt_basis", "layer_a", "id_a", "layer_b", "id_b", "town", "village_code"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(partitioned[same]).reset_index(drop=True), pd.DataFrame(in_memory[same]).reset_index(drop=True)
    )
    for column in ("area_m2", "area_ellipsoid_m2"):
        np.testing.assert_allclose(partitioned[column], in_memory[column], rtol=0, atol=1e-6)
        by_rule_p = partitioned.groupby("rule")[column].sum()
        by_rule_m = in_memory.groupby("rule")[column].sum()
        np.testing.assert_allclose(by_rule_p.to_numpy(), by_rule_m.reindex(by_rule_p.index).to_numpy(), atol=1e-6)
        assert partitioned[column].sum() == pytest.approx(in_memory[column].sum(), abs=1e-6)
    assert shapely.equals_exact(partitioned.geometry.to_numpy(), in_memory.geometry.to_numpy(), tolerance=1e-12).all()


# --------------------------------------------------------------------------------------------- synthetic set


def test_partitioned_equals_in_memory_and_the_double_loop(
    dask_client: Client, catalog: Catalog, crossing: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    a, b = crossing
    layers = layers_of_plan(a, b)
    in_memory = find_conflicts(layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS)
    partitioned = find_conflicts_partitioned(
        layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS, client=dask_client, partitions=PARTITIONS
    )
    assert len(in_memory) > 500  # a set worth comparing
    assert_same_patches(partitioned, in_memory)
    for relation, code in (("intersection", "CROSS"), ("difference", "REST")):
        expected = brute_force(a, b, relation, min_area=SETTINGS.min_area_m2, min_width=SETTINGS.min_width_m)
        got = partitioned[partitioned["rule"] == code]
        found = {(r.id_a, r.id_b): r.area_m2 for r in got.itertuples()}
        assert set(found) == set(expected)
        for key, area in expected.items():
            assert found[key] == pytest.approx(area, rel=1e-6, abs=1e-6)


def test_patches_crossing_partition_boundaries_are_neither_lost_nor_doubled(
    dask_client: Client, catalog: Catalog, crossing: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    """A patch crosses a boundary when its B meets the A parcels of several partitions, or its A parcel reaches
    into another partition's extent. Each such (A, B) pair must come back exactly once, with its full area."""
    a, b = crossing
    bounds_a = shapely.bounds(a.geometry.to_numpy())
    runs = partition_a(bounds_a, PARTITIONS)  # the engine's own partitioning (A is already in EPSG:4547)
    assert len(runs) == PARTITIONS
    assert sorted(np.concatenate(runs).tolist()) == list(range(len(a)))  # each A in exactly one partition
    part_of = np.empty(len(a), dtype=int)
    for k, rows in enumerate(runs):
        part_of[rows] = k
    crossing_pairs = pairs_crossing_partitions(a, b, part_of)
    b_ids = b["parcel_id"].tolist()
    expected = brute_force(a, b, "intersection", min_area=SETTINGS.min_area_m2, min_width=SETTINGS.min_width_m)
    crossing_expected = {pair: area for pair, area in expected.items() if pair in crossing_pairs}
    assert len(crossing_expected) > 300  # most patches of the set cross a boundary

    partitioned = find_conflicts_partitioned(
        layers=layers_of_plan(a, b),
        catalog=catalog,
        rules=RULES[:1],
        settings=SETTINGS,
        client=dask_client,
        partitions=PARTITIONS,
    )
    counts = partitioned.groupby(["id_a", "id_b"]).size()
    for pair, area in crossing_expected.items():
        assert counts.get(pair, 0) == 1, pair  # neither lost (0) nor doubled (2+)
        row = partitioned[(partitioned["id_a"] == pair[0]) & (partitioned["id_b"] == pair[1])].iloc[0]
        assert row.area_m2 == pytest.approx(area, rel=1e-6, abs=1e-6)
    # Per large B feature, the patches summed over every partition are B ∩ (each A), by shapely alone.
    for j in range(5):
        got = partitioned.loc[partitioned["id_b"] == b_ids[j], "area_m2"].sum()
        want = sum(area for (ia, ib), area in expected.items() if ib == b_ids[j])
        assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("partitions", [1, 3, 50])
def test_the_answer_does_not_depend_on_the_number_of_partitions(
    dask_client: Client, catalog: Catalog, crossing: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], partitions: int
) -> None:
    a, b = crossing
    layers = layers_of_plan(a, b)
    in_memory = find_conflicts(layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS)
    partitioned = find_conflicts_partitioned(
        layers=layers,
        catalog=catalog,
        rules=RULES,
        settings=SETTINGS,
        client=dask_client,
        partitions=partitions,
        max_in_flight=2,
    )
    assert_same_patches(partitioned, in_memory)


def test_layers_in_the_store_crs_give_the_same_patches(
    dask_client: Client, catalog: Catalog, crossing: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    """Input in EPSG:4490: B features are picked by boxes in EPSG:4547, where the engine intersects."""
    a, b = (frame.to_crs(STORE_CRS) for frame in crossing)
    layers = layers_of_plan(a, b)
    in_memory = find_conflicts(layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS)
    partitioned = find_conflicts_partitioned(
        layers=layers, catalog=catalog, rules=RULES, settings=SETTINGS, client=dask_client, partitions=PARTITIONS
    )
    assert len(in_memory) > 500
    assert_same_patches(partitioned, in_memory)


def test_inputs_are_not_modified(
    dask_client: Client, catalog: Catalog, crossing: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]
) -> None:
    a, b = crossing
    before_a, before_b = copy.deepcopy(a), copy.deepcopy(b)
    find_conflicts_partitioned(
        layers=layers_of_plan(a, b), catalog=catalog, rules=RULES, client=dask_client, partitions=4
    )
    pd.testing.assert_frame_equal(a, before_a)
    pd.testing.assert_frame_equal(b, before_b)


# --------------------------------------------------------------------------------------------- refusals


def test_ids_duplicated_across_partitions_are_refused(dask_client: Client, catalog: Catalog) -> None:
    """Each partition alone has unique ids; the layer does not, and patch ids would collide."""
    a = plan([box(0, 0, 10, 10), box(500, 500, 510, 510)], prefix="A")
    a["parcel_id"] = ["same", "same"]
    b = plan([box(0, 0, 600, 600)], prefix="B")
    with pytest.raises(InputError, match="duplicate ids"):
        find_conflicts_partitioned(
            layers=layers_of_plan(a, b), catalog=catalog, rules=RULES, client=dask_client, partitions=2
        )


def test_the_engine_checks_apply(dask_client: Client, catalog: Catalog) -> None:
    a = plan([box(0, 0, 10, 10)], prefix="A")
    b = plan([box(0, 0, 10, 10)], prefix="B").to_crs(STORE_CRS)
    with pytest.raises(CRSError, match="mixed coordinate systems"):
        find_conflicts_partitioned(layers=layers_of_plan(a, b), catalog=catalog, rules=RULES, client=dask_client)
    with pytest.raises(InputError, match="compare a layer with itself"):
        same = [rule(layer_b="urban_plan")]
        find_conflicts_partitioned(layers=layers_of_plan(a, a), catalog=catalog, rules=same, client=dask_client)
    with pytest.raises(InputError, match="partitions"):
        find_conflicts_partitioned(
            layers=layers_of_plan(a, a), catalog=catalog, rules=RULES, client=dask_client, partitions=0
        )


def test_an_empty_a_layer_gives_the_typed_empty_result(dask_client: Client, catalog: Catalog) -> None:
    a = plan([], prefix="A")
    b = plan([box(0, 0, 10, 10)], prefix="B")
    patches = find_conflicts_partitioned(layers=layers_of_plan(a, b), catalog=catalog, rules=RULES, client=dask_client)
    assert patches.empty and list(patches.columns) == PATCH_COLUMNS and patches.crs == STORE_CRS


# --------------------------------------------------------------------------------------------- the demo


def test_demo_partitioned_equals_in_memory(dask_client: Client, catalog: Catalog, demo_store_path: Path) -> None:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        rules: list[ConflictRule] = rules_for(catalog, Path(__file__).resolve().parents[2] / "layers")
        layers = {name: store.read(name) for name in layers_of(rules)}
        towns, villages = (store.read(name) for name in ADMIN_LAYERS)
    finally:
        store.close()
    kwargs = {"layers": layers, "catalog": catalog, "rules": rules, "towns": towns, "villages": villages}
    in_memory = find_conflicts(**kwargs)  # type: ignore[arg-type]
    partitioned = find_conflicts_partitioned(**kwargs, client=dask_client, partitions=5)  # type: ignore[arg-type]
    assert len(in_memory) > 50 and in_memory["rule"].nunique() >= 4
    assert in_memory["town"].notna().any()
    assert_same_patches(partitioned, in_memory)


# --------------------------------------------------------------------------------------------- the command


def test_overlaps_partitioned_command_writes_the_same_patches_and_marks(
    demo_store_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`geoplan overlaps --partitioned` on a LocalCluster of two worker processes, held to 1 GB each."""
    from geoplan.cli import main

    monkeypatch.setenv("GEOPLAN_DASK_MEMORY_LIMIT", "1GB")
    store = ["--store", str(demo_store_copy)]
    plain, split = tmp_path / "plain.csv", tmp_path / "split.csv"
    assert main(["overlaps", *store, "-o", str(plain)]) == 0
    first = pd.read_csv(plain, dtype=str)
    chosen = first["patch_id"].iloc[len(first) // 2]
    assert main(["mark", chosen, "--status", "to_adjust", "--note", "见会议纪要", *store]) == 0
    capsys.readouterr()
    assert main(["overlaps", *store, "--partitioned", "--workers", "2", "-o", str(split)]) == 0
    printed = capsys.readouterr().out
    partitioned = pd.read_csv(split, dtype=str)
    assert partitioned.drop(columns=["mark_status", "mark_note", "mark_actor", "mark_at"]).equals(
        first.drop(columns=["mark_status", "mark_note", "mark_actor", "mark_at"])
    )
    marked = partitioned[partitioned["patch_id"] == chosen].iloc[0]
    assert (marked["mark_status"], marked["mark_note"]) == ("to_adjust", "见会议纪要")
    assert f"{len(first)} patch(es) written" in printed
