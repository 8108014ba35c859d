"""The map background, chosen by `WebSettings.basemap`: the reference basemap, none, OpenStreetMap, Tianditu (天地图),
AMap (高德), a local tile package (MBTiles/PMTiles) or an intranet tile URL.

`reference` is the default because government intranets are often offline: the page draws the store's own
district, town and village outlines with their names, roads and water (web/static/geoplan-basemap.js, data from
/basemap/reference.json and the OGC API), so every map can be read without any outside host. A tile package is
served by the app itself (/basemap/tiles/…, web/routers/basemap.py). The outside choices add tile layers from
their own host, which the page's Content-Security-Policy then allows for images (see `csp.py`).

Over a package or an intranet URL the reference still draws the outlines and names, not roads and water: the
tiles already show roads and water (drawing them twice misaligns), but rarely this district's town and village
boundaries, which are what planners orient by. Over OSM, Tianditu and AMap nothing is added: they carry their
own names, and AMap's shifted display would need every reference vertex shifted too.

AMap tiles are drawn in GCJ-02, an obfuscated offset of ~600 m in Gaoming. Our data stays in CGCS2000 everywhere
(store, API, analysis); only the *display* is shifted: with `display_crs == "gcj02"` the page script moves every
vertex with the same formula as `geoplan.crs.wgs84_to_gcj02` before drawing (a client-side port, checked against
the Python function by the browser tests). Tianditu's `_w` tiles are CGCS2000 in Web Mercator: no shift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from web.settings import WebSettings
from web.tile_package import PackageInfo, open_package

log = logging.getLogger(__name__)

DisplayCRS = Literal["cgcs2000", "gcj02"]
ReferenceDraw = Literal["full", "outlines", "off"]
PACKAGE_TILES_URL = "/basemap/tiles/{z}/{x}/{y}"
REFERENCE_URL = "/basemap/reference.json"
REFERENCE_NOTE = "参考底图：本库区界、镇街、村居、道路、水系"

# Tianditu WMTS in Web Mercator (TILEMATRIXSET=w): vec = the vector map, cva = its Chinese annotation overlay.
TIANDITU_TEMPLATE = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}"
    "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
AMAP_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@dataclass(frozen=True)
class TileSource:
    """One Leaflet tile layer: a URL template with {s}/{x}/{y}/{z}, its attribution and subdomains."""

    name: str
    url: str
    attribution: str
    subdomains: str = "abc"
    max_zoom: int = 18
    overlay: bool = False
    min_zoom: int = 0
    max_native_zoom: int | None = None
    """Beyond it Leaflet enlarges the deepest tiles (a package made to zoom 16 still shows at 18)."""
    bounds: tuple[float, float, float, float] | None = None
    """west, south, east, north: no tile is asked for outside (a package covers only its own area)."""


@dataclass(frozen=True)
class VectorTiles:
    """Vector tiles (MVT) drawn by the page with a plain style per geometry type."""

    url: str
    min_zoom: int = 0
    max_zoom: int = 14
    attribution: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "minZoom": self.min_zoom, "maxZoom": self.max_zoom, "attribution": self.attribution}


@dataclass(frozen=True)
class Basemap:
    kind: str
    tiles: tuple[TileSource, ...] = ()
    hosts: tuple[str, ...] = ()
    """CSP sources the tiles come from (for img-src)."""
    display_crs: DisplayCRS = "cgcs2000"
    note_zh: str = ""
    """Shown in the legend: what the background is and whether the display is shifted."""
    reference: ReferenceDraw = "off"
    """What the page draws of the reference basemap: all of it, outlines and names only, or nothing."""
    vector_tiles: VectorTiles | None = None
    connect_hosts: tuple[str, ...] = ()
    """CSP sources the page fetches vector tiles from (for connect-src)."""

    def script_config(self) -> dict[str, Any]:
        """What geoplan-basemap.js is told (GeoplanMap.basemap)."""
        return {
            "kind": self.kind,
            "reference": self.reference,
            "referenceUrl": REFERENCE_URL,
            "displayCrs": self.display_crs,
            "vectorTiles": self.vector_tiles.to_json() if self.vector_tiles else None,
        }


NO_BASEMAP = Basemap(kind="none", note_zh="无底图（离线）：区界用于定位")
REFERENCE_BASEMAP = Basemap(kind="reference", reference="full", note_zh=REFERENCE_NOTE)


def package_basemap(kind: str, info: PackageInfo) -> Basemap:
    """A local tile package served by the app: raster as an image tile layer, vector drawn by the page."""
    what = info.name or kind.upper()
    note = f"底图：本地瓦片包（{what}）；区界、镇街、村居及名称来自本库"
    if info.vector:
        tiles = VectorTiles(PACKAGE_TILES_URL, info.min_zoom, info.max_zoom, info.attribution)
        return Basemap(kind=kind, reference="outlines", vector_tiles=tiles, note_zh=note)
    source = TileSource(
        what,
        PACKAGE_TILES_URL,
        info.attribution or what,  # Leaflet's attribution: the package's own credit, else its name
        subdomains="",
        max_zoom=19,
        min_zoom=info.min_zoom,
        max_native_zoom=info.max_zoom,
        bounds=info.bounds,
    )
    return Basemap(kind=kind, tiles=(source,), reference="outlines", note_zh=note)  # our own origin: no host


def url_basemap(settings: WebSettings) -> Basemap | None:
    tile_url = settings.basemap_tile_url
    if tile_url is None:
        return None
    note = "底图：内网瓦片服务；区界、镇街、村居及名称来自本库"
    if tile_url.vector:
        tiles = VectorTiles(tile_url.template)
        return Basemap(
            kind="url", reference="outlines", vector_tiles=tiles, connect_hosts=(tile_url.origin,), note_zh=note
        )
    source = TileSource("内网瓦片", tile_url.template, "内网瓦片服务", subdomains="", max_zoom=19)
    return Basemap(kind="url", tiles=(source,), hosts=(tile_url.origin,), reference="outlines", note_zh=note)


def basemap_for(settings: WebSettings) -> Basemap:
    """The configured background. Tianditu without a key falls back to the reference: a map still reads."""
    choice = settings.basemap_choice
    if choice.path is not None:
        return package_basemap(choice.kind, open_package(choice.kind, choice.path).info)
    if choice.kind == "none":
        return NO_BASEMAP
    if choice.kind == "osm":
        return Basemap(
            kind="osm",
            tiles=(
                TileSource("OpenStreetMap", OSM_URL, "© OpenStreetMap contributors", subdomains="abc", max_zoom=19),
            ),
            hosts=("https://tile.openstreetmap.org",),
            note_zh="底图：OpenStreetMap",
        )
    if choice.kind == "tianditu":
        key = settings.tianditu_key.strip()
        if not key:
            log.warning("basemap 'tianditu' needs GEOPLAN_TIANDITU_KEY (the tk parameter); showing the reference")
            return REFERENCE_BASEMAP
        tk = quote(key, safe="")
        return Basemap(
            kind="tianditu",
            tiles=(
                TileSource("天地图 矢量", TIANDITU_TEMPLATE.format(layer="vec", key=tk), "© 天地图", "01234567"),
                TileSource(
                    "天地图 注记", TIANDITU_TEMPLATE.format(layer="cva", key=tk), "© 天地图", "01234567", overlay=True
                ),
            ),
            hosts=("https://*.tianditu.gov.cn",),
            note_zh="底图：天地图（CGCS2000）",
        )
    if choice.kind == "amap":
        return Basemap(
            kind="amap",
            tiles=(TileSource("高德地图", AMAP_URL, "© 高德地图 AutoNavi", subdomains="1234"),),
            hosts=("https://*.is.autonavi.com",),
            display_crs="gcj02",
            note_zh="底图：高德地图。为与底图对齐，显示坐标已偏移为 GCJ-02；数据与分析仍为 CGCS2000",
        )
    return url_basemap(settings) or REFERENCE_BASEMAP
