"""The basemap in the browser: every map page readable offline, and a local tile package shown.

Every tab here aborts and records each request to a host other than the app (tests/web/browser.py): the record
must stay empty on every page, with the default reference basemap drawn from the store alone.
"""

from __future__ import annotations

import io
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.web.browser import Server, Session, browser, serve, session
from tests.web.conftest import Tokens
from tests.web.module_demo import demo
from tests.web.tile_packages import tiles_around, vector_tile, write_mbtiles, write_pmtiles
from tests.web.token_pages import sign_in

__all__ = ["browser", "demo"]

pytestmark = pytest.mark.browser

TOWNS = ("荷城街道", "杨和镇", "明城镇", "更合镇")
GAOMING = (112.7, 22.84)
PACKAGE_RGB = (200, 30, 150)
"""A magenta no basemap or data layer uses: a pixel of it can only come from the package's tiles."""
STAFF_FIRST_LOAD_MS = 180_000
"""The coverage page's first answer computes for a while on a busy 2-core machine."""

# Fits the map to the district (as read from /basemap/reference.json) without animation; resolves when done.
_FIT_DISTRICT = """
async () => {
  const map = Object.values(window).find((v) => v instanceof L.Map);
  const reference = await (await fetch('/basemap/reference.json')).json();
  map.fitBounds(L.geoJSON(reference.district).getBounds(), { animate: false });
  return map.getZoom();
}
"""
_TOWN_BOXES = """
(names) => {
  const shown = Array.from(document.querySelectorAll('.gp-base-label')).filter((e) => !e.hidden);
  const map = document.querySelector('.leaflet-container').getBoundingClientRect();
  return names.map((name) => {
    const label = shown.find((e) => e.textContent === name);
    if (!label) return null;
    const r = label.getBoundingClientRect();
    return { name, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
             inside: r.left >= map.left && r.right <= map.right && r.top >= map.top && r.bottom <= map.bottom };
  });
}
"""
_PANE_PATHS = "(pane) => document.querySelectorAll('.leaflet-' + pane + '-pane path').length"
# True once the reference's roads and water tiles (Leaflet.VectorGrid grid layers) are all in and roads drawn.
_TILES_IN = """
() => {
  const lines = (Object.values(window).find((v) => v instanceof L.Map)._gpBasemap || {}).lines || {};
  const grids = Object.values(lines);
  return grids.length === 3 && grids.every((g) => !g.isLoading())
    && document.querySelectorAll('.leaflet-gpBaseRoads-pane path').length > 0;
}
"""
_ROAD_COLOURS = (
    "() => Array.from(new Set(Array.from(document.querySelectorAll('.leaflet-gpBaseRoads-pane path'))"
    ".map((p) => p.getAttribute('stroke'))))"
)
# geoplan-basemap.js's road colours by class (ROAD_CLASSES).
MAJOR_COLOURS = {"#d9822b", "#e0a84a"}  # 高速公路, 主干路
MINOR_COLOURS = {"#b4b4b4", "#bfb294"}  # 支路, 村道
ROAD_TILES = "/ogc/collections/roads/tiles/WebMercatorQuad/"
MAJOR_FILTER = "road_class IN ('高速公路','主干路')"
ZOOM_13_FILTER = "road_class IN ('高速公路','主干路','次干路','支路','村道')"


def road_tile_filters(urls: list[str]) -> dict[int, set[str | None]]:
    """The filters (None: none) of the road tile requests in `urls`, by the tiles' zoom."""
    found: dict[int, set[str | None]] = {}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.path.startswith(ROAD_TILES):
            zoom = int(parts.path[len(ROAD_TILES) :].split("/")[0])
            found.setdefault(zoom, set()).add(urllib.parse.parse_qs(parts.query).get("filter", [None])[0])
    return found


def record_requests(tab: Session) -> list[str]:
    """The URLs the tab asks for from now on (the app's own: others are aborted and kept in `tab.foreign`)."""
    urls: list[str] = []
    tab.page.on("request", lambda request: urls.append(request.url))
    return urls


@pytest.fixture(scope="module")
def server(demo: tuple[Path, Tokens], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on the demo copy with the default basemap, the reference."""
    log = tmp_path_factory.mktemp("logs") / "uvicorn.log"
    with serve(demo[0], log, GEOPLAN_BASEMAP="reference") as running:
        yield running


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def check_reference_at_district_zoom(tab: Session, page: str, urls: list[str]) -> None:
    """The four town names shown inside the map without overlapping, roads and water drawn from vector tiles, the
    roads only of the major classes: the road tiles asked for carry the district zoom's filter."""
    tab.page.wait_for_selector(".leaflet-container[data-basemap='ready']", state="attached")
    zoom = tab.page.evaluate(_FIT_DISTRICT)
    assert 9 <= zoom <= 11, f"{page}: the district fits at zoom {zoom}"
    tab.page.wait_for_function(_TILES_IN)
    filters = road_tile_filters(urls)  # since the page opened: its first view's tiles and the district's
    assert filters[math.floor(zoom + 0.5)] == {MAJOR_FILTER}, urls  # Leaflet's tile zoom: Math.round
    assert all(found == {MAJOR_FILTER} for z, found in filters.items() if z < 12), filters
    assert not any("/ogc/collections/roads/items" in url for url in urls), urls  # no GeoJSON at this zoom
    colours = set(tab.page.evaluate(_ROAD_COLOURS))
    assert colours and colours <= MAJOR_COLOURS, colours
    tiles = tab.page.evaluate("() => document.querySelectorAll('.leaflet-gpBaseRoads-pane svg').length")
    assert tiles > 0 and tab.page.locator(".leaflet-gpBaseRoads-pane .gp-feature").count() == 0
    boxes = tab.page.evaluate(_TOWN_BOXES, list(TOWNS))
    assert None not in boxes, f"{page}: town names not shown: {boxes}"
    assert all(box["inside"] for box in boxes), boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), f"{page}: {a['name']} overlaps {b['name']}"
    assert tab.page.evaluate(_PANE_PATHS, "gpBaseWater") >= 2  # the demo's 西江 and 沧江 (areas and lines)
    assert tab.page.evaluate(_PANE_PATHS, "gpBaseBounds") >= 3  # district, towns, villages
    credit = tab.page.text_content(".gp-base-credit") or ""
    assert "示意数据 / synthetic" in credit and "OpenStreetMap" not in credit  # the demo's roads are made up
    legend = tab.page.text_content(".leaflet-container") or ""
    assert "参考底图：本库区界、镇街、村居、道路、水系" in legend
    scale = tab.page.text_content(".leaflet-control-scale") or ""
    assert "km" in scale or " m" in scale
    assert "mi" not in scale and "ft" not in scale  # metric only
    assert tab.foreign == [], f"{page}: requests to other hosts: {tab.foreign}"
    tab.shot("basemap" + page.replace("/", "-").rstrip("-"))


def test_every_map_page_reads_offline(browser: Any, server: Server, demo: tuple[Path, Tokens]) -> None:
    tokens = demo[1]
    with session(browser, server) as tab:
        urls = record_requests(tab)
        for path in ("/", "/layers/culture_facilities"):
            urls.clear()
            tab.open(path)
            check_reference_at_district_zoom(tab, path, urls)
        tab.page.goto(server.base + "/layers", wait_until="networkidle")  # a table, no map: nothing from outside
        assert tab.page.locator("tr[data-layer='towns']").count() == 1
        assert tab.foreign == []
        urls.clear()
        sign_in(tab, "/planner", tokens.planner)
        check_reference_at_district_zoom(tab, "/planner", urls)
        urls.clear()
        sign_in(tab, "/coverage", tokens.staff, timeout_ms=STAFF_FIRST_LOAD_MS)
        check_reference_at_district_zoom(tab, "/coverage", urls)
        # Villages are named from zoom 12; at 13 some show, none overlapping another shown name.
        urls.clear()
        tab.page.evaluate(
            "() => Object.values(window).find((v) => v instanceof L.Map).setView([22.88, 112.88], 13, {animate: false})"
        )
        # At 13 the tiles add the minor streets and village roads, not the paths and the rest (from 14 and 15).
        tab.page.wait_for_function(_TILES_IN)
        assert road_tile_filters(urls) == {13: {ZOOM_13_FILTER}}, urls
        assert set(tab.page.evaluate(_ROAD_COLOURS)) & MINOR_COLOURS
        shown = tab.page.evaluate(
            "() => Array.from(document.querySelectorAll('.gp-base-label')).filter((e) => !e.hidden)"
            ".map((e) => { const r = e.getBoundingClientRect(); return {name: e.textContent, layer: e.dataset.layer,"
            " left: r.left, top: r.top, right: r.right, bottom: r.bottom}; })"
        )
        assert any(label["layer"] == "villages" for label in shown), shown
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                assert not _overlap(a, b), f"{a['name']} overlaps {b['name']}"
        tab.shot("basemap-coverage-zoom13")
        # Street names from zoom 16: a named street of the demo, seen from its first vertex.
        street = _named_street(server)
        lon, lat = street["geometry"]["coordinates"][0][0]
        tab.open("/")
        tab.page.wait_for_selector(".leaflet-container[data-basemap='ready']", state="attached")
        tab.page.evaluate(
            "([lat, lon]) => Object.values(window).find((v) => v instanceof L.Map)"
            ".setView([lat, lon], 16, {animate: false})",
            [lat, lon],
        )
        tab.page.wait_for_function(
            "() => document.querySelectorAll('.gp-base-label[data-layer=roads]:not([hidden])').length > 0"
        )
        names = tab.page.evaluate(
            "() => Array.from(document.querySelectorAll('.gp-base-label[data-layer=roads]')).map((e) => e.textContent)"
        )
        assert names and all(names), names  # each named once, at its longest drawn piece
        assert len(names) == len(set(names))
    assert tab.foreign == []


def _named_street(server: Server) -> dict[str, Any]:
    """One named road of the demo, as the public OGC API gives it."""
    query = urllib.parse.urlencode({"filter": "name IS NOT NULL", "limit": 1})
    with urllib.request.urlopen(f"{server.base}/ogc/collections/roads/items?{query}", timeout=60) as response:
        feature: dict[str, Any] = json.load(response)["features"][0]
    return feature


# --------------------------------------------------------------------------------------------- tile packages


@pytest.mark.parametrize("kind", ["mbtiles", "pmtiles"])
def test_a_local_tile_package_is_the_background(
    browser: Any, demo: tuple[Path, Tokens], tmp_path: Path, kind: str
) -> None:
    tiles = tiles_around(*GAOMING, range(8, 13), PACKAGE_RGB, radius=4)
    package = (write_mbtiles if kind == "mbtiles" else write_pmtiles)(tmp_path / f"gm.{kind}", tiles)
    with serve(demo[0], tmp_path / "uvicorn.log", GEOPLAN_BASEMAP=f"{kind}:{package}") as running:
        with session(browser, running) as tab:
            tab.open("/layers/district")
            tab.page.wait_for_selector(".leaflet-container[data-basemap='ready']", state="attached")
            tab.page.wait_for_function(
                "() => { const t = Array.from(document.querySelectorAll('img.leaflet-tile'));"
                " return t.length > 0 && t.every((i) => i.complete); }"
            )
            widths = tab.page.evaluate(
                "() => Array.from(document.querySelectorAll('img.leaflet-tile-loaded')).map((i) => i.naturalWidth)"
            )
            assert widths and set(widths) == {256}
            assert all(
                "/basemap/tiles/" in src
                for src in tab.page.evaluate(
                    "() => Array.from(document.querySelectorAll('img.leaflet-tile')).map((i) => i.src)"
                )
            )
            # Outlines and names over the package, not its roads and water twice.
            assert tab.page.evaluate(_PANE_PATHS, "gpBaseBounds") >= 3
            assert tab.page.evaluate(_PANE_PATHS, "gpBaseRoads") == 0
            shot = tab.shot(f"basemap-{kind}")
            box = tab.page.locator(".leaflet-container").bounding_box()
            assert box is not None
            image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
            # A corner of the map away from the controls, the legend and the district (north-west of it).
            pixel = image.getpixel((int(box["x"] + 80), int(box["y"] + box["height"] - 120)))
            assert pixel == PACKAGE_RGB, pixel
            assert tab.foreign == []
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(running.base + "/basemap/tiles/8/0/0", timeout=30)
        assert missing.value.code == 404


def test_a_vector_tile_package_is_drawn(browser: Any, demo: tuple[Path, Tokens], tmp_path: Path) -> None:
    tile = vector_tile()
    tiles = {key: tile for key in tiles_around(*GAOMING, range(8, 13), PACKAGE_RGB, radius=4)}
    package = write_mbtiles(tmp_path / "vector.mbtiles", tiles, fmt="pbf")
    with (
        serve(demo[0], tmp_path / "uvicorn.log", GEOPLAN_BASEMAP=f"mbtiles:{package}") as running,
        session(browser, running) as tab,
    ):
        tab.open("/layers/district")
        tab.page.wait_for_selector(".leaflet-container[data-basemap='ready']", state="attached")
        # Each tile: its area and its line, unpacked (gzip) and drawn by Leaflet.VectorGrid in the basemap pane.
        tab.page.wait_for_function(f"() => ({_PANE_PATHS})('gpBaseTiles') >= 8")
        tab.shot("basemap-vector-package")
        assert tab.foreign == []
