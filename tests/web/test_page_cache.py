"""The pages are rendered once per state of their layers and served from memory; a write shows at once."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.geojson import feature_strings
from geoplan.storage.gpkg import GeoPackageStore
from tests.factories import sample_frame
from tests.web.conftest import SAMPLE_COUNTS, Tokens, bearer
from web.page_cache import NONCE_PLACEHOLDER

PROJECTS = SAMPLE_COUNTS["projects"]


@pytest.fixture
def store_calls(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the app store's count() and bounds() calls: what a page render costs."""
    store = client.app.state.store  # type: ignore[attr-defined]
    calls: Counter[str] = Counter()
    for method in ("count", "bounds"):
        original = getattr(store, method)

        def counted(layer: str, _original: Any = original, _method: str = method) -> Any:
            calls[_method] += 1
            return _original(layer)

        monkeypatch.setattr(store, method, counted)
    return calls


def _nonce(response: Any) -> str:
    found = re.search(r"'nonce-([A-Za-z0-9_-]+)'", response.headers["content-security-policy"])
    assert found
    return found.group(1)


def _feature_count(html: str) -> int:
    found = re.search(r'"featureCount": (\d+)', html)
    assert found, "no featureCount in the page's config"
    return int(found.group(1))


def _listed_count(html: str, layer: str) -> int:
    row = html[html.index(f'data-layer="{layer}"') :]
    found = re.search(r'<td class="gp-num">(\d+)</td>', row[: row.index("</tr>")])
    assert found
    return int(found.group(1))


def test_layer_page_is_served_from_memory_until_an_api_edit(
    client: TestClient, store_calls: Counter[str], tokens: Tokens, catalog: Catalog
) -> None:
    first = client.get("/layers/projects")
    second = client.get("/layers/projects")
    assert first.status_code == second.status_code == 200
    assert store_calls == {"count": 1, "bounds": 1}  # the second answer came from the cache
    assert _feature_count(second.text) == PROJECTS
    # Each response still has its own nonce, on every inline tag, and nothing of the placeholder is left.
    assert _nonce(first) != _nonce(second) and f'nonce="{_nonce(second)}"' in second.text
    assert NONCE_PLACEHOLDER not in second.text
    assert first.text.replace(_nonce(first), "") == second.text.replace(_nonce(second), "")
    assert first.headers["etag"] == second.headers["etag"]
    assert second.headers["cache-control"] == "private, no-cache"

    layer = catalog.get("projects")
    feature = json.loads(
        feature_strings(sample_frame(layer, 1, start=900), fields=layer.field_names, id_field=layer.id_field)[0]
    )
    created = client.post("/api/layers/projects/features", json=feature, headers=bearer(tokens.staff))
    assert created.status_code == 201, created.text

    store_calls.clear()  # the edit itself may count
    after = client.get("/layers/projects")
    assert _feature_count(after.text) == PROJECTS + 1
    assert after.headers["etag"] != first.headers["etag"]
    assert store_calls == {"count": 1, "bounds": 1}


def test_layer_browser_sees_a_write_by_another_process(
    client: TestClient, store_calls: Counter[str], web_store: GeoPackageStore, catalog: Catalog
) -> None:
    public = [layer for layer in catalog.vector_layers() if layer.public]
    html = client.get("/layers").text
    assert _listed_count(html, "projects") == PROJECTS
    client.get("/layers")
    assert store_calls["count"] == len(public)  # one count per layer, for the first request only

    # web_store is a second store object on the same file, as the CLI or another worker would be.
    web_store.write("projects", sample_frame(catalog.get("projects"), 3, start=800), mode="append")
    html = client.get("/layers").text
    assert _listed_count(html, "projects") == PROJECTS + 3
    assert store_calls["count"] == 2 * len(public)


def test_a_current_page_answers_not_modified(client: TestClient, web_store: GeoPackageStore, catalog: Catalog) -> None:
    for path in ("/", "/layers", "/layers/culture_facilities"):
        etag = client.get(path).headers["etag"]
        cached = client.get(path, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        # No policy on a 304: the browser keeps the stored page's, which matches the stored page's nonce.
        assert "content-security-policy" not in cached.headers
    etag = client.get("/layers/culture_facilities").headers["etag"]
    web_store.write("culture_facilities", sample_frame(catalog.get("culture_facilities"), 1, start=500), mode="append")
    changed = client.get("/layers/culture_facilities", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_a_token_gets_the_same_public_page(client: TestClient, tokens: Tokens, catalog: Catalog) -> None:
    # Pages never read the token, so the cache holds one (public) page for everybody.
    with_token = client.get("/layers", headers=bearer(tokens.admin))
    anonymous = client.get("/layers")
    assert with_token.headers["etag"] == anonymous.headers["etag"]
    for layer in catalog.vector_layers():
        assert (f'data-layer="{layer.name}"' in anonymous.text) is layer.public
