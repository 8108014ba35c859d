"""A web app on a small GeoPackage store with sample features, and tokens of each role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.services.provenance import DEMO_ACTOR
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from web.app import create_app
from web.settings import WebSettings

SAMPLE_COUNTS = {"projects": 45, "culture_facilities": 30, "landuse_plan": 12, "roads": 20}


@dataclass(frozen=True)
class Tokens:
    staff: str
    planner: str
    admin: str


@pytest.fixture
def web_store(catalog: Catalog, tmp_path: Path) -> GeoPackageStore:
    store = GeoPackageStore(tmp_path / "web.gpkg", catalog)
    store.init()
    for name, count in SAMPLE_COUNTS.items():  # stand-ins for the demo's layers: written as the demo writes
        store.write(name, sample_frame(catalog.get(name), count), actor=DEMO_ACTOR)
    return store


@pytest.fixture
def tokens(web_store: GeoPackageStore) -> Tokens:
    return tokens_in(web_store.url)


@pytest.fixture
def client(web_store: GeoPackageStore, tokens: Tokens) -> Iterator[TestClient]:
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_store_with_tokens(path: Path, *, source: Path | None = None) -> Tokens:
    """Copy the demo store `source` (the session's `demo_store_path`) to `path` and make a token of each role in it.

    Tokens are writes, so they never go into the shared store itself. Without `source` the demo is built at
    `path` (several seconds more).
    """
    if source is not None:
        shutil.copy(source, path)
    else:
        from geoplan.cli import main

        assert main(["demo", "--store", str(path)]) == 0
    return tokens_in(str(path))


def tokens_in(store_url: str) -> Tokens:
    """A token of each role, made in the store at `store_url`."""
    registry = TokenRegistry(side_table_engine(store_url))
    try:
        return Tokens(
            staff=registry.create(name="staff-1", role=Role.STAFF),
            planner=registry.create(name="planner-1", role=Role.PLANNER),
            admin=registry.create(name="admin-1", role=Role.ADMIN),
        )
    finally:
        registry.close()


@pytest.fixture
def demo_copy(demo_store_path: Path, tmp_path: Path) -> tuple[Path, Tokens]:
    """A private copy of the demo store with a token of each role, for one test (which may write to it)."""
    path = tmp_path / "demo.gpkg"
    return path, demo_store_with_tokens(path, source=demo_store_path)


@pytest.fixture
def demo_client(demo_copy: tuple[Path, Tokens]) -> Iterator[TestClient]:
    """The web application on `demo_copy`."""
    with TestClient(create_app(WebSettings(store=str(demo_copy[0]), layers_dir=LAYERS_DIR))) as test_client:
        yield test_client
