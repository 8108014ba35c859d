"""Everything a quarterly report shows, gathered once: the writers (report_xlsx, report_html, report_pdf) only
lay it out, so the three formats cannot disagree.

The report of quarter Q describes the store at the end of Q (the current quarter, not over yet: now), like
`geoplan snapshot --quarter Q`. Its numbers are the indicator service's (`compute_indicators`, or a run the web
app's indicator cache already holds); the change column compares them with the *previous snapshot*, the newest
snapshot that describes an earlier moment (for the current quarter that is the newest snapshot taken before
now; for a past quarter, the newest one before that quarter's end). A snapshot of exactly the reported moment
is the report's own record, not its baseline: a past quarter's snapshot, or, in the web app, the snapshot just
taken of the state shown (both come from the same cached indicator run). The history lists every snapshot up
to the report's moment. Early warnings are `snapshots.find_warnings` of the report's rows against that snapshot.

The small maps need per-village coverage, which no indicator keeps: it comes from the coverage engine on the
same inputs the coverage indicator uses (the layers and raster as of the moment, the coverage rules, the facility
kinds of the `cultural_coverage` definition), so its villages add up to the indicator's district value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.coverage import village_coverage
from geoplan.beijing_time import shown_time
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf, as_of_now, as_of_quarter, layer_as_of
from geoplan.monitoring.indicator_defs import IndicatorDef, IndicatorSet
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.snapshots import Snapshot, find_warnings, snapshot_registry
from geoplan.reporting.charts import Chart, overview_charts, trend_charts
from geoplan.reporting.life_circle_section import (
    LifeCircleTable,
    is_life_circle,
    life_circle_table,
    life_circle_trends,
)
from geoplan.reporting.tables import (
    HistoryRow,
    IndicatorSummary,
    TownTable,
    history_rows,
    summaries,
    town_order,
    town_table,
    with_change,
)
from geoplan.services import provenance
from geoplan.services.coverage_inputs import coverage_inputs, uses_network
from geoplan.services.indicators import IndicatorRun, compute_indicators, definitions_for
from geoplan.services.rule_files import (
    default_coverage_rules_path,
    default_rules_path,
    load_coverage_rules,
    load_rules,
)
from geoplan.storage import LayerStore
from geoplan.storage.base import now_utc

__all__ = ["ReportData", "gather_report", "load_history", "map_layers", "synthetic_layers"]

log = logging.getLogger(__name__)

HISTORY_FRAME_COLUMNS = ["snapshot_id", "quarter", "indicator", "scope", "scope_key", "value", "unit", "target_met"]
MAP_LAYERS = ("district", "towns", "villages", "projects")


@dataclass(frozen=True)
class ReportData:
    quarter: Quarter
    as_of: AsOf
    generated_at: str
    definitions: tuple[IndicatorDef, ...]
    definitions_sha256: str
    table: pd.DataFrame
    """The indicator service's tidy table plus previous_value and change (since `previous`)."""
    previous: Snapshot | None
    snapshots: tuple[Snapshot, ...]
    """Every snapshot up to the report's moment, oldest first."""
    history: pd.DataFrame
    """Their rows (HISTORY_FRAME_COLUMNS)."""
    warnings: pd.DataFrame
    """`snapshots.WARNING_COLUMNS`: the report's rows against the previous snapshot."""
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    """district, towns, villages (with coverage_pct, covered_population and covered_base_population, the raster's
    people) and projects as of the
    moment, for the maps; a layer the store lacks is absent."""
    synthetic: tuple[str, ...] = ()
    """The layers that hold synthetic demo data now (names)."""
    synthetic_titles: tuple[str, ...] = ()
    """The same layers as a reader names them (Chinese titles, a partly synthetic one marked so)."""
    notes: tuple[str, ...] = ()
    rule_titles: dict[str, str] = field(default_factory=dict)
    """Conflict rule code -> its Chinese title (layers/rules/conflicts.yaml), for rows keyed by rule."""

    def key_label(self, scope: object, key: object) -> str:
        """A row's key as a reader names it: 全区 for the district row, a rule's title before its code."""
        text = "" if key is None else str(key)
        if not text:
            return "全区"
        if str(scope) == "rule" and text in self.rule_titles:
            return f"{self.rule_titles[text]}（{text}）"
        return text

    @property
    def year(self) -> int:
        return self.as_of.local_date.year

    @property
    def as_of_local(self) -> str:
        """The moment in Beijing time, to the minute (how the report states it)."""
        return shown_time(self.as_of.at, seconds=False)

    @property
    def generated_local(self) -> str:
        """When the report was made, in Beijing time to the minute (every time on a report is Beijing time)."""
        return shown_time(self.generated_at, seconds=False)

    @property
    def previous_as_of_local(self) -> str:
        """The moment the comparison snapshot describes, in Beijing time to the minute ("–" without one)."""
        return "–" if self.previous is None else shown_time(self.previous.as_of, seconds=False)

    @property
    def towns(self) -> list[str]:
        return town_order(self.layers.get("towns"))

    @cached_property
    def summaries(self) -> list[IndicatorSummary]:
        return summaries(self.table, self.definitions, year=self.year, warnings=self.warnings)

    @property
    def plain_definitions(self) -> list[IndicatorDef]:
        """The indicators outside the life-circle group (which has its own table and trend charts)."""
        return [d for d in self.definitions if not is_life_circle(d)]

    @cached_property
    def town_table(self) -> TownTable:
        return town_table(self.table, self.plain_definitions, order=self.towns)

    @cached_property
    def life_circles(self) -> LifeCircleTable:
        """公共服务生活圈: each life-circle indicator's district and town values."""
        return life_circle_table(self.table, self.definitions, order=self.towns)

    @cached_property
    def charts(self) -> list[Chart]:
        return overview_charts(self.table, self.definitions, year=self.year, towns=self.towns)

    @cached_property
    def trends(self) -> list[Chart]:
        plain = trend_charts(self.plain_definitions, self.history, self.snapshot_keys, year=self.year)
        return plain + life_circle_trends(self.definitions, self.history, self.snapshot_keys)

    @property
    def snapshot_keys(self) -> list[tuple[int, str]]:
        return [(s.id, s.quarter) for s in self.snapshots]

    @cached_property
    def history_rows(self) -> list[HistoryRow]:
        return history_rows(self.history, self.definitions, [s.id for s in self.snapshots])

    @property
    def title(self) -> str:
        return f"高明区城市治理三年行动计划 {self.quarter} 季度监测报告"


def _moment_of(snapshot: Snapshot) -> datetime:
    return datetime.fromisoformat(snapshot.as_of)


def load_history(store: LayerStore, *, until: AsOf | None = None) -> tuple[list[Snapshot], pd.DataFrame]:
    """The snapshots describing a moment up to `until` (all without), oldest first, and all their rows."""
    registry = snapshot_registry(store)
    try:
        shots = registry.snapshots()
        if until is not None:
            limit = datetime.fromisoformat(until.iso)
            shots = [s for s in shots if _moment_of(s) <= limit]
        frames = []
        for shot in shots:
            values = registry.values(shot.id)
            values["quarter"] = shot.quarter
            frames.append(values)
    finally:
        registry.close()
    if not frames:
        return shots, pd.DataFrame(columns=HISTORY_FRAME_COLUMNS)
    history = pd.concat(frames, ignore_index=True)
    return shots, history


def synthetic_layers(store: LayerStore) -> tuple[str, ...]:
    """The layers that hold synthetic demo data now (geoplan.services.provenance): every figure from them must
    say so."""
    return provenance.synthetic_layers(store)


def gather_report(
    store: LayerStore,
    *,
    layers_dir: Path,
    quarter: str | Quarter | None = None,
    definitions: IndicatorSet | None = None,
    run: IndicatorRun | None = None,
    now: datetime | None = None,
    maps: bool = True,
) -> ReportData:
    """The report of `quarter` (default: the current one). `run` is an indicator run for the same moment when
    the caller has one (the web app's cache); otherwise the indicators are computed here. Without `maps` only
    the towns layer is read (for the order of towns), not the map layers and the per-village coverage (the
    dashboard links to the maps instead)."""
    current = as_of_now(now)
    chosen = (
        quarter if isinstance(quarter, Quarter) else (current.quarter if quarter is None else Quarter.parse(quarter))
    )
    moment = as_of_quarter(chosen, now=current.at)
    if run is None:
        indicator_set = definitions or definitions_for(store, layers_dir)
        run = compute_indicators(store, layers_dir=layers_dir, as_of=moment, definitions=indicator_set)
    elif run.as_of.current != moment.current or (not moment.current and run.as_of.at != moment.at):
        raise ValueError("the indicator run describes another moment than the report")  # a caller's bug

    shots, history = load_history(store, until=run.as_of)
    reported = datetime.fromisoformat(run.as_of.iso)
    earlier = [s for s in shots if _moment_of(s) < reported]
    previous = earlier[-1] if earlier else None
    previous_rows = None
    if previous is not None:
        previous_rows = history[history["snapshot_id"] == previous.id]
    table = with_change(run.table, previous_rows)

    directions = {d.id: d.good_direction for d in run.definitions}
    current_rows = run.table.assign(good_direction=[directions.get(str(i), "none") for i in run.table["indicator"]])
    pseudo = Snapshot(0, str(chosen), run.as_of.iso, now_utc(), "report", run.definitions_sha256, len(run.table))
    warnings = find_warnings(
        current=current_rows,
        previous=previous_rows,
        snapshot=pseudo,
        previous_id=None if previous is None else previous.id,
    )

    notes: list[str] = []
    if maps:
        layers = map_layers(store, layers_dir, run, notes)
    else:
        layers = {"towns": layer_as_of(store, "towns", run.as_of)} if "towns" in store.catalog else {}
    synthetic = synthetic_layers(store)
    return ReportData(
        rule_titles=_rule_titles(store, layers_dir),
        quarter=chosen,
        as_of=run.as_of,
        generated_at=now_utc(),
        definitions=tuple(run.definitions),
        definitions_sha256=run.definitions_sha256,
        table=table,
        previous=previous,
        snapshots=tuple(shots),
        history=history,
        warnings=warnings,
        layers=layers,
        synthetic=synthetic,
        synthetic_titles=provenance.synthetic_titles(store, synthetic),
        notes=tuple(notes),
    )


def _rule_titles(store: LayerStore, layers_dir: Path) -> dict[str, str]:
    """The conflict rules' Chinese titles; none when the rules file cannot be read (the rows keep their codes)."""
    try:
        rules = load_rules(default_rules_path(layers_dir), store.catalog)
    except (InputError, OSError) as exc:
        log.warning("rule titles not shown in the report: %s", exc)
        return {}
    return {rule.code: rule.title_zh for rule in rules}


def map_layers(store: LayerStore, layers_dir: Path, run: IndicatorRun, notes: list[str]) -> dict[str, gpd.GeoDataFrame]:
    moment = run.as_of
    layers = {name: layer_as_of(store, name, moment) for name in MAP_LAYERS if name in store.catalog}
    villages = layers.get("villages")
    coverage = next((d for d in run.definitions if d.kind == "cultural_coverage"), None)
    if villages is None or coverage is None or not len(villages):
        layers.pop("villages", None)
        return layers
    try:
        rules = load_coverage_rules(default_coverage_rules_path(layers_dir))
        inputs = coverage_inputs(store, network=uses_network(rules), as_of=moment)
        kinds = coverage.params.get("kinds")
        per_village = village_coverage(
            villages=villages,
            facilities=inputs.facilities,
            population=inputs.population,
            graph=inputs.graph,
            rules=rules,
            kinds=None if kinds is None else list(kinds),
        )
    except InputError as exc:  # the indicators were computed, so this is unexpected; the maps are optional
        log.warning("no village coverage map: %s", exc)
        notes.append(f"未能绘制各村覆盖率地图：{exc}")
        layers.pop("villages", None)
        return layers
    # The villages layer has its own (census-like) population field: keep the raster's people apart from it.
    columns = per_village[["village_code", "population", "covered_population", "coverage_pct"]].rename(
        columns={"population": "covered_base_population"}
    )
    merged = villages.merge(columns, on="village_code", how="left")
    layers["villages"] = gpd.GeoDataFrame(merged, geometry="geometry", crs=villages.crs)
    return layers
