"""Collections: cached per layer version (one version query per layer per request, no recount until a write),
Part 2 CRS metadata, and the headers of a per-caller document."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from tests.factories import sample_frame
from tests.web.conftest import SAMPLE_COUNTS, Tokens, bearer


def _count_calls(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    store = client.app.state.store  # type: ignore[attr-defined]
    calls: dict[str, list[str]] = {"count": [], "bounds": [], "layer_version": []}
    for name in calls:
        original = getattr(store, name)

        def wrapped(layer: str, _name: str = name, _original: Any = original) -> Any:
            calls[_name].append(layer)
            return _original(layer)

        monkeypatch.setattr(store, name, wrapped)
    return calls


def test_collections_are_counted_once_per_layer_version(
    client: TestClient, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_calls(client, monkeypatch)
    public = [layer.name for layer in catalog.vector_layers() if layer.public]
    for _ in range(3):
        body = client.get("/ogc/collections").json()
    assert sorted(calls["count"]) == sorted(public) and sorted(calls["bounds"]) == sorted(public)
    assert len(calls["layer_version"]) == 3 * len(public)  # one indexed query per layer per request
    counts = {c["id"]: c["numberMatched"] for c in body["collections"]}
    assert counts["projects"] == SAMPLE_COUNTS["projects"] and counts["culture_facilities"] == 30
    # A write is seen at the next request, and only that layer is counted again.
    store = client.app.state.store  # type: ignore[attr-defined]
    store.write("projects", sample_frame(catalog.get("projects"), 5, start=900), mode="append")
    calls["count"].clear()
    one = client.get("/ogc/collections/projects").json()
    assert one["numberMatched"] == SAMPLE_COUNTS["projects"] + 5
    client.get("/ogc/collections")
    assert calls["count"] == ["projects"]


def test_collection_metadata_and_headers(client: TestClient, tokens: Tokens) -> None:
    frame_bounds = client.app.state.store.bounds("projects")  # type: ignore[attr-defined]
    for path in ("/ogc/collections", "/ogc/collections/projects"):
        response = client.get(path)
        assert response.headers["cache-control"] == "no-cache"
        assert "Authorization" in response.headers["vary"]
    one = client.get("/ogc/collections/projects").json()
    assert one["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert {
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "http://www.opengis.net/def/crs/EPSG/0/4490",
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/4547",
    } <= set(one["crs"])
    assert one["extent"]["spatial"]["bbox"] == [list(frame_bounds)]
    rels = {link["rel"] for link in one["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/queryables" in rels
    staff = client.get("/ogc/collections", headers=bearer(tokens.staff)).json()
    assert len(staff["collections"]) > len(client.get("/ogc/collections").json()["collections"])


def test_conformance_declares_parts_2_and_3(client: TestClient) -> None:
    conforms = set(client.get("/ogc/conformance").json()["conformsTo"])
    # What QGIS needs before it pushes a filter down (qgis/QGIS#52775).
    assert {
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    } <= conforms
    # Not implemented, not declared.
    missing = ("temporal-functions", "accent-insensitive-comparison", "arithmetic")
    assert not [c for c in conforms if c.endswith(missing)]


def test_queryables_schema(client: TestClient, catalog: Catalog) -> None:
    response = client.get("/ogc/collections/projects/queryables", headers={"Accept": "*/*"})
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    layer = catalog.get("projects")
    assert schema["$id"].endswith("/ogc/collections/projects/queryables")
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {*layer.public_fields, "geometry"}
    assert schema["properties"]["geometry"]["format"] == "geometry-multipolygon"
    assert schema["properties"]["start_year"]["type"] == "integer"
    progress = {"title": "形象进度（%）", "type": "number", "minimum": 0, "maximum": 100}
    assert schema["properties"]["progress_pct"] == progress
    assert schema["properties"]["status"]["enum"] == ["前期", "已开工", "在建", "已完工", "暂缓"]
    assert client.get("/ogc/collections/landuse_plan/queryables").status_code == 404
