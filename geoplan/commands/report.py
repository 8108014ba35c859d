"""`geoplan report`: the quarterly monitoring report (季度监测报告) as a workbook, a printable HTML file or a PDF.

geoplan report -o report.xlsx                    # the current quarter (now; the plan's last once past it)
geoplan report --quarter 2026Q2 -o report.pdf    # as of the end of 2026Q2 (the audit log is replayed)

The format follows the output's suffix (.xlsx, .html, .pdf). Registered by `register(app)` in geoplan/cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from geoplan.commands.common import StoreOption, err, open_existing, out
from geoplan.commands.monitoring import say_plan_default
from geoplan.errors import InputError
from geoplan.monitoring.plan_period import plan_for
from geoplan.reporting.render import format_for_path
from geoplan.services.indicators import chosen_for, definitions_for

__all__ = ["register", "report"]


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The report file: .xlsx, .html or .pdf")],
    quarter: Annotated[
        str | None,
        typer.Option(
            "--quarter",
            help="The quarter, e.g. 2026Q2 [default: the current quarter, or the plan's last once today is past it]",
        ),
    ] = None,
    definitions: Annotated[
        Path | None,
        typer.Option(
            "--definitions", help="Indicator definitions YAML [default: indicators.yaml in the layers folder]"
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """The quarterly report: every indicator with its target and change since the previous snapshot, the warnings,
    charts, trends and two small maps."""
    from geoplan.reporting.report_data import gather_report

    chosen = format_for_path(output)
    if not output.parent.is_dir():
        raise InputError(f"-o {output}: folder {output.parent} does not exist")
    settings, backend = open_existing(store)
    try:
        indicator_set = definitions_for(backend, settings.layers_dir, definitions)
        plan = plan_for(settings.layers_dir)
        moment = chosen_for(backend, plan, None, quarter, names=("--as-of", "--quarter"))
        if quarter is None:
            say_plan_default(plan, moment, verb=("报告", "reporting"))
        with err.status("computing the indicators…"):
            data = gather_report(
                backend, layers_dir=settings.layers_dir, quarter=moment.quarter, definitions=indicator_set
            )
    finally:
        backend.close()
    with err.status(f"writing the {chosen.name} report…"):
        content = chosen.render(data)
    output.write_bytes(content)
    previous = f"snapshot {data.previous.id}" if data.previous is not None else "no earlier snapshot"
    counts = f"{len(data.definitions)} indicators, {len(data.table)} rows, {len(data.warnings)} warning(s)"
    out.print(
        Text(
            f"report of {data.quarter} (as of {data.as_of_local}, 北京时间) written to {output}: {counts}; "
            f"changes against {previous}"
        )
    )
