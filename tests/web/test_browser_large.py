"""Large layers are never loaded whole: in Chromium (see tests/web/browser.py) and in the page config.

The store holds 30,000 roads spread over the whole district (tests.factories.spread_frame), far above the
whole-layer threshold (5,000), and 30 cultural facilities, below it. A large layer is drawn from vector tiles
(geoplan-tiles.js): what the map draws is compared, id for id, with what the store holds inside the tiles the page
asked for, their bounds computed here from the tile numbers. Over a GCJ-02 basemap (or without VectorGrid) the page
loads GeoJSON by the map's view instead (loadByView): those tests run with VectorGrid withheld (`tab` below) and
compare the drawn ids with the store's features inside the bbox the page sent. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.crs import gcj02_to_wgs84
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame, spread_frame
from tests.web.browser import Server, Session, browser, serve, serve_without_basemap, session
from tests.web.test_browser import _district, drawn_ids, popup_fields, read_layer
from tests.web.test_pages import map_config
from web.app import create_app
from web.settings import WebSettings

__all__ = ["browser"]  # the shared fixture

ROADS = 30_000
FACILITIES = 30
ROADS_ITEMS = "/ogc/collections/roads/items"
ZOOM_IN_NOTICE = "图层要素较多，请放大地图查看"
DEFAULT_VIEW_LIMIT = WebSettings.model_fields["large_layer_view_limit"].default
MIN_ZOOM = WebSettings.model_fields["large_layer_min_zoom"].default
# A street-level view in 荷城: at zoom 15 the padded view holds a few hundred of the 30,000 roads.
STREET = (112.70, 22.85)
VECTORGRID = "**/static/vendor/leaflet-vectorgrid/*"
TILE_PATH = re.compile(r"^/ogc/collections/roads/tiles/WebMercatorQuad/(\d+)/(\d+)/(\d+)$")


Bbox = tuple[float, float, float, float]


# --------------------------------------------------------------------------------------------- store, server


@pytest.fixture(scope="module")
def large_store(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.gpkg"
    store = GeoPackageStore(path, catalog)
    store.init()
    store.write("district", _district())
    store.write("roads", spread_frame(catalog.get("roads"), ROADS))
    store.write("culture_facilities", sample_frame(catalog.get("culture_facilities"), FACILITIES))
    store.close()
    return path


@pytest.fixture(scope="module")
def roads_frame(large_store: Path, catalog: Catalog) -> gpd.GeoDataFrame:
    return read_layer(large_store, catalog, "roads")


@pytest.fixture(scope="module")
def server(large_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_without_basemap(large_store, tmp_path_factory)


def without_vectorgrid(page: Any) -> None:
    """The plugin answers as an empty script: the page falls back to GeoJSON by view, as over GCJ-02."""
    page.route(VECTORGRID, lambda route: route.fulfill(body="/* withheld */", content_type="text/javascript"))


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Session]:
    """A guarded tab with VectorGrid withheld: the by-view path."""
    with session(browser, server) as opened:
        without_vectorgrid(opened.page)
        yield opened


@pytest.fixture
def tiles_tab(browser: Any, server: Server) -> Iterator[Session]:
    """A guarded tab as a visitor gets it: large layers from vector tiles."""
    with session(browser, server) as opened:
        yield opened


# --------------------------------------------------------------------------------------------- helpers


def record_items(tab: Session, layer: str) -> list[Any]:
    """Every request the page makes for `layer`'s items from now on (Playwright Request objects)."""
    requests: list[Any] = []
    path = f"/ogc/collections/{layer}/items"
    tab.page.on("request", lambda request: requests.append(request) if urlsplit(request.url).path == path else None)
    return requests


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def bbox_of(url: str) -> Bbox:
    west, south, east, north = (float(v) for v in query(url)["bbox"].split(","))
    return west, south, east, north


def store_ids_in(frame: gpd.GeoDataFrame, bbox: Bbox) -> list[str]:
    """The road ids the store holds inside `bbox`, in stored order: what the OGC API should answer."""
    hits = frame.geometry.intersects(shapely.box(*bbox))
    return list(frame.loc[hits, "road_id"])


def view(tab: Session) -> dict[str, Any]:
    state: dict[str, Any] = tab.page.evaluate("GeoplanMap.current.view()")
    return state


def move(tab: Session, script: str) -> dict[str, Any]:
    """Run a map move in the page and wait until the view load it causes has finished (drawn or notice)."""
    before = view(tab)["seq"]
    tab.page.evaluate(f"(() => {{ const map = GeoplanMap.current.map; {script}; }})()")
    settled = "!v.pending && v.settled === v.seq"
    tab.page.wait_for_function(
        f"() => {{ const v = GeoplanMap.current.view(); return v.seq > {before} && {settled}; }}"
    )
    return view(tab)


def set_view(tab: Session, lon: float, lat: float, zoom: int) -> dict[str, Any]:
    return move(tab, f"map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")


def notice(tab: Session) -> str | None:
    """The map notice's text, or None when it is hidden."""
    node = tab.page.locator(".gp-map-notice")
    return node.inner_text() if node.is_visible() else None


def page_config(html: str) -> dict[str, Any]:
    """The config object the page hands to GeoplanMap.layerMap (the call's last argument, JSON from tojson)."""
    # map_x, {"district": feature_group_y, ...}, {config}: the groups object holds no braces, the config is JSON.
    match = re.match(r"GeoplanMap\.layerMap\([^,]+, \{[^{}]*\}, (\{.*\})\);", map_config(html))
    assert match, "no config in the page-script call"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


# --------------------------------------------------------------------------------------------- browser


@pytest.mark.browser
def test_large_layer_opens_with_a_notice_and_fetches_nothing(tab: Session) -> None:
    roads = record_items(tab, "roads")
    tab.open("/layers/roads")
    # The page starts over the whole district, below the minimum zoom: a notice, no roads, no request.
    assert tab.page.evaluate("GeoplanMap.current.map.getZoom()") < MIN_ZOOM
    assert view(tab)["state"] == "zoom-in"
    assert notice(tab) == ZOOM_IN_NOTICE
    assert drawn_ids(tab, "roads") == []
    assert roads == []
    assert tab.page.locator("#gp-count").inner_text() == f"共 {ROADS} 个要素；放大地图后按视图加载"
    assert len(tab.page.locator("path.gp-layer-district").all()) == 1  # the outline still shows for orientation
    tab.shot("layer-roads-zoomed-out")


@pytest.mark.browser
def test_large_layer_draws_exactly_the_view(tab: Session, roads_frame: gpd.GeoDataFrame) -> None:
    roads = record_items(tab, "roads")
    tab.open("/layers/roads")

    state = set_view(tab, *STREET, 15)
    assert len(roads) == 1
    first = roads[0].url
    assert query(first)["limit"] == str(DEFAULT_VIEW_LIMIT) and "offset" not in query(first)
    expected = store_ids_in(roads_frame, bbox_of(first))
    assert 100 < len(expected) < 1_000  # a few hundred: far below the 30,000
    assert sorted(drawn_ids(tab, "roads")) == sorted(expected)
    assert state["state"] == "drawn" and state["matched"] == len(expected) and notice(tab) is None
    assert tab.page.locator("#gp-count").inner_text() == f"共 {ROADS} 个要素；当前视图 {len(expected)} 个"
    # The bbox is the view padded by ~10% on each side (Leaflet's bounds.pad(0.1)), in lon/lat.
    west, south, east, north = bbox_of(first)
    bounds = tab.page.evaluate(
        "(b => [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()])(GeoplanMap.current.map.getBounds())"
    )
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    assert west == pytest.approx(bounds[0] - 0.1 * width, abs=2e-5)
    assert north == pytest.approx(bounds[3] + 0.1 * height, abs=2e-5)
    assert east > STREET[0] > west and north > STREET[1] > south
    tab.shot("layer-roads-zoomed-in")

    # Panning asks for the new view and redraws to match it.
    move(tab, "map.panBy([500, 200], {animate: false})")
    assert len(roads) == 2 and roads[1].url != first
    panned = store_ids_in(roads_frame, bbox_of(roads[1].url))
    assert sorted(drawn_ids(tab, "roads")) == sorted(panned)
    assert set(panned) != set(expected) and set(panned) & set(expected)  # moved on, overlapping a little

    # Zooming out past the minimum zoom removes every road and brings the notice back, without a request.
    set_view(tab, *STREET, MIN_ZOOM - 1)
    assert drawn_ids(tab, "roads") == [] and notice(tab) == ZOOM_IN_NOTICE
    assert len(roads) == 2
    assert all("bbox" in query(request.url) for request in roads), [r.url for r in roads]


OPEN_POPUP_IDS = "GeoplanMap.current.layer().getLayers().filter(l => l.isPopupOpen()).map(l => l.feature.id)"
# The id of the drawn road nearest the map's centre (the view is padded: some drawn roads are off-screen).
NEAREST_TO_CENTRE = """() => {
  const box = GeoplanMap.current.map.getContainer().getBoundingClientRect();
  const centre = (r) => [r.left + r.width / 2, r.top + r.height / 2];
  const [cx, cy] = centre(box);
  let best = null, bestDistance = Infinity;
  for (const path of document.querySelectorAll('path.gp-layer-roads')) {
    const [x, y] = centre(path.getBoundingClientRect());
    const distance = Math.hypot(x - cx, y - cy);
    if (distance < bestDistance) { bestDistance = distance; best = path.getAttribute('data-id'); }
  }
  return best;
}"""


@pytest.mark.browser
def test_an_open_popup_survives_a_new_view(tab: Session) -> None:
    """Roads still in view keep their drawn layer, so a move (a popup's own auto-pan, say) does not close it."""
    roads = record_items(tab, "roads")
    tab.open("/layers/roads")
    set_view(tab, *STREET, 15)
    road_id = tab.page.evaluate(NEAREST_TO_CENTRE)
    # A segment's midpoint is the centre of its box, so the click lands on the line.
    tab.page.locator(f"path.gp-layer-roads[data-id='{road_id}']").click(force=True)
    title, fields = popup_fields(tab)
    assert fields["路段编号"] == road_id and "等级" in fields
    move(tab, "map.panBy([40, 30], {animate: false})")
    assert len(roads) == 2  # a new view was fetched and drawn...
    assert road_id in drawn_ids(tab, "roads")
    # ...and the popup is still open on the same road (asked of Leaflet: a closed popup lingers 200 ms as it fades).
    assert tab.page.evaluate(OPEN_POPUP_IDS) == [road_id]
    assert popup_fields(tab) == (title, fields)


@pytest.mark.browser
def test_a_crowded_view_is_capped_and_says_so(tab: Session, roads_frame: gpd.GeoDataFrame) -> None:
    roads = record_items(tab, "roads")
    tab.open("/layers/roads")
    state = set_view(tab, *STREET, MIN_ZOOM)
    expected = store_ids_in(roads_frame, bbox_of(roads[-1].url))
    assert len(expected) > DEFAULT_VIEW_LIMIT  # the minimum zoom over a dense layer: more than one request draws
    # The first `limit` in stored order, exactly as the API pages them.
    assert sorted(drawn_ids(tab, "roads")) == sorted(expected[:DEFAULT_VIEW_LIMIT])
    assert state["state"] == "capped" and state["matched"] == len(expected)
    assert notice(tab) == f"仅显示前 {DEFAULT_VIEW_LIMIT} 个要素，请放大"
    tab.shot("layer-roads-capped")
    # Zooming in past the cap takes the notice away again.
    set_view(tab, *STREET, 15)
    assert notice(tab) is None and view(tab)["state"] == "drawn"


@pytest.mark.browser
def test_revisited_tiles_are_revalidated_with_their_etags(
    browser: Any,
    server: Server,
) -> None:
    """The browser's own HTTP cache revalidates a tile it has seen (If-None-Match -> 304), and VectorGrid draws
    the cached tile. Playwright turns that cache off in a context that routes requests, so this tab has no route:
    every URL it asked for is checked against the app's own host afterwards instead.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        tab = Session(page, server)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        tiles: list[Any] = []
        page.on("request", lambda r: tiles.append(r) if TILE_PATH.match(urlsplit(r.url).path) else None)
        tab.open("/layers/roads")

        def show(lon: float, lat: float) -> None:
            page.evaluate(f"GeoplanMap.current.map.setView([{lat}, {lon}], 15, {{animate: false}})")
            tiles_settled(tab)

        show(*STREET)
        drawn = sorted(page.evaluate(TILE_IDS))
        first = {r.url: r for r in tiles if "/15/" in r.url}
        show(STREET[0] + 0.1, STREET[1])  # ~10 km east: every tile of the first view is dropped
        count = len(tiles)
        show(*STREET)
        again = [r for r in tiles[count:] if r.url in first]
        assert again and len(again) == len(first)  # the same tiles asked again...
        for request in again:
            assert "if-none-match" not in first[request.url].all_headers()
            assert request.all_headers()["if-none-match"].startswith('"')  # ...revalidated with the tag
            response = request.response()
            assert response is not None and response.status in (200, 204)
            if response.status == 200:  # a cached 200 for a 304: only headers crossed the network
                assert request.sizes()["responseBodySize"] == 0
        assert sorted(page.evaluate(TILE_IDS)) == drawn
        assert all(urlsplit(url).netloc == server.netloc for url in requested)
    finally:
        context.close()


@pytest.mark.browser
def test_a_stale_answer_is_never_drawn(tab: Session, roads_frame: gpd.GeoDataFrame) -> None:
    """Hold the answer for one view, move on, then let it through: the map shows the newer view only."""
    held: list[Any] = []

    def hold_first(route: Any) -> None:
        if not held:
            held.append(route)  # left unanswered until released below
        else:
            route.continue_()

    roads = record_items(tab, "roads")
    tab.open("/layers/roads")
    tab.page.route(f"**{ROADS_ITEMS}?*", hold_first)
    tab.page.evaluate(f"GeoplanMap.current.map.setView([{STREET[1]}, {STREET[0]}], 15, {{animate: false}})")
    tab.page.wait_for_function("() => GeoplanMap.current.view().state === 'loading'")
    state = set_view(tab, STREET[0] + 0.03, STREET[1] + 0.01, 15)
    assert len(held) == 1 and len(roads) == 2
    held[0].continue_()  # the old view's answer: its fetch was aborted, and its view is gone anyway
    tab.page.wait_for_timeout(300)
    older, newer = (store_ids_in(roads_frame, bbox_of(request.url)) for request in roads)
    assert set(older) - set(newer), "the two views must differ for this test to mean anything"
    assert state["bbox"] == query(roads[1].url)["bbox"]
    assert sorted(drawn_ids(tab, "roads")) == sorted(newer)


@pytest.mark.browser
def test_a_small_layer_still_loads_whole(tab: Session) -> None:
    facilities = record_items(tab, "culture_facilities")
    tab.open("/layers/culture_facilities")
    assert len(drawn_ids(tab, "culture_facilities")) == FACILITIES
    assert tab.page.locator("#gp-count").inner_text() == f"共 {FACILITIES} 个要素"
    assert [query(request.url) for request in facilities] == [{"limit": "10000"}]  # one request, no bbox
    assert tab.page.locator(".gp-map-notice").count() == 0
    # Moving the map asks for nothing more: the whole layer is already there.
    tab.page.evaluate("GeoplanMap.current.map.setZoom(16, {animate: false})")
    tab.page.wait_for_timeout(300)
    assert len(facilities) == 1


@pytest.mark.browser
def test_bbox_undoes_the_amap_display_shift(
    browser: Any,
    large_store: Path,
    roads_frame: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    """Over AMap the view is in GCJ-02; the bbox sent must be the same place in CGCS2000 (~500 m west, ~300 m
    north of the drawn one here), or the edge of the view would show roads missing and roads from off-screen.
    """
    with (
        serve(large_store, tmp_path / "uvicorn.log", GEOPLAN_BASEMAP="amap") as amap,
        session(browser, amap, expected_errors="net::ERR_FAILED", other_hosts=True) as tab,
    ):
        roads = record_items(tab, "roads")
        tab.open("/layers/roads")
        set_view(tab, *STREET, 15)
        padded = tab.page.evaluate(
            "(b => [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()])(GeoplanMap.current.map.getBounds().pad(0.1))"
        )
        # Each corner of the drawn (GCJ-02) view taken back to CGCS2000 with geoplan's own inverse.
        lon, lat = gcj02_to_wgs84(np.array(padded[0::2]), np.array(padded[1::2]))
        sent = bbox_of(roads[-1].url)
        # Within 1e-4° (~10 m): the page uses the centre's offset for the whole view, and the offset changes by
        # ~2 m per km here, so the corners of this ~5 km padded view are ~5 m out (compare: the padding is ~500 m).
        assert sent == pytest.approx((lon[0], lat[0], lon[1], lat[1]), abs=1e-4)
        assert abs(sent[0] - padded[0]) > 0.004  # a real shift (~500 m), not a no-op
        assert sorted(drawn_ids(tab, "roads")) == sorted(store_ids_in(roads_frame, sent))
        tab.shot("layer-roads-amap")


# --------------------------------------------------------------------------------------------- vector tiles


def tile_lonlat_bounds(z: int, x: int, y: int) -> Bbox:
    """An XYZ tile's corners in lon/lat, from the Web Mercator inverse (the slippy-map formulas)."""
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def record_tiles(tab: Session) -> list[tuple[int, int, int]]:
    """The (z, x, y) of every roads tile the page asks for from now on (the path is z/row/column)."""
    tiles: list[tuple[int, int, int]] = []

    def seen(request: Any) -> None:
        match = TILE_PATH.match(urlsplit(request.url).path)
        if match:
            z, row, column = (int(v) for v in match.groups())
            tiles.append((z, column, row))

    tab.page.on("request", seen)
    return tiles


def tiles_settled(tab: Session) -> None:
    tab.page.wait_for_function("() => !GeoplanMap.current.tiles.isLoading()")
    tab.page.wait_for_timeout(200)


TILE_IDS = "GeoplanMap.current.tiles.drawnFeatures().map(f => f.id)"


@pytest.mark.browser
def test_large_layer_draws_from_vector_tiles(tiles_tab: Session, roads_frame: gpd.GeoDataFrame) -> None:
    tab = tiles_tab
    roads, tiles = record_items(tab, "roads"), record_tiles(tab)
    tab.open("/layers/roads")
    assert tab.page.locator("#gp-count").inner_text() == f"共 {ROADS} 个要素（矢量瓦片，随视图加载）"
    tab.page.evaluate(f"GeoplanMap.current.map.setView([{STREET[1]}, {STREET[0]}], 15, {{animate: false}})")
    tiles_settled(tab)
    assert roads == []  # no GeoJSON at all
    at_15 = [t for t in tiles if t[0] == 15]
    assert 4 <= len(at_15) <= 30
    # The tiles drawn now (VectorGrid keys them "x:y:z"); each was asked of the tile endpoint.
    keys = tab.page.evaluate("Object.keys(GeoplanMap.current.tiles._vectorTiles)")
    current = {(z, x, y) for x, y, z in (tuple(int(v) for v in key.split(":")) for key in keys)}
    assert current and current <= set(at_15)
    expected = set()
    for z, x, y in current:
        expected |= set(store_ids_in(roads_frame, tile_lonlat_bounds(z, x, y)))
    assert 100 < len(expected) < 2_000
    assert set(tab.page.evaluate(TILE_IDS)) == expected
    assert tab.page.locator("path.gp-layer-roads").count() >= len(expected)  # a road across tiles is drawn in each
    tab.shot("layer-roads-tiles")
    # A click on a road opens its popup, with its fields as the GeoJSON pages show them.
    road_id = tab.page.evaluate(NEAREST_TILE_ROAD)
    assert road_id in expected
    tab.page.evaluate(f"GeoplanMap.current.tiles.highlight({json.dumps(road_id)})")
    tab.page.locator("path.gp-layer-roads[stroke='#000']").first.click(force=True)
    _, fields = popup_fields(tab)
    assert fields["路段编号"] == road_id and "等级" in fields
    tab.shot("layer-roads-tiles-popup")


# The id of the tiled road whose drawn path is nearest the map's centre.
NEAREST_TILE_ROAD = """() => {
  const grid = GeoplanMap.current.tiles;
  const box = GeoplanMap.current.map.getContainer().getBoundingClientRect();
  const cx = box.left + box.width / 2, cy = box.top + box.height / 2;
  let best = null, bestDistance = Infinity;
  for (const key of Object.keys(grid._vectorTiles)) {
    const features = grid._vectorTiles[key]._features;
    for (const id of Object.keys(features)) {
      const r = features[id].feature._path.getBoundingClientRect();
      if (!r.width && !r.height) continue;
      const d = Math.hypot(r.left + r.width / 2 - cx, r.top + r.height / 2 - cy);
      if (d < bestDistance) { bestDistance = d; best = id; }
    }
  }
  return best;
}"""


# --------------------------------------------------------------------------------------------- page config


def test_layer_page_config_carries_count_and_limits(client: TestClient, web_store: GeoPackageStore) -> None:
    config = page_config(client.get("/layers/roads").text)
    roads = config["layers"]["layer"]
    assert roads["featureCount"] == web_store.count("roads")
    assert roads["itemsUrl"] == ROADS_ITEMS
    assert roads["extent"] == pytest.approx(list(web_store.bounds("roads") or ()))
    assert config["largeLayer"] == {
        "maxFeaturesWholeLayer": 5_000,
        "minZoom": MIN_ZOOM,
        "viewLimit": DEFAULT_VIEW_LIMIT,
        "viewPadding": 0.1,
    }
    assert "featureCount" not in config["layers"]["district"]  # only the page's own layer is counted


def test_large_layer_limits_are_settings(web_store: GeoPackageStore) -> None:
    settings = WebSettings(
        store=web_store.url,
        layers_dir=LAYERS_DIR,
        max_features_whole_layer=10,
        large_layer_min_zoom=14,
        large_layer_view_limit=50_000,
        max_page_size=800,
    )
    with TestClient(create_app(settings)) as client:
        config = page_config(client.get("/layers/culture_facilities").text)
    assert config["layers"]["layer"]["featureCount"] == web_store.count("culture_facilities")
    # The view limit never exceeds the API's page size: one view is one request.
    assert config["largeLayer"] == {"maxFeaturesWholeLayer": 10, "minZoom": 14, "viewLimit": 800, "viewPadding": 0.1}
