"""Web settings: the library's settings plus what only the web application needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geoplan.settings import Settings

Basemap = Literal["none", "osm", "tianditu", "amap"]


class WebSettings(Settings):
    basemap: Basemap = "none"
    """The map background. `none` works offline; tianditu needs `tianditu_key`; amap shifts display to GCJ-02."""

    tianditu_key: str = ""
    max_upload_bytes: int = 20 * 1024 * 1024
    max_page_size: int = 10_000
    """Largest `limit` the features API accepts; larger layers are paged."""
    max_features_whole_layer: int = 5_000
    """A layer page loads a layer with at most this many features whole; a larger one only by the map's view."""
    large_layer_min_zoom: int = 13
    """Below this zoom a large layer is not drawn and the page asks to zoom in (zoom 13 spans ~15 km here)."""
    large_layer_view_limit: int = 2_000
    """Most features one view of a large layer draws (the `limit` of its bbox request); beyond it a notice shows."""
    public_url: str = ""
    """The public base URL (https://host[/prefix]) of every absolute link the OGC API writes; unset: see
    `allowed_hosts`."""
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1"])
    """Host names a request's Host header may put into links when `public_url` is unset; any other Host falls
    back to the server's own address, so a forged Host never reaches a link."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Peer addresses whose X-Forwarded-Proto / X-Forwarded-Host are believed (a reverse proxy in front)."""
