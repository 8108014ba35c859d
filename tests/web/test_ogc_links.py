"""Absolute links in the OGC API: the configured public URL, an allow-listed Host, forwarded headers only from a
trusted proxy; a forged Host never reaches a link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from web.app import create_app
from web.settings import WebSettings

PAGES = ["/ogc", "/ogc/collections", "/ogc/collections/projects", "/ogc/collections/projects/items?limit=10"]


def _app(web_store: GeoPackageStore, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, **settings))) as client:
        yield client


@pytest.fixture
def plain(web_store: GeoPackageStore) -> Iterator[TestClient]:
    yield from _app(web_store)


def _hrefs(client: TestClient, headers: dict[str, str]) -> list[str]:
    found: list[str] = []
    for page in PAGES:
        response = client.get(page, headers=headers)
        assert response.status_code == 200
        found += _walk(json.loads(response.content))
    return found


def _walk(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "href"] + [h for v in node.values() for h in _walk(v)]
    if isinstance(node, list):
        return [h for v in node for h in _walk(v)]
    return []


def test_a_forged_host_never_reaches_a_link(plain: TestClient) -> None:
    hrefs = _hrefs(plain, {"Host": "evil.example"})
    assert len(hrefs) > 20
    assert not [h for h in hrefs if "evil" in h]
    # The server's own address instead (the test client's server is "testserver").
    assert all(h.startswith("http://testserver/") for h in hrefs)
    # Forwarded headers from an untrusted peer are ignored too.
    forwarded = _hrefs(plain, {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    assert not [h for h in forwarded if "evil" in h or h.startswith("https:")]


def test_an_allowed_host_is_used(plain: TestClient) -> None:
    hrefs = _hrefs(plain, {"Host": "localhost:8000"})
    assert all(h.startswith("http://localhost:8000/") for h in hrefs)


def test_the_public_url_wins(web_store: GeoPackageStore) -> None:
    for client in _app(web_store, public_url="https://gis.gaoming.example/geoplan/"):
        hrefs = _hrefs(client, {"Host": "localhost", "X-Forwarded-Host": "other.example"})
        assert all(h.startswith("https://gis.gaoming.example/geoplan/") for h in hrefs)
        landing = client.get("/ogc").json()
        data = next(link["href"] for link in landing["links"] if link["rel"] == "data")
        assert data == "https://gis.gaoming.example/geoplan/ogc/collections"


def test_forwarded_headers_only_from_a_trusted_proxy(web_store: GeoPackageStore) -> None:
    # The test client's peer address is "testclient".
    for client in _app(web_store, trusted_proxies=["testclient"]):
        hrefs = _hrefs(client, {"X-Forwarded-Host": "gis.example.org", "X-Forwarded-Proto": "https"})
        assert all(h.startswith("https://gis.example.org/") for h in hrefs)
    for client in _app(web_store, trusted_proxies=["10.0.0.1"]):
        hrefs = _hrefs(client, {"X-Forwarded-Host": "gis.example.org", "X-Forwarded-Proto": "https"})
        assert not [h for h in hrefs if "gis.example.org" in h]
