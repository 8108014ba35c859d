"""The demo's village checklist records (镇村发展现代化), 2017Q3–2020Q4. SYNTHETIC.

Every village and community (virtual units are not villages here) gets a baseline record per item in 2017Q3;
each item not achieved then is achieved in a random later quarter (or not within the period), recorded in that
quarter. 五好村居 goes through 创建中 first. Communities start better off than villages, so the shares rise
over the period from plausible starting points. Records are dated within their quarter (the 20th of its last
month), so a quarter's records are known at its end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geoplan.monitoring.ledger_quarters import Quarter, quarter_range

__all__ = ["FIRST", "LAST", "RECORDED_BY", "village_checklist_records"]

FIRST, LAST = Quarter(2017, 3), Quarter(2020, 4)
RECORDED_BY = "演示数据（合成）"
NOTE = "示意数据（演示用合成记录）"
# item: (its states, the share achieved at the start for villages / communities, the chance to be achieved
# by the end of the period for the others)
ITEMS: dict[str, tuple[tuple[str, ...], float, float, float]] = {
    "five_good": (("未创建", "创建中", "已达标"), 0.0, 0.0, 0.75),
    "toilets": (("未完成", "已完成"), 0.35, 0.8, 0.95),
    "roads_hardened": (("未完成", "已完成"), 0.55, 0.95, 0.9),
    "refuse_collection": (("未覆盖", "已覆盖"), 0.6, 1.0, 0.97),
    "service_station": (("未建", "已建"), 0.5, 0.85, 0.9),
    "culture_centre": (("未建", "已建"), 0.4, 0.8, 0.85),
}


def _recorded_at(quarter: Quarter) -> str:
    """Synthetic: the 20th of the quarter's last month, 10:00 Beijing time."""
    return f"{quarter.year}-{3 * quarter.q:02d}-20T02:00:00+00:00"


def village_checklist_records(villages: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The records of every non-virtual village and item (columns of `village_checklist_store.CHECKLIST_FIELDS`)."""
    quarters = quarter_range(FIRST, LAST)
    rows = []

    def add(code: str, quarter: Quarter, item: str, state: str) -> None:
        rows.append(
            {
                "village_code": code,
                "quarter": str(quarter),
                "item": item,
                "state": state,
                "note": NOTE,
                "recorded_by": RECORDED_BY,
                "recorded_at": _recorded_at(quarter),
                "synthetic": True,
            }
        )

    units = villages[villages["type"].astype(str) != "virtual"]
    for code, kind in zip(units["village_code"].astype(str), units["type"].astype(str), strict=True):
        for item, (states, village_start, community_start, later) in ITEMS.items():
            start = community_start if kind == "community" else village_start
            if rng.random() < start:
                add(code, FIRST, item, states[-1])
                continue
            add(code, FIRST, item, states[0])
            if rng.random() >= later:
                continue
            done = 1 + int(rng.integers(len(quarters) - 1))
            if len(states) == 3:
                begun = max(1, done - int(rng.integers(1, 5)))
                if begun < done:
                    add(code, quarters[begun], item, states[1])
            add(code, quarters[done], item, states[-1])
    return pd.DataFrame(rows)
