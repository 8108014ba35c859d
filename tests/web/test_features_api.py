"""OGC API – Features: what the public and token holders may read, paging, filters and caching."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.factories import sample_frame
from tests.web.conftest import SAMPLE_COUNTS, Tokens, bearer


def test_landing_and_conformance_link_the_collections(client: TestClient) -> None:
    landing = client.get("/ogc").json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["data"].endswith("/ogc/collections")
    assert rels["conformance"].endswith("/ogc/conformance")
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/geojson") for c in conformance)


def test_public_sees_only_public_layers(client: TestClient, catalog: Catalog, tokens: Tokens) -> None:
    public_ids = {c["id"] for c in client.get("/ogc/collections").json()["collections"]}
    expected = {layer.name for layer in catalog.vector_layers() if layer.public}
    assert public_ids == expected
    assert "landuse_plan" not in public_ids
    assert client.get("/ogc/collections/landuse_plan").status_code == 404
    assert client.get("/ogc/collections/landuse_plan/items").status_code == 404
    staff_ids = {c["id"] for c in client.get("/ogc/collections", headers=bearer(tokens.staff)).json()["collections"]}
    assert staff_ids == {layer.name for layer in catalog.vector_layers()}
    items = client.get("/ogc/collections/landuse_plan/items", headers=bearer(tokens.staff)).json()
    assert items["numberMatched"] == SAMPLE_COUNTS["landuse_plan"]


def test_public_never_gets_private_fields(client: TestClient, catalog: Catalog, tokens: Tokens) -> None:
    layer = catalog.get("projects")
    private = set(layer.field_names) - set(layer.public_fields)
    assert {"investment_wan", "internal_note", "assured_funds"} <= private
    body = client.get("/ogc/collections/projects/items", params={"limit": 1000}).json()
    assert body["numberReturned"] == SAMPLE_COUNTS["projects"]
    for feature in body["features"]:
        assert set(feature["properties"]) == set(layer.public_fields)
    one = client.get(f"/ogc/collections/projects/items/{body['features'][0]['id']}").json()
    assert not private & set(one["properties"])
    # Filtering on a private field is refused as an unknown parameter: its existence is not revealed.
    assert client.get("/ogc/collections/projects/items", params={"investment_wan": "1"}).status_code == 400
    staff = client.get("/ogc/collections/projects/items", headers=bearer(tokens.staff)).json()
    assert private <= set(staff["features"][0]["properties"])


def test_paging_follows_next_links_to_every_feature(client: TestClient) -> None:
    seen: list[str] = []
    url: str | None = "/ogc/collections/projects/items?limit=10"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 5
    assert len(seen) == len(set(seen)) == SAMPLE_COUNTS["projects"]


def test_bbox_and_property_filters(client: TestClient, web_store: GeoPackageStore) -> None:
    frame = web_store.read("culture_facilities")
    bbox = (112.862, 22.889, 112.875, 22.895)
    expected = sorted(frame.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]["facility_id"])
    body = client.get("/ogc/collections/culture_facilities/items", params={"bbox": ",".join(map(str, bbox))}).json()
    assert sorted(f["id"] for f in body["features"]) == expected and 0 < len(expected) < len(frame)
    kind = frame["kind"].iloc[0]
    body = client.get("/ogc/collections/culture_facilities/items", params={"kind": kind}).json()
    assert body["numberMatched"] == int((frame["kind"] == kind).sum())
    assert client.get("/ogc/collections/culture_facilities/items", params={"bbox": "1,2,3"}).status_code == 400


def test_etag_revalidates_and_changes_after_a_write(
    client: TestClient, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    first = client.get("/ogc/collections/projects/items")
    etag = first.headers["etag"]
    assert client.get("/ogc/collections/projects/items", headers={"If-None-Match": etag}).status_code == 304
    web_store.write("projects", sample_frame(catalog.get("projects"), 3, start=500), mode="append")
    second = client.get("/ogc/collections/projects/items", headers={"If-None-Match": etag})
    assert second.status_code == 200
    assert second.json()["numberMatched"] == SAMPLE_COUNTS["projects"] + 3


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer gp_forged", "Basic abc", "Bearer "])
def test_bad_tokens_are_refused(client: TestClient, header: str) -> None:
    assert client.get("/ogc/collections", headers={"Authorization": header}).status_code == 401


def test_revoked_token_stops_at_once(client: TestClient, web_store: GeoPackageStore) -> None:
    registry = TokenRegistry(side_table_engine(web_store.url))
    token = registry.create(name="temp", role=Role.STAFF)
    assert client.get("/ogc/collections/landuse_plan", headers=bearer(token)).status_code == 200
    registry.revoke("temp")
    registry.close()
    assert client.get("/ogc/collections/landuse_plan", headers=bearer(token)).status_code == 401


def test_healthz_reports_versions(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["store"] == "geopackage"
    assert body["versions"]["geos"].startswith("3.") and body["versions"]["gdal"].startswith("3.")
