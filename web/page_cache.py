"""Rendered HTML pages kept in memory, keyed by what they show: the store versions of their layers.

Rendering a map page costs milliseconds (folium compiles its templates on every render) and `/layers` counts
every public layer; under load that made the pages the slowest public GETs. A page is rendered once per state of
its inputs (the key carries each layer's store version, one indexed query each, so a write from any process is
seen at the next request) and served from memory afterwards.

Each response still gets its own CSP nonce: the page is rendered with a per-process placeholder in its place and
kept split at it, so a request only joins the pieces around a fresh nonce.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from web.computed_once import ComputedOnce
from web.maps.basemap import Basemap
from web.maps.csp import new_nonce, page_headers

# The nonce's stand-in while a page sits in the cache: random per process, so no catalogue text can contain it.
NONCE_PLACEHOLDER = f"gpnonce{secrets.token_hex(16)}"
# folium names its elements with 32 random hex digits; the ETag ignores them, so every process (whose renders
# differ only in those names) gives the same tag for the same page.
_FOLIUM_IDS = re.compile(r"_[0-9a-f]{32}\b")
# The browser may keep the page but must ask each time (ETag, 304); shared caches must not keep it, since a
# stored copy would hand the same nonce to everybody. Pages never read the token: no Vary on Authorization.
CACHE_CONTROL = "private, no-cache"


@dataclass(frozen=True)
class CachedPage:
    parts: tuple[bytes, ...]
    """The body split at the nonce placeholder."""
    basemap: Basemap
    etag: str

    @classmethod
    def of(cls, html: str, basemap: Basemap) -> CachedPage:
        normalised = _FOLIUM_IDS.sub("_", html.replace(NONCE_PLACEHOLDER, ""))
        # Weak: two processes' renders are equivalent, not byte-identical (folium's names, the nonce).
        etag = 'W/"' + hashlib.sha256(normalised.encode()).hexdigest()[:32] + '"'
        return cls(tuple(p.encode() for p in html.split(NONCE_PLACEHOLDER)), basemap, etag)

    def response(self, request: Request) -> Response:
        if _matches(request.headers.get("if-none-match"), self.etag):
            # No CSP here: the browser keeps the stored page's own policy, which matches the stored page's nonce.
            return Response(status_code=304, headers={"ETag": self.etag, "Cache-Control": CACHE_CONTROL})
        nonce = new_nonce()
        headers = {**page_headers(nonce=nonce, basemap=self.basemap), "ETag": self.etag, "Cache-Control": CACHE_CONTROL}
        return HTMLResponse(nonce.encode().join(self.parts), headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" and "x" match."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class PageCache:
    """`page(key, basemap, render)`: the page for `key`, rendered once (by one thread) with the placeholder nonce."""

    def __init__(self, *, keep: int = 64) -> None:
        # Keys carry the layer versions: an edit makes a new key, and the old page ages out beyond `keep`.
        self._pages: ComputedOnce[CachedPage] = ComputedOnce(keep=keep)

    @property
    def builds(self) -> int:
        """How many pages were rendered (for tests)."""
        return self._pages.builds

    def page(self, key: Hashable, basemap: Basemap, render: Callable[[str], str]) -> CachedPage:
        return self._pages.get(key, lambda: CachedPage.of(render(NONCE_PLACEHOLDER), basemap))
