"""Project outcomes at the plan's end (`monitoring.project_outcomes`) on hand-made ledgers, one project per case:
each outcome, the stalled flag beside it, corrections (a later record of the same quarter counts), and the
counts per task area adding up."""

from __future__ import annotations

import pandas as pd
import pytest

from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.project_outcomes import OUTCOMES, outcome_counts, project_outcomes

EVALUATED = Quarter(2020, 4)


def _ledger(rows: list[tuple[str, str, int, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["project_id", "task_area", "start_year", "end_year", "status", "progress_pct"]
    ).assign(name=lambda f: "项目" + f["project_id"])


def _records(rows: list[tuple[int, str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "project_id", "quarter", "progress_pct", "status"])


LEDGER = _ledger(
    [
        ("on-time", "甲", 2018, 2019, "已完工", 100.0),
        ("late-done", "甲", 2018, 2019, "已完工", 100.0),
        ("late", "乙", 2018, 2020, "在建", 80.0),
        ("late-stalled", "乙", 2018, 2019, "暂缓", 40.0),
        ("not-started", "乙", 2021, 2022, "前期", 0.0),
        ("moving", "丙", 2019, 2021, "在建", 60.0),
        ("stalled", "丙", 2019, 2021, "在建", 50.0),
    ]
)
RECORDS = _records(
    [
        (1, "on-time", "2019Q3", 100.0, "已完工"),
        (2, "late-done", "2019Q4", 90.0, "在建"),
        (3, "late-done", "2020Q2", 100.0, "已完工"),
        (4, "late", "2020Q4", 80.0, "在建"),
        (5, "late-stalled", "2020Q1", 40.0, "暂缓"),
        (6, "late-stalled", "2020Q4", 40.0, "暂缓"),
        (7, "moving", "2020Q2", 40.0, "在建"),
        (8, "moving", "2020Q4", 60.0, "在建"),
        (9, "stalled", "2020Q1", 50.0, "在建"),
        (10, "stalled", "2020Q2", 55.0, "在建"),  # corrected below: the same quarter, a later record
        (11, "stalled", "2020Q2", 50.0, "在建"),
        (12, "stalled", "2020Q4", 50.0, "在建"),
        (13, "on-time", "2021Q1", 100.0, "已完工"),  # after the evaluated quarter: ignored
    ]
)


def test_each_project_gets_its_outcome_and_the_stalled_flag() -> None:
    before = LEDGER.copy()
    table = project_outcomes(ledger=LEDGER, records=RECORDS, quarter=EVALUATED).set_index("project_id")
    assert table["outcome"].to_dict() == {
        "on-time": "finished_on_time",
        "late-done": "finished_late",
        "late": "late",
        "late-stalled": "late",
        "not-started": "not_started",
        "moving": "in_progress",
        "stalled": "in_progress",
    }
    assert table.loc[table["stalled"]].index.tolist() == ["late-stalled", "stalled"]
    assert table.loc["late-done", "finished_quarter"] == "2020Q2" and table.loc["late", "finished_quarter"] is None
    assert table.loc["stalled", "progress_before"] == 50.0  # the correction (record 11), not record 10
    assert set(table["outcome_zh"]) <= set(OUTCOMES.values())
    pd.testing.assert_frame_equal(LEDGER, before)  # inputs never changed


def test_counts_per_task_area_add_up() -> None:
    counts = outcome_counts(
        project_outcomes(ledger=LEDGER, records=RECORDS, quarter=EVALUATED), task_areas=["丙", "甲"]
    )
    assert list(counts.index) == ["丙", "甲", "乙", "合计"]
    assert counts.loc["乙", ["late", "not_started", "stalled", "total"]].tolist() == [2, 1, 1, 3]
    assert counts.loc["丙", ["in_progress", "stalled", "total"]].tolist() == [2, 1, 2]
    assert (counts[list(OUTCOMES)].sum(axis=1) == counts["total"]).all()
    assert counts.loc["合计", "total"] == len(LEDGER)


def test_a_stalled_window_of_zero_quarters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        project_outcomes(ledger=LEDGER, records=RECORDS, quarter=EVALUATED, stalled_quarters=0)
