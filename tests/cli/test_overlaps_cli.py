"""`geoplan overlaps` and `geoplan mark` end to end on the Gaoming demo store (the session's; marks go to a copy)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import yaml

from geoplan.analysis.overlap import PATCH_COLUMNS
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.services.overlap import run_overlaps
from geoplan.services.rule_files import DEFAULT_RULES_FILE, rules_for
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR


def test_overlaps_prints_every_rule_and_writes_the_patches(
    demo_store_path: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "patches.gpkg"
    capsys.readouterr()
    assert main(["overlaps", "--store", str(demo_store_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    rules = rules_for(catalog, LAYERS_DIR)
    for rule in rules:
        assert rule.code in printed
    for town in ("荷城街道", "杨和镇", "明城镇", "更合镇"):
        assert town in printed
    written = gpd.read_file(out)
    assert written.crs == "EPSG:4490"
    assert list(written.columns) == [
        *PATCH_COLUMNS[:-1],
        "mark_status",
        "mark_note",
        "mark_actor",
        "mark_at",
        "geometry",
    ]
    assert set(written["rule"]) == {r.code for r in rules}
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        direct = run_overlaps(store, rules=rules)
    finally:
        store.close()
    assert sorted(written["patch_id"]) == sorted(direct["patch_id"])
    assert f"{len(direct)} patch(es) written" in printed
    counted = direct[~direct["exempt"].astype(bool)]
    totals = counted.groupby("rule")["area_m2"].sum()
    for code, total in totals.items():
        assert f"{total:,.1f}" in printed, code
    # The exempt patches (roads, villages… outside the development boundary) have a line of their own.
    exempt = direct[direct["exempt"].astype(bool)]
    assert len(exempt) > 0
    line = next(text for text in printed.splitlines() if text.startswith("豁免 exempt"))
    assert f"{len(exempt):,} patch(es), {exempt['area_m2'].sum():,.1f} m²" in line
    # High first, then medium, then low; within one severity the largest first.
    rank = written["severity"].map({"high": 0, "medium": 1, "low": 2}).to_numpy()
    assert (rank[1:] >= rank[:-1]).all()
    for _, group in written.groupby("severity"):
        assert group["area_m2"].is_monotonic_decreasing


def test_thresholds_change_the_patches(demo_store_path: Path, tmp_path: Path) -> None:
    loose, strict = tmp_path / "loose.csv", tmp_path / "strict.geojson"
    store = ["--store", str(demo_store_path)]
    assert main(["overlaps", *store, "--min-area", "0", "--min-width", "0", "-o", str(loose)]) == 0
    assert main(["overlaps", *store, "--min-area", "5000", "-o", str(strict)]) == 0
    many = pd.read_csv(loose, encoding="utf-8-sig")
    few = gpd.read_file(strict)
    assert len(many) > len(few) > 0
    assert (few["area_m2"] >= 5000).all()
    assert set(few["patch_id"]) <= set(many["patch_id"])  # same pairs, same ids, whatever the thresholds


def test_mark_then_rerun_keeps_the_mark(
    demo_store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, store = tmp_path / "first.gpkg", ["--store", str(demo_store_copy)]
    assert main(["overlaps", *store, "-o", str(first)]) == 0
    patches = gpd.read_file(first)
    target = patches.loc[patches["rule"] == "FARMLAND_PROJECT", "patch_id"].iloc[0]
    assert main(["mark", target, "--status", "to_adjust", "--note", "核减占用农田", *store]) == 0
    assert f"patch {target} (FARMLAND_PROJECT) marked to_adjust" in capsys.readouterr().out
    again = tmp_path / "again.gpkg"
    assert main(["overlaps", *store, "-o", str(again)]) == 0
    marked = gpd.read_file(again).set_index("patch_id")
    assert marked.loc[target, "mark_status"] == "to_adjust"
    assert marked.loc[target, "mark_note"] == "核减占用农田"
    assert marked.drop(index=target)["mark_status"].isna().all()


@pytest.mark.parametrize(
    "arguments",
    [
        ["mark", "0123456789abcdef", "--status", "accepted"],  # no such patch
        ["mark", "not-an-id", "--status", "accepted"],
        ["overlaps", "--min-area", "-1"],
        ["overlaps", "--rules", "/nonexistent/rules.yaml"],
        ["overlaps", "-o", "patches.txt"],
    ],
)
def test_bad_input_exits_2_with_one_line(
    demo_store_copy: Path, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*arguments, "--store", str(demo_store_copy)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error:") and "Traceback" not in message


def test_a_bad_status_is_refused(demo_store_copy: Path, demo_store_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        target = run_overlaps(store, rules=rules_for(catalog, LAYERS_DIR), with_marks=False)["patch_id"].iloc[0]
    finally:
        store.close()
    assert main(["mark", target, "--status", "done", "--store", str(demo_store_copy)]) == 2


def test_a_user_rules_file_with_a_mistake_exits_2(
    demo_store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((LAYERS_DIR / DEFAULT_RULES_FILE).read_text(encoding="utf-8"))
    raw["rules"][3]["filter_b"] = {"construction": "否"}
    rules = tmp_path / "mine.yaml"
    rules.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert main(["overlaps", "--rules", str(rules), "--store", str(demo_store_copy)]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml" in err and "URBAN_ON_NONCONSTRUCTION" in err and "boolean field" in err


def test_a_missing_store_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.gpkg"
    assert main(["overlaps", "--store", str(missing)]) == 2
    assert main(["mark", "0123456789abcdef", "--status", "accepted", "--store", str(missing)]) == 2
    assert not missing.exists()
