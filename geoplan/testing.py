"""Servers for tests, benchmarks and scripts: a throwaway PostGIS cluster (never for production data), and the
app in a real server process on a free loopback port (`serving`).

It runs `initdb` into a temporary folder, starts `postgres` on a free loopback port with fsync off, creates a
database with the postgis extension and removes everything on stop. As root it runs the server as the
`postgres` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class PostGISUnavailable(RuntimeError):
    """The PostgreSQL server binaries or the postgis extension are not installed."""


def find_bindir() -> Path:
    """The newest PostgreSQL server bin folder that has a postgis extension beside it."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for bindir in reversed(candidates):
        version = Path(bindir).parent.name
        if glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
            return Path(bindir)
    raise PostGISUnavailable(
        "no PostgreSQL server with the postgis extension; install the Debian packages "
        "postgresql and postgresql-15-postgis-3"
    )


def free_port() -> int:
    """A TCP port free on loopback now (the caller binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFailed(RuntimeError):
    """A server started by `serving` exited or did not answer; the message holds its log."""


@contextmanager
def serving(
    command: list[str], *, port: int, env: dict[str, str], log_path: Path, name: str, timeout: float, cwd: Path
) -> Iterator[str]:
    """Run `command` (a geoplan server on loopback `port`) until the block ends, once /healthz answers; yields its
    base URL. Raises `ServerFailed` with the server's log if it exits or does not answer within `timeout` s."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise ServerFailed(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise ServerFailed(f"{name} did not answer in {timeout:g} s:\n{log_path.read_text()}") from None
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def app_command(port: int, *, workers: int = 1) -> list[str]:
    """uvicorn serving `web.app:create_app` on loopback `port` (the store comes from GEOPLAN_STORE)."""
    command = [sys.executable, "-m", "uvicorn", "web.app:create_app", "--factory", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


@dataclass
class ThrowawayPostGIS:
    """A running cluster. `url` is a postgresql:// URL to a database with postgis."""

    bindir: Path
    root: Path
    port: int
    database: str = "geoplan"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> ThrowawayPostGIS:
        data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            self.database,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE EXTENSION postgis",
        )
        log.info("throwaway PostGIS at %s", self.url)
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgis() -> ThrowawayPostGIS:
    """Start a new throwaway cluster; call `.stop()` when done."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="geoplan-pg-"))
    return ThrowawayPostGIS(bindir=bindir, root=root, port=free_port()).start()
