"""Synthetic quarterly progress of the demo projects over the plan's three years, 2018Q1–2020Q4.

Each project walks the status flow (layers/rules/project_status.yaml) one quarter at a time: planning
(前期), started (已开工), under construction (在建) with progress growing at its own pace, completed (已完工)
at 100 %; a few are suspended (暂缓) for a while and resume, some stay suspended, some fall behind their end
year (overdue). Progress and investment to date never fall. The layer's status and progress are the last
record's, so the layer and the ledger agree. Everything here is SYNTHETIC and every record says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geoplan.monitoring.ledger_quarters import Quarter

PLAN_FIRST, PLAN_LAST = Quarter(2018, 1), Quarter(2020, 4)
RECORDED_BY = "geoplan demo"
PLANNED, STARTED, BUILDING, DONE, SUSPENDED = "前期", "已开工", "在建", "已完工", "暂缓"
PROGRESS_SPEC = (
    ("project_id", "string"),
    ("quarter", "string"),
    ("progress_pct", "float"),
    ("investment_to_date_wan", "float"),
    ("problems", "string"),
    ("responsible_unit", "string"),
    ("status", "string"),
    ("previous_status", "string"),
    ("previous_progress_pct", "float"),
    ("note", "string"),
    ("recorded_by", "string"),
    ("recorded_at", "string"),
    ("synthetic", "boolean"),
)


@dataclass
class Trajectory:
    """One project's years and its quarterly records; `status`/`progress` are the state at the end."""

    start_year: int
    end_year: int
    status: str = PLANNED
    progress: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)


def simulate(
    *, project_id: str, unit: str, invest: float, held_up: bool, held_up_note: str, rng: np.random.Generator
) -> Trajectory:
    """A plausible path through the plan years for one project (`held_up`: blocked by a planning conflict)."""
    if held_up:
        start = int(rng.integers(2019, 2021))
        path = Trajectory(start, min(start + 1, 2021))
    else:
        start = int(rng.choice([2018, 2019, 2020, 2021], p=[0.45, 0.3, 0.17, 0.08]))
        path = Trajectory(start, min(start + int(rng.choice([0, 1, 2], p=[0.2, 0.5, 0.3])), 2022))
    if start > PLAN_LAST.year:  # starts after the plan period: still planning, nothing recorded yet
        path.progress = round(float(rng.uniform(0, 5)), 1)
        return path
    first = Quarter(start, int(rng.integers(1, 3)))
    planned_quarters = max(2, Quarter.last_of(path.end_year).index - first.index + 1)
    pace = 100.0 / planned_quarters * float(rng.uniform(0.7, 1.5))  # below 1: the project falls behind
    planning_quarters = int(rng.integers(1, 3))
    suspend_at = int(rng.integers(2, 9)) if rng.random() < 0.15 else -1
    suspend_for = int(rng.integers(1, 4)) if rng.random() < 0.7 else 99
    spent = 0.0
    quarter, step = first, 0
    while quarter <= PLAN_LAST:
        before_status, before_progress = path.status, path.progress
        problems: list[str] = []
        if held_up:
            if path.status == PLANNED and step >= 2 and rng.random() < 0.5:
                path.status = SUSPENDED
            elif path.status == PLANNED:
                path.progress = min(8.0, round(path.progress + float(rng.uniform(0, 1.5)), 1))
            problems.append(held_up_note)
        elif path.status == PLANNED:
            path.progress = min(8.0, round(path.progress + float(rng.uniform(0.5, 3)), 1))
            if step + 1 >= planning_quarters:
                path.status = STARTED
                path.progress = round(path.progress + float(rng.uniform(2, 6)), 1)
        elif path.status == STARTED:
            path.status = BUILDING
            path.progress = round(min(99.0, path.progress + pace * float(rng.uniform(0.6, 1.2))), 1)
        elif path.status == SUSPENDED:
            if step >= suspend_at + suspend_for:
                path.status = BUILDING
            else:
                problems.append(str(rng.choice(["征地拆迁未完成，项目暂缓", "资金未落实，项目暂缓"])))
        elif path.status == BUILDING:
            if step == suspend_at:
                path.status = SUSPENDED
                problems.append("征地拆迁未完成，项目暂缓")
            else:
                gained = path.progress + pace * float(rng.uniform(0.7, 1.3))
                if gained >= 100.0:
                    path.status, path.progress = DONE, 100.0
                else:
                    path.progress = round(gained, 1)
        expected = 100.0 * (quarter.index - first.index + 1) / planned_quarters
        if path.status in (STARTED, BUILDING) and path.progress < expected - 15.0:
            problems.append("进度滞后于年度计划")
        spent = max(spent, round(invest * path.progress / 100.0 * float(rng.uniform(0.85, 1.0)), 1))
        path.records.append(
            {
                "project_id": project_id,
                "quarter": str(quarter),
                "progress_pct": path.progress,
                "investment_to_date_wan": spent,
                "problems": "；".join(problems),
                "responsible_unit": unit,
                "status": path.status,
                "previous_status": before_status,
                "previous_progress_pct": before_progress,
                "note": "",
                "recorded_by": RECORDED_BY,
                "recorded_at": _report_day(quarter),
                "synthetic": True,
            }
        )
        if path.status == DONE:
            break
        quarter, step = quarter.next(), step + 1
    return path


def _report_day(quarter: Quarter) -> str:
    """Synthetic: the 10th of the month after the quarter, when quarterly reports are due."""
    after = quarter.next()
    return f"{after.year}-{(after.q - 1) * 3 + 1:02d}-10T02:00:00+00:00"
