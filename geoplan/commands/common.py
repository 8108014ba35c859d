"""What every command shares: the --store option, opening the store, the two consoles, the -o check.

geoplan/cli.py and the sub-command modules import them from here, so sub-command modules never import the main
command (cli.py imports them).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console

from geoplan.catalog import load_catalog
from geoplan.errors import InputError, Problem
from geoplan.settings import Settings
from geoplan.storage import LayerStore, is_postgis_url, open_store

# Tables stay readable when piped to a file or a CI log, where no terminal width is known.
out = Console(width=None if sys.stdout.isatty() else 160)
# An error is one line whatever the width, so `grep`, CI logs and scripts see the whole reason on it.
err = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="GeoPackage path or postgresql:// URL [default: $GEOPLAN_STORE or data/gaoming.gpkg]"),
]


def settings_for(store: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"store": store}) if store else settings


def open_configured(store: str | None) -> tuple[Settings, LayerStore]:
    """The settings and the store they name, which need not exist yet (`db init` and `demo` create it)."""
    settings = settings_for(store)
    return settings, _open(settings)


def open_existing(store: str | None) -> tuple[Settings, LayerStore]:
    """The settings and the opened store; a missing GeoPackage is the user's mistake (exit 2), not ours."""
    settings = settings_for(store)
    if not is_postgis_url(settings.store) and not Path(settings.store).is_file():
        raise InputError(f"no store at {settings.store}; build it with `geoplan demo` or pass --store")
    return settings, _open(settings)


def _open(settings: Settings) -> LayerStore:
    return open_store(settings.store, load_catalog(settings.layers_dir))


@contextmanager
def existing_store(store: str | None) -> Iterator[tuple[Settings, LayerStore]]:
    """`open_existing` for a `with` block: the store is closed when the block ends, however it ends."""
    settings, backend = open_existing(store)
    try:
        yield settings, backend
    finally:
        backend.close()


def check_output(output: Path | None, suffixes: tuple[str, ...]) -> None:
    if output is None:
        return
    if output.suffix.lower() not in suffixes:
        raise InputError(f"-o {output.name}: write {', '.join(suffixes)}, not {output.suffix!r}")
    if not output.parent.is_dir():
        raise InputError(f"-o {output}: folder {output.parent} does not exist")


SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="With --partitioned: a dask scheduler address [GEOPLAN_DASK_SCHEDULER]."),
]


def cluster_options(settings: Settings, workers: int | None, scheduler: str | None) -> dict[str, Any]:
    """`local_client`'s options: the command's, else the settings'."""
    return {
        "scheduler": scheduler or settings.dask_scheduler,
        "workers": workers or settings.dask_workers,
        "memory_limit": settings.dask_memory_limit,
    }


def print_problems(title: str, problems: list[Problem], *, limit: int = 20) -> None:
    """A titled list of problems on stderr, the first `limit` of them."""
    if not problems:
        return
    err.print(f"[yellow]{title}: {len(problems)}[/yellow]")
    for problem in problems[:limit]:
        err.print(f"  - {problem}", markup=False, highlight=False)
    if len(problems) > limit:
        err.print(f"  … and {len(problems) - limit} more")


def write_table(table: pd.DataFrame, output: Path, *, sheet: str) -> None:
    """.csv (UTF-8 with a BOM, so spreadsheet programs read the Chinese), .xlsx or .json (records)."""
    suffix = output.suffix.lower()
    if suffix == ".csv":
        table.to_csv(output, index=False, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        table.to_excel(output, index=False, sheet_name=sheet)
    else:
        records = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")
        ]
        output.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
