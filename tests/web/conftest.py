"""A web app on a small GeoPackage store with sample features, and tokens of each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.tokens import TokenRegistry, registry_engine
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
    for name, count in SAMPLE_COUNTS.items():
        store.write(name, sample_frame(catalog.get(name), count))
    return store


@pytest.fixture
def tokens(web_store: GeoPackageStore) -> Tokens:
    registry = TokenRegistry(registry_engine(web_store.url))
    made = Tokens(
        staff=registry.create(name="staff-1", role=Role.STAFF),
        planner=registry.create(name="planner-1", role=Role.PLANNER),
        admin=registry.create(name="admin-1", role=Role.ADMIN),
    )
    registry.close()
    return made


@pytest.fixture
def client(web_store: GeoPackageStore, tokens: Tokens) -> Iterator[TestClient]:
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_store_with_tokens(path: Path) -> Tokens:
    """Build the demo store at `path` and make a token of each role in it."""
    from geoplan.cli import main

    assert main(["demo", "--store", str(path)]) == 0
    registry = TokenRegistry(registry_engine(str(path)))
    try:
        return Tokens(
            staff=registry.create(name="staff-1", role=Role.STAFF),
            planner=registry.create(name="planner-1", role=Role.PLANNER),
            admin=registry.create(name="admin-1", role=Role.ADMIN),
        )
    finally:
        registry.close()
