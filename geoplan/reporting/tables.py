"""The tables the dashboard and the quarterly report show, from the indicator service's tidy table (never
recomputed here): one summary line per indicator (its headline value, target and state), every row with its
change since an earlier snapshot, the per-town comparison and the history over the snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from geoplan.monitoring.indicator_defs import IndicatorDef
from geoplan.reporting.formatting import met_or_none, note_text, number_or_none, value_text

__all__ = [
    "HistoryRow",
    "IndicatorSummary",
    "TownTable",
    "history_rows",
    "summaries",
    "town_order",
    "town_table",
    "with_change",
]

State = Literal["met", "missed", "partial", "no_target", "no_data"]
STATE_LABELS: dict[str, str] = {
    "met": "达标",
    "missed": "未达标",
    "partial": "部分达标",
    "no_target": "无目标（监测）",
    "no_data": "无数据",
}


def with_change(table: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The tidy table plus `previous_value` (the same indicator, scope and key in `previous`, a snapshot's rows)
    and `change` (value − previous_value; NaN where either is missing)."""
    out = table.copy()
    if previous is None or previous.empty:
        out["previous_value"] = math.nan
    else:
        before = {
            (str(i), str(s), str(k)): number_or_none(v)
            for i, s, k, v in zip(
                previous["indicator"], previous["scope"], previous["scope_key"], previous["value"], strict=True
            )
        }
        out["previous_value"] = [
            before.get((str(i), str(s), str(k)))
            for i, s, k in zip(out["indicator"], out["scope"], out["scope_key"], strict=True)
        ]
    out["previous_value"] = pd.to_numeric(out["previous_value"], errors="coerce").astype("float64")
    out["change"] = out["value"].astype("float64") - out["previous_value"]
    return out


@dataclass(frozen=True)
class IndicatorSummary:
    """One indicator at a glance: the district row (its headline), how many rows meet their target, its change."""

    definition: IndicatorDef
    headline: bool
    """Whether the indicator has a district row (its value); without one, see its rows."""
    value: float | None
    target: float | None
    target_op: str
    target_year: int | None
    target_met: bool | None
    note: str
    rows: int
    met: int
    missed: int
    previous_value: float | None
    change: float | None
    warnings: int
    state: State

    @property
    def value_label(self) -> str:
        """The headline value as text, or where to look instead."""
        if not self.headline:
            return "见分项" if self.rows else "无数据"
        return value_text(self.value, self.definition.unit)

    @property
    def state_label(self) -> str:
        if self.state == "partial":
            return f"部分达标（{self.met}/{self.met + self.missed}）"
        return STATE_LABELS[self.state]


def summaries(
    table: pd.DataFrame, definitions: Sequence[IndicatorDef], *, year: int, warnings: pd.DataFrame | None = None
) -> list[IndicatorSummary]:
    """One summary per definition, in file order. The headline is the district row; an indicator without one
    (e.g. libraries per town) is judged on all its rows: met when every row with a target meets it. `year` is
    the (local) year of the moment: it decides which target applies."""
    if "change" not in table.columns:
        table = with_change(table, None)
    out = []
    for definition in definitions:
        rows = table[table["indicator"] == definition.id]
        district = rows[rows["scope"] == "district"]
        head = district.iloc[0] if len(district) else None
        states = [met_or_none(m) for m in rows["target_met"]]
        met, missed = states.count(True), states.count(False)
        value = number_or_none(head["value"]) if head is not None else None
        head_met = met_or_none(head["target_met"]) if head is not None else None
        state: State
        if head is not None and value is None:
            state = "no_data"
        elif head_met is not None:
            state = "met" if head_met else "missed"
        elif head is None and met + missed:
            state = "met" if not missed else ("missed" if not met else "partial")
        elif not definition.targets:
            state = "no_target"
        else:
            state = "no_data"
        applying = definition.target_for(year)
        count = 0
        if warnings is not None and len(warnings):
            count = int((warnings["indicator"] == definition.id).sum())
        out.append(
            IndicatorSummary(
                definition=definition,
                headline=head is not None,
                value=value,
                target=None if applying is None else applying.value,
                target_op="" if applying is None else applying.comparison,
                target_year=None if applying is None else applying.year,
                target_met=head_met,
                note="" if head is None else str(head["note"] or ""),
                rows=len(rows),
                met=met,
                missed=missed,
                previous_value=number_or_none(head["previous_value"]) if head is not None else None,
                change=number_or_none(head["change"]) if head is not None else None,
                warnings=count,
                state=state,
            )
        )
    return out


def town_order(towns: pd.DataFrame | None) -> list[str]:
    """The towns layer's order (towns, then the special units), for tables and charts."""
    if towns is None or "town_name" not in towns.columns:
        return []
    return [str(t) for t in towns["town_name"]]


@dataclass(frozen=True)
class TownTable:
    """Towns as rows, the indicators reported per town as columns; a cell is (value, target met, note)."""

    indicators: tuple[IndicatorDef, ...]
    towns: tuple[str, ...]
    cells: dict[tuple[str, str], tuple[float | None, bool | None, str]]

    def cell(self, town: str, indicator: str) -> tuple[float | None, bool | None, str]:
        return self.cells.get((town, indicator), (None, None, "—"))


def town_table(table: pd.DataFrame, definitions: Sequence[IndicatorDef], *, order: Sequence[str] = ()) -> TownTable:
    chosen = tuple(d for d in definitions if "town" in d.scopes)
    rows = table[(table["scope"] == "town") & table["indicator"].isin([d.id for d in chosen])]
    cells: dict[tuple[str, str], tuple[float | None, bool | None, str]] = {}
    towns: list[str] = []
    for record in rows.to_dict("records"):
        town = str(record["scope_key"])
        if town not in towns:
            towns.append(town)
        cells[(town, str(record["indicator"]))] = (
            number_or_none(record["value"]),
            met_or_none(record["target_met"]),
            note_text(record["note"]),
        )
    rank = {name: i for i, name in enumerate(order)}
    seen = {town: i for i, town in enumerate(towns)}
    towns.sort(key=lambda t: (rank.get(t, len(rank)), seen[t]))
    present = tuple(d for d in chosen if any(key[1] == d.id for key in cells))
    return TownTable(indicators=present, towns=tuple(towns), cells=cells)


@dataclass(frozen=True)
class HistoryRow:
    """One indicator row (district, or each key when the indicator has no district row) over the snapshots."""

    definition: IndicatorDef
    scope_key: str
    values: tuple[float | None, ...]


def history_rows(
    history: pd.DataFrame, definitions: Sequence[IndicatorDef], snapshot_ids: Sequence[int]
) -> list[HistoryRow]:
    """`history` holds the snapshots' rows (snapshot_id, indicator, scope, scope_key, value)."""
    out = []
    for definition in definitions:
        rows = history[history["indicator"] == definition.id]
        district = rows[rows["scope"] == "district"]
        chosen = district if len(district) else rows
        values = {
            (int(s), str(k)): number_or_none(v)
            for s, k, v in zip(chosen["snapshot_id"], chosen["scope_key"], chosen["value"], strict=True)
        }
        keys = list(dict.fromkeys(str(k) for k in chosen["scope_key"])) or [""]
        for key in keys:
            out.append(HistoryRow(definition, key, tuple(values.get((sid, key)) for sid in snapshot_ids)))
    return out
