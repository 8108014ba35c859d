"""Shared fixtures: the catalogue, a real throwaway PostGIS, a store of each backend, the Gaoming demo store, its
coverage inputs read once (`demo`) and a small dask cluster (`dask_client`).

The demo store (`geoplan demo`, several seconds) is built once per session and shared read-only
(`demo_store_path`); a test that writes to it (imports, marks, tokens, a web app's edits) takes its own
`demo_store_copy`. A write to the shared file fails the test that made it and, by its sha256, the session.

PostGIS tests use GEOPLAN_TEST_POSTGIS_URL when it is set, else start a throwaway cluster themselves. With
GEOPLAN_FAIL_ON_SKIP=1 (set by the README's test command and CI) any skipped test fails the run, so a missing
PostGIS or browser can never pass silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from distributed import Client, LocalCluster
from filelock import FileLock

from geoplan.catalog import Catalog, load_catalog
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from geoplan.testing import PostGISUnavailable, ThrowawayPostGIS, start_postgis
from tests.demo_layers import DemoLayers, read_demo_layers

ROOT = Path(__file__).resolve().parents[1]
LAYERS_DIR = ROOT / "layers"
SOURCES_DIR = LAYERS_DIR / "sources"


def _skips_forbidden() -> bool:
    return os.environ.get("GEOPLAN_FAIL_ON_SKIP") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if _skips_forbidden() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but GEOPLAN_FAIL_ON_SKIP=1 forbids skips: {report.longrepr}"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Catch skips raised outside a test (a module-level skip) too."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _skips_forbidden() and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(LAYERS_DIR)


@pytest.fixture(scope="session")
def postgis_server() -> Iterator[str]:
    url = os.environ.get("GEOPLAN_TEST_POSTGIS_URL")
    if url:
        yield url
        return
    try:
        server: ThrowawayPostGIS = start_postgis()
    except PostGISUnavailable as exc:
        pytest.skip(f"no PostGIS: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def fresh_database(postgis_server: str) -> Iterator[str]:
    """A new, empty database on the shared server (its URL), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        postgis_server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield postgis_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgis_url(postgis_server: str) -> Iterator[str]:
    """A fresh, empty database on the shared server for each test, dropped afterwards."""
    with fresh_database(postgis_server) as url:
        yield url


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, catalog: Catalog, tmp_path: Path) -> Iterator[LayerStore]:
    """An initialised, empty store of each backend: the contract suite runs once per backend."""
    backend: LayerStore
    if request.param == "gpkg":
        backend = GeoPackageStore(tmp_path / "store.gpkg", catalog)
    else:
        backend = PostGISStore(request.getfixturevalue("postgis_url"), catalog)
    backend.init()
    try:
        yield backend
    finally:
        backend.close()


# --------------------------------------------------------------------------------------------- the demo store


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: a cheap per-test sign of a write (SQLite touches both)."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def shared_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's temporary folder that every pytest-xdist worker shares (each worker's own is inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def demo_store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Gaoming demo GeoPackage, built by the real `geoplan demo` once per run (the first xdist worker to ask
    builds it under a file lock; the others wait and share it). Read-only: copy to write."""
    from geoplan.cli import main

    folder = shared_temp(tmp_path_factory) / "demo-store"
    path, built = folder / "gaoming.gpkg", folder / "built"
    folder.mkdir(exist_ok=True)
    with FileLock(str(folder / "lock")):
        if not built.exists():  # a build killed half-way leaves no mark, so the next run builds afresh
            path.unlink(missing_ok=True)
            assert main(["demo", "--store", str(path)]) == 0
            built.write_text(_sha256(path))
    digest = built.read_text()
    assert _sha256(path) == digest, f"the shared demo store {path} changed before this worker used it"
    yield path
    assert _sha256(path) == digest, f"a test changed the shared demo store {path}; tests that write use demo_store_copy"


@pytest.fixture(autouse=True)
def _demo_store_stays_read_only(request: pytest.FixtureRequest) -> Iterator[None]:
    """Name the test that wrote to the shared demo store (the session's sha256 check only says that one did)."""
    if "demo_store_path" not in request.fixturenames:
        yield
        return
    path: Path = request.getfixturevalue("demo_store_path")
    before = _stamp(path)
    yield
    assert _stamp(path) == before, f"{request.node.nodeid} wrote to the shared demo store; use demo_store_copy"


@pytest.fixture
def demo_store_copy(demo_store_path: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the demo store for one test."""
    copy = tmp_path / "demo.gpkg"
    shutil.copy(demo_store_path, copy)
    return copy


@pytest.fixture(scope="session")
def demo(demo_store_path: Path, catalog: Catalog) -> DemoLayers:
    """The demo store's coverage inputs, read and the graph built once per session (a few seconds each time).

    Shared by every module: tests only read them (the analysis functions promise not to mutate their inputs,
    and test_coverage checks that promise). A module that needs them otherwise overrides `demo` and asks for
    this one by the same name (pytest's fixture overriding), as test_siting does for metric coordinates.
    """
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        return read_demo_layers(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Client]:
    """A real dask LocalCluster of two single-threaded workers (threads, to start fast; the CLI tests start
    worker processes themselves). A module may override it, as test_overlap_partitioned does for 1 and 2."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as connected,
    ):
        yield connected
