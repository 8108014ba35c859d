"""`geoplan indicators`, `snapshot`, `history`, `warnings`: the plan's indicators, recorded quarter by quarter.

geoplan indicators [--as-of 2026-06-30 | --quarter 2026Q2] [--only culture_coverage,sponge_share] [-o out.xlsx]
geoplan snapshot [--quarter 2026Q4]          # default: the current quarter (the plan's last one once past it)
geoplan history culture_coverage [--scope 荷城街道]
geoplan warnings [--snapshot 3]

Registered as top-level commands by `register(app)` in geoplan/cli.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from geoplan.beijing_time import shown_time
from geoplan.commands.common import StoreOption, check_output, err, existing_store, out, write_table
from geoplan.monitoring.asof import AsOf
from geoplan.monitoring.indicator_defs import IndicatorSet
from geoplan.monitoring.plan_period import PlanPeriod, plan_for
from geoplan.monitoring.snapshots import history as snapshot_history
from geoplan.monitoring.snapshots import warnings as snapshot_warnings
from geoplan.services.indicators import (
    chosen_for,
    compute_indicators,
    definitions_for,
    record_snapshot,
    synthetic_layers,
)
from geoplan.settings import Settings
from geoplan.storage import LayerStore

_OUTPUT_SUFFIXES = (".csv", ".xlsx", ".json")
_MET = {True: "[green]yes[/green]", False: "[bold red]no[/bold red]", None: "–"}

DefinitionsOption = Annotated[
    Path | None,
    typer.Option("--definitions", help="Indicator definitions YAML [default: indicators.yaml in the layers folder]"),
]


def register(app: typer.Typer) -> None:
    """Add the four commands to the main `geoplan` command."""
    app.command("indicators")(indicators)
    app.command("snapshot")(snapshot)
    app.command("history")(history)
    app.command("warnings")(warnings)


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


@contextmanager
def _opened(store: str | None, definitions: Path | None) -> Iterator[tuple[Settings, LayerStore, IndicatorSet]]:
    """The store (closed when the block ends), its settings and the indicator definitions to use."""
    with existing_store(store) as (settings, backend):
        yield settings, backend, definitions_for(backend, settings.layers_dir, definitions)


def _number(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    number = float(value)
    if unit in ("%",):
        return f"{number:.2f}"
    if number == int(number) and abs(number) < 1e12:
        return f"{int(number):,}"
    return f"{number:,.2f}"


def _target(row: Mapping[Hashable, Any]) -> str:
    return "–" if not row["target_op"] else f"{row['target_op']} {_number(row['target'], row['unit'])}"


def say_plan_default(plan: PlanPeriod | None, moment: AsOf, *, verb: tuple[str, str]) -> None:
    """Say so when no quarter was given and the plan's last monitored quarter stands in for now (today is past
    it); `verb` is what the command does with it, in Chinese and English."""
    if plan is None or moment.current:
        return
    out.print(
        Text(
            f"{verb[0]} {moment.quarter} 季末：行动计划（{plan.title_zh}，{plan.start}–{plan.monitored_until}）"
            f"的最后一个监测季度，今天已在其后 / {verb[1]} {moment.quarter}, the plan's last monitored quarter; "
            "give --quarter for another one"
        )
    )


def indicators(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="As of this date (YYYY-MM-DD, end of the day, China time).")
    ] = None,
    quarter: Annotated[str | None, typer.Option("--quarter", help="As of the end of this quarter (2026Q2).")] = None,
    only: Annotated[str | None, typer.Option("--only", help="Only these indicators (ids, comma-separated).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the tidy table: .csv, .xlsx or .json")
    ] = None,
    definitions: DefinitionsOption = None,
    store: StoreOption = None,
) -> None:
    """Every indicator with its target, computed from the layers (as of a date or quarter: the audit is replayed)."""
    check_output(output, _OUTPUT_SUFFIXES)
    wanted = None if only is None else [i.strip() for i in only.split(",") if i.strip()]
    with _opened(store, definitions) as (settings, backend, indicator_set):
        plan = plan_for(settings.layers_dir)
        moment = chosen_for(backend, plan, as_of, quarter, names=("--as-of", "--quarter"))
        if as_of is None and quarter is None:
            say_plan_default(plan, moment, verb=("显示", "showing"))
        with err.status("computing indicators…"):
            run = compute_indicators(
                backend, layers_dir=settings.layers_dir, as_of=moment, definitions=indicator_set, only=wanted
            )
        synthetic = synthetic_layers(backend)
    titles = {d.id: d.title_zh for d in run.definitions}
    when = "now" if moment.current else shown_time(moment.at, label=True)
    view = Table(title=f"indicators as of {when} (quarter {moment.quarter})")
    for column in ("indicator", "title", "scope", "key", "value", "ellipsoidal", "unit", "target", "met", "note"):
        view.add_column(column, justify="right" if column in ("value", "ellipsoidal", "target") else "left")
    for row in run.table.to_dict("records"):
        target = _target(row)
        if row["target_op"] and not math.isnan(row["target_year"]):
            target += f" ({int(row['target_year'])})"
        view.add_row(
            Text(row["indicator"]),
            Text(titles.get(row["indicator"], "")),
            row["scope"],
            Text(row["scope_key"]),
            _number(row["value"], row["unit"]),
            _number(row["value_ellipsoid"], row["unit"]),
            Text(row["unit"]),
            target,
            _MET[row["target_met"]],
            Text(row["note"]),
        )
    out.print(view)
    missed = int((run.table["target_met"] == False).sum())  # noqa: E712 - None must not count
    out.print(Text(f"{len(run.table)} row(s) of {len(run.definitions)} indicator(s); {missed} miss their target"))
    if synthetic:
        out.print(Text(f"computed from SYNTHETIC demo layers: {', '.join(synthetic)}; not official figures", "yellow"))
    if output is not None:
        write_table(run.table, output, sheet="indicators")
        out.print(Text(f"table written to {output}"))


def snapshot(
    quarter: Annotated[
        str | None,
        typer.Option(
            "--quarter",
            help="The quarter, e.g. 2026Q3 [default: the current quarter, or the plan's last once today is past it]",
        ),
    ] = None,
    definitions: DefinitionsOption = None,
    store: StoreOption = None,
) -> None:
    """Record every indicator for a quarter (as of its end; now while it is not over), kept with its history.
    Without --quarter: the current quarter, or the plan's last monitored quarter once today is past it."""
    with _opened(store, definitions) as (settings, backend, indicator_set):
        plan = plan_for(settings.layers_dir)
        moment = chosen_for(backend, plan, None, quarter, names=("--as-of", "--quarter"))
        if quarter is None:
            say_plan_default(plan, moment, verb=("记录", "recording"))
        with err.status("computing and recording indicators…"):
            shot = record_snapshot(
                backend,
                layers_dir=settings.layers_dir,
                quarter=str(moment.quarter),
                actor=_actor(),
                definitions=indicator_set,
            )
        found = snapshot_warnings(backend, snapshot_id=shot.id)
    out.print(
        Text(
            f"snapshot {shot.id} of {shot.quarter} (as of {shown_time(shot.as_of, label=True)}): {shot.rows} row(s), "
            f"{len(found)} warning(s)"
        )
    )
    if len(found):
        out.print(Text("see them with `geoplan warnings`"))


def history(
    indicator: Annotated[str, typer.Argument(help="The indicator id, e.g. culture_coverage.")],
    scope: Annotated[str | None, typer.Option("--scope", help="Only this scope key (a town, rule, status…).")] = None,
    definitions: DefinitionsOption = None,
    store: StoreOption = None,
) -> None:
    """One indicator over the snapshots, oldest first."""
    with _opened(store, definitions) as (_, backend, indicator_set):
        rows = snapshot_history(backend, indicator, scope)
    if indicator not in indicator_set.ids and rows.empty:
        indicator_set.get(indicator)  # raises NotFoundError naming the indicators
    if rows.empty:
        out.print(Text(f"no snapshot holds {indicator}" + (f" for {scope!r}" if scope else "") + " yet"))
        return
    view = Table(title=f"history of {indicator}" + (f" [{scope}]" if scope else ""))
    columns = (
        *("snapshot", "quarter", "as of (北京时间)", "taken (北京时间)"),
        *("scope", "key", "value", "unit", "target", "met"),
    )
    for column in columns:
        view.add_column(column, justify="right" if column in ("snapshot", "value", "target") else "left")
    for row in rows.to_dict("records"):
        target = _target(row)
        view.add_row(
            str(row["snapshot_id"]),
            row["quarter"],
            shown_time(row["as_of"]),
            shown_time(row["taken_at"]),
            row["scope"],
            Text(row["scope_key"]),
            _number(row["value"], row["unit"]),
            Text(row["unit"]),
            target,
            _MET[row["target_met"]],
        )
    out.print(view)


def warnings(
    snapshot_id: Annotated[int | None, typer.Option("--snapshot", help="The snapshot [default: the latest].")] = None,
    store: StoreOption = None,
) -> None:
    """Early warnings: indicators that miss their target or moved the wrong way since the previous snapshot."""
    with existing_store(store) as (_, backend):
        found = snapshot_warnings(backend, snapshot_id=snapshot_id)
    if found.empty:
        out.print("no warnings (or no snapshot yet: take one with `geoplan snapshot`)")
        return
    first = found.iloc[0]
    view = Table(title=f"{len(found)} warning(s) of snapshot {first['snapshot_id']} ({first['quarter']})")
    for column in ("warning", "indicator", "key", "value", "previous", "target", "message"):
        view.add_column(column, justify="right" if column in ("value", "previous") else "left")
    for row in found.to_dict("records"):
        style = "bold red" if row["warning"] == "target_missed" else "dark_orange"
        target = _target(row)
        view.add_row(
            Text(row["warning"], style=style),
            Text(row["indicator"]),
            Text(row["scope_key"]),
            _number(row["value"], row["unit"]),
            _number(row["previous_value"], row["unit"]),
            target,
            Text(row["message"]),
        )
    out.print(view)
