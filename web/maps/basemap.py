"""The map background, chosen by `WebSettings.basemap`: none, OpenStreetMap, Tianditu (天地图) or AMap (高德).

`none` is the default because government intranets are often offline: the pages then show a plain background
and the district outline gives orientation. The other choices add tile layers from their own host, which the
page's Content-Security-Policy then allows for images (see `csp.py`).

AMap tiles are drawn in GCJ-02, an obfuscated offset of ~600 m in Gaoming. Our data stays in CGCS2000 everywhere
(store, API, analysis); only the *display* is shifted: with `display_crs == "gcj02"` the page script moves every
vertex with the same formula as `geoplan.crs.wgs84_to_gcj02` before drawing (a client-side port, checked against
the Python function by the browser tests). Tianditu's `_w` tiles are CGCS2000 in Web Mercator: no shift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from web.settings import WebSettings

log = logging.getLogger(__name__)

DisplayCRS = Literal["cgcs2000", "gcj02"]

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


@dataclass(frozen=True)
class Basemap:
    kind: str
    tiles: tuple[TileSource, ...] = ()
    hosts: tuple[str, ...] = ()
    """CSP sources the tiles come from (for img-src)."""
    display_crs: DisplayCRS = "cgcs2000"
    note_zh: str = ""
    """Shown in the legend: what the background is and whether the display is shifted."""


NO_BASEMAP = Basemap(kind="none", note_zh="无底图（离线）：区界用于定位")


def basemap_for(settings: WebSettings) -> Basemap:
    """The configured background. Tianditu without a key falls back to none: a map without tiles still works."""
    if settings.basemap == "osm":
        return Basemap(
            kind="osm",
            tiles=(
                TileSource("OpenStreetMap", OSM_URL, "© OpenStreetMap contributors", subdomains="abc", max_zoom=19),
            ),
            hosts=("https://tile.openstreetmap.org",),
            note_zh="底图：OpenStreetMap",
        )
    if settings.basemap == "tianditu":
        key = settings.tianditu_key.strip()
        if not key:
            log.warning("basemap 'tianditu' needs GEOPLAN_TIANDITU_KEY (the tk parameter); showing no basemap")
            return NO_BASEMAP
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
    if settings.basemap == "amap":
        return Basemap(
            kind="amap",
            tiles=(TileSource("高德地图", AMAP_URL, "© 高德地图 AutoNavi", subdomains="1234"),),
            hosts=("https://*.is.autonavi.com",),
            display_crs="gcj02",
            note_zh="底图：高德地图。为与底图对齐，显示坐标已偏移为 GCJ-02；数据与分析仍为 CGCS2000",
        )
    return NO_BASEMAP
