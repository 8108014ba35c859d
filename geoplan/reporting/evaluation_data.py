"""Everything the plan-end evaluation (三年行动计划实施评估) shows, gathered once: the writers (evaluation_xlsx,
evaluation_html, evaluation_pdf) only lay it out, so the three formats cannot disagree.

The evaluation reads the plan in layers/plan.yaml and describes it at a few moments, each a quarter's end:

- the plan's start (its first quarter; the first quarter the store holds data for, when that is later),
  the plan's end (`end`) and the end of its monitoring (`monitored_until`; today's quarter while that has not
  come yet) — every indicator's value at each;
- each milestone year's last quarter (capped at the monitoring's end): the indicator there against the targets
  due that year (a target without a year is due every year) — met, missed, or no target;
- the projects at the end of the monitoring: each project's outcome (`monitoring.project_outcomes`), counted per
  task area, with the names;
- the conflict patches at the start and at the end (the layers as they stood then, the same rules and sliver
  settings as the conflict indicators): resolved = the stable patch ids found at the start and gone at the end;
- culture coverage per village at the start and at the end (the quarterly report's coverage maps), and the
  change in percentage points.

Every number is the indicator service's (`compute_indicators` at those moments), the trends are the snapshots'
(the quarterly report's trend charts over the plan's snapshots), the final moment's report data is the quarterly
report's own (`gather_report`), so the evaluation says what the quarterly report of that quarter says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.summary import exempt_mask
from geoplan.beijing_time import shown_time
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf, as_of_now, as_of_quarter
from geoplan.monitoring.indicator_defs import IndicatorDef, Target
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.ledger_status import default_status_flow_path, load_status_flow
from geoplan.monitoring.plan_period import Milestone, PlanPeriod, plan_for
from geoplan.monitoring.project_outcomes import outcome_counts, project_outcomes
from geoplan.reporting.charts import Chart
from geoplan.reporting.formatting import number_or_none
from geoplan.reporting.report_data import ReportData, gather_report, map_layers
from geoplan.services.indicators import (
    IndicatorRun,
    compute_indicators,
    definitions_for,
    ledger_as_of,
    quarters_with_data,
)
from geoplan.services.overlap import conflicts_as_of
from geoplan.services.overlap_marks import STATUS_TITLES, marks_as_of
from geoplan.services.rule_files import rules_for
from geoplan.storage import LayerStore
from geoplan.storage.base import now_utc

__all__ = [
    "VERDICT_LABELS",
    "ConflictChange",
    "EvaluationData",
    "IndicatorEvaluation",
    "MilestoneVerdict",
    "gather_evaluation",
    "milestone_targets",
]

VERDICT_LABELS = {"met": "达标", "missed": "未达标", "partial": "部分达标", "no_target": "无目标", "no_data": "无数据"}
CONFLICT_STATES = {"resolved": "已化解", "remaining": "仍存在", "new": "新增"}
ALL_MARKS = ("none", "accepted", "to_adjust", "resolved")


@dataclass(frozen=True)
class MilestoneVerdict:
    milestone: Milestone
    quarter: Quarter
    """The quarter the value is taken at: the milestone year's Q4, or the monitoring's end when earlier."""
    value: float | None
    target: Target | None
    verdict: str
    """A VERDICT_LABELS key."""
    met_rows: int = 0
    judged_rows: int = 0

    @property
    def label(self) -> str:
        if self.verdict == "partial":
            return f"部分达标（{self.met_rows}/{self.judged_rows}）"
        return VERDICT_LABELS[self.verdict]


@dataclass(frozen=True)
class IndicatorEvaluation:
    definition: IndicatorDef
    headline: bool
    """Whether the indicator has a district row; without one its values are "see the rows" (见分项)."""
    values: tuple[float | None, ...]
    """The district value at each of `EvaluationData.moments`."""
    verdicts: tuple[MilestoneVerdict, ...]

    @property
    def change(self) -> float | None:
        """End of monitoring minus start (None without both)."""
        first, last = self.values[0], self.values[-1]
        return None if first is None or last is None else last - first


@dataclass(frozen=True)
class ConflictChange:
    """The conflict patches at the start and the end, by stable patch id."""

    start: gpd.GeoDataFrame
    end: gpd.GeoDataFrame
    table: pd.DataFrame
    """One row per patch id seen at either moment: patch_id, rule, rule_title, severity, town, area_ha (at the
    start for a resolved patch, else at the end), exempt, state (resolved / remaining / new), state_zh, mark (the
    planners' mark at the end, Chinese; "" when unmarked)."""

    def ids(self, state: str) -> list[str]:
        return [str(i) for i in self.table.loc[self.table["state"] == state, "patch_id"]]

    def area_ha(self, state: str, *, exempt: bool = False) -> float:
        rows = self.table[(self.table["state"] == state) & (self.table["exempt"] == exempt)]
        return float(rows["area_ha"].sum())

    def count(self, state: str, *, exempt: bool = False) -> int:
        return int(((self.table["state"] == state) & (self.table["exempt"] == exempt)).sum())

    @staticmethod
    def totals(frame: gpd.GeoDataFrame) -> tuple[int, float]:
        """(patches, hectares) of a moment's patches that count: the exempt ones are listed, not counted."""
        counted = frame[~exempt_mask(frame)]
        return len(counted), float(counted["area_m2"].sum()) / 10_000.0


@dataclass(frozen=True)
class EvaluationData:
    plan: PlanPeriod
    moments: tuple[tuple[str, AsOf], ...]
    """(label, moment) of the value columns: 计划起点, 计划期末, 评估截至."""
    indicators: tuple[IndicatorEvaluation, ...]
    milestones: tuple[tuple[Milestone, Quarter], ...]
    outcomes: pd.DataFrame
    """`project_outcomes.OUTCOME_COLUMNS`: every project at the end of the monitoring."""
    outcome_counts: pd.DataFrame
    """`project_outcomes.outcome_counts`: task areas × outcomes, with stalled, total and a 合计 row."""
    conflicts: ConflictChange
    villages: gpd.GeoDataFrame
    """Villages (as at the end) with coverage_start, coverage_end and change_pp (percentage points)."""
    start_layers: dict[str, gpd.GeoDataFrame]
    final: ReportData
    """The quarterly report's data of the final quarter: its trends, snapshots, layers and synthetic notes."""
    generated_at: str
    notes: tuple[str, ...] = ()
    rule_titles: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.plan.title_zh}实施评估"

    @property
    def start(self) -> AsOf:
        return self.moments[0][1]

    @property
    def end(self) -> AsOf:
        return self.moments[-1][1]

    @property
    def generated_local(self) -> str:
        return shown_time(self.generated_at, seconds=False)

    def moment_local(self, moment: AsOf) -> str:
        return shown_time(moment.at, seconds=False)

    @property
    def trends(self) -> list[Chart]:
        return self.final.trends

    @property
    def synthetic(self) -> tuple[str, ...]:
        return self.final.synthetic

    @property
    def synthetic_titles(self) -> tuple[str, ...]:
        return self.final.synthetic_titles

    @property
    def task_areas(self) -> list[str]:
        return [str(a) for a in self.outcome_counts.index if str(a) != "合计"]

    def projects_of(self, task_area: str, outcome: str) -> list[str]:
        rows = self.outcomes[(self.outcomes["task_area"] == task_area) & (self.outcomes["outcome"] == outcome)]
        return [str(n) for n in rows["name"]]

    def stalled_of(self, task_area: str) -> list[str]:
        rows = self.outcomes[(self.outcomes["task_area"] == task_area) & self.outcomes["stalled"]]
        return [str(n) for n in rows["name"]]


def milestone_targets(definition: IndicatorDef, year: int) -> Target | None:
    """The target due in `year`: one dated that year, else one without a year (due every year); None without."""
    dated = [t for t in definition.targets if t.year == year]
    if dated:
        return dated[0]
    return next((t for t in definition.targets if t.year is None), None)


def _district(table: pd.DataFrame, ident: str) -> tuple[bool, float | None]:
    rows = table[(table["indicator"] == ident) & (table["scope"] == "district")]
    return (True, number_or_none(rows["value"].iloc[0])) if len(rows) else (False, None)


def _verdict(definition: IndicatorDef, table: pd.DataFrame, milestone: Milestone, quarter: Quarter) -> MilestoneVerdict:
    headline, value = _district(table, definition.id)
    target = milestone_targets(definition, milestone.year)
    if target is None:
        return MilestoneVerdict(milestone, quarter, value, None, "no_target")
    if headline:
        met = target.met(math.nan if value is None else value)
        verdict = "no_data" if met is None else ("met" if met else "missed")
        return MilestoneVerdict(milestone, quarter, value, target, verdict)
    rows = table[table["indicator"] == definition.id]
    states = [target.met(math.nan if v is None else float(v)) for v in rows["value"]]
    n_met, n_missed = sum(s is True for s in states), sum(s is False for s in states)
    verdict = "no_data" if not n_met + n_missed else ("met" if not n_missed else ("missed" if not n_met else "partial"))
    return MilestoneVerdict(milestone, quarter, None, target, verdict, met_rows=n_met, judged_rows=n_met + n_missed)


def gather_evaluation(store: LayerStore, *, layers_dir: Path, now: datetime | None = None) -> EvaluationData:
    """The evaluation of the plan in `layers_dir`; an InputError when there is no plan or no data for it."""
    plan = plan_for(layers_dir)
    if plan is None:
        raise InputError(
            "the layers folder holds no plan.yaml: there is no action plan to evaluate",
            zh="图层目录中没有 plan.yaml（行动计划期），无法进行实施评估。",
        )
    current = as_of_now(now)
    available = [Quarter.parse(q) for q in quarters_with_data(store, plan, now=current.at)]
    if not available:
        raise InputError(
            f"the store holds no data for the plan period {plan.start}–{plan.monitored_until}",
            zh=f"数据库中没有行动计划期（{plan.start}—{plan.monitored_until}）的数据，无法进行实施评估。",
        )
    notes: list[str] = []
    first, last = available[0], available[-1]
    if first > plan.start:
        notes.append(f"数据自 {first} 起：计划起点取 {first} 季末（计划始于 {plan.start}）。")
    if last < plan.monitored_until:
        notes.append(f"监测尚未结束：评估截至 {last}（计划监测至 {plan.monitored_until}）。")
    end = min(max(plan.end, first), last)
    columns = [("计划起点", first), ("计划期末", end), ("评估截至", last)]
    milestones = tuple((m, min(Quarter.last_of(m.year), last)) for m in plan.milestones if m.year >= first.year)
    wanted = sorted({q for _, q in columns} | {q for _, q in milestones})

    indicator_set = definitions_for(store, layers_dir)
    runs: dict[Quarter, IndicatorRun] = {
        q: compute_indicators(
            store, layers_dir=layers_dir, as_of=as_of_quarter(q, now=current.at), definitions=indicator_set
        )
        for q in wanted
    }
    definitions = runs[last].definitions
    indicators = []
    for d in definitions:
        headline = _district(runs[last].table, d.id)[0]
        values = tuple(_district(runs[q].table, d.id)[1] for _, q in columns)
        verdicts = tuple(_verdict(d, runs[q].table, m, q) for m, q in milestones)
        indicators.append(IndicatorEvaluation(definition=d, headline=headline, values=values, verdicts=verdicts))

    final = gather_report(store, layers_dir=layers_dir, quarter=last, run=runs[last], now=current.at)
    start_layers = map_layers(store, layers_dir, runs[first], notes)

    ledger, records = ledger_as_of(store, layers_dir, runs[last].as_of)
    flow_path = default_status_flow_path(layers_dir)
    flow = load_status_flow(flow_path, store.catalog) if flow_path.is_file() else None
    judged = plan.judged_quarter(last)
    if flow is None:
        outcomes = project_outcomes(ledger=ledger, records=records, quarter=judged)
    else:
        outcomes = project_outcomes(
            ledger=ledger, records=records, quarter=judged, initial=flow.initial, completed=flow.completed
        )
    areas = store.catalog.get("projects").field("task_area").allowed or () if "projects" in store.catalog else ()
    counts = outcome_counts(outcomes, task_areas=[str(a) for a in areas])

    conflicts = _conflict_change(store, layers_dir, definitions, runs[first].as_of, runs[last].as_of, final)
    return EvaluationData(
        plan=plan,
        moments=tuple((label, runs[q].as_of) for label, q in columns),
        indicators=tuple(indicators),
        milestones=milestones,
        outcomes=outcomes,
        outcome_counts=counts,
        conflicts=conflicts,
        villages=_coverage_change(start_layers.get("villages"), final.layers.get("villages")),
        start_layers=start_layers,
        final=final,
        generated_at=now_utc(),
        notes=tuple(notes),
        rule_titles=final.rule_titles,
    )


def _overlap_settings(definitions: tuple[IndicatorDef, ...]) -> OverlapSettings:
    """The sliver settings of the conflict indicators (the first conflict_area definition), else the defaults."""
    params = next((d.params for d in definitions if d.kind == "conflict_area"), {})
    default = OverlapSettings()
    return OverlapSettings(
        min_area_m2=float(params.get("min_area_m2", default.min_area_m2)),
        min_width_m=float(params.get("min_width_m", default.min_width_m)),
    )


def _conflict_change(
    store: LayerStore,
    layers_dir: Path,
    definitions: tuple[IndicatorDef, ...],
    start: AsOf,
    end: AsOf,
    final: ReportData,
) -> ConflictChange:
    rules = rules_for(store.catalog, layers_dir)
    settings = _overlap_settings(definitions)
    before = conflicts_as_of(store, rules=rules, as_of=start, settings=settings)
    after = conflicts_as_of(store, rules=rules, as_of=end, settings=settings)
    marks = marks_as_of(store, end)

    ids_before, ids_after = set(before["patch_id"].astype(str)), set(after["patch_id"].astype(str))
    rows = []
    for frame, state_of in ((before, lambda i: "resolved" if i not in ids_after else None), (after, None)):
        exempt = exempt_mask(frame)
        for position, record in enumerate(frame.drop(columns="geometry").to_dict("records")):
            pid = str(record["patch_id"])
            state = state_of(pid) if state_of is not None else ("remaining" if pid in ids_before else "new")
            if state is None:
                continue
            rows.append(
                {
                    "patch_id": pid,
                    "rule": str(record["rule"]),
                    "rule_title": final.rule_titles.get(str(record["rule"]), str(record["rule"])),
                    "severity": str(record.get("severity") or ""),
                    "town": "" if record.get("town") is None else str(record["town"]),
                    "area_ha": float(record["area_m2"]) / 10_000.0,
                    "exempt": bool(exempt[position]),
                    "state": state,
                    "state_zh": CONFLICT_STATES[state],
                    "mark": STATUS_TITLES.get(marks.get(pid, ""), ""),
                }
            )
    columns = ["patch_id", "rule", "rule_title", "severity", "town", "area_ha", "exempt", "state", "state_zh", "mark"]
    table = pd.DataFrame(rows, columns=columns)
    order = {"resolved": 0, "new": 1, "remaining": 2}
    table = table.sort_values(
        ["state", "exempt", "area_ha"],
        key=lambda c: c.map(order) if c.name == "state" else c,
        ascending=[True, True, False],
    ).reset_index(drop=True)
    return ConflictChange(start=before, end=after, table=table)


def _coverage_change(start: gpd.GeoDataFrame | None, end: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """The villages at the end with their coverage then and now and the change (percentage points)."""
    if end is None or "coverage_pct" not in end.columns:
        return gpd.GeoDataFrame({"village_code": [], "coverage_start": [], "coverage_end": [], "change_pp": []})
    before = {} if start is None else dict(zip(start["village_code"], start["coverage_pct"], strict=True))
    out = end.copy()
    out["coverage_start"] = [number_or_none(before.get(code)) for code in out["village_code"]]
    out["coverage_end"] = [number_or_none(v) for v in out["coverage_pct"]]
    out["change_pp"] = [
        None if a is None or b is None else b - a
        for a, b in zip(out["coverage_start"], out["coverage_end"], strict=True)
    ]
    return out
