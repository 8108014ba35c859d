"""`geoplan overlaps`' two ways of reporting: the totals table of any run, and the out-of-core run that never holds
its patches."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from rich.table import Table

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule
from geoplan.analysis.summary import OverlapSummary
from geoplan.commands.common import out
from geoplan.storage import LayerStore


def overlaps_out_of_core(
    backend: LayerStore,
    rules: list[ConflictRule],
    settings: OverlapSettings,
    *,
    cluster: dict[str, Any],
    work_dir: Path | None,
    output: Path | None,
    partition_rows: int | None = None,
) -> None:
    """`geoplan overlaps --partitioned --out-of-core`: the patches go to disk, the totals to the terminal."""
    import tempfile

    from geoplan.analysis.overlap_out_of_core import run_overlaps_out_of_core, write_patches_gpkg
    from geoplan.analysis.overlap_partitioned import DEFAULT_PARTITION_ROWS, local_client
    from geoplan.peak_memory import peak_rss_mb

    with contextlib.ExitStack() as stack:
        directory = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geoplan-overlap-")))
        client = stack.enter_context(local_client(**cluster))
        result = run_overlaps_out_of_core(
            backend,
            rules=rules,
            client=client,
            work_dir=directory,
            settings=settings,
            partition_rows=partition_rows or DEFAULT_PARTITION_ROWS,
        )
        print_overlap_summary(result.summary, min_area=settings.min_area_m2, min_width=settings.min_width_m)
        peaks = ", ".join(f"{peak:,.0f}" for peak in sorted(result.worker_peak_mb.values()))
        out.print(
            f"{result.patches:,} patch(es), {result.area_m2:,.3f} m², id digest {result.id_digest}; "
            f"{result.input_rows:,} input features, at most {result.largest_task_rows:,} in one task; "
            f"peak memory: this process {peak_rss_mb():,.0f} MB, workers {peaks} MB",
            markup=False,
            highlight=False,
        )
        if output is not None:
            written = write_patches_gpkg(result, output)
            out.print(f"{written} patch(es) written to {output}", markup=False, highlight=False)
        elif work_dir is not None:
            out.print(f"patches kept as GeoParquet under {work_dir / 'patches'}", markup=False, highlight=False)


def print_overlap_summary(summary: OverlapSummary, *, min_area: float, min_width: float) -> None:
    from rich.text import Text

    limits = f"parts under {min_area:g} m² or narrower than {min_width:g} m dropped"
    rule_table = Table(title=f"conflict patches by rule ({limits})")
    for column in ("rule", "title", "severity", "patches", "area m²", "ellipsoidal m²"):
        rule_table.add_column(column, justify="right" if column in ("patches", "area m²", "ellipsoidal m²") else "left")
    for row in summary.by_rule.itertuples(index=False):
        rule_table.add_row(  # rule files are user input: Text, never markup
            Text(str(row.rule)),
            Text(str(row.title)),
            Text(str(row.severity)),
            f"{row.patches:,}",
            f"{row.area_m2:,.1f}",
            f"{row.area_ellipsoid_m2:,.1f}",
        )
    out.print(rule_table)
    town_table = Table(title="conflict patches by town (demo towns are SYNTHETIC polygons)")
    for column in ("town", "patches", "high", "medium", "low", "area m²", "ellipsoidal m²"):
        town_table.add_column(column, justify="left" if column == "town" else "right")
    for row in summary.by_town.itertuples(index=False):
        town_table.add_row(
            Text(str(row.town)),
            f"{row.patches:,}",
            str(row.high),
            str(row.medium),
            str(row.low),
            f"{row.area_m2:,.1f}",
            f"{row.area_ellipsoid_m2:,.1f}",
        )
    out.print(town_table)
