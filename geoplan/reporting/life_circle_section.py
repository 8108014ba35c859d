"""The 公共服务生活圈 section of the dashboard and the quarterly report: one row per life-circle indicator (a
service's population coverage, or a circle's completeness), its district value and each town's, with its
target and change since the previous snapshot, and the services' district values over the snapshots.

The life-circle indicators are many (one per service), so they get this table of their own instead of a column
each in the town comparison (which would run off an A4 page) and one trend chart for all instead of one each.
Everything is read from the indicator service's tidy table and the snapshot history, never recomputed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from geoplan.monitoring.indicator_defs import IndicatorDef
from geoplan.reporting.charts import Chart, Series, snapshot_label
from geoplan.reporting.formatting import met_or_none, note_text, number_or_none

__all__ = [
    "GROUP_TITLE",
    "LIFE_CIRCLE_KINDS",
    "NOTES",
    "LifeCircleRow",
    "LifeCircleTable",
    "is_life_circle",
    "legend_name",
    "life_circle_table",
    "life_circle_trends",
]

GROUP_TITLE = "公共服务生活圈"
LIFE_CIRCLE_KINDS = frozenset({"life_circle_coverage", "life_circle_completeness"})
DISTRICT_LABEL = "全区"
NOTES = (
    "人口覆盖率 = 服务半径内人口 / 人口，各村（社区）按整人计；",
    "半径见 layers/rules/life_circles.yaml（城镇社区按 GB 50180-2018 附录C 引用、原文待核，村为假定值）。",
    "服务齐全 = 同一居民可达该生活圈（5、10 或 15 分钟）的每一项服务。",
    "虚拟单位（监狱、农林场）只计入全区，不作为镇街。",
)
"""What the section's figures mean, as every format states it under the table."""
TREND_PALETTE = (
    "#2c7fb8",
    "#d95f0e",
    "#1a9641",
    "#756bb1",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#666666",
    "#e6ab02",
    "#1b9e77",
    "#7570b3",
    "#d73027",
)
"""Enough distinct colours for every service of the bundled rules on one chart."""


def is_life_circle(definition: IndicatorDef) -> bool:
    return definition.kind in LIFE_CIRCLE_KINDS


Cell = tuple[float | None, bool | None, str]
"""(value, target met, note)."""


@dataclass(frozen=True)
class LifeCircleRow:
    definition: IndicatorDef
    district: Cell
    towns: tuple[Cell, ...]
    change: float | None
    """District value minus the previous snapshot's (None without one)."""


@dataclass(frozen=True)
class LifeCircleTable:
    towns: tuple[str, ...]
    rows: tuple[LifeCircleRow, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (DISTRICT_LABEL, *self.towns)

    def __bool__(self) -> bool:
        return bool(self.rows)


def _cell(record: Mapping[Hashable, Any] | None) -> Cell:
    if record is None:
        return (None, None, "—")
    return (number_or_none(record["value"]), met_or_none(record["target_met"]), note_text(record["note"]))


def life_circle_table(
    table: pd.DataFrame, definitions: Sequence[IndicatorDef], *, order: Sequence[str] = ()
) -> LifeCircleTable:
    """The life-circle indicators in file order; towns in the towns layer's order (virtual units are never
    towns: the kinds give them no town row)."""
    chosen = [d for d in definitions if is_life_circle(d)]
    rows = table[table["indicator"].isin([d.id for d in chosen])]
    records = {(str(r["indicator"]), str(r["scope"]), str(r["scope_key"])): r for r in rows.to_dict("records")}
    present = list(dict.fromkeys(str(k) for s, k in zip(rows["scope"], rows["scope_key"], strict=True) if s == "town"))
    rank = {name: i for i, name in enumerate(order)}
    seen = {town: i for i, town in enumerate(present)}
    towns = tuple(sorted(present, key=lambda t: (rank.get(t, len(rank)), seen[t])))
    out = []
    for definition in chosen:
        head = records.get((definition.id, "district", ""))
        change = None
        if head is not None and "change" in head:
            change = number_or_none(head["change"])
        out.append(
            LifeCircleRow(
                definition=definition,
                district=_cell(head),
                towns=tuple(_cell(records.get((definition.id, "town", t))) for t in towns),
                change=change,
            )
        )
    return LifeCircleTable(towns=towns, rows=tuple(out))


_LEGEND_SUFFIXES = ("服务齐全人口占比", "服务半径覆盖率", "步行覆盖率")


def legend_name(title: str) -> str:
    """A title without the words the chart's own title says (幼儿园5分钟步行覆盖率 -> 幼儿园5分钟)."""
    for suffix in _LEGEND_SUFFIXES:
        if title.endswith(suffix) and len(title) > len(suffix):
            return title[: -len(suffix)]
    return title


def _trend(
    chart_id: str,
    title: str,
    chosen: Sequence[IndicatorDef],
    history: pd.DataFrame,
    snapshots: Sequence[tuple[int, str]],
) -> Chart | None:
    if not chosen:
        return None
    district = history[(history["scope"] == "district") & history["indicator"].isin([d.id for d in chosen])]
    values = {
        (str(i), int(s)): number_or_none(v)
        for i, s, v in zip(district["indicator"], district["snapshot_id"], district["value"], strict=True)
    }
    series = tuple(
        Series(
            name=legend_name(d.title_zh),
            values=tuple(values.get((d.id, sid)) for sid, _ in snapshots),
            colour=TREND_PALETTE[i % len(TREND_PALETTE)],
        )
        for i, d in enumerate(chosen)
    )
    return Chart(
        id=chart_id,
        kind="lines",
        title=title,
        unit="%",
        categories=tuple(snapshot_label(sid, quarter) for sid, quarter in snapshots),
        series=series,
        indicator=",".join(d.id for d in chosen),
        note="全区值；各镇街见公共服务生活圈表。",
    )


def life_circle_trends(
    definitions: Sequence[IndicatorDef], history: pd.DataFrame, snapshots: Sequence[tuple[int, str]]
) -> list[Chart]:
    """Two charts over the snapshots: every service's district coverage, and the completeness per circle."""
    charts = [
        _trend(
            "trend-life-circle-coverage",
            "公共服务生活圈人口覆盖率（全区）",
            [d for d in definitions if d.kind == "life_circle_coverage"],
            history,
            snapshots,
        ),
        _trend(
            "trend-life-circle-completeness",
            "生活圈服务齐全人口占比（全区）",
            [d for d in definitions if d.kind == "life_circle_completeness"],
            history,
            snapshots,
        ),
    ]
    return [c for c in charts if c is not None]
