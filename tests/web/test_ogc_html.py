"""The HTML encoding: browsers (Accept: text/html, or f=html) get pages, clients keep JSON; everything escaped."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from geoplan.catalog import load_catalog
from tests.conftest import LAYERS_DIR

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_browsers_get_html_and_clients_json(client: TestClient) -> None:
    for path in ("/ogc", "/ogc/collections", "/ogc/collections/projects", "/ogc/collections/projects/items"):
        page = client.get(path, headers=BROWSER)
        assert page.headers["content-type"].startswith("text/html"), path
        assert "script-src 'self' 'nonce-" in page.headers["content-security-policy"]
        assert client.get(path, params={"f": "html"}).headers["content-type"].startswith("text/html")
        for accept in ("*/*", "application/json", "application/geo+json, application/json"):
            response = client.get(path, headers={"Accept": accept})
            assert "json" in response.headers["content-type"], (path, accept)
    assert client.get("/ogc", params={"f": "xml"}).status_code == 400


def test_pages_show_the_collections_and_a_leaflet_map(client: TestClient) -> None:
    collections = client.get("/ogc/collections", params={"f": "html"}).text
    assert "建设项目" in collections and "/ogc/collections/projects/items?f=html" in collections
    assert "landuse_plan" not in collections  # a private layer stays hidden in HTML too
    catalog = load_catalog(LAYERS_DIR)
    # A person reads the Chinese description; the JSON keeps the catalogue's own for clients.
    assert catalog.get("projects").description_zh in collections
    assert catalog.get("projects").description.split()[0] not in collections
    one = client.get("/ogc/collections/roads", params={"f": "html"}).text
    assert catalog.get("roads").description_zh in one
    page = client.get("/ogc/collections/projects/items", params={"f": "html"}).text
    assert "/static/vendor/leaflet/leaflet.js" in page and "/static/geoplan-ogc.js" in page
    assert not re.search(r"""src=["']https?://""", page)  # no CDN: scripts and styles are our own
    assert re.findall(r"""<link rel="stylesheet" href="([^"]+)""", page) == [
        "/static/vendor/leaflet/leaflet.css",
        "/static/geoplan.css",
    ]
    assert client.get("/static/geoplan-ogc.js").status_code == 200


def test_query_text_is_escaped(client: TestClient) -> None:
    attack = "</script><script>alert(1)</script>"
    page = client.get("/ogc/collections/projects/items", params={"f": "html", "name": attack}).text
    assert attack not in page and "<script>alert" not in page
    landing = client.get("/ogc", params={"f": "html"}, headers={"Host": 'localhost"><script>x</script>'}).text
    assert "<script>x" not in landing


def test_the_map_page_fetches_lon_lat(client: TestClient) -> None:
    crs = "http://www.opengis.net/def/crs/EPSG/0/4547"
    page = client.get("/ogc/collections/projects/items", params={"f": "html", "crs": crs, "status": "在建"}).text
    data = re.search(r'<script type="application/json" id="gp-ogc-data"[^>]*>(.*?)</script>', page, re.S)
    assert data is not None
    url = json.loads(data.group(1))["items"]
    assert "crs=" not in url and "f=json" in url and "status=" in url
