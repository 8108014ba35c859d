"""What the dashboard and the quarterly report chart, as plain data (`Chart`), built from the indicator service's
tidy table and the snapshot history. One set of charts, several drawings: `svg_charts` draws them as SVG (the
dashboard and the HTML report), `report_mpl` with matplotlib (the PDF and the workbook's images) and
`report_xlsx` as native spreadsheet charts.

Charts pick their indicators by kind and scope, not by id, so a renamed or added indicator in
layers/indicators.yaml is charted without code: progress per task area is the `project_count` indicator over
all projects with a `task_area_status` scope; coverage and the sponge-city share per town are the
`cultural_coverage` and `sponge_share` indicators' town rows, drawn against every target of the definition
(20 % by 2020 and 80 % by 2030 for the sponge city); a trend is one indicator over the snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from geoplan.monitoring.indicator_defs import IndicatorDef
from geoplan.reporting.formatting import met_or_none, number_or_none

__all__ = [
    "Chart",
    "Series",
    "TargetLine",
    "overview_charts",
    "progress_chart",
    "snapshot_label",
    "town_chart",
    "trend_chart",
    "trend_charts",
]

ChartKind = Literal["bars", "stacked", "lines"]
MET_COLOUR, MISSED_COLOUR, PLAIN_COLOUR, NO_DATA_COLOUR = "#1a9641", "#d7191c", "#2c7fb8", "#bdbdbd"
STATUS_COLOURS = {"前期": "#bdbdbd", "已开工": "#9ecae1", "在建": "#3182bd", "已完工": "#1a9641", "暂缓": "#fd8d3c"}
PALETTE = ("#2c7fb8", "#d95f0e", "#1a9641", "#756bb1", "#e7298a", "#66a61e", "#a6761d", "#666666")
MAX_TREND_SERIES = 8
KEY_SEPARATOR = "|"
"""Two-level scope keys ("任务领域|状态") join their parts with this (geoplan.monitoring.indicators)."""


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]
    colour: str
    met: tuple[bool | None, ...] = ()
    """Per value, whether it meets its target (bars are coloured by it when given)."""


@dataclass(frozen=True)
class TargetLine:
    value: float
    label: str
    applies: bool
    """The target that applies at the moment charted (drawn stronger than the others)."""


@dataclass(frozen=True)
class Chart:
    id: str
    kind: ChartKind
    title: str
    unit: str
    categories: tuple[str, ...]
    """Bar labels (bars, stacked) or x-axis labels (lines)."""
    series: tuple[Series, ...]
    targets: tuple[TargetLine, ...] = ()
    indicator: str = ""
    note: str = ""

    @property
    def empty(self) -> bool:
        return not self.categories or all(v is None for s in self.series for v in s.values)


def target_lines(definition: IndicatorDef, year: int) -> tuple[TargetLine, ...]:
    """Every target of the definition; the one that applies in `year` is marked."""
    applying = definition.target_for(year)
    lines = []
    for target in definition.targets:
        when = f"（{target.year}）" if target.year is not None else ""
        unit = "" if definition.unit == "%" else " "
        symbol = {">=": "≥", "<=": "≤"}.get(target.comparison, target.comparison)
        label = f"目标 {symbol} {target.value:g}{unit}{definition.unit}{when}"
        lines.append(TargetLine(value=target.value, label=label, applies=target == applying))
    return tuple(lines)


def _ordered(keys: Sequence[str], order: Sequence[str]) -> list[str]:
    """`keys` in the order of `order` (e.g. the towns layer), the others after them as they came."""
    rank = {name: i for i, name in enumerate(order)}
    seen = {key: i for i, key in enumerate(keys)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), seen[k]))


def _rows(table: pd.DataFrame, indicator: str, scope: str) -> pd.DataFrame:
    return table[(table["indicator"] == indicator) & (table["scope"] == scope)]


def _find(definitions: Sequence[IndicatorDef], kind: str, scope: str, *, all_projects: bool = False) -> IndicatorDef:
    for definition in definitions:
        if definition.kind == kind and scope in definition.scopes:
            if all_projects and "statuses" in definition.params:
                continue
            return definition
    raise LookupError(f"no indicator of kind {kind} with scope {scope}")


def progress_chart(table: pd.DataFrame, definitions: Sequence[IndicatorDef]) -> Chart | None:
    """Projects per task area, stacked by status (the ledger's status as of the moment)."""
    try:
        definition = _find(definitions, "project_count", "task_area_status", all_projects=True)
    except LookupError:
        return None
    rows = _rows(table, definition.id, "task_area_status")
    areas: list[str] = []
    statuses: list[str] = []
    counts: dict[tuple[str, str], float | None] = {}
    for key, value in zip(rows["scope_key"], rows["value"], strict=True):
        area, _, status = str(key).partition(KEY_SEPARATOR)
        if area not in areas:
            areas.append(area)
        if status not in statuses:
            statuses.append(status)
        counts[(area, status)] = number_or_none(value)
    series = tuple(
        Series(
            name=status,
            values=tuple(counts.get((area, status)) for area in areas),
            colour=STATUS_COLOURS.get(status, PALETTE[i % len(PALETTE)]),
        )
        for i, status in enumerate(statuses)
    )
    return Chart(
        id="progress",
        kind="stacked",
        title="各任务领域项目进展（按状态）",
        unit=definition.unit,
        categories=tuple(areas),
        series=series,
        indicator=definition.id,
        note=f"{definition.title_zh}；状态取项目台账截至本季度的最新进度记录。",
    )


def town_chart(
    table: pd.DataFrame, definition: IndicatorDef, *, chart_id: str, title: str, year: int, towns: Sequence[str] = ()
) -> Chart:
    """One indicator's town rows as bars, coloured by whether each meets the target, with every target drawn."""
    rows = _rows(table, definition.id, "town")
    by_key = {
        str(k): (number_or_none(v), met_or_none(m))
        for k, v, m in zip(rows["scope_key"], rows["value"], rows["target_met"], strict=True)
    }
    keys = _ordered(list(by_key), towns)
    return Chart(
        id=chart_id,
        kind="bars",
        title=title,
        unit=definition.unit,
        categories=tuple(keys),
        series=(
            Series(
                name=definition.title_zh,
                values=tuple(by_key[k][0] for k in keys),
                colour=PLAIN_COLOUR,
                met=tuple(by_key[k][1] for k in keys) if definition.targets else (),
            ),
        ),
        targets=target_lines(definition, year),
        indicator=definition.id,
        note=definition.title_zh,
    )


def overview_charts(
    table: pd.DataFrame, definitions: Sequence[IndicatorDef], *, year: int, towns: Sequence[str] = ()
) -> list[Chart]:
    """Progress per task area, coverage per town, the sponge-city share per town (those the definitions hold)."""
    charts: list[Chart] = []
    progress = progress_chart(table, definitions)
    if progress is not None:
        charts.append(progress)
    for kind, chart_id, title in (
        ("cultural_coverage", "coverage", "各镇街十分钟文化圈人口覆盖率"),
        ("sponge_share", "sponge", "各镇街建成区海绵城市达标面积占比"),
    ):
        try:
            definition = _find(definitions, kind, "town")
        except LookupError:
            continue
        charts.append(town_chart(table, definition, chart_id=chart_id, title=title, year=year, towns=towns))
    return charts


def snapshot_label(snapshot_id: int, quarter: str) -> str:
    return f"{quarter} #{snapshot_id}"


def trend_chart(
    definition: IndicatorDef, history: pd.DataFrame, snapshots: Sequence[tuple[int, str]], *, year: int
) -> Chart:
    """One indicator over the snapshots: the district line, or one line per scope key (the first
    MAX_TREND_SERIES) when the indicator has no district row. `history` holds the snapshots' rows (columns
    snapshot_id, indicator, scope, scope_key, value); `snapshots` is (id, quarter), oldest first."""
    rows = history[history["indicator"] == definition.id]
    district = rows[rows["scope"] == "district"]
    chosen = district if len(district) else rows
    keys: list[str] = []
    for key in chosen["scope_key"].astype(str):
        if key not in keys:
            keys.append(key)
    keys = keys[:MAX_TREND_SERIES]
    values = {
        (int(s), str(k)): number_or_none(v)
        for s, k, v in zip(chosen["snapshot_id"], chosen["scope_key"], chosen["value"], strict=True)
    }
    series = tuple(
        Series(
            name=key or "全区",
            values=tuple(values.get((sid, key)) for sid, _ in snapshots),
            colour=PALETTE[i % len(PALETTE)],
        )
        for i, key in enumerate(keys)
    )
    return Chart(
        id=f"trend-{definition.id}",
        kind="lines",
        title=definition.title_zh,
        unit=definition.unit,
        categories=tuple(snapshot_label(sid, quarter) for sid, quarter in snapshots),
        series=series,
        targets=target_lines(definition, year),
        indicator=definition.id,
    )


def trend_charts(
    definitions: Sequence[IndicatorDef], history: pd.DataFrame, snapshots: Sequence[tuple[int, str]], *, year: int
) -> list[Chart]:
    """Every indicator's trend over the snapshots, in definition order."""
    return [trend_chart(d, history, snapshots, year=year) for d in definitions]
