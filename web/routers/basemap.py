"""The basemap's own endpoints: the reference layers (/basemap/reference.json) and a local tile package's tiles
(/basemap/tiles/{z}/{x}/{y}).

Both are public (pages are public) and hold only public layers and fields. The reference document is built once
per state of its layers (their store versions are its cache key and ETag), off the event loop.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from geoplan.errors import NotFoundError
from geoplan.services.reference_map import reference_document, reference_versions
from web.deps import SettingsDep, StoreDep
from web.etags import etag_headers, not_modified
from web.tile_package import MAX_ZOOM, open_package

router = APIRouter(tags=["basemap"])

_GUARD = threading.Lock()
PACKAGE_CACHE_CONTROL = "public, max-age=3600"
"""A package's tiles change only when the file is replaced and the server restarted: an hour is safe."""


def _cached_reference(request: Request, versions: tuple[tuple[str, int], ...]) -> tuple[bytes, bytes]:
    """The reference document at `versions` (plain, gzipped), built by the first request that needs it."""
    state = request.app.state
    with _GUARD:
        cached: tuple[object, tuple[tuple[str, int], ...], bytes, bytes] | None = getattr(state, "reference_map", None)
    if cached is not None and cached[0] is state.store and cached[1] == versions:
        return cached[2], cached[3]
    body = json.dumps(reference_document(state.store), ensure_ascii=False, separators=(",", ":")).encode()
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    with _GUARD:
        state.reference_map = (state.store, versions, body, packed)
    return body, packed


@router.get("/basemap/reference.json", summary="The reference basemap's outlines, labels and credits")
def reference(request: Request, store: StoreDep) -> Response:
    versions = reference_versions(store)
    etag, headers = etag_headers(request, *(f"{name}:{version}" for name, version in versions))
    headers.pop("Vary")  # the same for every caller: public layers and fields only
    if (unchanged := not_modified(request, etag, headers)) is not None:
        return unchanged
    body, packed = _cached_reference(request, versions)
    headers["Vary"] = "Accept-Encoding"
    if "gzip" in request.headers.get("accept-encoding", ""):  # every page loads it: 191 kB of outlines -> 43 kB
        return Response(packed, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type="application/json", headers=headers)


@router.get("/basemap/tiles/{z}/{x}/{y}", summary="A tile of the configured local tile package")
def package_tile(
    request: Request,
    settings: SettingsDep,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
) -> Response:
    choice = settings.basemap_choice
    if choice.path is None:
        raise NotFoundError("no tile package is configured as the basemap (GEOPLAN_BASEMAP=mbtiles:PATH)")
    package = open_package(choice.kind, choice.path)
    tile = package.tile(z, x, y)
    if tile is None:
        raise NotFoundError(f"tile {z}/{x}/{y} is not in the basemap package")
    etag = '"' + hashlib.blake2b(tile.data, digest_size=16).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": PACKAGE_CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if tile.gzipped:  # vector tiles are usually stored gzipped: the browser unpacks them
        headers["Content-Encoding"] = "gzip"
    return Response(tile.data, media_type=package.info.media_type, headers=headers)
