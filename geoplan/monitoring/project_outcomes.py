"""How each project of the action plan ended (项目实施结果), for the plan-end evaluation: finished on time or late,
late and unfinished, not started, or still under way; and, apart from that, whether it stalled. A pure function
of the ledger as of the evaluated quarter and the progress records known by then (frames in, frames out, inputs
never changed).

Each project gets exactly one outcome, the first that holds in this order:

1. finished_on_time  completed (status completed or 100 %) in a quarter no later than its end year's Q4;
2. finished_late     completed after its end year's Q4;
3. late              not completed and the evaluated quarter is its end year's Q4 or later (the ledger's overdue);
4. not_started       still in the initial status with no progress (including projects starting after the plan);
5. in_progress       under way, not due yet.

Stalled (停滞) is a flag beside the outcome, not an outcome: a started, unfinished project whose progress at the
evaluated quarter is not above its progress STALLED_QUARTERS quarters before. A stalled project is also late or in
progress, so the per-area counts give it a column of its own ("of which stalled") and the outcomes still add up.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from geoplan.monitoring.ledger import COMPLETED_STATUS, INITIAL_STATUS
from geoplan.monitoring.ledger_quarters import Quarter

__all__ = [
    "OUTCOMES",
    "OUTCOME_COLUMNS",
    "STALLED_QUARTERS",
    "outcome_counts",
    "project_outcomes",
]

STALLED_QUARTERS = 2
"""A started project whose progress has not risen for this many quarters (half a year) is stalled (停滞)."""

OUTCOMES: dict[str, str] = {
    "finished_on_time": "按期完成",
    "finished_late": "逾期完成",
    "late": "逾期未完成",
    "not_started": "未开工",
    "in_progress": "推进中",
}
"""Every outcome and its Chinese name, in the order the report lists them."""

OUTCOME_COLUMNS = [
    "project_id",
    "name",
    "task_area",
    "start_year",
    "end_year",
    "status",
    "progress_pct",
    "finished_quarter",
    "progress_before",
    "stalled",
    "outcome",
    "outcome_zh",
]


def _finished(status: object, progress: object, completed: str) -> bool:
    return str(status) == completed or float(progress) >= 100.0  # type: ignore[arg-type]


def project_outcomes(
    *,
    ledger: pd.DataFrame,
    records: pd.DataFrame,
    quarter: Quarter,
    stalled_quarters: int = STALLED_QUARTERS,
    initial: str = INITIAL_STATUS,
    completed: str = COMPLETED_STATUS,
) -> pd.DataFrame:
    """One row per ledger project (`OUTCOME_COLUMNS`, in the ledger's order).

    `ledger` is `ledger.ledger_table` as of `quarter`; `records` the progress records known by then (columns
    project_id, quarter, progress_pct, status, record_id; superseded corrections may be included, the highest
    record id of a project's quarter counts). `finished_quarter` is the first quarter whose record says completed
    (None when unfinished, or finished without a record: then the project counts as finished on time only if
    the evaluated quarter is within its end year)."""
    if stalled_quarters < 1:
        raise ValueError("stalled_quarters must be at least 1")
    known = records[records["quarter"].astype(str) <= str(quarter)]
    latest = known.sort_values(["project_id", "quarter", "record_id"]).groupby(["project_id", "quarter"]).tail(1)
    by_project = {str(pid): group for pid, group in latest.groupby("project_id")}
    before_quarter = Quarter.from_index(quarter.index - stalled_quarters)
    rows = []
    for project in ledger.to_dict("records"):
        pid = str(project["project_id"])
        history = by_project.get(pid)
        status, progress = str(project["status"]), float(project["progress_pct"])
        due = Quarter.last_of(int(project["end_year"]))
        finished_at: Quarter | None = None
        before = 0.0
        if history is not None:
            flags = [
                _finished(s, p, completed) for s, p in zip(history["status"], history["progress_pct"], strict=True)
            ]
            done = history[flags]
            if len(done):
                finished_at = Quarter.parse(str(done["quarter"].min()))
            earlier = history[history["quarter"].astype(str) <= str(before_quarter)]
            if len(earlier):
                before = float(earlier.sort_values("quarter")["progress_pct"].iloc[-1])
        finished = _finished(status, progress, completed)
        started = status != initial or progress > 0.0
        stalled = started and not finished and progress <= before
        if finished:
            on_time = (finished_at or quarter) <= due
            outcome = "finished_on_time" if on_time else "finished_late"
        elif quarter >= due:
            outcome = "late"
        elif not started:
            outcome = "not_started"
        else:
            outcome = "in_progress"
        rows.append(
            {
                "project_id": pid,
                "name": project["name"],
                "task_area": project["task_area"],
                "start_year": int(project["start_year"]),
                "end_year": int(project["end_year"]),
                "status": status,
                "progress_pct": progress,
                "finished_quarter": None if finished_at is None else str(finished_at),
                "progress_before": before,
                "stalled": bool(stalled),
                "outcome": outcome,
                "outcome_zh": OUTCOMES[outcome],
            }
        )
    table = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    table["finished_quarter"] = table["finished_quarter"].astype(object).where(table["finished_quarter"].notna(), None)
    table["stalled"] = table["stalled"].astype(bool)
    return table


def outcome_counts(outcomes: pd.DataFrame, *, task_areas: Sequence[str] = ()) -> pd.DataFrame:
    """Projects per task area (rows, `task_areas` first in their order, then any other) and outcome (columns,
    OUTCOMES' order, zeros kept), then `stalled` (of them, how many stalled) and `total`, and a 合计 row."""
    areas = list(dict.fromkeys([*task_areas, *(str(a) for a in outcomes["task_area"])]))
    columns = [*OUTCOMES, "stalled", "total"]
    counts = {area: dict.fromkeys(columns, 0) for area in areas}
    for area, outcome, stalled in zip(
        outcomes["task_area"].astype(str), outcomes["outcome"], outcomes["stalled"], strict=True
    ):
        counts[area][str(outcome)] += 1
        counts[area]["stalled"] += int(bool(stalled))
        counts[area]["total"] += 1
    counts["合计"] = {c: sum(counts[a][c] for a in areas) for c in columns}
    table = pd.DataFrame.from_dict(counts, orient="index", columns=columns).astype("int64")
    table.index.name = "task_area"
    return table
