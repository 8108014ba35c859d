"""Run the app in a real server process on a free loopback port (an in-process server thread deadlocks with
blocking clients such as GDAL or a browser driver that hold the GIL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import LAYERS_DIR, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(store: Path | str, log_path: Path, **env: str) -> Iterator[str]:
    """uvicorn serving `store` in a subprocess until the block ends; yields the base URL.

    The server's output goes to `log_path` and is shown when it fails to start.
    """
    port = free_port()
    environment = {**os.environ, "GEOPLAN_STORE": str(store), "GEOPLAN_LAYERS_DIR": str(LAYERS_DIR), **env}
    command = [sys.executable, "-m", "uvicorn", "web.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with serving(command, port=port, env=environment, log_path=log_path, name="uvicorn", timeout=30) as base:
        yield base


@contextmanager
def serving(
    command: list[str], *, port: int, env: dict[str, str], log_path: Path, name: str, timeout: float
) -> Iterator[str]:
    """Run `command` (a server on loopback `port`) until the block ends, once /healthz answers; yields its base
    URL. Fails the test with the server's log if it exits or does not answer within `timeout` seconds."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{name} did not answer in {timeout:g} s:\n{log_path.read_text()}")
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
