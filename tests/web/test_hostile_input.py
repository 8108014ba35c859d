"""Hostile callers (issue 13): each class of malformed input gets a clear 4xx and leaves the store as it was.

Deeply nested JSON, NaN and Infinity, HEAD, chunked uploads with no declared size, ids with invisible
characters, a GeoJSON `crs` member that contradicts the coordinates, and properties the layer does not define.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from geoplan.catalog import Catalog
from geoplan.geojson import feature_strings
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.web.conftest import Tokens, bearer
from web.app import create_app
from web.settings import WebSettings
from web.uploads import FORM_OVERHEAD, MAX_JSON_DEPTH, json_safe_errors

# Every endpoint that reads a JSON body, with the least role that gets as far as reading it.
JSON_ENDPOINTS = [
    ("POST", "/api/layers/projects/features", "staff"),
    ("PUT", "/api/layers/projects/features/P-0001", "staff"),
    ("POST", "/api/compliance", "staff"),
    ("POST", "/api/ledger/P-0001/progress", "staff"),
    ("POST", "/api/checklist/records", "staff"),
    ("POST", "/api/overlaps/0123456789abcdef/mark", "planner"),
    ("POST", "/api/snapshots", "staff"),
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _store_file(store: GeoPackageStore) -> Path:
    return Path(store.url)


def _feature(catalog: Catalog, index: int, **properties: Any) -> dict[str, Any]:
    layer = catalog.get("projects")
    frame = sample_frame(layer, 1, start=index)
    feature: dict[str, Any] = json.loads(feature_strings(frame, fields=layer.field_names, id_field=layer.id_field)[0])
    feature["properties"].update(properties)
    return feature


# --------------------------------------------------------------------------------------------- JSON bodies


@pytest.mark.parametrize(("method", "path", "role"), JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1500 + b"]" * 1500,  # past Python's recursion limit: a RecursionError in the parser
        b'{"a":' * 200 + b"1" + b"}" * 200,  # parses, but deeper than any document of ours
        b'{"quarter": "2020Q4", "progress_pct": NaN, "status": "accepted"}',
        b'{"quarter": "2020Q4", "progress_pct": Infinity, "status": "accepted"}',
        b'{"type": "Feature", "properties": {"x": -Infinity}, "geometry": null}',
        b'{"quarter": "2020Q4", "progress_pct": 1e400, "status": "accepted"}',  # overflows to infinity
    ],
    ids=["nested-1500", "nested-200", "nan", "infinity", "minus-infinity", "overflow"],
)
def test_malformed_json_is_a_400_that_names_the_reason_and_writes_nothing(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, method: str, path: str, role: str, body: bytes
) -> None:
    before = _sha256(_store_file(web_store))
    headers = {**bearer(getattr(tokens, role)), "content-type": "application/json"}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    named = {b"NaN": "NaN", b"Infinity": "Infinity", b"1e400": "1e400"}
    reason = next((text for literal, text in named.items() if literal in body), "JSON")
    assert reason in detail, detail
    assert _sha256(_store_file(web_store)) == before


def test_the_depth_limit_leaves_room_for_real_geojson(client: TestClient, tokens: Tokens, catalog: Catalog) -> None:
    feature = _feature(catalog, 700)
    collection = {"type": "FeatureCollection", "features": [feature]}
    response = client.post("/api/layers/projects/features", json=collection, headers=bearer(tokens.staff))
    assert response.status_code == 201, response.text
    assert MAX_JSON_DEPTH >= 8  # FeatureCollection > features > Feature > geometry > MultiPolygon rings


def test_validation_errors_never_echo_input_that_json_cannot_hold() -> None:
    errors = [
        {"type": "finite_number", "loc": ("body", "x"), "msg": "not finite", "input": float("nan")},
        {"type": "string_type", "loc": ("body", "y"), "msg": "not text", "input": 3},
        {"type": "is_instance_of", "loc": ("body", "z"), "msg": "odd", "input": object(), "ctx": {"class": object}},
    ]
    safe = json_safe_errors(errors)
    json.dumps(safe, allow_nan=False)  # would raise on NaN or an object
    assert "input" not in safe[0] and safe[1]["input"] == 3 and "input" not in safe[2] and "ctx" not in safe[2]


class _Probe(BaseModel):
    value: float = Field(allow_inf_nan=False)


def test_fastapis_own_body_parsing_answers_4xx_with_json(web_store: GeoPackageStore) -> None:
    """A route whose body FastAPI parses into a model (as a future route might) gets the same error handling."""
    app = create_app(WebSettings(store=web_store.url, layers_dir=LAYERS_DIR))

    @app.post("/probe")
    def probe(body: _Probe) -> dict[str, float]:
        return {"value": body.value}

    with TestClient(app, raise_server_exceptions=False) as client:
        for body in (b"[" * 1500 + b"]" * 1500, b'{"value": ', b"\xff\xfe"):
            response = client.post("/probe", content=body, headers={"content-type": "application/json"})
            assert response.status_code in (400, 422) and "detail" in response.json(), body[:20]
        response = client.post("/probe", content=b'{"value": NaN}', headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "value"] and "input" not in response.json()["detail"][0]
        assert client.post("/probe", json={"value": 1.5}).json() == {"value": 1.5}


def test_a_query_validation_error_is_a_422_with_json(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/api/ledger", params={"overdue": "NaN"}, headers=bearer(tokens.staff))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "overdue"]


# --------------------------------------------------------------------------------------------- HEAD


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/ogc/collections/projects/items", None),
        ("/ogc/collections", None),
        ("/", None),
        ("/layers", None),
        ("/healthz", None),
        ("/api/ledger", "staff"),
        ("/static/vendor/leaflet/leaflet.css", None),
    ],
)
def test_head_answers_like_get_without_a_body(client: TestClient, tokens: Tokens, path: str, role: str | None) -> None:
    headers = bearer(getattr(tokens, role)) if role else {}
    got = client.get(path, headers=headers)
    head = client.head(path, headers=headers)
    assert got.status_code == 200, got.text[:200]
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if "content-length" in got.headers:
        assert head.headers["content-length"] == got.headers["content-length"]


def test_head_is_refused_where_get_is(client: TestClient) -> None:
    assert client.head("/api/ledger").status_code == client.get("/api/ledger").status_code == 401
    assert client.head("/api/snapshots/nope").status_code == 404
    assert client.head("/api/layers/projects/upload").status_code == 405  # POST only


# --------------------------------------------------------------------------------------------- chunked uploads


async def _post_chunked(app: FastAPI, path: str, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, int]:
    """POST `chunks` straight to the ASGI app with no Content-Length, as a chunked request arrives; returns
    the status and how many body bytes the app pulled before answering."""
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, pulled


@pytest.mark.parametrize("path", ["/api/layers/projects/upload", "/api/compliance"])
def test_a_chunked_upload_is_stopped_at_the_limit_while_it_streams(
    web_store: GeoPackageStore, tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    limit = 64 * 1024
    chunk = 64 * 1024
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where the multipart parser and our copy write

    def body() -> Iterator[bytes]:
        yield (
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.geojson"\r\n'
            b"Content-Type: application/geo+json\r\n\r\n"
        )
        for _ in range(200):  # 12.8 MB, 200 times the limit
            yield b" " * chunk

    headers = {**bearer(tokens.staff), "content-type": "multipart/form-data; boundary=XyZ"}
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, max_upload_bytes=limit)
    with TestClient(create_app(settings)) as client:
        assert client.portal is not None
        before = _sha256(_store_file(web_store))  # after start-up, which sets up side tables
        status, pulled = client.portal.call(_post_chunked, client.app, path, headers, body())
    assert status == 413
    assert pulled <= limit + FORM_OVERHEAD + 2 * chunk, f"read {pulled:,} bytes for a {limit:,}-byte limit"
    assert list(spool.iterdir()) == []
    assert _sha256(_store_file(web_store)) == before


# --------------------------------------------------------------------------------------------- invisible ids


INVISIBLE = ["\u200b", "\u202e", "\u2028", "\u2029", "\x00", "\u00a0", "\ufeff", "\x1b"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_a_new_id_with_an_invisible_character_is_refused(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog, char: str
) -> None:
    existing = str(web_store.read("projects")["project_id"].iloc[0])
    feature = _feature(catalog, 800, project_id=existing[:2] + char + existing[2:])
    before = _sha256(_store_file(web_store))
    response = client.post("/api/layers/projects/features", json=feature, headers=bearer(tokens.staff))
    assert response.status_code == 422, response.text
    assert f"U+{ord(char):04X}" in response.text
    assert _sha256(_store_file(web_store)) == before


@pytest.mark.parametrize("suffix", ["%00", "%E2%80%8B", "%E2%80%AE", "%E2%80%A8"])
def test_a_lookup_by_an_id_with_an_invisible_character_never_matches_another_feature(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, suffix: str
) -> None:
    existing = str(web_store.read("projects")["project_id"].iloc[0])
    assert client.get(f"/ogc/collections/projects/items/{existing}").status_code == 200
    before = _sha256(_store_file(web_store))
    staff = bearer(tokens.staff)
    assert client.get(f"/ogc/collections/projects/items/{existing}{suffix}").status_code == 400
    assert client.get(f"/api/ledger/{existing}{suffix}/progress", headers=staff).status_code == 400
    assert client.delete(f"/api/layers/projects/features/{existing}{suffix}", headers=staff).status_code == 400
    assert _sha256(_store_file(web_store)) == before


# --------------------------------------------------------------------------------------------- GeoJSON members


def test_a_crs_member_that_contradicts_the_coordinates_is_refused(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    feature = _feature(catalog, 810)  # lon/lat numbers
    document = {"type": "FeatureCollection", "features": [feature]}
    before = _sha256(_store_file(web_store))
    for name in ("EPSG:4547", "urn:ogc:def:crs:EPSG::3857"):
        document["crs"] = {"type": "name", "properties": {"name": name}}
        response = client.post("/api/layers/projects/features", json=document, headers=bearer(tokens.staff))
        assert response.status_code == 422, response.text
        assert "EPSG:" in response.json()["detail"]
    document["crs"] = {"type": "link", "properties": {"href": "http://example.org/crs"}}
    response = client.post("/api/layers/projects/features", json=document, headers=bearer(tokens.staff))
    assert response.status_code == 422 and '"crs" member' in response.json()["detail"]
    assert _sha256(_store_file(web_store)) == before
    document["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}  # what it is
    response = client.post("/api/layers/projects/features", json=document, headers=bearer(tokens.staff))
    assert response.status_code == 201, response.text


def test_unknown_properties_are_refused_by_name(
    client: TestClient, tokens: Tokens, web_store: GeoPackageStore, catalog: Catalog
) -> None:
    feature = _feature(catalog, 820, colour="red", budget_wan=10)
    before = _sha256(_store_file(web_store))
    response = client.post("/api/layers/projects/features", json=feature, headers=bearer(tokens.staff))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "unknown properties" in detail and "'colour'" in detail and "'budget_wan'" in detail
    project_id = feature["properties"]["project_id"]
    response = client.put(f"/api/layers/projects/features/{project_id}", json=feature, headers=bearer(tokens.staff))
    assert response.status_code in (404, 422) and "colour" in response.text
    assert _sha256(_store_file(web_store)) == before
