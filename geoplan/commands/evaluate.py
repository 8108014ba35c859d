"""`geoplan evaluate`: the plan-end evaluation (三年行动计划实施评估) as a workbook, a printable HTML file or a PDF.

geoplan evaluate -o evaluation.pdf      # the plan in layers/plan.yaml, from its start to monitored_until

A command of its own rather than `geoplan report --evaluation`: the quarterly report describes one quarter
(`--quarter`), the evaluation the plan's whole period as plan.yaml sets it, so it has no quarter to choose and
none of the report's options would mean anything to it. The format follows the output's suffix (.xlsx, .html,
.pdf). Registered by `register(app)` in geoplan/cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from geoplan.commands.common import StoreOption, err, open_existing, out
from geoplan.errors import InputError
from geoplan.reporting.render import format_for_path

__all__ = ["evaluate", "register"]


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


def evaluate(
    output: Annotated[Path, typer.Option("--output", "-o", help="The evaluation file: .xlsx, .html or .pdf")],
    store: StoreOption = None,
) -> None:
    """The plan-end evaluation of the plan in layers/plan.yaml: projects per task area (finished on time or late,
    late, stalled, not started), every indicator at the start and the end against the milestone targets, trends
    over the plan's snapshots, and maps of the change (coverage then and now, conflicts resolved)."""
    from geoplan.reporting.evaluation_data import gather_evaluation

    chosen = format_for_path(output)
    if not output.parent.is_dir():
        raise InputError(f"-o {output}: folder {output.parent} does not exist")
    settings, backend = open_existing(store)
    try:
        with err.status("computing the indicators at the plan's milestones…"):
            data = gather_evaluation(backend, layers_dir=settings.layers_dir)
    finally:
        backend.close()
    with err.status(f"writing the {chosen.name} evaluation…"):
        content = chosen.render_evaluation(data)
    output.write_bytes(content)
    total = data.outcome_counts.loc["合计"].to_dict()
    counts = {str(k): int(v) for k, v in total.items()}
    start, end = data.moments[0][1].quarter, data.moments[-1][1].quarter
    out.print(
        Text(
            f"evaluation of {data.plan.title_zh} ({start}–{end}) written to {output}: {counts['total']} projects, "
            f"{counts['finished_on_time']} finished on time, {counts['finished_late']} late, "
            f"{counts['late']} unfinished past their end year; {len(data.indicators)} indicators; "
            f"{data.conflicts.count('resolved')} conflict patches resolved"
        )
    )
