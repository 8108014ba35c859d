"""The `geoplan` command. Every command takes --store (a .gpkg path or a postgresql:// URL).

Exit status: 0 on success, 2 on bad input (one-line reason on stderr), 1 on an internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
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
from geoplan.catalog import Catalog, load_catalog
from geoplan.errors import GeoplanError, InputError, Problem
from geoplan.settings import Settings
from geoplan.storage import LayerStore, WriteMode, open_store

log = logging.getLogger("geoplan")
# Tables stay readable when piped to a file or a CI log, where no terminal width is known.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

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

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="GeoPackage path or postgresql:// URL [default: $GEOPLAN_STORE or data/gaoming.gpkg]"),
]


def _settings(store: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"store": store}) if store else settings


def _open(store: str | None) -> tuple[Settings, LayerStore]:
    settings = _settings(store)
    catalog: Catalog = load_catalog(settings.layers_dir)
    return settings, open_store(settings.store, catalog)


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
    settings, backend = _open(store)
    try:
        backend.init()
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

    settings, backend = _open(store)
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
            backend.init()
            writing = progress.add_task("writing layers", total=len(data.layers) + 1)

            def wrote(name: str) -> None:
                progress.update(writing, description=f"writing {name}", advance=1)

            load_layers(backend, data.layers, actor="geoplan demo", on_layer=wrote)
            backend.write_raster("population", data.population, actor="geoplan demo")
            progress.update(writing, advance=1)
        _print_layer_table(backend)
    finally:
        backend.close()
    out.print(f"demo data written to {settings.store}; every layer but the district outline is SYNTHETIC")


@app.command()
def layers(store: StoreOption = None) -> None:
    """List every catalogue layer with its feature count, CRS and bounds."""
    _, backend = _open(store)
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
    settings, backend = _open(store)
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

    _, backend = _open(store)
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

    settings = _settings(store)
    if not settings.store.startswith("postgres") and not Path(settings.store).exists():
        raise InputError(f"no store at {settings.store}; build it with `geoplan demo` or `geoplan db init`")
    os.environ["GEOPLAN_STORE"] = settings.store  # the factory reads settings from the environment per worker
    uvicorn.run("web.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning")


def _registry(store: str | None):  # type: ignore[no-untyped-def]
    from geoplan.tokens import TokenRegistry, registry_engine

    settings, backend = _open(store)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps typed errors to exit codes and one-line messages (no traceback for the user)."""
    try:
        result = app(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        if hasattr(exc, "problems"):
            _print_problems("problems", exc.problems)
        return 2
    except (GeoplanError, Exception) as exc:
        if os.environ.get("GEOPLAN_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
