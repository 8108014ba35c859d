"""`geoplan checklist`: the village checklist (镇村发展现代化) — items, one item per village as of a quarter, records.

geoplan checklist items
geoplan checklist show toilets [--quarter 2020Q4] [--town 杨和镇] [-o toilets.xlsx]
geoplan checklist record 440608101201 --item toilets --state 已完成 --quarter 2020Q4 --actor 王工 [--note …]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from geoplan.commands.common import StoreOption, check_output, existing_store, out
from geoplan.monitoring.village_checklist import checklist_for, checklist_view, record_checklist

checklist_app = typer.Typer(
    help="The village checklist (镇村发展现代化): items per village and quarter, shares per town.",
    no_args_is_help=True,
)
_EXPORT_SUFFIXES = (".csv", ".xlsx")
SYNTHETIC_NOTE = "[yellow]SYNTHETIC demo records: not official figures (示意数据)[/yellow]"


@checklist_app.command("items")
def items(store: StoreOption = None) -> None:
    """The checklist items, their states and the state that counts as achieved."""
    with existing_store(store) as (settings, _):
        checklist = checklist_for(settings.layers_dir)
    view = Table(title="village checklist items (检查项)")
    for column in ("item", "title", "states", "achieved"):
        view.add_column(column)
    for item in checklist.items:
        view.add_row(item.code, Text(f"{item.title_zh} {item.title_en}"), Text(" → ".join(item.states)), item.achieved)
    out.print(view)


@checklist_app.command("show")
def show(
    item: Annotated[str, typer.Argument(help="The item code, e.g. toilets (see `geoplan checklist items`).")],
    quarter: Annotated[
        str | None, typer.Option("--quarter", help="As of this quarter, e.g. 2020Q4 [default: the latest recorded]")
    ] = None,
    town: Annotated[str | None, typer.Option("--town", help="Only the villages of this town (镇街).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the table: .csv or .xlsx")] = None,
    store: StoreOption = None,
) -> None:
    """One item per village as of a quarter, and the share of villages with it per town."""
    check_output(output, _EXPORT_SUFFIXES)
    with existing_store(store) as (settings, backend):
        view = checklist_view(backend, checklist=checklist_for(settings.layers_dir), item=item, quarter=quarter)
    frame = view.villages
    if town is not None:
        frame = frame[frame["town"].astype(str) == town]
    table = Table(title=f"{view.item.title_zh} ({view.item.code}) as of {view.quarter}: {len(frame)} village(s)")
    for column in ("village", "name", "town", "state", "since"):
        table.add_column(column)
    for row in frame.to_dict("records"):
        table.add_row(
            Text(str(row["village_code"])),
            Text(str(row["village_name"])),
            Text(str(row["town"])),
            Text(str(row["state"]), style="green" if row["achieved"] else ""),
            Text(str(row["since"] or "–")),
        )
    out.print(table)
    shares = Table(title=f"share of villages with {view.item.title_zh} (达标/完成占比) as of {view.quarter}")
    for column in ("town", "villages", "achieved", "share %"):
        shares.add_column(column, justify="left" if column == "town" else "right")
    for row in view.towns.to_dict("records"):
        shares.add_row(Text(str(row["town"])), str(row["villages"]), str(row["achieved"]), f"{row['share_pct']:.2f}")
    out.print(shares)
    if view.synthetic:
        out.print(SYNTHETIC_NOTE)
    if output is not None:
        flat = pd.DataFrame(frame.drop(columns="geometry"))
        if output.suffix.lower() == ".xlsx":
            flat.to_excel(output, index=False, sheet_name=f"{view.item.code} {view.quarter}")
        else:
            flat.to_csv(output, index=False, encoding="utf-8-sig")
        out.print(Text(f"{len(flat)} village(s) written to {output}"))


@checklist_app.command("record")
def record(
    village_code: Annotated[str, typer.Argument(help="The village's 12-digit code (village_code).")],
    item: Annotated[str, typer.Option("--item", help="The item code, e.g. toilets.")],
    state: Annotated[str, typer.Option("--state", help="The item's state, e.g. 已完成.")],
    quarter: Annotated[str, typer.Option("--quarter", help="The quarter, e.g. 2020Q4.")],
    actor: Annotated[str, typer.Option("--actor", help="Who records it (kept in the record and the audit log).")],
    note: Annotated[str, typer.Option("--note", help="A note (说明).")] = "",
    store: StoreOption = None,
) -> None:
    """Record one village's item state for a quarter (a later record for the same quarter corrects it)."""
    records = pd.DataFrame(
        [{"village_code": village_code, "item": item, "state": state, "quarter": quarter, "note": note}]
    )
    with existing_store(store) as (settings, backend):
        ids = record_checklist(
            backend,
            records,
            checklist=checklist_for(settings.layers_dir),
            actor=f"cli:{actor.strip()}" if actor.strip() else "",
        )
    out.print(Text(f"recorded {village_code} {item} = {state} for {quarter} (record {ids[0]})"))


def register(app: typer.Typer) -> None:
    app.add_typer(checklist_app, name="checklist")
