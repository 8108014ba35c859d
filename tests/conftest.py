"""Shared fixtures: the catalogue, a real throwaway PostGIS, and a store of each backend.

PostGIS tests use GEOPLAN_TEST_POSTGIS_URL when it is set, else start a throwaway cluster themselves. With
GEOPLAN_FAIL_ON_SKIP=1 (set by the README's test command and CI) any skipped test fails the run, so a missing
PostGIS or browser can never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from geoplan.catalog import Catalog, load_catalog
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from geoplan.testing import PostGISUnavailable, ThrowawayPostGIS, start_postgis

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


@pytest.fixture
def postgis_url(postgis_server: str) -> Iterator[str]:
    """A fresh, empty database on the shared server for each test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        postgis_server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgis_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
