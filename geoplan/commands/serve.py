"""`geoplan serve`: the web application (maps and the OGC API – Features) on a store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from geoplan.commands.common import (
    StoreOption,
    settings_for,
)
from geoplan.errors import InputError


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


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
