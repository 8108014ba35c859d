"""The app on a read-only PostGIS database, as on a hot-standby replica serving the public map.

A real PostgreSQL database is made read-only with `default_transaction_read_only`: every write is refused by the
server with the same error (SQLSTATE 25006, read_only_sql_transaction) a replica gives. The app must start,
serve reads, and answer a write with a clear 503, the data unchanged; the CLI says the same in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.geojson import feature_strings
from geoplan.services.store_setup import init_store
from geoplan.storage.postgis import PostGISStore, engine_url
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.web.conftest import Tokens, bearer, tokens_in
from web.app import create_app
from web.settings import WebSettings

pytestmark = pytest.mark.postgis
PROJECTS = 12


@pytest.fixture
def read_only_url(postgis_url: str, catalog: Catalog) -> Iterator[tuple[str, Tokens]]:
    """A store with projects and tokens, then switched read-only for every later session."""
    store = PostGISStore(postgis_url, catalog)
    try:
        init_store(store)
        store.write("projects", sample_frame(catalog.get("projects"), PROJECTS))
    finally:
        store.close()
    tokens = tokens_in(postgis_url)
    name = postgis_url.rsplit("/", 1)[1]
    admin = sa.create_engine(engine_url(postgis_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        admin.dispose()
    yield postgis_url, tokens


def _count(url: str, catalog: Catalog) -> int:
    store = PostGISStore(url, catalog)
    try:
        return store.count("projects")
    finally:
        store.close()


def test_the_public_map_is_served_and_writes_get_a_clear_503(
    read_only_url: tuple[str, Tokens], catalog: Catalog
) -> None:
    url, tokens = read_only_url
    with TestClient(create_app(WebSettings(store=url, layers_dir=LAYERS_DIR))) as client:
        items = client.get("/ogc/collections/projects/items", params={"limit": 100})
        assert items.status_code == 200 and len(items.json()["features"]) == PROJECTS
        assert client.get("/").status_code == 200
        definition = catalog.get("projects")
        new = json.loads(
            feature_strings(
                sample_frame(definition, 1, start=900), fields=definition.field_names, id_field=definition.id_field
            )[0]
        )
        response = client.post("/api/layers/projects/features", json=new, headers=bearer(tokens.staff))
        assert response.status_code == 503
        assert "read-only" in response.json()["detail"] and "primary" in response.json()["detail"]
        gone = client.delete("/api/layers/projects/features/does-not-matter", headers=bearer(tokens.staff))
        assert gone.status_code in (404, 503)
    assert _count(url, catalog) == PROJECTS


def test_a_cli_write_on_a_replica_says_so_in_one_line(
    read_only_url: tuple[str, Tokens], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = read_only_url
    assert main(["layers", "--store", url]) == 0  # reads work
    capsys.readouterr()
    assert main(["token", "create", "--name", "later", "--role", "staff", "--store", url]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "read-only" in error and "Traceback" not in error
