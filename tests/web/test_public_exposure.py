"""A sweep over every anonymous GET the app offers: no private layer or field ever comes back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.web.conftest import Tokens, bearer
from web.app import create_app
from web.settings import WebSettings

PAGES = ["/", "/layers"]


def _private_markers(catalog: Catalog, store: GeoPackageStore) -> list[str]:
    """Strings that may only reach token holders: private field names and private layers' feature ids."""
    markers = []
    for layer in catalog.vector_layers():
        if layer.public:
            markers += [f'"{name}"' for name in layer.field_names if name not in layer.public_fields]
        elif layer.id_field and store.count(layer.name):
            markers += [str(v) for v in store.read(layer.name)[layer.id_field].head(5)]
    return markers


def _anonymous_get_urls(client: TestClient, catalog: Catalog, store: GeoPackageStore) -> list[str]:
    urls = list(PAGES)
    for layer in catalog:
        urls.append(f"/layers/{layer.name}")
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", path)
        if not names:
            urls.append(path)
            continue
        for layer in catalog:
            concrete = path.replace("{collection_id}", layer.name)
            if "{feature_id}" in concrete and layer.kind == "vector" and layer.id_field and store.count(layer.name):
                concrete = concrete.replace("{feature_id}", str(store.read(layer.name)[layer.id_field].iloc[0]))
            urls.append(concrete)
    return sorted(set(urls))


def test_no_anonymous_get_reveals_private_layers_or_fields(
    client: TestClient, catalog: Catalog, web_store: GeoPackageStore, tokens: Tokens
) -> None:
    markers = _private_markers(catalog, web_store)
    assert '"investment_wan"' in markers and any(m.startswith("parc-") for m in markers)
    urls = _anonymous_get_urls(client, catalog, web_store)
    assert any("/items/" in url for url in urls) and "/ogc/collections/landuse_plan/items" in urls
    for url in urls:
        response = client.get(url)
        leaked = [m for m in markers if m in response.text]
        assert not leaked, (url, leaked[:3])
    # The same sweep with a staff token does see them: the markers are real, so the check above can fail.
    staff = client.get("/ogc/collections/landuse_plan/items", headers=bearer(tokens.staff)).text
    assert any(m in staff for m in markers if m.startswith("parc-"))


def test_oversize_upload_is_refused_and_changes_nothing(
    web_store: GeoPackageStore, tokens: Tokens, catalog: Catalog, tmp_path: Path
) -> None:
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, max_upload_bytes=2_000)
    big = sample_frame(catalog.get("landuse_plan"), 60, start=700).to_json().encode()
    assert len(big) > 2_000
    version = web_store.layer_version("landuse_plan")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/layers/landuse_plan/upload", files={"file": ("plan.geojson", big)}, headers=bearer(tokens.planner)
        )
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        body = client.post(
            "/api/layers/projects/features", content=b"{" + b" " * 3_000 + b"}", headers=bearer(tokens.staff)
        )
        assert body.status_code == 413
    assert web_store.layer_version("landuse_plan") == version


@pytest.mark.parametrize("path", ["/layers/landuse_plan", "/layers/basic_farmland", "/layers/population"])
def test_private_layer_pages_are_not_found(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
