"""Writes over HTTP: who may write, validation, all-or-nothing uploads, and the audit trail."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.geojson import feature_strings
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.factories import sample_frame
from tests.web.conftest import SAMPLE_COUNTS, Tokens, bearer


def _feature(catalog: Catalog, layer: str, index: int) -> dict[str, object]:
    definition = catalog.get(layer)
    frame = sample_frame(definition, 1, start=index)
    return json.loads(feature_strings(frame, fields=definition.field_names, id_field=definition.id_field)[0])


def _write_routes(client: TestClient) -> list[tuple[str, str, set[str]]]:
    """Every non-GET operation the app publishes, with its tags (from OpenAPI, so new endpoints are covered)."""
    routes = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method in operations.keys() & {"post", "put", "patch", "delete"}:
            concrete = path.replace("{layer_name}", "landuse_plan").replace("{feature_id}", "parc-000001")
            routes.append((method.upper(), concrete, set(operations[method].get("tags", []))))
    return routes


def test_every_write_endpoint_needs_a_token_of_the_right_role(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore
) -> None:
    routes = _write_routes(client)
    edits = [(method, path) for method, path, tags in routes if "editing" in tags]
    assert len(edits) >= 4
    version = web_store.layer_version("landuse_plan")
    for method, path, _ in routes:
        assert client.request(method, path).status_code == 401, (method, path)
        assert client.request(method, path, headers=bearer("gp_not-a-token")).status_code == 401
    for method, path in edits:
        # landuse_plan is edited by planners: a staff token is too small.
        assert client.request(method, path, headers=bearer(tokens.staff)).status_code == 403, (method, path)
    assert web_store.layer_version("landuse_plan") == version


def test_staff_creates_edits_and_deletes_a_project_with_an_audit_trail(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    new = _feature(catalog, "projects", 900)
    response = client.post("/api/layers/projects/features", json=new, headers=bearer(tokens.staff))
    assert response.status_code == 201, response.text
    assert response.json()["ids"] == ["proj-000900"]
    assert web_store.count("projects") == SAMPLE_COUNTS["projects"] + 1

    edited = dict(new)
    edited["properties"] = {**new["properties"], "name": "荷香路北延线", "progress_pct": 60.0}  # type: ignore[dict-item]
    response = client.put("/api/layers/projects/features/proj-000900", json=edited, headers=bearer(tokens.planner))
    assert response.status_code == 200, response.text
    stored = web_store.read("projects", where={"project_id": "proj-000900"})
    assert stored["name"].tolist() == ["荷香路北延线"]

    assert client.delete("/api/layers/projects/features/proj-000900", headers=bearer(tokens.staff)).status_code == 200
    assert web_store.count("projects") == SAMPLE_COUNTS["projects"]

    log = client.get("/api/audit", params={"layer": "projects", "limit": 3}, headers=bearer(tokens.planner)).json()
    assert [(e["action"], e["actor"]) for e in log] == [
        ("delete", "staff:staff-1"),
        ("update", "planner:planner-1"),
        ("write:append", "staff:staff-1"),
    ]
    assert log[1]["detail"]["before"][0]["properties"]["name"] == "name-000900"
    assert log[1]["detail"]["after"][0]["properties"]["name"] == "荷香路北延线"
    assert log[0]["detail"]["before"][0]["id"] == "proj-000900"


def test_audit_log_needs_a_staff_token(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/api/audit").status_code == 401
    assert client.get("/api/audit", headers=bearer(tokens.staff)).status_code == 200  # staff+ (issue 6)
    assert client.get("/api/audit", headers=bearer(tokens.admin)).status_code == 200


def test_invalid_feature_is_refused_with_every_problem_and_nothing_changes(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    bad = _feature(catalog, "projects", 901)
    properties = dict(bad["properties"])  # type: ignore[call-overload]
    del properties["task_area"]
    properties["status"] = "unknown-status"
    bad["properties"] = properties
    version = web_store.layer_version("projects")
    response = client.post("/api/layers/projects/features", json=bad, headers=bearer(tokens.staff))
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert {"task_area", "status"} <= fields
    assert web_store.layer_version("projects") == version
    not_json = client.post("/api/layers/projects/features", content=b"\x00\xff garbage", headers=bearer(tokens.staff))
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]


def test_revoked_token_cannot_write(client: TestClient, web_store: GeoPackageStore, catalog: Catalog) -> None:
    registry = TokenRegistry(side_table_engine(web_store.url))
    token = registry.create(name="short-lived", role=Role.PLANNER)
    registry.revoke("short-lived")
    registry.close()
    response = client.post(
        "/api/layers/projects/features", json=_feature(catalog, "projects", 902), headers=bearer(token)
    )
    assert response.status_code == 401
    assert web_store.count("projects") == SAMPLE_COUNTS["projects"]


def _geojson_upload(catalog: Catalog, n: int) -> bytes:
    layer = catalog.get("landuse_plan")
    features = feature_strings(sample_frame(layer, n, start=300), fields=layer.field_names, id_field=layer.id_field)
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode()


def test_planner_uploads_a_layer_file(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    response = client.post(
        "/api/layers/landuse_plan/upload",
        files={"file": ("../../../../tmp/evil-name.geojson", _geojson_upload(catalog, 7), "application/geo+json")},
        data={"mode": "replace"},
        headers=bearer(tokens.planner),
    )
    assert response.status_code == 200, response.text
    assert web_store.count("landuse_plan") == 7
    assert not Path("/tmp/evil-name.geojson").exists()


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("notes.txt", b"hello", 400, "unsupported file type"),
        ("plan.geojson", b"\x89PNG\r\n\x1a\n garbage", 400, "plan.geojson"),
        ("plan.geojson", b"", 400, "empty"),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, name: str, content: bytes, status: int, message: str
) -> None:
    before = web_store.read("landuse_plan")
    response = client.post(
        "/api/layers/landuse_plan/upload", files={"file": (name, content)}, headers=bearer(tokens.planner)
    )
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert web_store.read("landuse_plan").equals(before)


def test_hostile_archives_are_refused(client: TestClient, tokens: Tokens, web_store: GeoPackageStore) -> None:
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../../escape.shp", b"x")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.geojson", b"0" * (15 * 1024 * 1024))
    version = web_store.layer_version("landuse_plan")
    for name, payload in (("a.zip", traversal.getvalue()), ("b.zip", bomb.getvalue())):
        response = client.post(
            "/api/layers/landuse_plan/upload", files={"file": (name, payload)}, headers=bearer(tokens.planner)
        )
        assert response.status_code == 400, response.text
    assert web_store.layer_version("landuse_plan") == version


def test_a_raster_upload_is_refused_with_the_command_that_imports_it(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore
) -> None:
    response = client.post(
        "/api/layers/population/upload", files={"file": ("pop.tif", b"II*\x00")}, headers=bearer(tokens.admin)
    )
    assert response.status_code == 400, response.text
    assert "geoplan import population FILE.tif" in response.json()["detail"]
