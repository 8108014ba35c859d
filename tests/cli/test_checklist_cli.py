"""`geoplan checklist items | show | record` end to end on the Gaoming demo store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from geoplan.cli import main


def _latest(path: Path, item: str, quarter: str) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        records = pd.read_sql(
            "SELECT id, village_code, quarter, state FROM geoplan_village_checklist WHERE item = ? AND quarter <= ?",
            connection,
            params=(item, quarter),
        )
    latest = records.sort_values(["quarter", "id"]).groupby("village_code").tail(1)
    return dict(zip(latest["village_code"], latest["state"], strict=True))


def test_show_writes_one_item_per_village(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "roads.csv"
    capsys.readouterr()
    assert (
        main(
            [
                "checklist",
                "show",
                "roads_hardened",
                "--quarter",
                "2018Q3",
                "-o",
                str(out),
                "--store",
                str(demo_store_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "全区" in printed
    written = pd.read_csv(out, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    expected = _latest(demo_store_path, "roads_hardened", "2018Q3")
    assert len(written) == len(expected) == 77
    assert dict(zip(written["village_code"], written["state"], strict=True)) == expected
    done = sum(state == "已完成" for state in expected.values())
    assert f"{100 * done / 77:.2f}" in printed


def test_record_then_show_and_bad_records_exit_2(demo_store_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", str(demo_store_copy)]
    code = "440608106205"  # 清泰村委会
    args = ["checklist", "record", code, "--item", "five_good", "--quarter", "2020Q4", "--actor", "张工"]
    assert main([*args, "--state", "已完成", *store]) == 2
    assert "is not one of 未创建, 创建中, 已达标" in capsys.readouterr().err
    assert main([*args[:2], "440608400498", *args[3:], "--state", "已达标", *store]) == 2  # 高明监狱虚拟社区
    assert "virtual unit" in capsys.readouterr().err
    assert main([*args, "--state", "已达标", *store]) == 0
    assert main(["checklist", "show", "five_good", "--quarter", "2020Q4", "--town", "杨和镇", *store]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if code in line)
    assert "已达标" in row and "2020Q4" in row
