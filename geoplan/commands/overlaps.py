"""`geoplan overlaps` and `geoplan mark`: 多规合一 conflict patches by the rule table, and planners' marks on them.

A run is in memory (default), partitioned on a dask cluster, out of core (patches streamed to disk) or pushed
down into PostGIS; all print the same totals by rule and by town."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule
from geoplan.analysis.summary import SEVERITY_RANK, OverlapSummary
from geoplan.commands.common import SchedulerOption, StoreOption, cluster_options, err, open_configured, out
from geoplan.errors import InputError
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

    from geoplan.analysis.overlap_partitioned import DEFAULT_PARTITION_ROWS
    from geoplan.peak_memory import peak_rss_mb
    from geoplan.services.dask_cluster import local_client
    from geoplan.services.overlap_out_of_core import run_overlaps_out_of_core, write_patches_gpkg

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
    rank = summary.by_rule["severity"].map(SEVERITY_RANK).fillna(len(SEVERITY_RANK))
    by_rule = summary.by_rule.assign(_rank=rank).sort_values(
        ["_rank", "area_m2"], ascending=[True, False], kind="stable"
    )
    for row in by_rule.itertuples(index=False):
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
    out.print(exempt_line(summary), markup=False, highlight=False, soft_wrap=True)


def exempt_line(summary: OverlapSummary) -> str:
    """The exempt patches' total on a line of its own: listed in the output, never part of a total above."""
    if not summary.exempt_patches:
        return "豁免 exempt: 0 patches (no rule's exemption applies)"
    exempt = summary.exempt
    per_rule = "; ".join(
        f"{code} {count:,} / {area:,.1f} m²"
        for code, count, area in zip(
            exempt["rule"].astype(str), exempt["patches"].astype(int), exempt["area_m2"].astype(float), strict=True
        )
    )
    return (
        f"豁免 exempt (listed with exempt = true, not in the totals above): {summary.exempt_patches:,} patch(es), "
        f"{summary.exempt_area_m2:,.1f} m² (ellipsoidal {summary.exempt_area_ellipsoid_m2:,.1f} m²): {per_rule}"
    )


# --------------------------------------------------------------------------------------------- 多规合一 overlaps

RulesOption = Annotated[
    Path | None, typer.Option("--rules", help="Conflict rules YAML [default: layers/rules/conflicts.yaml]")
]


def overlaps(
    rules: RulesOption = None,
    min_area: Annotated[float, typer.Option("--min-area", help="Drop patch parts smaller than this (m²).")] = 10.0,
    min_width: Annotated[float, typer.Option("--min-width", help="Drop patch parts narrower than this (m).")] = 2.0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the patches: .gpkg, .geojson, .csv, .zip or .xlsx")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Threads for the overlay [default: 2]; with --partitioned, dask workers [GEOPLAN_DASK_WORKERS]."
        ),
    ] = None,
    partitioned: Annotated[
        bool, typer.Option("--partitioned", help="Partition in space and run on a dask cluster (local by default).")
    ] = False,
    scheduler: SchedulerOption = None,
    pushdown: Annotated[
        bool, typer.Option("--pushdown", help="Overlay in the PostGIS database, streamed back in batches.")
    ] = False,
    out_of_core: Annotated[
        bool,
        typer.Option(
            "--out-of-core",
            help="With --partitioned: stage the layers to disk and write patches as found, so no process holds a "
            "whole layer (-o must be .gpkg).",
        ),
    ] = False,
    partition_rows: Annotated[
        int | None,
        typer.Option(
            "--partition-rows",
            help="With --out-of-core: features per partition [default: 20000]; smaller needs less memory per task.",
        ),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", help="With --out-of-core: where staged layers and patches go [default: temp dir]."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """多规合一: find conflict patches (差异图斑) by the rule table; print totals by rule and by town."""

    from geoplan.analysis.overlap import OverlapSettings
    from geoplan.analysis.summary import by_severity, summarise
    from geoplan.io import FORMATS, supported, write_file
    from geoplan.services.overlap import run_overlaps
    from geoplan.services.rule_files import rules_for

    if partitioned and pushdown:
        raise InputError("--partitioned and --pushdown are two ways to run the overlap; choose one")
    if (out_of_core or work_dir is not None) and not partitioned:
        raise InputError("--out-of-core and --work-dir go with --partitioned")
    if (work_dir is not None or partition_rows is not None) and not out_of_core:
        raise InputError("--work-dir and --partition-rows go with --out-of-core")
    if partition_rows is not None and partition_rows < 1:
        raise InputError(f"--partition-rows must be at least 1, not {partition_rows}")
    if out_of_core and output is not None and output.suffix.lower() != ".gpkg":
        raise InputError(f"{output.name}: an out-of-core run streams its patches to a .gpkg file only")
    if output is not None and getattr(FORMATS.get(output.suffix.lower()), "writer", None) is None:
        raise InputError(f"{output.name}: cannot write '{output.suffix}' files; supported: {supported(writable=True)}")
    settings, backend = open_configured(store)
    try:
        rule_list = rules_for(backend.catalog, settings.layers_dir, rules)
        overlap_settings = OverlapSettings(min_area_m2=min_area, min_width_m=min_width)
        cluster = cluster_options(settings, workers, scheduler)
        with err.status("finding conflict patches…"):
            if out_of_core:
                overlaps_out_of_core(
                    backend,
                    rule_list,
                    overlap_settings,
                    cluster=cluster,
                    work_dir=work_dir,
                    output=output,
                    partition_rows=partition_rows,
                )
                return
            if partitioned:
                from geoplan.services.dask_cluster import local_client

                with local_client(**cluster) as client:
                    patches = run_overlaps(backend, rules=rule_list, settings=overlap_settings, client=client)
            elif pushdown:
                from geoplan.services.overlap_pushdown import run_overlaps_in_database

                patches = run_overlaps_in_database(backend, rules=rule_list, settings=overlap_settings)
            else:
                patches = run_overlaps(backend, rules=rule_list, settings=overlap_settings, workers=workers or 2)
    finally:
        backend.close()
    print_overlap_summary(summarise(patches, rules=rule_list), min_area=min_area, min_width=min_width)
    if output is not None:
        write_file(by_severity(patches), output, layer_name="conflict_patches")
        out.print(f"{len(patches)} patch(es) written to {output}", markup=False, highlight=False)


def mark(
    patch_id: Annotated[str, typer.Argument(help="The patch id (16 hex digits, from `geoplan overlaps -o`).")],
    status: Annotated[str, typer.Option(help="accepted, to_adjust or resolved.")],
    note: Annotated[str, typer.Option(help="Why (kept in the mark history).")] = "",
    rules: RulesOption = None,
    store: StoreOption = None,
) -> None:
    """Mark a conflict patch (accepted / to_adjust / resolved); marks keep their history and survive re-runs."""
    from geoplan.services.overlap import mark_patch
    from geoplan.services.rule_files import default_rules_path, rule_file_stamp, rules_for

    settings, backend = open_configured(store)
    try:
        rule_list = rules_for(backend.catalog, settings.layers_dir, rules)
        recorded = mark_patch(
            backend,
            patch_id,
            rules=rule_list,
            status=status,
            note=note,
            actor=f"cli:{os.environ.get('USER', 'unknown')}",
            rule_files=[rule_file_stamp(rules or default_rules_path(settings.layers_dir))],
        )
    finally:
        backend.close()
    shown = f"patch {recorded.patch_id} ({recorded.rule}) marked {recorded.status} by {recorded.actor}"
    out.print(shown, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("overlaps")(overlaps)
    app.command("mark")(mark)
