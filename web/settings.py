"""Web settings: the library's settings plus what only the web application needs."""

from __future__ import annotations

from typing import Literal

from geoplan.settings import Settings

Basemap = Literal["none", "osm", "tianditu", "amap"]


class WebSettings(Settings):
    basemap: Basemap = "none"
    """The map background. `none` works offline; tianditu needs `tianditu_key`; amap shifts display to GCJ-02."""

    tianditu_key: str = ""
    max_upload_bytes: int = 20 * 1024 * 1024
    max_page_size: int = 10_000
    """Largest `limit` the features API accepts; larger layers are paged."""
