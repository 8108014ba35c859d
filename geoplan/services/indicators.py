"""The indicator runner: load the definitions, gather each kind's inputs as of a moment (replaying the audit log
for an earlier moment), evaluate, and record a quarter's values as a snapshot. The CLI, the web API, snapshots
and the report call this, so all report the same numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.coverage import CoverageRules
from geoplan.analysis.network import ROADS_LAYER
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.monitoring.asof import AsOf, as_of_now, as_of_quarter, layer_as_of
from geoplan.monitoring.indicator_defs import IndicatorDef, IndicatorSet, default_indicators_path, load_indicator_defs
from geoplan.monitoring.indicator_kinds import KINDS
from geoplan.monitoring.indicators import Inputs, Needs
from geoplan.monitoring.indicators_table import evaluate
from geoplan.monitoring.ledger import ledger_table, progress_records
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.ledger_status import default_status_flow_path, load_status_flow
from geoplan.monitoring.ledger_store import PROGRESS_LAYER
from geoplan.monitoring.plan_period import PlanPeriod, chosen_moment, plan_for
from geoplan.monitoring.snapshots import Snapshot, snapshot_registry
from geoplan.monitoring.village_checklist import CHECKLIST_FILE, checklist_for, checklist_records, checklist_state
from geoplan.monitoring.village_checklist import known_records as known_checklist_records
from geoplan.monitoring.village_checklist_store import CHECKLIST_LAYER
from geoplan.services import provenance
from geoplan.services.coverage_inputs import (
    FACILITIES,
    VILLAGES,
    CoverageInputs,
    coverage_inputs,
    life_circle_inputs,
    uses_network,
)
from geoplan.services.overlap_marks import mark_registry, marks_as_of
from geoplan.services.rule_files import (
    default_coverage_rules_path,
    default_life_circles_path,
    default_rules_path,
    load_coverage_rules,
    load_life_circles,
    rule_file_stamp,
    rules_for,
)
from geoplan.storage import LayerStore, require_initialised

__all__ = [
    "IndicatorRun",
    "chosen_for",
    "compute_indicators",
    "definitions_for",
    "known_records",
    "ledger_as_of",
    "quarters_with_data",
    "record_snapshot",
    "rule_files",
    "state_key",
    "synthetic_layers",
]


@dataclass(frozen=True)
class IndicatorRun:
    """The tidy table (`indicators_table.RESULT_COLUMNS`), the moment it describes and the definitions used."""

    table: pd.DataFrame
    as_of: AsOf
    definitions: tuple[IndicatorDef, ...]
    definitions_sha256: str = ""
    inputs_note: list[str] = field(default_factory=list)


def definitions_for(store: LayerStore, layers_dir: Path, path: Path | None = None) -> IndicatorSet:
    """The user's definitions file, or layers/indicators.yaml, checked against the store's catalogue and the
    services of the life-circle rules (rules/life_circles.yaml of the layers folder)."""
    rules_path = default_life_circles_path(layers_dir)
    services = list(load_life_circles(rules_path, store.catalog)) if rules_path.is_file() else None
    return load_indicator_defs(
        path or default_indicators_path(layers_dir), catalog=store.catalog, life_circle_services=services
    )


def compute_indicators(
    store: LayerStore,
    *,
    layers_dir: Path,
    as_of: AsOf | None = None,
    definitions: IndicatorSet | None = None,
    only: list[str] | None = None,
) -> IndicatorRun:
    """Every (or the `only`) indicator of the store as of `as_of` (default: now)."""
    require_initialised(store)
    moment = as_of or as_of_now()
    indicator_set = definitions or definitions_for(store, layers_dir)
    chosen = indicator_set.select(only)
    needs = _needs(chosen)
    rules: tuple[ConflictRule, ...] = ()
    names = set(needs.layers)
    if needs.conflicts:
        rules = tuple(rules_for(store.catalog, layers_dir))
        names |= set(layers_of(rules))
    coverage_rules = CoverageRules()
    coverage: CoverageInputs | None = None
    layers: dict[str, gpd.GeoDataFrame] = {}
    if needs.population:
        coverage_rules = load_coverage_rules(default_coverage_rules_path(layers_dir))
        network = needs.walk_graph and uses_network(coverage_rules)
        coverage = coverage_inputs(store, network=network, as_of=moment)
        layers = {VILLAGES: coverage.villages, FACILITIES: coverage.facilities}
        names.discard(ROADS_LAYER)  # read only for the walking graph, which `coverage_inputs` built
    population = None if coverage is None else coverage.population
    graph = None if coverage is None else coverage.graph
    life_circle_rules = {}
    if needs.life_circles:
        life_circle_rules = load_life_circles(default_life_circles_path(layers_dir), store.catalog)
        network = any(rule.mode == "network" for rule in life_circle_rules.values())
        wanted = sorted({rule.layer for rule in life_circle_rules.values()} - set(layers))
        if coverage is not None and (graph is not None or not network):
            # the culture inputs of the same moment already hold the villages, people and graph
            layers.update({name: layer_as_of(store, name, moment) for name in wanted})
        else:
            villages, facility_layers, population, graph = life_circle_inputs(
                store, wanted, network=network, as_of=moment
            )
            layers.update({VILLAGES: villages, **facility_layers})
    for name in sorted(names - set(layers)):
        if name in store.catalog:
            layers[name] = layer_as_of(store, name, moment)
    inputs = Inputs(
        layers=layers,
        as_of=moment,
        catalog=store.catalog,
        population=population,
        graph=graph,
        coverage_rules=coverage_rules,
        conflict_rules=rules,
        marks=marks_as_of(store, moment) if needs.conflicts else {},
        ledger=_ledger(store, layers_dir, layers, moment) if needs.ledger else None,
        life_circle_rules=life_circle_rules,
        checklist=_checklist(store, layers_dir, layers, moment) if needs.checklist else None,
    )
    table = evaluate(definitions=chosen, inputs=inputs)
    return IndicatorRun(table=table, as_of=moment, definitions=chosen, definitions_sha256=indicator_set.sha256)


def chosen_for(
    store: LayerStore,
    plan: PlanPeriod | None,
    as_of: str | None = None,
    quarter: str | None = None,
    *,
    names: tuple[str, str] = ("as_of", "quarter"),
    now: datetime | None = None,
) -> AsOf:
    """The moment a caller chose, or the plan's default (`plan_period.chosen_moment`) when the store holds data
    by then; a store whose data all came after the plan (a fresh import) shows now instead."""
    moment = chosen_moment(as_of, quarter, plan=plan, names=names, now=now)
    if as_of is None and quarter is None and not moment.current and not store.audit_log(limit=1, until=moment.iso):
        return as_of_now(now)
    return moment


def quarters_with_data(store: LayerStore, plan: PlanPeriod, *, now: datetime | None = None) -> list[str]:
    """The plan's quarters the store can answer: from the first one by whose end something had been written to
    the last monitored one, none that has not begun (oldest first)."""
    current = as_of_now(now)
    offered = [q for q in plan.quarters() if q <= current.quarter]
    for index, quarter in enumerate(offered):
        if store.audit_log(limit=1, until=as_of_quarter(quarter, now=current.at).iso):
            return [str(q) for q in offered[index:]]
    return []


def _needs(definitions: tuple[IndicatorDef, ...]) -> Needs:
    layers: set[str] = set()
    population = walk_graph = conflicts = ledger = life_circles = checklist = False
    for definition in definitions:
        need = KINDS[definition.kind].needs(definition.params)
        layers |= need.layers
        population |= need.population
        walk_graph |= need.walk_graph
        conflicts |= need.conflicts
        ledger |= need.ledger
        life_circles |= need.life_circles
        checklist |= need.checklist
    return Needs(
        layers=frozenset(layers),
        population=population,
        walk_graph=walk_graph,
        conflicts=conflicts,
        ledger=ledger,
        life_circles=life_circles,
        checklist=checklist,
    )


def _checklist(store: LayerStore, layers_dir: Path, layers: dict[str, gpd.GeoDataFrame], moment: AsOf) -> pd.DataFrame:
    """The village checklist as of the moment: the records known then, applied to the villages as they were."""
    records = known_checklist_records(checklist_records(store), moment)
    return checklist_state(
        villages=layers["villages"], records=records, checklist=checklist_for(layers_dir), quarter=moment.quarter
    )


def known_records(store: LayerStore, moment: AsOf) -> pd.DataFrame:
    """The progress records known at the moment: recorded by then, for quarters up to the moment's."""
    records = progress_records(store)
    if not moment.current and len(records):
        recorded = pd.to_datetime(records["recorded_at"], utc=True)
        records = records[(recorded <= pd.Timestamp(moment.at)).to_numpy()]
    records = records[(records["quarter"].astype(str) <= str(moment.quarter)).to_numpy()]
    # A correction recorded after the moment must not hide the record it corrected: recompute which record of a
    # quarter is the latest from what is left (the ledger takes the highest record id per quarter then).
    return records.drop(columns=["superseded"], errors="ignore").reset_index(drop=True)


def ledger_as_of(store: LayerStore, layers_dir: Path, moment: AsOf) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The project ledger as of the moment (as the indicators see it) and the progress records it was built from."""
    records = known_records(store, moment)
    projects = layer_as_of(store, "projects", moment)
    return _ledger_of(records, layers_dir, store, projects, moment), records


def _ledger(store: LayerStore, layers_dir: Path, layers: dict[str, gpd.GeoDataFrame], moment: AsOf) -> pd.DataFrame:
    """The project ledger as of the moment: the progress records known then, applied to the projects layer as it
    was then."""
    return _ledger_of(known_records(store, moment), layers_dir, store, layers["projects"], moment)


def _ledger_of(
    records: pd.DataFrame, layers_dir: Path, store: LayerStore, projects: gpd.GeoDataFrame, moment: AsOf
) -> pd.DataFrame:
    flow_path = default_status_flow_path(layers_dir)
    flow = load_status_flow(flow_path, store.catalog) if flow_path.is_file() else None
    plan = plan_for(layers_dir)
    # after the plan, overdue is judged at its last monitored quarter, not against years it never had
    judged = moment.quarter if plan is None else plan.judged_quarter(moment.quarter)
    return ledger_table(projects=projects, records=records, as_of_quarter=str(judged), flow=flow)


def state_key(store: LayerStore, *, layers_dir: Path, definitions: IndicatorSet) -> str:
    """A digest of everything the indicators depend on: every layer's store version (the audit id, which also
    moves with the population raster and the ledger's progress records), the newest conflict mark, the
    definitions and the rule files. Equal keys mean equal indicators (for a given moment)."""
    parts = [f"{name}={store.layer_version(name)}" for name in store.catalog.names]
    parts.append(f"{PROGRESS_LAYER}={store.layer_version(PROGRESS_LAYER)}")
    parts.append(f"{CHECKLIST_LAYER}={store.layer_version(CHECKLIST_LAYER)}")
    registry = mark_registry(store)
    try:
        parts.append(f"marks={registry.latest_id()}")
    finally:
        registry.close()
    parts.append(f"definitions={definitions.sha256}")
    parts.extend(f"{f['name']}={f['sha256']}" for f in rule_files(layers_dir))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def rule_files(layers_dir: Path) -> list[dict[str, str]]:
    """The rule files the indicators read besides their definitions (name and SHA-256 each): the conflict
    rules, the coverage rules, the life-circle rules, the project status flow and the village checklist. A
    snapshot's audit entry records them."""
    paths = (
        default_rules_path(layers_dir),
        default_coverage_rules_path(layers_dir),
        default_life_circles_path(layers_dir),
        default_status_flow_path(layers_dir),
        Path(layers_dir) / CHECKLIST_FILE,
    )
    return [rule_file_stamp(path) for path in paths]


def synthetic_layers(store: LayerStore) -> list[str]:
    """The layers that hold synthetic demo data now (geoplan.services.provenance): whoever shows the indicators
    must say so."""
    return list(provenance.synthetic_layers(store))


def record_snapshot(
    store: LayerStore,
    *,
    layers_dir: Path,
    quarter: str | None = None,
    actor: str,
    definitions: IndicatorSet | None = None,
    now: datetime | None = None,
    taken_at: datetime | None = None,
) -> Snapshot:
    """Compute every indicator as of the end of `quarter` (default: the current quarter, i.e. now) and
    record it. A quarter that has not begun is refused; one the audit log cannot reach back to is refused
    with the reason (`asof`). `taken_at` dates the snapshot (the demo's history, on its report days); else now."""
    indicator_set = definitions or definitions_for(store, layers_dir)
    current = as_of_now(now)
    chosen = Quarter.parse(quarter) if quarter is not None else current.quarter
    moment = as_of_quarter(chosen, now=current.at)
    run = compute_indicators(store, layers_dir=layers_dir, as_of=moment, definitions=indicator_set)
    registry = snapshot_registry(store)
    try:
        return registry.record(
            run.table,
            quarter=str(chosen),
            as_of=moment.iso,
            actor=actor,
            definitions=indicator_set,
            rule_files=rule_files(layers_dir),
            taken_at=None if taken_at is None else taken_at.astimezone(UTC).isoformat(timespec="seconds"),
        )
    finally:
        registry.close()
