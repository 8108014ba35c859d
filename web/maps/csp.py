"""Security headers for the HTML pages.

The Content-Security-Policy allows scripts, styles, images, fonts and fetches from our own origin only, plus
the configured basemap's tile host for images (an intranet vector tile service also for fetches: exactly its
origin). folium writes its map as inline <script> and <style> blocks;
instead of 'unsafe-inline' (which would also let an injected <script> run) each response carries a fresh random
nonce that `render.with_nonce` puts on exactly those blocks. Leaflet positions elements through the CSSOM
(element.style), which CSP does not restrict, and our legend swatches use SVG attributes, so styles need no
'unsafe-inline' either.
"""

from __future__ import annotations

import secrets

from web.maps.basemap import Basemap


def new_nonce() -> str:
    """128 random bits, URL-safe base64 (valid in a CSP nonce-source and in an HTML attribute)."""
    return secrets.token_urlsafe(16)


def content_security_policy(*, nonce: str, basemap: Basemap) -> str:
    # With a tiled basemap Leaflet blanks each tile it drops by pointing it at a data: GIF; allow data: images
    # only then (an inert image, never script).
    images = " ".join(["'self'", *(["data:"] if basemap.tiles else []), *basemap.hosts])
    connect = " ".join(["'self'", *basemap.connect_hosts])
    return policy(script=f"'self' 'nonce-{nonce}'", style=f"'self' 'nonce-{nonce}'", images=images, connect=connect)


def policy(*, script: str, style: str, images: str, connect: str = "'self'") -> str:
    """The one policy of every HTML page: our own origin for everything, the given script, style and image sources."""
    directives = {
        "default-src": "'self'",
        "script-src": script,
        "style-src": style,
        "img-src": images,
        "font-src": "'self'",
        "connect-src": connect,
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def page_headers(*, nonce: str, basemap: Basemap) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce=nonce, basemap=basemap),
        "X-Content-Type-Options": "nosniff",
        # Origin only, never the path (a permalink names a project). Not "no-referrer": OSM's tile policy and
        # Tianditu's browser keys (checked against a domain whitelist) need the origin.
        "Referrer-Policy": "strict-origin-when-cross-origin",
        # Each response has its own nonce: don't let a cache hand one to somebody else.
        "Cache-Control": "no-store",
    }
