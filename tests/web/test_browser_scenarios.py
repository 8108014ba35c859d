"""The planner page's scenario tab (规划方案) in a real browser, on the Gaoming demo: a planner creates a scenario,
places a new cultural facility on a road of a village no facility reaches today, sees the village's coverage
change in the table (as the API's diff says) and the draft on the map with its legend, then adopts it, and the
live layer has the facility. Screenshots go to test-artifacts/scenario-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.services.rule_files import rules_for
from geoplan.services.scenario_diff import analyse
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.browser import Server, Session, api, browser, server, session
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens
from tests.web.token_pages import sign_in

__all__ = ["browser", "demo", "server", "tokens"]

pytestmark = pytest.mark.browser

NAME = "浏览器文化站方案"
NEW_ID = "CF-9201"
NEW_NAME = "方案文化站"
DIFF_TIMEOUT_MS = 180_000
ADDED, REMOVED = "#d7191c", "#1a9641"  # geoplan-scenario.js: the patches a scenario adds and removes


def _target(path: Path, catalog: Catalog) -> tuple[str, shapely.Point]:
    """The most populous village no cultural facility reaches today, and a point on a road inside it."""
    store = GeoPackageStore(path, catalog)
    try:
        card = analyse(store, rules=rules_for(catalog, LAYERS_DIR), layers_dir=LAYERS_DIR).life_circles
        villages, roads = store.read("villages"), store.read("roads")
    finally:
        store.close()
    poor = card[(card["service"] == "culture") & (card["covered_population"] == 0) & (card["population"] > 0)]
    code = str(poor.sort_values("population", ascending=False)["village_code"].iloc[0])
    village = villages[villages["village_code"].astype(str) == code].geometry.iloc[0]
    inner = roads[roads.intersects(village).to_numpy()]
    centre = gpd.GeoSeries([village.representative_point()], crs=villages.crs).to_crs("EPSG:4547").iloc[0]
    nearest = inner.geometry.iloc[int(inner.to_crs("EPSG:4547").distance(centre).to_numpy().argmin())]
    return code, nearest.intersection(village).interpolate(0.5, normalized=True)


def _click_at(tab: Session, lon: float, lat: float) -> None:
    """A real click on the map at lon/lat (no basemap: no display shift), centred at street zoom first."""
    tab.page.evaluate("([lat, lon]) => GeoplanMap.current.map.setView([lat, lon], 17, {animate: false})", [lat, lon])
    box = tab.page.locator(".gp-map .leaflet-container").bounding_box()
    assert box is not None
    x, y = tab.page.evaluate(
        "([lat, lon]) => { const p = GeoplanMap.current.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    tab.page.mouse.click(box["x"] + x, box["y"] + y)


def test_draw_a_facility_into_a_scenario_see_the_change_and_adopt_it(
    browser: Any, server: Server, tokens: Tokens, demo: tuple[Path, Tokens], catalog: Catalog
) -> None:
    code, where = _target(demo[0], catalog)
    with session(browser, server) as tab:
        sign_in(tab, "/planner", tokens.planner)
        tab.page.click("#gp-tab-scenario")
        assert tab.page.locator("#gp-panel-scenario").is_visible()
        tab.page.fill("#gp-scn-name", NAME)
        tab.page.click("#gp-scn-create button[type=submit]")
        tab.page.wait_for_selector("#gp-scn-work:not([hidden])")
        assert tab.page.locator("#gp-scn-title").inner_text() == NAME
        assert tab.page.locator("#gp-scn-select").input_value() == NAME

        # The form asks the layer's required fields in Chinese; the kind is a choice list.
        tab.page.select_option("#gp-scn-layer", "culture_facilities")
        labels = tab.page.locator("#gp-scn-fields label").all_inner_texts()
        assert labels == ["设施编号", "名称", "类型"]
        tab.page.fill("#gp-scn-f-facility_id", NEW_ID)
        tab.page.fill("#gp-scn-f-name", NEW_NAME)
        tab.page.select_option("#gp-scn-f-kind", "文化站")
        tab.page.click("#gp-scn-place")
        _click_at(tab, where.x, where.y)
        tab.page.wait_for_selector("path.gp-scn-new")
        tab.page.click("#gp-scn-feature button[type=submit]")
        tab.page.wait_for_selector(f"#gp-scn-edits tr[data-id='{NEW_ID}']")
        assert tab.page.locator(f"#gp-scn-edits tr[data-id='{NEW_ID}']").inner_text().split("\t") == [
            "文化设施",
            NEW_ID,
            "新增",
        ]

        # The comparison runs by itself once the scenario has an edit: the tables and the map's change layer.
        tab.page.wait_for_selector("#gp-scn-result[data-ready='true']", timeout=DIFF_TIMEOUT_MS)
        diff = api(server, tokens.planner, f"/api/scenarios/{quote(NAME)}/diff")
        rows = tab.page.locator("#gp-scn-coverage tbody tr[data-village]")
        assert rows.count() == len(diff["coverage"]) > 0
        row = tab.page.locator(f"#gp-scn-coverage tr[data-village='{code}'][data-service='culture']")
        expected = next(r for r in diff["coverage"] if r["village_code"] == code and r["service"] == "culture")
        assert expected["delta_pp"] > 0 and expected["covered_live"] == 0
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == expected["village_name"] and cells[1] == "文化设施"
        assert cells[3] == f"+{expected['delta_pp']:.1f}"
        assert cells[4] == f"0 → {expected['covered_scenario']:,}"
        assert tab.page.locator("#gp-scn-indicators tbody tr[data-indicator]").count() == len(diff["indicators"])
        assert tab.page.locator("#gp-scn-patches tbody tr[data-change]").count() == len(diff["patches"]["features"])
        assert tab.page.locator("path.gp-scn-change").count() == len(diff["patches"]["features"])
        # The draft facility is on the map where it was placed, and the comparison's legend says what is what.
        draft = tab.page.locator(f"path.gp-scn-draft[data-id='{NEW_ID}']")
        assert draft.count() == 1
        legend = tab.page.locator(".gp-scn-legend")
        assert legend.is_visible() and "方案新增的冲突图斑" in legend.inner_text()
        scenario_layer = api(server, tokens.planner, f"/api/scenarios/{quote(NAME)}/layers/culture_facilities")
        placed = next(f for f in scenario_layer["features"] if f["id"] == NEW_ID)
        assert shapely.geometry.shape(placed["geometry"]).distance(where) < 0.0001  # within ~10 m of the road point
        tab.page.evaluate(
            "([lat, lon]) => GeoplanMap.current.map.setView([lat, lon], 14, {animate: false})", [where.y, where.x]
        )
        tab.shot("scenario-diff")
        tab.page.locator("#gp-scn-coverage").scroll_into_view_if_needed()
        tab.shot("scenario-tables")

        # Adopt, confirmed in the page (no dialog): the live layer has the facility, the scenario is gone.
        tab.page.click("#gp-scn-adopt")
        assert "确定采纳" in tab.page.locator("#gp-scn-confirm").inner_text()
        tab.page.click("#gp-scn-confirm-yes")
        tab.page.wait_for_selector("#gp-scn-status:has-text('已采纳')")
        tab.shot("scenario-adopted")
        live = api(server, tokens.planner, f"/ogc/collections/culture_facilities/items/{NEW_ID}")
        assert live["properties"]["name"] == NEW_NAME and live["properties"]["kind"] == "文化站"
        assert NAME not in [s["name"] for s in api(server, tokens.planner, "/api/scenarios")["scenarios"]]
        assert tab.page.locator("#gp-scn-work").is_hidden() and tab.page.locator(".gp-scn-legend").is_hidden()


def test_a_stale_scenario_is_refused_with_its_features_named(browser: Any, server: Server, tokens: Tokens) -> None:
    name = "过时的方案"
    planner = tokens.planner
    api(server, planner, "/api/scenarios", body={"name": name})
    live = api(server, planner, "/ogc/collections/culture_facilities/items/CF-0005")
    drafted = {"type": "Feature", "geometry": live["geometry"], "properties": {**live["properties"], "capacity": 4321}}
    api(server, planner, f"/api/scenarios/{quote(name)}/features/culture_facilities", body=drafted, replace="true")
    # CF-0005 changes live after the scenario drafted it.
    changed = {**drafted, "properties": {**live["properties"], "name": "现状中改名的设施"}}
    api(server, planner, "/api/layers/culture_facilities/features/CF-0005", method="PUT", body=changed)
    with session(browser, server, expected_errors="status of 409") as tab:
        sign_in(tab, "/planner", planner)
        tab.page.click("#gp-tab-scenario")
        tab.page.wait_for_selector(f"#gp-scn-select option[value='{name}']", state="attached")
        tab.page.select_option("#gp-scn-select", name)
        tab.page.wait_for_selector("#gp-scn-result[data-ready='true']", timeout=DIFF_TIMEOUT_MS)
        tab.page.click("#gp-scn-adopt")
        tab.page.click("#gp-scn-confirm-yes")
        item = tab.page.wait_for_selector("#gp-scn-stale li[data-id='CF-0005']")
        assert item is not None and item.inner_text() == "文化设施 CF-0005：现状中已被修改"
        assert "CF-0005" in tab.page.locator("#gp-scn-stale").inner_text()
        assert "未采纳" in tab.page.locator("#gp-scn-status").inner_text()
        tab.shot("scenario-stale")
    # Nothing was adopted: the live feature kept the other edit and the scenario is still there.
    after = api(server, planner, "/ogc/collections/culture_facilities/items/CF-0005")
    assert after["properties"]["name"] == "现状中改名的设施" and after["properties"]["capacity"] != 4321
    assert name in [s["name"] for s in api(server, planner, "/api/scenarios")["scenarios"]]


def test_conflict_patches_the_scenario_adds_and_removes_are_drawn_in_two_colours(
    browser: Any, server: Server, tokens: Tokens
) -> None:
    """A project with conflicts deleted (its patches removed) and drawn again under a new id (the same patches
    added, with new ids): both kinds on the map in their legend colours, and in the table."""
    name = "冲突变化方案"
    planner = tokens.planner
    patches = api(server, planner, "/api/overlaps")["features"]
    ids = [f["properties"][f"id_{s}"] for f in patches for s in "ab" if f["properties"][f"layer_{s}"] == "projects"]
    project = max(set(ids), key=ids.count)
    live = api(server, planner, f"/ogc/collections/projects/items/{quote(project)}")
    copy = {
        "type": "Feature",
        "geometry": live["geometry"],
        "properties": {**live["properties"], "project_id": "GM-2099-101"},
    }
    api(server, planner, "/api/scenarios", body={"name": name})
    api(server, planner, f"/api/scenarios/{quote(name)}/features/projects", body=copy)
    api(server, planner, f"/api/scenarios/{quote(name)}/features/projects/{quote(project)}", method="DELETE")
    diff = api(server, planner, f"/api/scenarios/{quote(name)}/diff")
    changes = {f["id"]: f["properties"]["change"] for f in diff["patches"]["features"]}
    assert diff["counts"]["removed"] == ids.count(project) > 0  # every patch of the deleted project
    assert diff["counts"]["added"] >= ids.count(project)  # the copy's (and any with the project it copies)
    with session(browser, server) as tab:
        sign_in(tab, "/planner", planner)
        tab.page.click("#gp-tab-scenario")
        tab.page.wait_for_selector(f"#gp-scn-select option[value='{name}']", state="attached")
        tab.page.select_option("#gp-scn-select", name)
        tab.page.wait_for_selector("#gp-scn-result[data-ready='true']", timeout=DIFF_TIMEOUT_MS)
        drawn = tab.page.eval_on_selector_all(
            "path.gp-scn-change", "ps => ps.map(p => [p.dataset.id, p.getAttribute('stroke')])"
        )
        assert {i: c for i, c in drawn} == {i: ADDED if c == "added" else REMOVED for i, c in changes.items()}
        rows = tab.page.locator("#gp-scn-patches tbody tr[data-change]")
        assert rows.count() == len(changes)
        assert {rows.nth(i).locator("td").first.inner_text().strip() for i in range(rows.count())} == {"新增", "消除"}
        assert tab.page.locator("path.gp-scn-draft[data-id='GM-2099-101']").count() == 1
        first = diff["patches"]["features"][0]["geometry"]
        bounds = shapely.geometry.shape(first).bounds
        tab.page.evaluate(
            "([s, w, n, e]) => GeoplanMap.current.map.fitBounds([[s, w], [n, e]], {maxZoom: 15, animate: false})",
            [bounds[1], bounds[0], bounds[3], bounds[2]],
        )
        tab.shot("scenario-patches")
