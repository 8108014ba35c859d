"""`geoplan ledger`: the project ledger (项目台账) — show it as of a quarter, record progress, list a history.

geoplan ledger show [--quarter 2020Q4] [--task-area …] [--town …] [--overdue] [-o ledger.xlsx]
geoplan ledger record GM-2024-001 --quarter 2020Q4 --progress 45 --actor 王工 [--status 在建] …
geoplan ledger history GM-2024-001
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from geoplan.beijing_time import shown_time
from geoplan.commands.common import StoreOption, check_output, err, existing_store, out
from geoplan.errors import InputError
from geoplan.monitoring.ledger import PROJECTS, ledger_view, project_history, record_progress
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.ledger_status import status_flow_for

ledger_app = typer.Typer(
    help="The project ledger: quarterly progress, the five assurances, overdue projects.", no_args_is_help=True
)
_EXPORT_SUFFIXES = (".csv", ".xlsx")


def export_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The ledger as a flat table (the list of missing assurances joined with 、) for CSV and XLSX."""
    flat = table.copy()
    flat["missing_assurances"] = flat["missing_assurances"].map("、".join)
    return flat


@ledger_app.command("show")
def show(
    quarter: Annotated[
        str | None, typer.Option("--quarter", help="As of this quarter, e.g. 2020Q4 [default: the latest recorded]")
    ] = None,
    task_area: Annotated[str | None, typer.Option("--task-area", help="Only this task area (任务领域).")] = None,
    town: Annotated[str | None, typer.Option("--town", help="Only projects in this town (镇街).")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue projects.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the table: .csv or .xlsx")] = None,
    store: StoreOption = None,
) -> None:
    """The ledger as of a quarter: status, progress, missing assurances, overdue flags."""
    check_output(output, _EXPORT_SUFFIXES)
    if quarter is not None:
        quarter = str(Quarter.parse(quarter))
    with existing_store(store) as (settings, backend):
        areas = backend.catalog.get(PROJECTS).field("task_area").allowed or ()
        if task_area is not None and task_area not in areas:
            raise InputError(f"unknown task area {task_area!r}; use one of {', '.join(map(str, areas))}")
        flow = status_flow_for(settings.layers_dir, backend.catalog)
        ledger = ledger_view(backend, flow=flow, quarter=quarter, task_area=task_area, town=town, overdue=overdue)
    table, as_of = ledger.table, ledger.as_of_quarter

    view = Table(title=f"project ledger as of {as_of} ({len(table)} of {ledger.total} projects)")
    for column in ("project", "name", "task area", "town", "status", "progress %", "quarter", "missing", "overdue"):
        view.add_column(column, justify="right" if column == "progress %" else "left")
    for row in table.to_dict("records"):
        view.add_row(
            Text(str(row["project_id"])),
            Text(str(row["name"])),
            Text(str(row["task_area"])),
            Text(str(row["town"] or "–")),
            Text(str(row["status"])),
            f"{row['progress_pct']:.1f}",
            Text(str(row["quarter"] or "–")),
            Text("、".join(row["missing_assurances"]) or "–"),
            Text("OVERDUE 逾期", style="bold red") if row["overdue"] else Text(""),
        )
    out.print(view)
    gaps = int((table["missing_count"] > 0).sum())
    out.print(Text(f"{int(table['overdue'].sum())} overdue; {gaps} with missing assurances (五个保障)"))
    if ledger.synthetic:
        out.print("[yellow]SYNTHETIC demo data: projects and progress records are not official figures[/yellow]")
    if output is not None:
        flat = export_frame(table)
        if output.suffix.lower() == ".xlsx":
            flat.to_excel(output, index=False, sheet_name=f"ledger {as_of}")
        else:
            flat.to_csv(output, index=False, encoding="utf-8-sig")  # the BOM makes spreadsheets read UTF-8
        out.print(Text(f"{len(flat)} project(s) written to {output}"))


@ledger_app.command("record")
def record(
    project_id: Annotated[str, typer.Argument(help="The project id, e.g. GM-2024-001.")],
    quarter: Annotated[str, typer.Option("--quarter", help="The quarter, e.g. 2020Q4.")],
    progress: Annotated[str, typer.Option("--progress", help="Progress in %, 0–100.")],
    actor: Annotated[str, typer.Option("--actor", help="Who records it (kept in the record and the audit log).")],
    investment: Annotated[
        str | None, typer.Option("--investment", help="Investment to date, 万元 (ten thousand yuan).")
    ] = None,
    problems: Annotated[str, typer.Option("--problems", help="Problems found (存在问题).")] = "",
    unit: Annotated[str | None, typer.Option("--unit", help="Responsible unit [default: the project's].")] = None,
    status: Annotated[str | None, typer.Option("--status", help="New status, e.g. 在建 [default: unchanged].")] = None,
    note: Annotated[str, typer.Option("--note", help="Why, when progress falls or a record is corrected.")] = "",
    store: StoreOption = None,
) -> None:
    """Record a project's progress for a quarter; the project's progress and status in the layer follow."""
    with existing_store(store) as (settings, backend):
        saved = record_progress(
            backend,
            project_id=project_id,
            quarter=quarter,
            progress_pct=progress,
            investment_to_date_wan=investment,
            problems=problems,
            responsible_unit=unit,
            status=status,
            note=note,
            actor=f"cli:{actor.strip()}" if actor.strip() else "",
            flow=status_flow_for(settings.layers_dir, backend.catalog),
        )
    change = f"{saved.previous_status} {saved.previous_progress_pct:g}% -> {saved.status} {saved.progress_pct:g}%"
    layer = "layer updated" if saved.layer_updated else "layer unchanged"
    out.print(Text(f"recorded {saved.project_id} {saved.quarter}: {change} ({layer}; record {saved.record_id})"))


@ledger_app.command("history")
def history(
    project_id: Annotated[str, typer.Argument(help="The project id.")],
    store: StoreOption = None,
) -> None:
    """Every progress record of one project, oldest first (corrections marked)."""
    with existing_store(store) as (_, backend):
        records = project_history(backend, project_id)
    view = Table(title=f"progress of {project_id} ({len(records)} record(s))")
    columns = ("quarter", "status", "progress %", "invested 万元", "problems", "unit", "recorded by", "at (北京时间)")
    for column in columns:
        view.add_column(column, justify="right" if column in ("progress %", "invested 万元") else "left")
    for row in records.to_dict("records"):
        invested = row["investment_to_date_wan"]
        view.add_row(
            Text(str(row["quarter"]) + (" (corrected)" if row["superseded"] else "")),
            Text(str(row["status"])),
            f"{row['progress_pct']:.1f}",
            "–" if pd.isna(invested) else f"{invested:,.1f}",
            Text(str(row["problems"] or "–")),
            Text(str(row["responsible_unit"])),
            Text(str(row["recorded_by"])),
            Text(shown_time(row["recorded_at"])),
            style="dim" if row["superseded"] else None,
        )
    out.print(view)
    if len(records) and bool(records["synthetic"].any()):
        err.print("[yellow]SYNTHETIC demo records: not official figures[/yellow]")


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
