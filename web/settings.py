"""Web settings: the library's settings plus what only the web application needs."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from geoplan.settings import Settings
from web.basemap_setting import BasemapChoice, TileUrl, check_combination, parse_basemap, parse_tile_url
from web.tile_package import PackageError, open_package


class WebSettings(Settings):
    basemap: str = "reference"
    """The map background: `reference` (the store's own outlines, names, roads and water; offline), `none`,
    `osm`, `tianditu` (needs `tianditu_key`), `amap` (shifts display to GCJ-02), or a local tile package
    `mbtiles:PATH` / `pmtiles:PATH`. Checked at startup (web.basemap_setting)."""

    basemap_url: str = ""
    """An intranet XYZ or WMTS tile template used as the background (with the reference outlines and names over
    it); the page's CSP allows exactly its origin."""

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

    @field_validator("basemap")
    @classmethod
    def _known_basemap(cls, value: str) -> str:
        choice = parse_basemap(value)
        if choice.path is not None:
            try:
                open_package(choice.kind, choice.path.resolve())
            except PackageError as exc:
                raise ValueError(f"basemap {value!r}: {exc}") from None
        return value.strip()

    @field_validator("basemap_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if value.strip():
            parse_tile_url(value)
        return value.strip()

    @model_validator(mode="after")
    def _one_background(self) -> WebSettings:
        check_combination(self.basemap_choice, self.basemap_url)
        return self

    @property
    def basemap_choice(self) -> BasemapChoice:
        choice = parse_basemap(self.basemap)
        return choice if choice.path is None else BasemapChoice(choice.kind, choice.path.resolve())

    @property
    def basemap_tile_url(self) -> TileUrl | None:
        return parse_tile_url(self.basemap_url) if self.basemap_url else None
