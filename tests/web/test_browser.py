"""The public pages in a real browser: Debian's headless Chromium driven by Playwright (see tests/web/browser.py).

The app runs on a GeoPackage store with sample projects, one project whose text fields are XSS payloads, the real
district outline and sample cultural facilities. Every tab fails its test on a dialog, a CSP violation, a console
error or a request to another host. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.catalog import Catalog
from geoplan.crs import wgs84_to_gcj02
from geoplan.services.provenance import DEMO_ACTOR
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import SOURCES_DIR
from tests.factories import sample_frame
from tests.web.accessibility import axe_violations
from tests.web.browser import Server, Session, browser, serve, serve_without_basemap, session, tab

__all__ = ["browser", "tab"]  # the shared fixtures

pytestmark = pytest.mark.browser

SAMPLE_PROJECTS = 45
TOWNS = ("荷城街道", "杨和镇", "明城镇", "更合镇")
XSS_ID = "GM-2024-XSS"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_UNIT = '"><svg onload=alert(2)></script><script>alert(3)</script>'
XSS_CATEGORY = "道路交通"  # a closed list (the conflict rules exempt by it): the script payload rides in XSS_UNIT
# Private values no page may show: the investment figures all start with this, the notes all contain the other.
SECRET_INVESTMENT = 987654.0
SECRET_NOTE = "SECRET内部备注"
PRIVATE_FIELDS = ("investment_wan", "internal_note", "assured_planning", "assured_land", "assured_funds")


# --------------------------------------------------------------------------------------------- the store


def _projects(catalog: Catalog) -> gpd.GeoDataFrame:
    layer = catalog.get("projects")
    frame = sample_frame(layer, SAMPLE_PROJECTS)
    frame["project_id"] = [f"GM-2024-{i + 1:03d}" for i in range(SAMPLE_PROJECTS)]
    frame["town"] = [TOWNS[i % len(TOWNS)] for i in range(SAMPLE_PROJECTS)]
    frame["name"] = [
        f"{town}{area[:4]}示范项目{i + 1:02d}"
        for i, (town, area) in enumerate(zip(frame["town"], frame["task_area"], strict=True))
    ]
    xss = sample_frame(layer, 1, start=SAMPLE_PROJECTS)
    xss["project_id"] = XSS_ID
    xss["name"] = XSS_NAME
    xss["responsible_unit"] = XSS_UNIT
    xss["category"] = XSS_CATEGORY
    xss["town"] = "<b>镇</b>"
    frame = gpd.GeoDataFrame(pd.concat([frame, xss], ignore_index=True), geometry="geometry", crs=frame.crs)
    frame["investment_wan"] = SECRET_INVESTMENT + np.arange(len(frame)) / 100
    frame["internal_note"] = [f"{SECRET_NOTE}-{i}" for i in range(len(frame))]
    for name in ("assured_planning", "assured_land", "assured_funds", "assured_schedule", "assured_unit"):
        frame[name] = True
    return frame


def _district() -> gpd.GeoDataFrame:
    source = gpd.read_file(SOURCES_DIR / "gaoming_district_datav_wgs84.geojson")
    return gpd.GeoDataFrame(
        {"code": ["440608"], "name": ["高明区"], "population_2020": [469038], "source": ["DataV GeoAtlas"]},
        geometry=list(source.geometry),
        crs="EPSG:4490",
    )


@pytest.fixture(scope="module")
def browser_store(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "pages.gpkg"
    store = GeoPackageStore(path, catalog)
    store.init()
    # The synthetic stand-ins are written as the demo writes them, so their pages carry the synthetic label.
    store.write("projects", _projects(catalog), actor=DEMO_ACTOR)
    store.write("district", _district())
    store.write("culture_facilities", sample_frame(catalog.get("culture_facilities"), 30), actor=DEMO_ACTOR)
    store.write("landuse_plan", sample_frame(catalog.get("landuse_plan"), 5), actor=DEMO_ACTOR)  # private: never shown
    store.close()
    return path


def read_layer(path: Path, catalog: Catalog, layer: str) -> gpd.GeoDataFrame:
    """A layer as the server reads it (same store, same order)."""
    store = GeoPackageStore(path, catalog)
    try:
        return store.read(layer)
    finally:
        store.close()


@pytest.fixture(scope="module")
def projects_frame(browser_store: Path, catalog: Catalog) -> gpd.GeoDataFrame:
    return read_layer(browser_store, catalog, "projects")


# --------------------------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def server(browser_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_without_basemap(browser_store, tmp_path_factory)


# --------------------------------------------------------------------------------------------- helpers


def list_ids(tab: Session) -> list[str]:
    return list(tab.page.eval_on_selector_all("#gp-list li", "items => items.map(i => i.dataset.id)"))


def drawn_ids(tab: Session, layer: str = "projects") -> list[str]:
    return list(
        tab.page.eval_on_selector_all(f"path.gp-layer-{layer}", "paths => paths.map(p => p.getAttribute('data-id'))")
    )


def popup_fields(tab: Session) -> tuple[str, dict[str, str]]:
    """The open popup's heading and its label -> value pairs, as the user reads them."""
    # A closed popup fades out for 200 ms before Leaflet removes it: wait until only the open one is left.
    tab.page.wait_for_function("() => document.querySelectorAll('.leaflet-popup-content').length === 1")
    popup = tab.page.locator(".leaflet-popup-content")
    title = popup.locator(".gp-popup-title").inner_text()
    labels = popup.locator("dt").all_inner_texts()
    values = popup.locator("dd").all_inner_texts()
    return title, dict(zip(labels, values, strict=True))


# --------------------------------------------------------------------------------------------- tests


def test_public_map_shows_every_project(tab: Session, projects_frame: gpd.GeoDataFrame) -> None:
    tab.open("/")
    expected = sorted(projects_frame["project_id"])
    assert tab.page.title() == "高明区城市治理三年行动计划 项目地图"
    assert sorted(list_ids(tab)) == expected
    assert sorted(drawn_ids(tab)) == expected
    assert len(tab.page.locator("path.gp-layer-district").all()) == 1
    assert tab.page.locator("#gp-count").inner_text() == f"共 {len(expected)} 个项目"
    legend = tab.page.locator(".leaflet-control-container .gp-legend")
    assert "建设项目" in legend.inner_text() and "示意数据 / synthetic" in legend.inner_text()
    # Colours follow the task area: each drawn path is filled with its area's legend colour.
    fills = tab.page.eval_on_selector_all(
        "path.gp-layer-projects",
        "ps => Object.fromEntries(ps.map(p => [p.getAttribute('data-id'), p.getAttribute('fill')]))",
    )
    legend_colors = tab.page.eval_on_selector_all(
        ".gp-legend-items li",
        "items => Object.fromEntries(items.map("
        "  i => [i.textContent.trim(), i.querySelector('rect').getAttribute('fill')]))",
    )
    assert len(set(legend_colors.values())) == 8
    for project_id, area in zip(projects_frame["project_id"], projects_frame["task_area"], strict=True):
        assert fills[project_id] == legend_colors[area], project_id
    tab.shot("project-map")


def test_task_area_filter_narrows_list_and_map(tab: Session, projects_frame: gpd.GeoDataFrame) -> None:
    tab.open("/")
    area = "公共服务优质化"
    expected = sorted(projects_frame.loc[projects_frame["task_area"] == area, "project_id"])
    assert 0 < len(expected) < len(projects_frame)
    tab.page.select_option("#gp-task-area", area)
    assert sorted(list_ids(tab)) == expected
    assert sorted(drawn_ids(tab)) == expected
    tab.shot("project-map-filtered")
    # Combined with status and town, then cleared again.
    status, town = "在建", TOWNS[0]
    tab.page.select_option("#gp-status", status)
    tab.page.select_option("#gp-town", town)
    rows = projects_frame[
        (projects_frame["task_area"] == area) & (projects_frame["status"] == status) & (projects_frame["town"] == town)
    ]
    assert sorted(list_ids(tab)) == sorted(drawn_ids(tab)) == sorted(rows["project_id"])
    tab.page.click("#gp-reset")
    tab.page.wait_for_function(f"() => document.querySelectorAll('#gp-list li').length === {len(projects_frame)}")
    assert sorted(drawn_ids(tab)) == sorted(projects_frame["project_id"])
    tab.page.fill("#gp-search", "示范项目07")
    assert list_ids(tab) == ["GM-2024-007"]


def test_popup_shows_public_fields_only(tab: Session, projects_frame: gpd.GeoDataFrame, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    row = projects_frame.set_index("project_id").loc["GM-2024-003"]
    tab.open("/")
    tab.page.click("#gp-list li[data-id='GM-2024-003'] button")
    title, fields = popup_fields(tab)
    assert title == row["name"]
    public_labels = [layer.field(name).title_zh for name in layer.public_fields if name != "name"]
    assert list(fields) == public_labels
    assert fields["项目编号"] == "GM-2024-003" and fields["任务领域"] == row["task_area"]
    assert fields["状态"] == row["status"] and fields["所在镇街"] == row["town"]
    popup_text = tab.page.locator(".leaflet-popup-content").inner_text()
    for name in [*PRIVATE_FIELDS, "assured_schedule", "assured_unit"]:
        assert layer.field(name).title_zh not in fields
    assert "总投资" not in popup_text and "内部备注" not in popup_text and "保障" not in popup_text
    assert SECRET_NOTE not in popup_text and "987654" not in popup_text and "987,654" not in popup_text
    assert "是" not in fields.values()  # the five assurances are all True in the store
    # Nothing private anywhere in the document either.
    document = tab.page.content()
    assert SECRET_NOTE not in document and "987654" not in document and "987,654" not in document
    # The list click zoomed in; clicking the polygon on the map opens the same popup.
    tab.page.locator(".leaflet-popup-close-button").click()
    tab.page.locator("path.gp-layer-projects[data-id='GM-2024-003']").click()
    assert popup_fields(tab)[0] == row["name"]
    tab.shot("project-popup")


def test_xss_name_is_plain_text(tab: Session) -> None:
    tab.open("/")
    item = tab.page.locator(f"#gp-list li[data-id='{XSS_ID}']")
    assert item.locator(".gp-item-name").inner_text() == XSS_NAME
    item.locator("button").click()
    title, fields = popup_fields(tab)
    assert title == XSS_NAME
    assert fields["责任单位"] == XSS_UNIT and fields["项目类别"] == XSS_CATEGORY and fields["所在镇街"] == "<b>镇</b>"
    assert "<b>镇</b>" in tab.page.locator("#gp-town").inner_text()
    tab.page.wait_for_timeout(300)  # an injected onerror/onload would have fired by now
    injected = tab.page.evaluate(
        "document.querySelectorAll('img[src=\"x\"], img[onerror], svg[onload], #gp-town b, .gp-popup b').length"
    )
    assert injected == 0
    assert tab.page.locator("img").count() == 0  # no basemap: the page has no images at all
    tab.shot("project-popup-xss")


def test_nothing_is_loaded_from_other_hosts(tab: Session) -> None:
    tab.open("/")
    assert len(list_ids(tab)) == SAMPLE_PROJECTS + 1
    tab.page.select_option("#gp-task-area", "规划建设科学化")
    tab.page.locator("#gp-list li button").first.click()
    popup_fields(tab)
    tab.page.goto(tab.server.base + "/layers")
    tab.open("/layers/projects")
    requested = tab.page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert requested and all(urlsplit(url).netloc == tab.server.netloc for url in requested)
    assert tab.foreign == []  # the fixture checks again after every test


def test_permalink_opens_the_project(tab: Session, projects_frame: gpd.GeoDataFrame) -> None:
    names = projects_frame.set_index("project_id")["name"]
    tab.open("/?project=GM-2024-007")
    assert popup_fields(tab)[0] == names["GM-2024-007"]
    assert tab.page.locator("#gp-list li.gp-selected").get_attribute("data-id") == "GM-2024-007"
    tab.shot("project-permalink")
    tab.open("/#project=GM-2024-012")
    assert popup_fields(tab)[0] == names["GM-2024-012"]
    # Selecting another project updates the address, so it can be copied as a permalink.
    tab.page.click("#gp-list li[data-id='GM-2024-020'] button")
    assert tab.page.evaluate("location.hash") == "#project=GM-2024-020"
    # A permalink to a project the filters hide clears the filters and still opens it.
    tab.page.select_option("#gp-task-area", "规划建设科学化")
    assert "GM-2024-021" not in list_ids(tab)
    tab.page.evaluate("location.hash = '#project=GM-2024-021'")
    tab.page.wait_for_function("() => document.querySelector('#gp-list li.gp-selected')?.dataset.id === 'GM-2024-021'")
    assert len(list_ids(tab)) == len(names)
    tab.page.wait_for_timeout(100)
    assert popup_fields(tab)[0] == names["GM-2024-021"]


def test_layer_browser_lists_public_layers_and_maps_one(tab: Session, catalog: Catalog) -> None:
    tab.page.goto(tab.server.base + "/layers")
    rows = tab.page.locator("tbody tr")
    names = [rows.nth(i).get_attribute("data-layer") for i in range(rows.count())]
    assert names == [layer.name for layer in catalog.vector_layers() if layer.public]
    culture = tab.page.locator("tr[data-layer='culture_facilities']")
    assert culture.locator(".gp-num").inner_text() == "30"
    assert "示意数据 / synthetic" in culture.inner_text()
    assert "真实数据" in tab.page.locator("tr[data-layer='district']").inner_text()
    # Each layer described in Chinese, as the catalogue's description_zh says.
    assert culture.locator(".gp-row-description").inner_text() == catalog.get("culture_facilities").description_zh
    assert "SYNTHETIC" not in tab.page.locator("main").inner_text()
    tab.shot("layers")
    culture.locator("a", has_text="地图").click()
    tab.page.wait_for_selector("body[data-ready='true']")
    assert len(drawn_ids(tab, "culture_facilities")) == 30
    assert tab.page.locator("#gp-count").inner_text() == "共 30 个要素"
    tab.page.locator("path.gp-layer-culture_facilities").first.click(force=True)
    title, fields = popup_fields(tab)
    assert title.startswith("name-") and "类型" in fields
    tab.shot("layer-culture_facilities")


def test_amap_basemap_shifts_display_only(
    browser: Any, browser_store: Path, projects_frame: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    """AMap tiles are GCJ-02: the drawn polygons move by the same offset geoplan.crs computes, while the API still
    serves CGCS2000. It also shows the route recorder at work: the tile requests are caught and aborted.
    """
    with (
        serve(browser_store, tmp_path / "uvicorn.log", GEOPLAN_BASEMAP="amap") as amap,
        session(browser, amap, expected_errors="net::ERR_FAILED", other_hosts=True) as tab,
    ):
        tab.open("/")
        assert len(list_ids(tab)) == SAMPLE_PROJECTS + 1
        assert "GCJ-02" in tab.page.locator(".gp-legend").inner_text()
        assert tab.foreign and all(
            urlsplit(u).hostname in {f"webrd0{i}.is.autonavi.com" for i in range(1, 5)} for u in tab.foreign
        )
        drawn = np.array(
            tab.page.evaluate(
                "GeoplanMap.current.layer('GM-2024-001').getLatLngs().flat(3).map(ll => [ll.lng, ll.lat])"
            )
        )
        polygon = projects_frame.set_index("project_id").loc["GM-2024-001", "geometry"].geoms[0]
        stored = np.array(polygon.exterior.coords)[:-1]  # Leaflet drops the closing vertex
        lon, lat = wgs84_to_gcj02(stored[:, 0], stored[:, 1])
        assert drawn == pytest.approx(np.column_stack([lon, lat]), abs=1e-9)
        assert np.abs(drawn - stored).max() > 0.003  # a visible shift (~500 m), not a no-op
        minx, miny = stored.min(axis=0)
        api = tab.page.evaluate("fetch('/ogc/collections/projects/items/GM-2024-001').then(r => r.json())")
        ring = np.array(api["geometry"]["coordinates"][0][0])
        assert ring[:, 0].min() == pytest.approx(minx) and ring[:, 1].min() == pytest.approx(miny)
        tab.shot("project-map-amap")


# --------------------------------------------------------------------------------------------- readable maps


def map_bounds(tab: Session) -> tuple[float, float, float, float]:
    """The map's view as minLon, minLat, maxLon, maxLat."""
    b = tab.page.evaluate(
        "(() => { const b = GeoplanMap.current.map.getBounds(); return [b.getWest(), "
        "b.getSouth(), b.getEast(), b.getNorth()]; })()"
    )
    return (b[0], b[1], b[2], b[3])


def contains(outer: tuple[float, ...], inner: tuple[float, ...]) -> bool:
    return bool(outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3])


def test_a_filter_fits_the_map_to_its_projects(tab: Session, projects_frame: gpd.GeoDataFrame) -> None:
    tab.open("/")
    district = tuple(_district().total_bounds)
    whole = map_bounds(tab)
    assert contains(whole, district)
    assert tab.page.get_attribute(".gp-legend-toggle", "aria-expanded") == "true"  # a wide screen: unfolded
    tab.page.fill("#gp-search", "示范项目07")
    only = tuple(projects_frame.set_index("project_id").loc[["GM-2024-007"]].total_bounds)
    fitted = map_bounds(tab)
    assert contains(fitted, only)
    # Zoomed in on it: the view is far smaller than the district's.
    assert (fitted[2] - fitted[0]) < (district[2] - district[0]) / 4
    tab.page.fill("#gp-search", "")
    tab.page.select_option("#gp-town", TOWNS[1])
    rows = projects_frame[projects_frame["town"] == TOWNS[1]]
    assert contains(map_bounds(tab), tuple(rows.total_bounds))
    # Nothing matches: a message, and the whole district in view rather than an empty corner.
    tab.page.fill("#gp-search", "没有这个项目")
    count = tab.page.locator("#gp-count")
    assert count.inner_text().startswith("没有符合条件的项目") and "gp-error" in (count.get_attribute("class") or "")
    assert list_ids(tab) == [] and drawn_ids(tab) == []
    assert contains(map_bounds(tab), district)
    tab.page.click("#gp-reset")
    tab.page.wait_for_function(f"() => document.querySelectorAll('#gp-list li').length === {len(projects_frame)}")
    assert contains(map_bounds(tab), district)


def within(box: dict[str, float], x: float, y: float) -> bool:
    return bool(box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"])


def test_phone_layout_stacks_and_folds_the_legend(tab: Session) -> None:
    tab.page.set_viewport_size({"width": 360, "height": 740})
    tab.open("/")
    toggle = tab.page.locator(".gp-legend-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    body_id = toggle.get_attribute("aria-controls")
    assert tab.page.locator(f"#{body_id}").is_hidden()
    assert tab.page.evaluate("document.documentElement.scrollWidth") <= 360
    map_box = tab.page.locator(".gp-map").bounding_box()
    list_box = tab.page.locator("#gp-list").bounding_box()
    header = tab.page.locator(".gp-header").bounding_box()
    assert header["y"] + header["height"] <= map_box["y"] + 1  # the map is not drawn over the header
    assert map_box["y"] + map_box["height"] <= list_box["y"]  # map above the list
    assert map_box["width"] == 360 and map_box["height"] >= 300
    # The folded legend covers neither the district's centre nor 荷城 (the district's east).
    legend = tab.page.locator(".leaflet-control-container .gp-legend").bounding_box()
    points = tab.page.evaluate(
        "(() => { const m = GeoplanMap.current.map; const r = m.getContainer().getBoundingClientRect();"
        " const b = document.querySelector('path.gp-layer-district').getBoundingClientRect();"
        " const c = m.latLngToContainerPoint([22.89, 112.88]);"
        " return [[b.x + b.width / 2, b.y + b.height / 2], [r.x + c.x, r.y + c.y]]; })()"
    )
    for x, y in points:
        assert not within(legend, x, y), (x, y, legend)
        assert within(map_box, x, y), (x, y, map_box)
    tab.shot("project-map-phone")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true" and tab.page.locator(f"#{body_id}").is_visible()
    assert "建设项目" in tab.page.locator(f"#{body_id}").inner_text()
    tab.shot("project-map-phone-legend")
    toggle.click()
    assert tab.page.locator(f"#{body_id}").is_hidden()


def test_keyboard_reaches_the_list_and_the_popups(tab: Session, projects_frame: gpd.GeoDataFrame) -> None:
    names = projects_frame.set_index("project_id")["name"]
    tab.open("/")
    focused = "(() => { const a = document.activeElement; return [a.tagName, a.id, a.textContent.trim(),"
    focused += " a.closest('li') ? a.closest('li').dataset.id : null]; })()"
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate(focused)[2] == "跳到项目列表"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate(focused)[:2] == ["H2", "gp-list-title"]
    # The list is labelled by its heading and is the map's text alternative.
    assert tab.page.get_attribute("#gp-list", "aria-labelledby") == "gp-list-title"
    assert tab.page.get_attribute(".gp-map .leaflet-container", "aria-describedby") == "gp-map-alt"
    tab.page.keyboard.press("Tab")
    tag, _, _, first = tab.page.evaluate(focused)
    assert tag == "BUTTON" and first == list_ids(tab)[0]
    tab.page.keyboard.press("Tab")
    second = tab.page.evaluate(focused)[3]
    assert second == list_ids(tab)[1]
    tab.page.keyboard.press("Enter")
    assert popup_fields(tab)[0] == names[second]
    # The focus is in the popup, a dialog named by its heading; Escape closes it and the focus goes back.
    assert tab.page.evaluate("document.activeElement.closest('.leaflet-popup') !== null")
    dialog = tab.page.locator(".leaflet-popup[role='dialog']")
    label_id = dialog.get_attribute("aria-labelledby")
    assert tab.page.locator(f"#{label_id}").inner_text() == names[second]
    assert tab.page.get_attribute(".leaflet-popup-close-button", "aria-label") == "关闭"
    tab.page.keyboard.press("Escape")
    tab.page.wait_for_function("() => document.querySelectorAll('.leaflet-popup').length === 0")
    assert tab.page.evaluate(focused)[3] == second
    # Every filter has a label.
    for control in ("gp-search", "gp-task-area", "gp-status", "gp-town"):
        assert tab.page.locator(f"label[for='{control}']").count() == 1


def test_a_layer_page_keeps_features_clear_of_the_controls(tab: Session) -> None:
    tab.open("/layers/culture_facilities")
    description = tab.page.locator(".gp-description").inner_text()
    assert description.startswith("示意数据") and "SYNTHETIC" not in tab.page.locator(".gp-sidebar").inner_text()
    boxes = tab.page.evaluate(
        "(() => { const box = (n) => { const r = n.getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; };"
        " return { features: [...document.querySelectorAll('path.gp-layer-culture_facilities')].map(box),"
        " controls: [...document.querySelectorAll('.leaflet-control-zoom, .leaflet-control-scale, .gp-legend')]"
        ".map(box) }; })()"
    )
    assert len(boxes["features"]) == 30 and len(boxes["controls"]) == 3
    for f in boxes["features"]:
        for c in boxes["controls"]:
            overlap = f[0] < c[2] and c[0] < f[2] and f[1] < c[3] and c[1] < f[3]
            assert not overlap, (f, c)


@pytest.mark.parametrize("path", ["/", "/layers", "/layers/culture_facilities"])
def test_public_pages_pass_axe_wcag_aa(tab: Session, path: str) -> None:
    """GB/T 37668-2019 level AA as far as axe-core can tell: no serious or critical violation."""
    if path == "/layers":
        tab.page.goto(tab.server.base + path)
    else:
        tab.open(path)
    assert axe_violations(tab.page) == []
    if path == "/layers":
        # The check can fail: light grey text on white is found, and named.
        planted = "(() => { const p = document.createElement('p'); p.id = 'gp-planted'; p.textContent = '浅灰文字';"
        planted += " p.style.color = '#cccccc'; document.querySelector('main').prepend(p); })()"
        tab.page.evaluate(planted)
        found = axe_violations(tab.page)
        assert [v["id"] for v in found] == ["color-contrast"]
        assert found[0]["nodes"][0]["target"] == ["#gp-planted"]
    if path == "/":
        # Also with a popup open (a dialog over the map).
        tab.page.click("#gp-list li[data-id='GM-2024-003'] button")
        popup_fields(tab)
        # Leaflet fades a popup in: measured half-faded, its text would fail the contrast rule.
        tab.page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
        assert axe_violations(tab.page) == []
