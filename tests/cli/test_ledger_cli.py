"""`geoplan ledger show | record | history` end to end on the Gaoming demo store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.monitoring.ledger_store import PROGRESS_LAYER
from geoplan.storage.gpkg import GeoPackageStore
from tests.monitoring.ledger_reference import independent_ledger


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_show_prints_the_ledger_as_of_the_latest_quarter(
    demo_store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["ledger", "show", "--store", str(demo_store_path)]) == 0
    printed = capsys.readouterr().out
    expected = independent_ledger(demo_store_path, "2020Q4")
    assert "project ledger as of 2020Q4" in printed
    gaps = int(expected["missing_assurances"].map(len).gt(0).sum())
    assert f"{int(expected['overdue'].sum())} overdue; {gaps} with missing assurances" in printed
    assert printed.count("OVERDUE") == int(expected["overdue"].sum())
    assert "SYNTHETIC" in printed


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_show_filters_and_writes_a_table(demo_store_path: Path, catalog: Catalog, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"ledger{suffix}"
    args = ["ledger", "show", "--quarter", "2019Q4", "--task-area", "基础设施一体化", "-o", str(out)]
    assert main([*args, "--store", str(demo_store_path)]) == 0
    if suffix == ".xlsx":
        sheet = openpyxl.load_workbook(out).active
        assert sheet is not None
        rows = list(sheet.iter_rows(values_only=True))
        written = pd.DataFrame(rows[1:], columns=rows[0])
    else:
        written = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    expected = independent_ledger(demo_store_path, "2019Q4")
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        areas = store.read("projects").set_index("project_id")["task_area"]
    finally:
        store.close()
    expected = expected[expected["project_id"].map(areas) == "基础设施一体化"].reset_index(drop=True)
    assert 3 <= len(expected) == len(written)
    assert list(written["project_id"]) == list(expected["project_id"])
    assert list(written["status"]) == list(expected["status"])
    assert [float(v) for v in written["progress_pct"]] == list(expected["progress_pct"])
    assert [str(v).lower() == "true" for v in written["overdue"]] == list(expected["overdue"])
    assert ["" if pd.isna(v) else v for v in written["missing_assurances"]] == [
        "、".join(m) for m in expected["missing_assurances"]
    ]


def test_show_only_overdue(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "overdue.csv"
    assert (
        main(["ledger", "show", "--overdue", "--quarter", "2020Q4", "-o", str(out), "--store", str(demo_store_path)])
        == 0
    )
    written = pd.read_csv(out, encoding="utf-8-sig")
    expected = independent_ledger(demo_store_path, "2020Q4")
    assert sorted(written["project_id"]) == sorted(expected.loc[expected["overdue"], "project_id"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "--quarter", "2019-4"], "invalid quarter"),
        (["show", "--task-area", "无此领域"], "unknown task area"),
        (["show", "-o", "ledger.pdf"], "write .csv, .xlsx"),
        (["history", "GM-9999-999"], "no project"),
        (["record", "GM-2024-001", "--quarter", "2021Q1", "--progress", "abc", "--actor", "王工"], "must be a number"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    demo_store_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["ledger", *args, "--store", str(demo_store_path)]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_a_missing_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--store", str(tmp_path / "nothing.gpkg")]) == 2
    assert "no store" in capsys.readouterr().err


def test_record_then_history(demo_store_copy: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        project = store.read("projects", where={"project_id": "GM-2024-001"}).iloc[0]
    finally:
        store.close()
    assert project["status"] not in ("已完工", "前期")
    target = min(100.0, float(project["progress_pct"]) + 5.0)
    refused_digest = _sha256(demo_store_copy)
    # falling progress without a note is refused and changes nothing
    fall = ["--quarter", "2021Q1", "--progress", str(float(project["progress_pct"]) - 1), "--actor", "王工"]
    assert main(["ledger", "record", "GM-2024-001", *fall, "--store", str(demo_store_copy)]) == 2
    assert _sha256(demo_store_copy) == refused_digest

    capsys.readouterr()
    args = ["--quarter", "2021Q1", "--progress", str(target), "--actor", "王工", "--problems", "雨季影响施工"]
    assert main(["ledger", "record", "GM-2024-001", *args, "--store", str(demo_store_copy)]) == 0
    assert "recorded GM-2024-001 2021Q1" in capsys.readouterr().out
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        assert float(store.read("projects", where={"project_id": "GM-2024-001"}).iloc[0]["progress_pct"]) == target
        layer_entry = store.audit_log(layer="projects", limit=1)[0]
        record_entry = store.audit_log(layer=PROGRESS_LAYER, limit=1)[0]
    finally:
        store.close()
    assert (layer_entry.actor, layer_entry.detail["ids"]) == ("cli:王工", ["GM-2024-001"])
    assert (record_entry.actor, record_entry.action) == ("cli:王工", "progress:record")

    assert main(["ledger", "history", "GM-2024-001", "--store", str(demo_store_copy)]) == 0
    printed = capsys.readouterr().out
    assert "2021Q1" in printed and "雨季影响施工" in printed and "cli:王工" in printed
    assert "2020Q4" in printed  # the synthetic history before it
