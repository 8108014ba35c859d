"""`geoplan db init`, `demo`, `layers`, `import`, `export`: building a store and moving layers in and out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from geoplan.commands.common import (
    StoreOption,
    err,
    open_configured,
    out,
    print_problems,
)
from geoplan.errors import InputError
from geoplan.services.store_setup import init_store
from geoplan.storage import LayerStore, WriteMode


def db_init(store: StoreOption = None) -> None:
    """Create every catalogue table in the store (idempotent; keeps existing data)."""
    settings, backend = open_configured(store)
    try:
        init_store(backend)
    finally:
        backend.close()
    out.print(f"store ready: {settings.store} ({len(backend.catalog)} layers)")


def demo(
    store: StoreOption = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic layers.")] = 20240501,
    snapshots: Annotated[
        bool, typer.Option("--snapshots/--no-snapshots", help="Record the quarterly snapshots 2017Q4–2020Q4.")
    ] = True,
) -> None:
    """Build the Gaoming demo data (real outline and names, synthetic the rest) into a new store, with its
    history 2017Q3–2020Q4 (dated writes) and, unless --no-snapshots, its quarterly snapshots."""
    from geoplan.demo import build_demo
    from geoplan.demo.history import write_demo

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
            writing = progress.add_task("writing the demo's history 2017Q3–2020Q4", total=None)
            write_demo(
                backend,
                data,
                layers_dir=settings.layers_dir,
                actor="geoplan demo",
                seed=seed,
                snapshots=snapshots,
                on_step=lambda name: progress.update(writing, description=f"writing {name}"),
            )
            progress.update(writing, total=1, completed=1)
        _print_layer_table(backend)
    finally:
        backend.close()
    out.print(
        f"demo data written to {settings.store} with its history 2017Q3–2020Q4"
        + (" and quarterly snapshots 2017Q4–2020Q4" if snapshots else "")
        + "; every layer but the district outline is SYNTHETIC"
    )


def layers(store: StoreOption = None) -> None:
    """List every catalogue layer with its feature count, CRS and bounds."""
    _, backend = open_configured(store)
    try:
        _print_layer_table(backend)
    finally:
        backend.close()


SYNTHETIC_COLUMN = {"demo": "yes", "partly": "partly", "real": "no (replaced)", "empty": "–"}
"""`geoplan layers`' synthetic column by where a catalogue-synthetic layer's contents come from."""


def _print_layer_table(backend: LayerStore) -> None:
    from geoplan.services.inventory import layer_summaries
    from geoplan.services.provenance import layer_origins

    origins = {o.name: o.origin for o in layer_origins(backend)}
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
            SYNTHETIC_COLUMN[origins[layer.name]] if layer.name in origins else "no",
        )
    out.print(table)


def import_(
    layer: Annotated[str, typer.Argument(help="Catalogue layer name, e.g. projects.")],
    file: Annotated[
        Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile, KML or CSV; any GDAL raster for population.")
    ],
    crs: Annotated[
        str | None,
        typer.Option(help="CRS when the file has none: EPSG:4490, EPSG:4547, gcj02 (AMap exports)…"),
    ] = None,
    mode: Annotated[str, typer.Option(help="replace the layer, or append to it.")] = "replace",
    strict: Annotated[bool, typer.Option("--strict", help="Reject invalid geometries instead of repairing.")] = False,
    columns: Annotated[
        Path | None,
        typer.Option("--columns", help="Column map (YAML) for a .xlsx/.csv list with its own headers and words."),
    ] = None,
    calibrate_to: Annotated[
        str | None,
        typer.Option("--calibrate-to", help="Raster layers: scale so each towns' or villages' sum equals --totals."),
    ] = None,
    totals: Annotated[
        Path | None, typer.Option("--totals", help="CSV of unit totals (code or name, population; UTF-8 or GBK).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Import a file into a layer after validating it against the catalogue (all or nothing)."""
    from geoplan.services.ingest import import_file

    if mode not in ("replace", "append"):
        raise InputError(f"--mode must be replace or append, not {mode!r}")
    write_mode: WriteMode = "replace" if mode == "replace" else "append"
    settings, backend = open_configured(store)
    if layer in backend.catalog and backend.catalog.get(layer).kind == "raster":
        try:
            _import_raster(
                backend, layer, file, crs=crs, mode=mode, columns=columns, calibrate_to=calibrate_to, totals=totals
            )
        finally:
            backend.close()
        return
    if calibrate_to is not None or totals is not None:
        backend.close()
        raise InputError("--calibrate-to and --totals apply to raster layers (population), not to vector layers")
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
                columns=columns,
            )
    finally:
        backend.close()
    print_problems("repaired geometries", report.repairs)
    print_problems("warnings", report.warnings)
    out.print(f"{report.written} feature(s) written to {layer} ({report.mode})")


def _import_raster(
    backend: LayerStore,
    layer: str,
    file: Path,
    *,
    crs: str | None,
    mode: str,
    columns: Path | None,
    calibrate_to: str | None,
    totals: Path | None,
) -> None:
    from geoplan.services.raster_import import UnitLevel, import_raster

    if mode != "replace":
        raise InputError(f"'{layer}' is a raster layer: an import replaces it whole; --mode append does not apply")
    if columns is not None:
        raise InputError("--columns applies to .csv/.xlsx lists, not to raster layers")
    if calibrate_to not in (None, "towns", "villages"):
        raise InputError(f"--calibrate-to must be towns or villages, not {calibrate_to!r}")
    level: UnitLevel | None = "towns" if calibrate_to == "towns" else "villages" if calibrate_to == "villages" else None
    with err.status(f"importing {file.name} into {layer}…"):
        report = import_raster(
            backend,
            layer,
            file,
            crs=crs,
            calibrate_to=level,
            totals=totals,
            actor=f"cli:{os.environ.get('USER', 'unknown')}",
        )
    print_problems("warnings", report.warnings)
    for line in report.calibrated:
        err.print(f"  {line}", markup=False, highlight=False)
    out.print(
        f"{report.layer}: {report.method} {report.source} onto {report.cells:,} cells; "
        f"{report.kept_total:,.1f} persons inside the district (of {report.source_total:,.1f} in the cells read "
        "over its box), "
        f"{report.written_total:,.1f} written"
    )


def export(
    layer: Annotated[str, typer.Argument(help="Catalogue layer name.")],
    file: Annotated[
        Path, typer.Argument(help="Output: .geojson, .gpkg, .zip (Shapefile), .csv or .xlsx; .tif for population")
    ],
    store: StoreOption = None,
) -> None:
    """Export a layer to a file; the format follows the file's suffix (a raster layer: a Cloud-Optimized GeoTIFF)."""
    from geoplan.services.ingest import export_layer

    _, backend = open_configured(store)
    if layer in backend.catalog and backend.catalog.get(layer).kind == "raster":
        from geoplan.services.raster_import import export_raster

        try:
            raster = export_raster(backend, layer, file)
        finally:
            backend.close()
        rows, cols = raster.array.shape
        out.print(f"{layer} ({rows} × {cols} cells, {raster.valid_sum():,.1f} in total) written to {file}")
        return
    try:
        count = export_layer(backend, layer, file)
    finally:
        backend.close()
    out.print(f"{count} feature(s) of {layer} written to {file}")


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Store administration.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    db_app.command("init")(db_init)
    app.command("demo")(demo)
    app.command("layers")(layers)
    app.command("import")(import_)
    app.command("export")(export)
