"""Run the app in a real server process on a free loopback port (an in-process server thread deadlocks with
blocking clients such as GDAL or a browser driver that hold the GIL). A server that fails to start fails the
test with its log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from geoplan import testing
from geoplan.testing import app_command, free_port
from tests.conftest import LAYERS_DIR, ROOT

__all__ = ["free_port", "live_server", "serving"]


@contextmanager
def live_server(store: Path | str, log_path: Path, **env: str) -> Iterator[str]:
    """uvicorn serving `store` in a subprocess until the block ends; yields the base URL."""
    port = free_port()
    environment = {**os.environ, "GEOPLAN_STORE": str(store), "GEOPLAN_LAYERS_DIR": str(LAYERS_DIR), **env}
    with serving(app_command(port), port=port, env=environment, log_path=log_path, name="uvicorn", timeout=30) as base:
        yield base


@contextmanager
def serving(
    command: list[str], *, port: int, env: dict[str, str], log_path: Path, name: str, timeout: float
) -> Iterator[str]:
    """`geoplan.testing.serving` from the repository root, failing the test (not erroring) when it cannot start."""
    try:
        with testing.serving(
            command, port=port, env=env, log_path=log_path, name=name, timeout=timeout, cwd=ROOT
        ) as base:
            yield base
    except testing.ServerFailed as exc:
        pytest.fail(str(exc))
