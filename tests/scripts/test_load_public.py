"""The load script's client reads every kind of answer the public GETs give, and its path list is every public
GET the app serves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from scripts import load_public
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from web.app import create_app
from web.settings import WebSettings

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: z\r\n\r\n"
)
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: W/"x"\r\nContent-Length: 120\r\n\r\n'
CLOSING = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
UNTIL_CLOSED = b"HTTP/1.1 200 OK\r\n\r\nthe rest"


def _read_all(data: bytes, responses: int) -> list[tuple[int, int, bool]]:
    async def run() -> list[tuple[int, int, bool]]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return [await load_public.read_response(reader) for _ in range(responses)]

    return asyncio.run(run())


def test_keep_alive_client_reads_each_kind_of_response_in_turn() -> None:
    # One connection: a chunked body, a sized one, a 304 (no body, whatever Content-Length says), then a close.
    answers = _read_all(CHUNKED + LENGTH + NOT_MODIFIED + CLOSING, 4)
    assert answers == [(200, 11, True), (200, 4, True), (304, 0, True), (404, 2, False)]
    assert _read_all(UNTIL_CLOSED, 1) == [(200, 8, False)]
    with pytest.raises(load_public.ResponseError):
        _read_all(b"", 1)


@pytest.fixture
def client(catalog: Catalog, tmp_path: Path) -> Iterator[TestClient]:
    """The app on a store with a few features in some public layers; the others are empty."""
    store = GeoPackageStore(tmp_path / "load.gpkg", catalog)
    store.init()
    for name in ("projects", "culture_facilities", "roads"):
        store.write(name, sample_frame(catalog.get(name), 3))
    with TestClient(create_app(WebSettings(store=store.url, layers_dir=LAYERS_DIR))) as test_client:
        yield test_client


def test_mixed_paths_are_every_public_get_and_all_answer(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    base = "http://127.0.0.1:1"

    def get_json(url: str) -> Any:
        return client.get(url.removeprefix(base)).json()

    monkeypatch.setattr(load_public, "_get_json", get_json)
    paths = load_public.public_paths(base)
    public = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    for name in public:
        assert f"/layers/{name}" in paths and f"/ogc/collections/{name}" in paths
        assert f"/ogc/collections/{name}/items?limit={load_public.ITEMS_LIMIT}" in paths
    assert any("&bbox=" in p for p in paths) and any(p.startswith("/ogc/collections/projects/items/") for p in paths)
    assert not any("landuse_plan" in p for p in paths)  # private layers are not public GETs
    assert {"/", "/layers", "/ogc", "/ogc/conformance", "/ogc/collections", "/healthz"} <= set(paths)
    assert len(paths) == len(set(paths))
    for path in paths:
        assert client.get(path).status_code == 200, path
