"""The `geoplan` command. Every command takes --store (a .gpkg path or a postgresql:// URL).

Exit status: 0 on success, 2 on bad input (one-line reason on stderr), 1 on an internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from geoplan import __version__
from geoplan.commands.common import StoreOption, check_output, err, open_configured, out, settings_for
from geoplan.commands.ledger import ledger_app
from geoplan.commands.monitoring import register as register_monitoring
from geoplan.commands.overlaps import overlaps_out_of_core, print_overlap_summary
from geoplan.commands.report import register as register_report
from geoplan.errors import READ_ONLY_MESSAGE, GeoplanError, InputError, Problem, is_read_only_refusal
from geoplan.settings import Settings
from geoplan.storage import LayerStore, WriteMode
from geoplan.store_setup import init_store

log = logging.getLogger("geoplan")

app = typer.Typer(
    name="geoplan",
    help="GIS planning and monitoring for Gaoming District: layers, 多规合一 overlaps, coverage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Store administration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
token_app = typer.Typer(help="Bearer tokens for the staff, planner and admin roles.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(ledger_app, name="ledger")
register_monitoring(app)  # indicators, snapshot, history, warnings
register_report(app)  # the quarterly report


def _print_problems(title: str, problems: list[Problem], *, limit: int = 20) -> None:
    if not problems:
        return
    err.print(f"[yellow]{title}: {len(problems)}[/yellow]")
    for problem in problems[:limit]:
        err.print(f"  - {problem}", markup=False, highlight=False)
    if len(problems) > limit:
        err.print(f"  … and {len(problems) - limit} more")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@app.command()
def version() -> None:
    """Print the geoplan version."""
    out.print(__version__)


@db_app.command("init")
def db_init(store: StoreOption = None) -> None:
    """Create every catalogue table in the store (idempotent; keeps existing data)."""
    settings, backend = open_configured(store)
    try:
        init_store(backend)
    finally:
        backend.close()
    out.print(f"store ready: {settings.store} ({len(backend.catalog)} layers)")


@app.command()
def demo(
    store: StoreOption = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic layers.")] = 20240501,
) -> None:
    """Build the Gaoming demo data (real outline and names, synthetic the rest) into the store."""
    from geoplan.demo import build_demo
    from geoplan.ingest import load_layers
    from geoplan.monitoring.ledger import load_records

    settings, backend = open_configured(store)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            building = progress.add_task("demo: building", total=None)
            data = build_demo(
                settings.layers_dir / "sources",
                seed=seed,
                progress=lambda step: progress.update(building, description=f"demo: {step}"),
            )
            progress.update(building, total=1, completed=1)
            init_store(backend)
            writing = progress.add_task("writing layers", total=len(data.layers) + 1)

            def wrote(name: str) -> None:
                progress.update(writing, description=f"writing {name}", advance=1)

            load_layers(backend, data.layers, actor="geoplan demo", on_layer=wrote)
            backend.write_raster("population", data.population, actor="geoplan demo")
            load_records(backend, data.progress, actor="geoplan demo")  # the projects' quarterly records
            progress.update(writing, advance=1)
        _print_layer_table(backend)
    finally:
        backend.close()
    out.print(f"demo data written to {settings.store}; every layer but the district outline is SYNTHETIC")


@app.command()
def layers(store: StoreOption = None) -> None:
    """List every catalogue layer with its feature count, CRS and bounds."""
    _, backend = open_configured(store)
    try:
        _print_layer_table(backend)
    finally:
        backend.close()


def _print_layer_table(backend: LayerStore) -> None:
    from geoplan.inventory import layer_summaries

    table = Table(title=f"layers in {backend.url}")
    for column in ("layer", "title", "kind", "features/cells", "CRS", "bounds", "synthetic"):
        table.add_column(column)
    for summary in layer_summaries(backend):
        layer = backend.catalog.get(summary.name)
        digits = 4 if summary.crs == "EPSG:4490" else 0
        bounds = "–" if summary.bounds is None else ", ".join(f"{v:.{digits}f}" for v in summary.bounds)
        table.add_row(
            summary.name,
            layer.title_zh,
            summary.kind,
            f"{summary.count:,}",
            summary.crs,
            bounds,
            "yes" if layer.synthetic else "no",
        )
    out.print(table)


@app.command("import")
def import_(
    layer: Annotated[str, typer.Argument(help="Catalogue layer name, e.g. projects.")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile, KML or CSV.")],
    crs: Annotated[
        str | None,
        typer.Option(help="CRS when the file has none: EPSG:4490, EPSG:4547, gcj02 (AMap exports)…"),
    ] = None,
    mode: Annotated[str, typer.Option(help="replace the layer, or append to it.")] = "replace",
    strict: Annotated[bool, typer.Option("--strict", help="Reject invalid geometries instead of repairing.")] = False,
    store: StoreOption = None,
) -> None:
    """Import a file into a layer after validating it against the catalogue (all or nothing)."""
    from geoplan.ingest import import_file

    if mode not in ("replace", "append"):
        raise InputError(f"--mode must be replace or append, not {mode!r}")
    write_mode: WriteMode = "replace" if mode == "replace" else "append"
    settings, backend = open_configured(store)
    try:
        with err.status(f"importing {file.name} into {layer}…"):
            report = import_file(
                backend,
                layer,
                file,
                crs=crs,
                mode=write_mode,
                strict=strict,
                actor=f"cli:{os.environ.get('USER', 'unknown')}",
                max_bytes=settings.max_import_bytes,
            )
    finally:
        backend.close()
    _print_problems("repaired geometries", report.repairs)
    _print_problems("warnings", report.warnings)
    out.print(f"{report.written} feature(s) written to {layer} ({report.mode})")


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help="Catalogue layer name.")],
    file: Annotated[Path, typer.Argument(help="Output: .geojson, .gpkg, .zip (Shapefile), .csv or .xlsx")],
    store: StoreOption = None,
) -> None:
    """Export a layer to a file; the format follows the file's suffix."""
    from geoplan.ingest import export_layer

    _, backend = open_configured(store)
    try:
        count = export_layer(backend, layer, file)
    finally:
        backend.close()
    out.print(f"{count} feature(s) of {layer} written to {file}")


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the web application (maps and the OGC API – Features) on the store."""
    import uvicorn

    settings = settings_for(store)
    if not settings.store.startswith("postgres") and not Path(settings.store).exists():
        raise InputError(f"no store at {settings.store}; build it with `geoplan demo` or `geoplan db init`")
    os.environ["GEOPLAN_STORE"] = settings.store  # the factory reads settings from the environment per worker
    uvicorn.run("web.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning")


def _registry(store: str | None):  # type: ignore[no-untyped-def]
    from geoplan.tokens import TokenRegistry, registry_engine

    settings, backend = open_configured(store)
    try:
        if not backend.is_initialised():
            raise InputError(f"the store {settings.store} is not initialised; run `geoplan db init` first")
    finally:
        backend.close()
    return TokenRegistry(registry_engine(settings.store))


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="staff, planner or admin.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for (unique).")],
    store: StoreOption = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from geoplan.access import Role

    registry = _registry(store)
    try:
        token = registry.create(name=name, role=Role.parse(role))
    finally:
        registry.close()
    err.print(f"token for {name!r} ({role}); keep it, it is not shown again:")
    out.print(token, markup=False, highlight=False)


@token_app.command("list")
def token_list(store: StoreOption = None) -> None:
    """List tokens (names, roles, dates; never the tokens themselves)."""
    registry = _registry(store)
    try:
        infos = registry.list()
    finally:
        registry.close()
    table = Table(title="tokens")
    for column in ("name", "role", "created", "revoked"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, info.role.label, info.created_at, info.revoked_at or "–")
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    store: StoreOption = None,
) -> None:
    """Revoke a token; it stops working at once."""
    registry = _registry(store)
    try:
        registry.revoke(name)
    finally:
        registry.close()
    out.print(f"token {name!r} revoked")


# --------------------------------------------------------------------------------------------- check-site
# The site compliance check (合规性审查). Exit 0 for a completed check whatever the verdict (the verdict is
# data: read it from the output or the JSON report), 2 for bad input (the site, an option, the rules file).

_REPORT_SUFFIXES = (".html", ".htm", ".json")
_SEVERITY_STYLE = {"high": "bold red", "medium": "dark_orange", "low": "yellow"}
_VERDICT_LINE = {
    "fail": "[bold red]FAIL (不通过)[/bold red]",
    "pass_with_warnings": "[bold yellow]PASS with warnings (通过，有提示事项)[/bold yellow]",
    "pass": "[bold green]PASS (通过)[/bold green]",
}


@app.command("check-site")
def check_site_command(
    file: Annotated[Path, typer.Argument(help="The site: one Polygon feature (GeoJSON, GeoPackage, zip, KML, CSV…).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report: .html (printable) or .json.")
    ] = None,
    crs: Annotated[
        str | None, typer.Option(help="CRS when the file has none: EPSG:4490, EPSG:4547, gcj02 (AMap)…")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Conflict rules YAML (default: rules/conflicts.yaml in the layers folder)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse an invalid outline instead of repairing.")] = False,
    store: StoreOption = None,
) -> None:
    """Check a proposed project site against the control layers (合规性审查); exit 0 whatever the verdict."""
    import json

    from rich.text import Text

    from geoplan.analysis.compliance_html import render_html
    from geoplan.analysis.compliance_service import check_site_in_store, layer_colours
    from geoplan.analysis.compliance_site import site_from_file
    from geoplan.analysis.rules import default_rules_path, load_rules
    from geoplan.storage import is_postgis_url

    if output is not None:
        if output.suffix.lower() not in _REPORT_SUFFIXES:
            raise InputError(f"-o {output.name}: the report is written as .html or .json, not {output.suffix!r}")
        if not output.parent.is_dir():
            raise InputError(f"-o {output}: folder {output.parent} does not exist")
    settings = settings_for(store)
    if not is_postgis_url(settings.store) and not Path(settings.store).is_file():
        raise InputError(f"no store at {settings.store}; build it with `geoplan demo` or pass --store")
    rules_path = rules or default_rules_path(settings.layers_dir)
    site = site_from_file(file, crs=crs, strict=strict, max_bytes=settings.max_import_bytes)
    _, backend = open_configured(store)
    try:
        rule_list = load_rules(rules_path, backend.catalog)
        with err.status(f"checking {file.name}…"):
            report = check_site_in_store(
                backend, site.frame, rules=rule_list, notes=site.notes, source=file.name, rules_source=rules_path.name
            )
        colours = layer_colours(backend.catalog)
    finally:
        backend.close()

    area = f"{report.site_area_m2:,.0f} m² ({report.site_area_m2 / 1e4:,.2f} ha)"
    out.print(f"site {file.name}: {area}; verdict: {_VERDICT_LINE[report.verdict]}")
    if report.site_name:
        out.print(Text(f"name: {report.site_name}"))
    if report.hits:
        table = Table(title="conflicts and warnings")
        for column in ("rule", "severity", "title", "layer", "overlap m²", "% of site", "features"):
            table.add_column(column, justify="right" if column in ("overlap m²", "% of site") else "left")
        for hit in report.hits:
            ids = ", ".join(hit.feature_ids[:8]) + (" …" if len(hit.feature_ids) > 8 else "")
            table.add_row(
                Text(hit.rule),
                Text(hit.severity, style=_SEVERITY_STYLE.get(hit.severity, "")),
                Text(hit.title_zh),
                Text(hit.layer),
                f"{hit.overlap_m2:,.0f}",
                f"{hit.overlap_pct:.2f}",
                Text(ids or "–"),
            )
        out.print(table)
    clear = ", ".join(r.rule for r in report.rules_without_hits) or "–"
    out.print(Text(f"checked without a hit: {clear}"))
    for note in report.notes:
        out.print(Text(f"note: {note}"))
    if report.synthetic:
        out.print(f"[yellow]SYNTHETIC demo data: {', '.join(report.synthetic_layers)}; not for approvals[/yellow]")
    if output is not None:
        if output.suffix.lower() == ".json":
            text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
        else:
            text = render_html(report, layer_colours=colours)
        output.write_text(text, encoding="utf-8")
        out.print(Text(f"report written to {output}"))


# --------------------------------------------------------------------------------------------- 多规合一 overlaps

SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="With --partitioned: a dask scheduler address [GEOPLAN_DASK_SCHEDULER]."),
]


def _cluster(settings: Settings, workers: int | None, scheduler: str | None) -> dict[str, Any]:
    """`local_client`'s options: the command's, else the settings'."""
    return {
        "scheduler": scheduler or settings.dask_scheduler,
        "workers": workers or settings.dask_workers,
        "memory_limit": settings.dask_memory_limit,
    }


RulesOption = Annotated[
    Path | None, typer.Option("--rules", help="Conflict rules YAML [default: layers/rules/conflicts.yaml]")
]


@app.command()
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

    from geoplan.analysis.conflicts_service import rules_for, run_overlaps
    from geoplan.analysis.overlap import OverlapSettings
    from geoplan.analysis.summary import summarise
    from geoplan.io import FORMATS, supported, write_file

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
        cluster = _cluster(settings, workers, scheduler)
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
                from geoplan.analysis.overlap_partitioned import local_client, run_overlaps_partitioned

                with local_client(**cluster) as client:
                    patches = run_overlaps_partitioned(
                        backend, rules=rule_list, settings=overlap_settings, client=client
                    )
            elif pushdown:
                from geoplan.analysis.overlap_pushdown import run_overlaps_in_database

                patches = run_overlaps_in_database(backend, rules=rule_list, settings=overlap_settings)
            else:
                patches = run_overlaps(backend, rules=rule_list, settings=overlap_settings, workers=workers or 2)
    finally:
        backend.close()
    print_overlap_summary(summarise(patches, rules=rule_list), min_area=min_area, min_width=min_width)
    if output is not None:
        write_file(patches, output, layer_name="conflict_patches")
        out.print(f"{len(patches)} patch(es) written to {output}", markup=False, highlight=False)


@app.command()
def mark(
    patch_id: Annotated[str, typer.Argument(help="The patch id (16 hex digits, from `geoplan overlaps -o`).")],
    status: Annotated[str, typer.Option(help="accepted, to_adjust or resolved.")],
    note: Annotated[str, typer.Option(help="Why (kept in the mark history).")] = "",
    rules: RulesOption = None,
    store: StoreOption = None,
) -> None:
    """Mark a conflict patch (accepted / to_adjust / resolved); marks keep their history and survive re-runs."""
    from geoplan.analysis.conflicts_service import mark_patch, rules_for

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
        )
    finally:
        backend.close()
    shown = f"patch {recorded.patch_id} ({recorded.rule}) marked {recorded.status} by {recorded.actor}"
    out.print(shown, markup=False, highlight=False)


# --------------------------------------------------------------------------------------------- coverage
# The ten-minute cultural circle (issue 5). Options given explicitly apply to urban and rural units alike.

_TABLE_SUFFIXES = (".csv", ".xlsx", ".gpkg", ".geojson")


def _coverage_rules(  # type: ignore[no-untyped-def]
    store: str | None,
    rules_file: Path | None,
    mode: str | None,
    minutes: float | None,
    speed_kmh: float | None,
    access_m: float | None,
):
    """The rules file (default: rules/coverage.yaml in the layers folder) with the explicit options applied."""
    from geoplan.analysis.coverage_config import default_coverage_rules_path, load_coverage_rules, rules_with_overrides

    if mode is not None and mode not in ("network", "euclidean"):
        raise InputError(f"--mode must be network or euclidean, not {mode!r}")
    path = rules_file if rules_file is not None else default_coverage_rules_path(settings_for(store).layers_dir)
    base = load_coverage_rules(path)
    return rules_with_overrides(base, mode=mode, minutes=minutes, speed_kmh=speed_kmh, access_m=access_m)


def _rules_title(rules) -> str:  # type: ignore[no-untyped-def]
    def one(s) -> str:  # type: ignore[no-untyped-def]
        access = f", access {s.access_m:g} m" if s.mode == "network" else ""
        return f"{s.mode}, {s.minutes:g} min at {s.speed_kmh:g} km/h{access}"

    if rules.urban == rules.rural:
        return one(rules.urban)
    return f"urban: {one(rules.urban)}; rural: {one(rules.rural)}"


def _coverage_inputs(backend: LayerStore, *, network: bool):  # type: ignore[no-untyped-def]
    """villages, culture_facilities, the population raster and (network mode) the walking graph."""
    from geoplan.analysis.network import walk_graph_for

    graph = walk_graph_for(backend) if network else None
    return backend.read("villages"), backend.read("culture_facilities"), backend.read_raster("population"), graph


def _number_option(name: str):  # type: ignore[no-untyped-def]
    """A float parser that reports a malformed number as InputError (exit 2, one line)."""

    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{name} must be a number, not {text!r}") from None

    return parse


ModeOption = Annotated[
    str | None,
    typer.Option("--mode", help="network or euclidean, for urban and rural units (default: the rules file's)"),
]
MinutesOption = Annotated[
    float | None,
    typer.Option(
        "--minutes", parser=_number_option("--minutes"), help="Time limit, minutes (default: the rules file's, 10)"
    ),
]
SpeedOption = Annotated[
    float | None,
    typer.Option(
        "--speed-kmh", parser=_number_option("--speed-kmh"), help="Speed, km/h (default: the rules file's, 4.5)"
    ),
]
AccessOption = Annotated[
    float | None,
    typer.Option(
        "--access-m",
        parser=_number_option("--access-m"),
        help="Largest straight link to the network, m (default: the rules file's, 200)",
    ),
]
CoverageRulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Urban and rural coverage rules, YAML (default: layers/rules/coverage.yaml)",
    ),
]


@app.command()
def coverage(
    mode: ModeOption = None,
    minutes: MinutesOption = None,
    speed_kmh: SpeedOption = None,
    access_m: AccessOption = None,
    rules_file: CoverageRulesOption = None,
    kinds: Annotated[
        str | None, typer.Option("--kinds", help="Facility kinds, comma-separated, e.g. 自助图书馆 [default: all]")
    ] = None,
    below: Annotated[float, typer.Option("--below", help="Count the villages under this coverage %.")] = 50.0,
    capacity: Annotated[
        bool,
        typer.Option("--capacity", help="Add 2SFCA accessibility (facility capacity per 1,000 residents in reach)."),
    ] = False,
    norm: Annotated[
        float | None,
        typer.Option(
            "--norm",
            parser=_number_option("--norm"),
            help="With --capacity: accessibility norm per 1,000 residents (default: the district's own supply)",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the village table: .csv, .xlsx, .gpkg or .geojson")
    ] = None,
    partitioned: Annotated[
        bool, typer.Option("--partitioned", help="Villages in spatial partitions on a dask cluster (local by default).")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="With --partitioned: local dask workers [GEOPLAN_DASK_WORKERS].")
    ] = None,
    scheduler: SchedulerOption = None,
    store: StoreOption = None,
) -> None:
    """Ten-minute cultural-circle coverage: per town, the district total, the villages below --below %.

    With --capacity, also the two-step floating catchment accessibility (2SFCA) of the facilities' capacity.
    """
    import geopandas as gpd
    import pandas as pd
    from rich.text import Text

    from geoplan.analysis.capacity import capacity_accessibility, town_accessibility
    from geoplan.analysis.coverage import CoverageResult, compute_coverage, district_total, town_rollup
    from geoplan.io import write_file

    if norm is not None and not capacity:
        raise InputError("--norm needs --capacity")
    rules = _coverage_rules(store, rules_file, mode, minutes, speed_kmh, access_m)
    kind_list = None if kinds is None else [k.strip() for k in kinds.split(",") if k.strip()]
    check_output(output, _TABLE_SUFFIXES)
    if (workers is not None or scheduler is not None) and not partitioned:
        raise InputError("--workers and --scheduler go with --partitioned")
    settings, backend = open_configured(store)
    try:
        network = "network" in (rules.urban.mode, rules.rural.mode)
        villages, facilities, population, graph = _coverage_inputs(backend, network=network)
    finally:
        backend.close()
    inputs: dict[str, Any] = {
        "villages": villages,
        "facilities": facilities,
        "population": population,
        "graph": graph,
        "rules": rules,
        "kinds": kind_list,
    }
    with err.status("computing coverage…"):
        if partitioned:
            from geoplan.analysis.coverage_partitioned import PartitionedCoverage, coverage_partitioned
            from geoplan.analysis.overlap_partitioned import local_client

            with local_client(**_cluster(settings, workers, scheduler)) as client:
                result: CoverageResult | PartitionedCoverage = coverage_partitioned(**inputs, client=client)
        else:
            result = compute_coverage(**inputs)
        access = None
        if capacity:
            access = capacity_accessibility(
                villages=villages,
                facilities=facilities,
                population=population,
                graph=graph,
                rules=rules,
                kinds=kind_list,
                norm=norm,
            )
    table = result.table
    if access is not None:
        table = pd.concat([table, access.table.drop(columns="village_code")], axis=1)
    town_table = Table(title=f"coverage by town ({_rules_title(rules)})")
    columns = ["town", "villages", "population", "covered", "coverage %", "mean min", "off network"]
    if access is not None:
        columns += ["access /1000", "below norm %"]
    for column in columns:
        town_table.add_column(column, justify="left" if column == "town" else "right")

    def row(name: str, r: dict[str, float]) -> list[Text | str]:
        cells: list[Text | str] = [
            Text(name),
            f"{int(r['villages']):,}",
            f"{r['population']:,.0f}",
            f"{r['covered_population']:,.0f}",
            f"{r['coverage_pct']:.1f}",
            f"{r['mean_minutes']:.1f}",
            f"{r['off_network_population']:,.0f}",
        ]
        if access is not None:
            cells += [f"{r['accessibility']:.1f}", f"{r['below_norm_pct']:.1f}"]
        return cells

    towns = town_rollup(table)
    total = district_total(table)
    if access is not None:
        towns = towns.merge(town_accessibility(table), on="town", how="left")
        whole = town_accessibility(table.assign(town="district")).iloc[0]
        total = {
            **total,
            "accessibility": float(whole["accessibility"]),
            "below_norm_pct": float(whole["below_norm_pct"]),
        }
    for record in towns.to_dict("records"):
        town_table.add_row(*row(str(record["town"]), {str(key): v for key, v in record.items()}))
    town_table.add_row(*row("district", total), style="bold")
    out.print(town_table)
    pct = result.table["coverage_pct"]
    low = int((pct < below).sum())
    out.print(
        Text(
            f"district: {total['covered_population']:,.0f} of {total['population']:,.0f} people covered "
            f"({total['coverage_pct']:.1f} %); {low} of {len(result.table)} villages below {below:g} %"
        )
    )
    if access is not None:
        out.print(
            Text(
                f"capacity (2SFCA): {total['accessibility']:.1f} visits/day per 1,000 residents in reach on average; "
                f"{total['below_norm_pct']:.1f} % of people below the norm of {access.norm:.1f}"
                f"{'' if norm is not None else ' (the district supply)'}"
            )
        )
        if access.facilities_without_capacity:
            left_out = ", ".join(access.facilities_without_capacity)
            err.print(Text(f"facilities without a capacity, left out of the capacity check: {left_out}"))
    if result.facilities_off_network:
        err.print(Text(f"facilities off the network: {', '.join(result.facilities_off_network)}"))
    if output is not None:
        frame = gpd.GeoDataFrame(table, geometry=villages.geometry.to_numpy(), crs=villages.crs)
        write_file(frame, output, layer_name="village_coverage")
        out.print(Text(f"{len(frame)} village(s) written to {output}"))


@app.command("suggest-sites")
def suggest_sites_command(
    k: Annotated[int, typer.Option("--k", help="How many new sites.")],
    mode: ModeOption = None,
    minutes: MinutesOption = None,
    speed_kmh: SpeedOption = None,
    access_m: AccessOption = None,
    rules_file: CoverageRulesOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the sites: .geojson, .gpkg or .csv")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Greedily the K new sites (network nodes) that newly cover the most uncovered people, with their gains."""
    from rich.text import Text

    from geoplan.analysis.coverage import compute_coverage
    from geoplan.analysis.siting import suggest_sites
    from geoplan.io import write_file

    if k < 1:
        raise InputError(f"--k must be at least 1, not {k}")
    rules = _coverage_rules(store, rules_file, mode, minutes, speed_kmh, access_m)
    check_output(output, (".geojson", ".gpkg", ".csv"))
    _, backend = open_configured(store)
    try:
        # the candidate sites are the network's nodes, so even a Euclidean study needs the graph
        villages, facilities, population, graph = _coverage_inputs(backend, network=True)
    finally:
        backend.close()
    with err.status("choosing sites…"):
        result = compute_coverage(
            villages=villages, facilities=facilities, population=population, graph=graph, rules=rules
        )
        sites = suggest_sites(result=result, rules=rules, k=k, graph=graph)
    table = Table(title=f"{len(sites)} suggested site(s), greedy by newly covered people")
    for column in ("rank", "site", "lon", "lat", "gain", "covered", "coverage %"):
        table.add_column(column, justify="left" if column == "site" else "right")
    for record, point in zip(sites.to_dict("records"), sites.geometry, strict=True):
        table.add_row(
            str(record["rank"]),
            Text(str(record["site_id"])),
            f"{point.x:.5f}",
            f"{point.y:.5f}",
            f"{record['gain_population']:,.0f}",
            f"{record['cumulative_covered_population']:,.0f}",
            f"{record['cumulative_coverage_pct']:.1f}",
        )
    out.print(table)
    if len(sites) < k:
        out.print(Text(f"only {len(sites)} site(s) add coverage"))
    if output is not None:
        write_file(sites, output, layer_name="suggested_sites")
        out.print(Text(f"{len(sites)} site(s) written to {output}"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps typed errors to exit codes and one-line messages (no traceback for the user)."""
    try:
        # Standalone mode lets typer/click report usage errors (exit 2) and Ctrl-C (exit 1) themselves, whichever
        # copy of click this typer version uses; only our own exceptions come through to the handlers below.
        app(args=argv, standalone_mode=True, prog_name="geoplan")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        if hasattr(exc, "problems"):
            _print_problems("problems", exc.problems)
        return 2
    except (GeoplanError, Exception) as exc:
        if os.environ.get("GEOPLAN_DEBUG"):
            raise
        if is_read_only_refusal(exc):
            err.print(f"error: {READ_ONLY_MESSAGE}", markup=False, highlight=False)
            return 1
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        return 1
    return 0


def run() -> None:
    sys.exit(main())
