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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(store: str, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve `store` with `geoplan serve`; yields the base URL and stops the server afterwards."""
    port = free_port()
    geoplan = Path(sys.executable).with_name("geoplan")
    server = subprocess.Popen(
        [str(geoplan), "serve", "--store", store, "--port", str(port)],
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"the server exited: {server.stderr.read().decode() if server.stderr else ''}")
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not answer /healthz within 30 s")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
