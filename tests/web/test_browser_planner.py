"""The planner map (/planner) in a real browser: Debian's Chromium driven by Playwright, on the Gaoming demo store.

The browser, the live server and the guarded tab come from tests/web/browser.py: every tab fails its test on a
dialog, a CSP violation, a console error or a request to another host. What the page shows is compared with
what the API answers for the same token (patches, legend, totals) and with the store itself (marks, the red
line a drawn site overlaps). Screenshots go to test-artifacts/planner-*.png.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from geoplan.catalog import Catalog
from geoplan.crs import wgs84_to_gcj02
from geoplan.services.overlap_marks import mark_registry
from geoplan.storage.gpkg import GeoPackageStore
from tests.web.accessibility import axe_violations
from tests.web.browser import ARTIFACTS, Server, Session, api, browser, serve, server, session, tab
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens
from tests.web.token_pages import open_without_token, refused, sign_in

__all__ = ["browser", "demo", "server", "tab", "tokens"]  # the shared fixtures (the marks go to the demo copy)

pytestmark = pytest.mark.browser

TO_METRES = Transformer.from_crs("EPSG:4490", "EPSG:4547", always_xy=True)
TO_DEGREES = Transformer.from_crs("EPSG:4547", "EPSG:4490", always_xy=True)
HOSTILE_NOTE = "<img src=x onerror=alert(1)>"
ECO_PROJECT = "ECO_PROJECT"
EXEMPT_GREY = "#9e9e9e"
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


# --------------------------------------------------------------------------------------------- helpers


def login(tab: Session, token: str) -> None:
    sign_in(tab, "/planner", token)


def drawn_patch_ids(tab: Session) -> list[str]:
    return list(tab.page.eval_on_selector_all("path.gp-patch", "ps => ps.map(p => p.getAttribute('data-id'))"))


def page_point(tab: Session, lon: float, lat: float) -> tuple[float, float]:
    """Where a lon/lat is on the page (no basemap: no display shift)."""
    box = tab.page.locator(".gp-map .leaflet-container").bounding_box()
    assert box is not None
    point = tab.page.evaluate(
        "([lat, lon]) => { const p = GeoplanMap.current.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    return box["x"] + point[0], box["y"] + point[1]


def click_patch(tab: Session, patch: dict[str, Any]) -> None:
    """A real click on the patch: centred at street zoom, brought to the top, clicked inside its outline."""
    inside = shape(patch["geometry"]).representative_point()
    tab.page.evaluate(
        "([id, lat, lon]) => { GeoplanMap.current.map.setView([lat, lon], 16, {animate: false});"
        " GeoplanMap.current.patch(id).bringToFront(); }",
        [patch["id"], inside.y, inside.x],
    )
    tab.page.mouse.click(*page_point(tab, inside.x, inside.y))
    tab.page.wait_for_selector(f"#gp-patch[data-id='{patch['id']}'] .gp-patch-detail")


def pick(features: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    """The largest patch of a rule: easy to click and to see."""
    return max((f for f in features if f["properties"]["rule"] == rule), key=lambda f: f["properties"]["area_m2"])


# --------------------------------------------------------------------------------------------- tests


def test_without_a_token_the_page_asks_for_one_and_loads_nothing(browser: Any, server: Server, tokens: Tokens) -> None:
    # A staff token is refused (403) and a wrong one (401): the browser logs both failed loads as errors.
    with session(browser, server, expected_errors=("status of 403", "status of 401")) as tab:
        # Not even the public outline: nothing is fetched without a token.
        responses = open_without_token(tab, "/planner", fetched=("/api/", "/ogc/"))
        assert tab.page.locator("label[for='gp-token']").inner_text() == "令牌"
        assert tab.page.locator(".leaflet-pane path").count() == 0
        tab.shot("planner-login")

        refused(tab, tokens.staff, "角色不足")
        refused(tab, "gp_not-a-token", "令牌无效")
        assert all(s in (401, 403) for p, s in responses if p.startswith(("/api/", "/ogc/")))
        assert tab.page.locator("#gp-app").is_hidden() and tab.page.locator(".leaflet-pane path").count() == 0


def test_patches_legend_and_totals_match_the_api(tab: Session, server: Server, tokens: Tokens) -> None:
    login(tab, tokens.planner)
    patches = api(server, tokens.planner, "/api/overlaps")
    summary = api(server, tokens.planner, "/api/overlaps/summary")
    config = api(server, tokens.planner, "/api/overlaps/config")
    titles = {r["code"]: r["title"] for r in config["rules"]}

    assert sorted(drawn_patch_ids(tab)) == sorted(f["id"] for f in patches["features"])
    assert len(drawn_patch_ids(tab)) == patches["numberMatched"] > 50
    # Colours: each patch is filled with its rule's legend colour.
    fills = tab.page.eval_on_selector_all(
        "path.gp-patch", "ps => Object.fromEntries(ps.map(p => [p.dataset.id, p.getAttribute('fill')]))"
    )
    colors = {r["code"]: r["color"] for r in config["rules"]}
    for feature in patches["features"]:  # an exempt patch is grey: listed, not counted
        expected = EXEMPT_GREY if feature["properties"]["exempt"] else colors[feature["properties"]["rule"]]
        assert fills[feature["id"]] == expected

    # The legend: every rule with patches, its title and count, and the synthetic flag.
    legend = tab.page.locator(".gp-planner-legend")
    with_patches = {f["properties"]["rule"] for f in patches["features"]}
    listed = legend.locator("li[data-rule]")
    assert {listed.nth(i).get_attribute("data-rule") for i in range(listed.count())} == with_patches
    for code in with_patches:
        item = legend.locator(f"li[data-rule='{code}']").inner_text()
        count = sum(1 for f in patches["features"] if f["properties"]["rule"] == code)
        assert titles[code] in item and item.rstrip().endswith(str(count))
    assert "示意数据 / synthetic" in legend.inner_text()
    assert tab.page.locator("#gp-synthetic-note").is_visible()

    # The totals beside the map are the summary's rows.
    rows = tab.page.locator("#gp-by-rule tbody tr")
    assert [rows.nth(i).get_attribute("data-rule") for i in range(rows.count())] == [
        r["rule"] for r in summary["by_rule"]
    ]
    for i, expected in enumerate(summary["by_rule"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == expected["title"] and cells[2] == str(expected["patches"])
        assert cells[3] == f"{expected['area_m2'] / 10_000:,.2f}"
    towns = tab.page.locator("#gp-by-town tbody tr")
    assert [towns.nth(i).get_attribute("data-town") for i in range(towns.count())] == [
        r["town"] for r in summary["by_town"]
    ]
    for i, expected in enumerate(summary["by_town"]):
        cells = towns.nth(i).locator("td").all_inner_texts()
        assert cells[1:5] == [str(expected[k]) for k in ("patches", "high", "medium", "low")]
    assert tab.page.locator("#gp-count").inner_text().startswith(f"共 {patches['numberMatched']} 个冲突图斑")
    tab.shot("planner-map")

    # Clicking a rule shows only its patches; "显示全部" brings the rest back.
    tab.page.click(f"#gp-by-rule tr[data-rule='{ECO_PROJECT}'] button")
    eco = sorted(f["id"] for f in patches["features"] if f["properties"]["rule"] == ECO_PROJECT)
    assert sorted(drawn_patch_ids(tab)) == eco
    assert tab.page.locator(f"#gp-by-rule tr.gp-selected[data-rule='{ECO_PROJECT}']").count() == 1
    assert titles[ECO_PROJECT] in tab.page.locator("#gp-filter").inner_text()
    tab.shot("planner-filter")
    tab.page.click("#gp-filter-clear")
    assert len(drawn_patch_ids(tab)) == patches["numberMatched"]
    # The planners' page is an intranet page, held to the public pages' bar (WCAG 2.0 AA, no serious or critical).
    assert axe_violations(tab.page) == []


def test_the_list_reads_high_first_and_sets_the_exempt_patches_apart(
    tab: Session, server: Server, tokens: Tokens
) -> None:
    login(tab, tokens.planner)
    patches = api(server, tokens.planner, "/api/overlaps")["features"]
    summary = api(server, tokens.planner, "/api/overlaps/summary")
    # The API answers in the order a planner reads: high, medium, low, each by area (largest first).
    keys = [(SEVERITY_RANK[f["properties"]["severity"]], -f["properties"]["area_m2"]) for f in patches]
    assert keys == sorted(keys)
    counted = [f for f in patches if not f["properties"]["exempt"]]
    exempt = [f for f in patches if f["properties"]["exempt"]]
    assert counted and exempt
    assert all(f["properties"]["exempt_basis"] for f in exempt)
    assert not any(f["properties"]["exempt_basis"] for f in counted)
    # The page lists them in that order, the exempt ones in their own list with their basis.
    listed = tab.page.eval_on_selector_all("#gp-patch-list li[data-id]", "ls => ls.map(l => l.dataset.id)")
    assert listed == [f["id"] for f in counted]
    assert tab.page.locator("#gp-patch-list li[data-id]").first.get_attribute("data-severity") == "high"
    spared = tab.page.locator("#gp-exempt-list li[data-id]")
    assert [spared.nth(i).get_attribute("data-id") for i in range(spared.count())] == [f["id"] for f in exempt]
    first = spared.first.inner_text()
    assert "豁免依据：" + exempt[0]["properties"]["exempt_basis"] in first
    total = tab.page.locator("#gp-exempt-total").inner_text()
    assert f"豁免 {summary['exempt']['patches']} 个图斑" in total
    assert summary["exempt"]["patches"] == len(exempt)
    assert summary["exempt"]["area_m2"] == pytest.approx(sum(f["properties"]["area_m2"] for f in exempt))
    # A click on an exempt item opens the patch, which says it is exempt and why.
    spared.first.locator("button").click()
    tab.page.wait_for_selector(f"#gp-patch[data-id='{exempt[0]['id']}'] .gp-patch-detail")
    detail = tab.page.locator("#gp-patch").inner_text()
    assert "不计入合计和指标" in detail and exempt[0]["properties"]["exempt_basis"] in detail
    tab.shot("planner-exempt")


def test_a_patch_opens_with_its_sources_and_a_mark_persists(
    tab: Session, server: Server, tokens: Tokens, demo: tuple[Path, Tokens], catalog: Catalog
) -> None:
    login(tab, tokens.planner)
    features = api(server, tokens.planner, "/api/overlaps")["features"]
    patch = pick(features, "FARMLAND_PROJECT")
    props = patch["properties"]
    click_patch(tab, patch)
    detail = tab.page.locator("#gp-patch")
    sources = detail.locator("li.gp-source-item")
    assert [sources.nth(i).get_attribute("data-id") for i in range(sources.count())] == [props["id_a"], props["id_b"]]
    assert props["id_a"] in sources.nth(0).inner_text() and "建设项目" in sources.nth(0).inner_text()
    assert props["id_b"] in sources.nth(1).inner_text() and "永久基本农田" in sources.nth(1).inner_text()
    # The two sources are outlined on the map.
    outlined = tab.page.eval_on_selector_all("path.gp-source", "ps => ps.map(p => p.getAttribute('data-id'))")
    assert sorted(outlined) == sorted([props["id_a"], props["id_b"]])
    text = detail.inner_text()
    assert "建设项目占用永久基本农田" in text and props["patch_id"] in text and props["town"] in text
    assert f"{props['area_m2']:,.1f} m²" in text and f"{props['area_ellipsoid_m2']:,.1f} m²" in text
    assert detail.locator(".gp-mark-current").inner_text() == "当前：未标记"
    tab.shot("planner-patch")

    # Mark it, with a note that would be markup if it were ever parsed as HTML.
    tab.page.select_option("#gp-mark-status", "to_adjust")
    tab.page.fill("#gp-mark-note", HOSTILE_NOTE)
    tab.page.click("#gp-mark-form button[type=submit]")
    tab.page.wait_for_selector("#gp-patch .gp-mark-current[data-status='to_adjust']")
    assert detail.locator(".gp-mark-note").inner_text() == HOSTILE_NOTE
    assert detail.locator(".gp-history li").count() == 1
    tab.page.wait_for_timeout(300)  # an injected onerror would have fired (and failed the tab) by now
    assert tab.page.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror]').length") == 0
    assert "gp-marked" in (tab.page.locator(f"path.gp-patch[data-id='{patch['id']}']").get_attribute("class") or "")
    tab.shot("planner-mark-xss")

    # Re-open the page (same tab: the token is in sessionStorage, the address names the patch): the mark shows.
    assert tab.page.evaluate("location.hash") == f"#patch={patch['id']}"
    tab.page.reload()
    tab.page.wait_for_selector("body[data-planner='ready']")
    tab.page.wait_for_selector(f"#gp-patch[data-id='{patch['id']}'] .gp-mark-current[data-status='to_adjust']")
    assert tab.page.locator("#gp-patch .gp-mark-note").inner_text() == HOSTILE_NOTE
    store = GeoPackageStore(demo[0], catalog)
    registry = mark_registry(store)
    try:
        history = registry.history(patch["id"])
    finally:
        registry.close()
        store.close()
    assert [(m.status, m.note, m.actor, m.rule) for m in history] == [
        ("to_adjust", HOSTILE_NOTE, "planner:planner-1", "FARMLAND_PROJECT")
    ]

    # 退出 forgets the token: the next load asks again and fetches nothing.
    tab.page.click("#gp-logout")
    tab.page.wait_for_selector("body[data-planner='login']")
    assert tab.page.evaluate("sessionStorage.length") == 0
    assert tab.page.locator("path.gp-patch").count() == 0


def tiled_ids(tab: Session, name: str) -> set[str]:
    """The ids a plan layer's vector tiles hold once every tile in view has loaded."""
    tab.page.wait_for_function(f"() => !GeoplanMap.current.planTiles({json.dumps(name)}).isLoading()")
    return set(tab.page.evaluate(f"GeoplanMap.current.planTiles({json.dumps(name)}).drawnFeatures().map(f => f.id)"))


def layer_ids(server: Server, token: str, name: str, id_field: str) -> set[str]:
    body = api(server, token, f"/ogc/collections/{name}/items", limit=10_000)
    return {f["properties"][id_field] for f in body["features"]}


def test_a_private_plan_layer_loads_with_the_token(tab: Session, server: Server, tokens: Tokens) -> None:
    login(tab, tokens.planner)
    config = api(server, tokens.planner, "/api/overlaps/config")
    landuse = config["layers"]["landuse_plan"]
    assert not landuse["shown"] and tab.page.locator("path.gp-layer-landuse_plan").count() == 0
    assert {name for name in config["order"] if config["layers"][name]["tiled"]} == {
        "landuse_plan",
        "urban_plan",
        "basic_farmland",
    }
    shown = [name for name in config["order"] if config["layers"][name]["shown"]]
    for name in shown:
        layer = config["layers"][name]
        if layer["tiled"]:  # the view is the whole district: its tiles hold every feature, with the token
            assert tiled_ids(tab, name) == layer_ids(server, tokens.planner, name, layer["idField"]), name
        else:
            assert tab.page.locator(f"path.gp-layer-{name}").count() == layer["featureCount"], name
    legend = tab.page.locator(".gp-class-legend[data-layer='landuse_plan']")
    assert legend.is_hidden()
    tab.page.check("input[data-layer='landuse_plan']")
    ids = tiled_ids(tab, "landuse_plan")
    assert ids == layer_ids(server, tokens.planner, "landuse_plan", "parcel_id") and len(ids) == landuse["featureCount"]
    assert "个" in tab.page.locator("input[data-layer='landuse_plan'] ~ .gp-layer-count").inner_text()
    # The land-use classes and their colours, as the catalogue styles them, in the legend while the layer is on.
    assert legend.is_visible()
    classes = legend.locator("li")
    assert [classes.nth(i).inner_text() for i in range(classes.count())] == list(landuse["style"]["categories"])
    assert landuse["categoryTitle"] in legend.inner_text()
    colours = tab.page.eval_on_selector_all(
        ".gp-class-legend[data-layer='landuse_plan'] .gp-swatch-box", "ss => ss.map(s => s.style.backgroundColor)"
    )
    assert colours == [rgb(c) for c in landuse["style"]["categories"].values()]
    tab.shot("planner-landuse")
    tab.page.uncheck("input[data-layer='landuse_plan']")
    assert tab.page.locator("path.gp-layer-landuse_plan").count() == 0
    assert legend.is_hidden()


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_a_plan_popup_stays_clear_of_the_layer_panel(tab: Session, server: Server, tokens: Tokens) -> None:
    """A parcel clicked just left of the layer panel, near the top: its popup pans the map until it is beside the
    panel, not under it (controls are drawn above popups)."""
    login(tab, tokens.planner)
    patches = shapely.union_all(
        [shape(f["geometry"]) for f in api(server, tokens.planner, "/api/overlaps")["features"]]
    )
    parcels = api(server, tokens.planner, "/ogc/collections/landuse_plan/items", limit=10_000)["features"]
    points = (shape(f["geometry"]).representative_point() for f in parcels)
    target = next(p for p in points if p.distance(patches) > 0.005)  # ~500 m from any patch: nothing above it
    tab.page.check("input[data-layer='landuse_plan']")
    tiled_ids(tab, "landuse_plan")
    panel = tab.page.locator(".gp-layers").bounding_box()
    box = tab.page.locator(".gp-map .leaflet-container").bounding_box()
    assert panel is not None and box is not None
    x, y = panel["x"] - 25, panel["y"] + 40
    # Bring the parcel's inner point to that spot of the page, then click it there.
    tab.page.evaluate(
        "([lat, lon, x, y]) => { const map = GeoplanMap.current.map; map.setView([lat, lon], 15, {animate: false});"
        " const c = map.latLngToContainerPoint([lat, lon]); map.panBy([c.x - x, c.y - y], {animate: false}); }",
        [target.y, target.x, x - box["x"], y - box["y"]],
    )
    tiled_ids(tab, "landuse_plan")
    assert page_point(tab, target.x, target.y) == pytest.approx((x, y), abs=1)
    tab.page.mouse.click(x, y)
    tab.page.wait_for_selector(".leaflet-popup-content .gp-popup-title")
    tab.page.wait_for_timeout(400)  # the auto-pan animation
    popup = tab.page.locator(".leaflet-popup-content-wrapper").bounding_box()
    assert popup is not None
    assert popup["x"] + popup["width"] <= panel["x"], (popup, panel)
    fields = tab.page.locator(".leaflet-popup-content dt").all_inner_texts()
    assert "规划用途" in fields  # the parcel's own popup, as on the GeoJSON layers
    tab.shot("planner-popup-clear-of-panel")


def metric(geometry: Any) -> Any:
    return shapely.transform(geometry, lambda c: np.column_stack(TO_METRES.transform(c[:, 0], c[:, 1])))


def test_a_thin_patch_opens_with_a_click_beside_it(tab: Session, server: Server, tokens: Tokens) -> None:
    """The thinnest patch (a strip along a road, a few metres wide) at zoom 14, where it is about a pixel wide:
    a click on it, and a click 5 px beside it, both open it (not the red line or parcel under it)."""
    login(tab, tokens.planner)
    features = api(server, tokens.planner, "/api/overlaps")["features"]
    shapes = {f["id"]: metric(shape(f["geometry"])) for f in features}
    zoom = 14
    metres_per_px = 156543.03392804097 / 2**zoom * math.cos(math.radians(22.85))

    def alone(feature: dict[str, Any]) -> bool:  # no other patch within 25 px: a click near it means it
        rest = [g for i, g in shapes.items() if i != feature["id"]]
        return bool(shapely.union_all(rest).distance(shapes[feature["id"]]) > 25 * metres_per_px)

    thin = min(filter(alone, features), key=lambda f: 2 * shapes[f["id"]].area / shapes[f["id"]].length)
    width = 2 * shapes[thin["id"]].area / shapes[thin["id"]].length
    assert width < 2 * metres_per_px, width  # thinner than two pixels at this zoom
    inside = shape(thin["geometry"]).representative_point()
    tab.page.evaluate(f"GeoplanMap.current.map.setView([{inside.y}, {inside.x}], {zoom}, {{animate: false}})")
    tab.page.mouse.click(*page_point(tab, inside.x, inside.y))
    tab.page.wait_for_selector(f"#gp-patch[data-id='{thin['id']}'] .gp-patch-detail")
    # A point 5 px outside the patch (no other patch is within 25 px of it).
    beside = shapes[thin["id"]].buffer(5 * metres_per_px).exterior.interpolate(0.25, normalized=True)
    lon, lat = TO_DEGREES.transform(beside.x, beside.y)
    tab.page.click("#gp-tab-summary")
    tab.page.evaluate("history.replaceState(null, '', '#')")
    tab.page.locator("#gp-patch").evaluate("node => node.removeAttribute('data-id')")
    tab.page.mouse.click(*page_point(tab, lon, lat))
    tab.page.wait_for_selector(f"#gp-patch[data-id='{thin['id']}'] .gp-patch-detail")
    # Named readably: rule, town and area first; the 16-digit id only on the second line.
    props = thin["properties"]
    name = tab.page.locator("#gp-patch .gp-patch-name").inner_text()
    assert name.startswith(props["rule_title"] + " · ") and (props["town"] or "镇街不详") in name
    assert props["patch_id"] not in name
    assert tab.page.locator("#gp-patch .gp-patch-code").inner_text() == f"图斑编号 {props['patch_id']}"
    tab.shot("planner-thin-patch")


def test_clicking_a_rule_zooms_to_its_patches(tab: Session, server: Server, tokens: Tokens) -> None:
    login(tab, tokens.planner)
    features = api(server, tokens.planner, "/api/overlaps")["features"]
    counts: dict[str, int] = {}
    for f in features:
        counts[f["properties"]["rule"]] = counts.get(f["properties"]["rule"], 0) + 1
    rule = min(counts, key=lambda r: counts[r])  # the rule with the fewest patches: a small area to zoom to
    ours = [shape(f["geometry"]) for f in features if f["properties"]["rule"] == rule]
    west, south, east, north = shapely.union_all(ours).bounds
    before = tab.page.evaluate("GeoplanMap.current.map.getZoom()")
    tab.page.click(f"#gp-by-rule tr[data-rule='{rule}'] button")
    # The view Leaflet fits to those bounds (padding 40 px, at most zoom 16), and every patch of the rule in it.
    expected = tab.page.evaluate(
        f"Math.min(16, GeoplanMap.current.map.getBoundsZoom([[{south}, {west}], [{north}, {east}]], false,"
        " L.point(80, 80)))"
    )
    zoom = tab.page.evaluate("GeoplanMap.current.map.getZoom()")
    assert zoom == expected and zoom > before
    assert tab.page.evaluate(f"GeoplanMap.current.map.getBounds().contains([[{south}, {west}], [{north}, {east}]])")
    assert sorted(drawn_patch_ids(tab)) == sorted(f["id"] for f in features if f["properties"]["rule"] == rule)
    tab.shot("planner-rule-zoom")


def test_a_site_drawn_over_a_red_line_fails_the_check(
    tab: Session, tokens: Tokens, demo: tuple[Path, Tokens], catalog: Catalog
) -> None:
    store = GeoPackageStore(demo[0], catalog)
    try:
        redlines = store.read("eco_redlines")
    finally:
        store.close()
    redline = redlines.iloc[0]
    centre = redline.geometry.representative_point()
    half = 0.0015  # a ~300 m square, well inside the red line
    corners = [
        (centre.x - half, centre.y - half),
        (centre.x + half, centre.y - half),
        (centre.x + half, centre.y + half),
        (centre.x - half, centre.y + half),
    ]
    square = shapely.Polygon(corners)
    assert redline.geometry.contains(square)

    login(tab, tokens.planner)
    tab.page.click("#gp-tab-site")
    tab.page.evaluate(f"GeoplanMap.current.map.setView([{centre.y}, {centre.x}], 15, {{animate: false}})")
    checks: list[Any] = []
    tab.page.on("request", lambda r: checks.append(r) if urlsplit(r.url).path == "/api/compliance" else None)
    tab.page.click("#gp-draw")
    for lon, lat in corners[:-1]:
        tab.page.mouse.click(*page_point(tab, lon, lat))
    assert "已 3 个" in tab.page.locator("#gp-draw-status").inner_text()
    tab.page.mouse.dblclick(*page_point(tab, *corners[-1]))  # the last corner closes the polygon
    tab.page.wait_for_function("() => !document.getElementById('gp-check-drawn').disabled")
    assert "4 个顶点" in tab.page.locator("#gp-draw-status").inner_text()
    tab.page.click("#gp-check-drawn")
    tab.page.wait_for_selector("#gp-site-result[data-verdict]")

    result = tab.page.locator("#gp-site-result")
    assert result.get_attribute("data-verdict") == "fail"
    assert result.locator(".gp-verdict-word").inner_text() == "不通过"
    hit = result.locator(f"tr[data-rule='{ECO_PROJECT}']")
    assert hit.count() == 1 and redline["redline_id"] in hit.inner_text()
    # The page sent the corners it was given (to a pixel, ~10 m at this zoom), in CGCS2000 lon/lat.
    sent = json.loads(checks[0].post_data)["geometry"]["coordinates"][0]
    assert len(sent) == 5 and sent[0] == sent[-1]
    assert sent[:-1] == [pytest.approx(list(c), abs=2e-4) for c in corners]
    tab.shot("planner-site-check")

    # The printable report opens in a tab of its own, styled by its own stylesheet (not blocked by this
    # page's policy) and running no script.
    with tab.page.context.expect_page() as opened:
        tab.page.click("#gp-open-report")
    report = opened.value
    report_errors: list[str] = []
    report.on("console", lambda m: report_errors.append(m.text) if m.type == "error" else None)
    report.wait_for_function("() => location.protocol === 'blob:' && document.querySelector('.verdict')")
    report.wait_for_load_state()
    assert "不通过" in report.locator(".verdict").inner_text()
    assert ECO_PROJECT in report.content() and redline["redline_id"] in report.content()
    border = report.evaluate("getComputedStyle(document.querySelector('.verdict')).borderTopColor")
    assert border == "rgb(178, 24, 43)"  # the report's .verdict.fail style applies
    assert report.evaluate("window.__cspViolations || []") == []
    assert report_errors == []
    report.screenshot(path=str(ARTIFACTS / "planner-report.png"))
    report.close()

    # The same square as an uploaded file (multipart; the CRS is the file's own): the same verdict.
    site = {"type": "Feature", "properties": {"name": "上传的地块"}, "geometry": shapely.geometry.mapping(square)}
    upload = {"name": "site.geojson", "mimeType": "application/geo+json", "buffer": json.dumps(site).encode()}
    tab.page.set_input_files("#gp-site-file", files=[upload])
    tab.page.click("#gp-upload button[type=submit]")
    tab.page.wait_for_selector("#gp-site-result[data-verdict]")
    assert checks[-1].headers["content-type"].startswith("multipart/form-data")
    assert result.get_attribute("data-verdict") == "fail"
    assert result.locator(f"tr[data-rule='{ECO_PROJECT}']").count() == 1


def test_amap_shifts_the_display_and_drawn_sites_back(
    browser: Any,
    demo: tuple[Path, Tokens],
    tokens: Tokens,
    tmp_path: Path,
) -> None:
    """Over AMap's GCJ-02 tiles the patches are drawn shifted, like every layer; a site drawn there is sent to the
    check in CGCS2000 (the shift undone). The tile requests are caught and aborted by the tab's recorder."""
    with (
        serve(demo[0], tmp_path / "uvicorn.log", GEOPLAN_BASEMAP="amap") as amap,
        session(browser, amap, expected_errors="net::ERR_FAILED", other_hosts=True) as tab,
    ):
        login(tab, tokens.planner)
        assert "GCJ-02" in tab.page.locator(".gp-planner-legend").inner_text()
        assert tab.foreign and all((urlsplit(u).hostname or "").endswith(".is.autonavi.com") for u in tab.foreign)
        patch = pick(api(amap, tokens.planner, "/api/overlaps")["features"], ECO_PROJECT)
        ring = np.array(shape(patch["geometry"]).geoms[0].exterior.coords)[:-1]  # Leaflet drops the closing vertex
        drawn = np.array(
            tab.page.evaluate(
                "id => GeoplanMap.current.patch(id).getLatLngs().flat(3).map(ll => [ll.lng, ll.lat])", patch["id"]
            )
        )[: len(ring)]
        lon, lat = wgs84_to_gcj02(ring[:, 0], ring[:, 1])
        assert drawn == pytest.approx(np.column_stack([lon, lat]), abs=1e-9)
        assert np.abs(drawn - ring).max() > 0.003  # a visible shift (~500 m), not a no-op

        centre = shape(patch["geometry"]).representative_point()
        corners = [(centre.x - 0.001, centre.y - 0.001), (centre.x + 0.001, centre.y), (centre.x, centre.y + 0.001)]
        shifted = [wgs84_to_gcj02(np.array([x]), np.array([y])) for x, y in corners]
        tab.page.click("#gp-tab-site")
        tab.page.evaluate(
            "([lat, lon]) => GeoplanMap.current.map.setView([lat, lon], 16, {animate: false})",
            [float(shifted[0][1][0]), float(shifted[0][0][0])],
        )
        sent: list[Any] = []
        tab.page.on("request", lambda r: sent.append(r) if urlsplit(r.url).path == "/api/compliance" else None)
        tab.page.click("#gp-draw")
        for x, y in shifted:
            tab.page.mouse.click(*page_point(tab, float(x[0]), float(y[0])))
        tab.page.click("#gp-draw-finish")
        tab.page.click("#gp-check-drawn")
        tab.page.wait_for_selector("#gp-site-result[data-verdict]")
        ring_sent = json.loads(sent[0].post_data)["geometry"]["coordinates"][0]
        assert ring_sent[:-1] == [pytest.approx(list(c), abs=1e-4) for c in corners]  # a pixel at zoom 16: ~2 m
        tab.shot("planner-amap")
