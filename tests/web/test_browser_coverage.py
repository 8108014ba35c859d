"""The coverage map (/coverage) in a real browser: Debian's Chromium driven by Playwright, on the Gaoming demo store.

The browser, the live server and the guarded tab come from tests/web/browser.py: every tab fails its test on a
dialog, a CSP violation, a console error or a request to another host. What the page shows is compared with
what the API answers for the same token (fetched outside the browser) and with the class breaks the legend
itself shows. Screenshots go to test-artifacts/coverage-*.png.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from geoplan.analysis.coverage_tables import whole
from tests.web.accessibility import axe_violations
from tests.web.browser import Server, Session, api, browser, server, session, tab
from tests.web.conftest import Tokens
from tests.web.module_demo import demo
from tests.web.token_pages import open_without_token, refused, sign_in

__all__ = ["browser", "demo", "server", "tab"]  # the shared fixtures (a facility is added to the demo copy)

pytestmark = pytest.mark.browser

FIRST_LOAD_MS = 120_000
"""The first answer computes coverage, service areas, gaps and sites (seconds on a busy 2-core machine)."""
LIBRARY = "自助图书馆"


# --------------------------------------------------------------------------------------------- helpers


def login(tab: Session, token: str) -> None:
    sign_in(tab, "/coverage", token, timeout_ms=FIRST_LOAD_MS)


def recompute(tab: Session) -> None:
    tab.page.click("#gp-settings button[type=submit]")
    tab.page.wait_for_selector("body[data-coverage='ready']", timeout=FIRST_LOAD_MS)


def table_codes(tab: Session) -> list[str]:
    return list(tab.page.eval_on_selector_all("#gp-village-table tbody tr", "rs => rs.map(r => r.dataset.code)"))


def table_cells(tab: Session, code: str) -> dict[str, str]:
    """The row of a village as the user reads it: header label -> cell text."""
    headers = tab.page.locator("#gp-village-table thead th").all_inner_texts()
    cells = tab.page.locator(f"#gp-village-table tbody tr[data-code='{code}'] td").all_inner_texts()
    return {h.rstrip(" ↕▲▼"): c.strip() for h, c in zip(headers, cells, strict=True)}


def pct_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}%"


def legend_classes(tab: Session) -> list[dict[str, Any]]:
    return list(
        tab.page.eval_on_selector_all(
            ".gp-coverage-legend li[data-class]",
            "items => items.map(i => ({cls: i.dataset.class, lower: Number(i.dataset.lower),"
            " upper: Number(i.dataset.upper), color: i.dataset.color,"
            " shown: getComputedStyle(i.querySelector('.gp-swatch-box')).backgroundColor,"
            " count: Number(i.querySelector('.gp-legend-count').textContent)}))",
        )
    )


def village_fills(tab: Session) -> dict[str, str]:
    return dict(
        tab.page.eval_on_selector_all(
            "path.gp-village", "ps => Object.fromEntries(ps.map(p => [p.dataset.id, p.getAttribute('fill')]))"
        )
    )


def rgb(color: str) -> str:
    """#rrggbb as the browser reports a computed colour."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def expected_color(legend: list[dict[str, Any]], value: float | None) -> str:
    """The colour the legend gives a coverage %: its first class whose upper bound holds it."""
    classes = [c for c in legend if c["cls"] != "none"]
    if value is None:
        return next(c["color"] for c in legend if c["cls"] == "none")
    for item in classes:
        if value <= item["upper"]:
            assert value >= item["lower"] - 1e-9
            return str(item["color"])
    raise AssertionError(f"{value} above every class")


# --------------------------------------------------------------------------------------------- tests


def test_without_a_token_the_page_asks_for_one_and_loads_nothing(browser: Any, server: Server) -> None:
    with session(browser, server, expected_errors="status of 401") as tab:
        open_without_token(tab, "/coverage", fetched=("/api/", "/ogc/"))
        assert tab.page.locator("#gp-villages").is_hidden()
        assert tab.page.locator(".leaflet-pane path").count() == 0
        refused(tab, "gp_not-a-token", "令牌无效")
        assert tab.page.locator("#gp-app").is_hidden() and tab.page.locator(".leaflet-pane path").count() == 0


def test_villages_are_coloured_with_the_legends_breaks(tab: Session, server: Server, demo: tuple[Path, Tokens]) -> None:
    token = demo[1].staff
    login(tab, token)
    body = api(server, token, "/api/coverage")
    rows = {r["village_code"]: r for r in body["villages"]}

    legend = legend_classes(tab)
    classes = [c for c in legend if c["cls"] != "none"]
    assert [c["upper"] for c in classes] == body["classes"]["upper"] and len(classes) == 5
    for item in classes:  # the swatch shows the colour the legend names
        assert item["shown"] == rgb(item["color"])
    fills = village_fills(tab)
    assert sorted(fills) == sorted(rows)
    for code, village in rows.items():
        assert fills[code] == expected_color(legend, village["coverage_pct"]), code
    for item in classes:  # and counts what it holds
        held = [
            v
            for v in rows.values()
            if v["coverage_pct"] is not None and expected_color(legend, v["coverage_pct"]) == item["color"]
        ]
        assert item["count"] == len(held)
    text = tab.page.locator(".gp-coverage-legend").inner_text()
    assert "示意数据 / synthetic" in text and "Fisher-Jenks" in text

    # Every layer drawn: one service area per facility on the network, the gaps, the facilities, the sites.
    areas = api(server, token, "/api/coverage/service-areas")
    gaps = api(server, token, "/api/coverage/gaps")
    sites = api(server, token, "/api/coverage/suggested-sites", k=5)
    assert tab.page.locator("path.gp-area").count() == len(areas["features"]) > 100
    assert tab.page.locator("path.gp-gap").count() == len(gaps["features"]) > 0
    assert tab.page.locator("path.gp-layer-culture_facilities").count() == body["facilities_counted"]
    ranks = tab.page.eval_on_selector_all(".gp-site-icon", "ms => ms.map(m => m.dataset.rank)")
    assert ranks == ["1", "2", "3", "4", "5"] and tab.page.locator(".gp-site-icon").first.inner_text() == "1"
    site_rows = tab.page.locator("#gp-sites tbody tr")
    for i, feature in enumerate(sites["features"]):
        cells = site_rows.nth(i).locator("td").all_inner_texts()
        assert cells[1] == feature["properties"]["village_name"]
        assert cells[2] == f"{feature['properties']['gain_population']:,.0f}"

    # The totals beside the map, and the table under it.
    district = body["district"]
    count = tab.page.locator("#gp-count").inner_text()
    assert f"{district['covered_population']:,.0f} / {district['population']:,.0f}" in count
    assert f"{body['below']['villages']} 个村（社区）" in count
    assert tab.page.locator("#gp-by-town tbody tr").count() == len(body["towns"]) + 1
    assert sorted(table_codes(tab)) == sorted(rows)
    some = body["villages"][0]
    cells = table_cells(tab, some["village_code"])
    assert cells["村（社区）"] == some["village_name"] and cells["覆盖率"] == pct_text(some["coverage_pct"])
    assert cells["人口"] == f"{some['population']:,.0f}"
    tab.shot("coverage-map")

    # The nearest facility by name, its id after it, as the public facilities layer names it.
    facilities = api(server, token, "/ogc/collections/culture_facilities/items", limit=1000)["features"]
    names = {f["properties"]["facility_id"]: f["properties"]["name"] for f in facilities}
    served = [v for v in body["villages"] if v["nearest_facility"] is not None]
    assert len(served) > 50
    for village in served[:5]:
        want = f"{names[village['nearest_facility']]}（{village['nearest_facility']}）"
        assert table_cells(tab, village["village_code"])["最近设施"] == want
    tab.page.click(f"#gp-village-table tbody tr[data-code='{served[0]['village_code']}']")
    popup = tab.page.locator(".leaflet-popup-content")
    assert f"{names[served[0]['nearest_facility']]}（{served[0]['nearest_facility']}）" in popup.inner_text()

    # The map panel is as tall as the district needs (no tall panel with the district in a band), the district
    # fills it one way, and the legend folds.
    tab.page.keyboard.press("Escape")
    tab.page.evaluate("GeoplanMap.current.reload()")
    tab.page.wait_for_selector("body[data-coverage='ready']", timeout=FIRST_LOAD_MS)
    panel = tab.page.locator(".gp-coverage-map").bounding_box()
    assert 320 <= panel["height"] <= 0.75 * 800 + 1
    assert panel["height"] < panel["width"] * 0.7  # the district is about twice as wide as it is tall
    toggle = tab.page.locator(".gp-coverage-legend .gp-legend-toggle")
    assert toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert tab.page.locator(".gp-coverage-legend .gp-legend-body").is_hidden()
    assert axe_violations(tab.page) == []  # WCAG 2.0 A/AA: no serious or critical violation


def test_the_table_sorts_when_a_header_is_clicked(tab: Session, server: Server, demo: tuple[Path, Tokens]) -> None:
    token = demo[1].staff
    login(tab, token)
    rows = api(server, token, "/api/coverage")["villages"]

    def by(key: str, reverse: bool = False) -> list[str]:
        present = [r for r in rows if r[key] is not None]
        missing = sorted(r["village_code"] for r in rows if r[key] is None)
        ordered = sorted(present, key=lambda r: (-r[key] if reverse else r[key], r["village_code"]))
        return [r["village_code"] for r in ordered] + missing  # no figure: last either way

    # The worst-covered villages first, to start with.
    assert table_codes(tab) == by("coverage_pct")
    header = "#gp-village-table th[data-key='population']"
    tab.page.click(f"{header} button")
    assert tab.page.get_attribute(header, "aria-sort") == "ascending"
    assert table_codes(tab) == by("population")
    tab.page.click(f"{header} button")
    assert tab.page.get_attribute(header, "aria-sort") == "descending"
    assert table_codes(tab) == by("population", reverse=True)
    assert tab.page.get_attribute("#gp-village-table th[data-key='coverage_pct']", "aria-sort") is None
    tab.page.click("#gp-village-table th[data-key='mean_minutes'] button")
    assert table_codes(tab) == by("mean_minutes")
    tab.shot("coverage-table-sorted")

    # A row shows its village on the map: outlined, in view, with its popup.
    biggest = by("population", reverse=True)[0]
    name = next(r["village_name"] for r in rows if r["village_code"] == biggest)
    tab.page.click(f"#gp-village-table tbody tr[data-code='{biggest}']")
    tab.page.wait_for_selector(".leaflet-popup-content .gp-popup-title")
    assert tab.page.locator(".leaflet-popup-content .gp-popup-title").inner_text() == name
    assert tab.page.get_attribute(f"path.gp-village[data-id='{biggest}']", "stroke-width") == "3"
    assert "gp-selected" in (tab.page.get_attribute(f"#gp-village-table tr[data-code='{biggest}']", "class") or "")


def test_the_download_buttons_save_the_table(tab: Session, server: Server, demo: tuple[Path, Tokens]) -> None:
    token = demo[1].staff
    login(tab, token)
    rows = {r["village_code"]: r for r in api(server, token, "/api/coverage")["villages"]}
    with tab.page.expect_download() as info:
        tab.page.click("[data-download='csv']")
    download = info.value
    assert download.suggested_filename == "village_coverage.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    table = {r["village_code"]: r for r in csv.DictReader(io.StringIO(text))}
    assert sorted(table) == sorted(rows)
    for code, row in rows.items():
        assert int(table[code]["covered_population"]) == whole(row["covered_population"])  # whole people
        assert table[code]["wkt"].startswith("MULTIPOLYGON")
    with tab.page.expect_download() as info:
        tab.page.click("[data-download='xlsx']")
    assert info.value.suggested_filename == "village_coverage.xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    sheet = workbook.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    codes = [r[0] for r in values[1:]]
    assert values[0][0] == "village_code" and sorted(codes) == sorted(rows)


def test_new_options_and_a_new_facility_show_on_the_next_request(
    tab: Session, server: Server, demo: tuple[Path, Tokens]
) -> None:
    token = demo[1].staff
    login(tab, token)
    # Straight-line 5 minutes to the self-service libraries, three sites.
    tab.page.select_option("#gp-mode", "euclidean")
    tab.page.fill("#gp-minutes", "5")
    tab.page.select_option("#gp-kinds", LIBRARY)
    tab.page.fill("#gp-k", "3")
    recompute(tab)
    options = {"mode": "euclidean", "minutes": 5, "kinds": LIBRARY}
    body = api(server, token, "/api/coverage", **options)
    assert (
        "直线" in tab.page.locator("#gp-rules").inner_text() and LIBRARY in tab.page.locator("#gp-rules").inner_text()
    )
    assert tab.page.locator("path.gp-layer-culture_facilities").count() == body["facilities_counted"] < 20
    assert tab.page.locator(".gp-site-icon").count() == len(
        api(server, token, "/api/coverage/suggested-sites", k=3, **options)["features"]
    )
    for village in body["villages"][:10]:
        assert table_cells(tab, village["village_code"])["覆盖率"] == pct_text(village["coverage_pct"])
    legend = legend_classes(tab)
    fills = village_fills(tab)
    for village in body["villages"]:
        assert fills[village["village_code"]] == expected_color(legend, village["coverage_pct"])

    # Back to the rules file's options; then a facility is added through the edit API where site 1 is.
    tab.page.select_option("#gp-mode", "network")
    tab.page.fill("#gp-minutes", "10")
    tab.page.select_option("#gp-kinds", "")
    tab.page.fill("#gp-k", "5")
    recompute(tab)
    before = {r["village_code"]: r for r in api(server, token, "/api/coverage")["villages"]}
    site = api(server, token, "/api/coverage/suggested-sites", k=1)["features"][0]
    landing = site["properties"]["village_code"]
    assert table_cells(tab, landing)["覆盖率"] == pct_text(before[landing]["coverage_pct"])
    feature = {
        "type": "Feature",
        "geometry": site["geometry"],
        "properties": {"facility_id": "CF-BROWSER-1", "name": "新建文化站", "kind": "文化站"},
    }
    api(server, token, "/api/layers/culture_facilities/features", method="POST", body=feature)
    try:
        recompute(tab)
        after = {r["village_code"]: r for r in api(server, token, "/api/coverage")["villages"]}
        assert after[landing]["coverage_pct"] > before[landing]["coverage_pct"]
        assert table_cells(tab, landing)["覆盖率"] == pct_text(after[landing]["coverage_pct"])
        legend = legend_classes(tab)
        assert village_fills(tab)[landing] == expected_color(legend, after[landing]["coverage_pct"])
        assert tab.page.evaluate("Boolean(GeoplanMap.current.facility('CF-BROWSER-1'))")
        tab.shot("coverage-new-facility")
    finally:
        api(server, token, "/api/layers/culture_facilities/features/CF-BROWSER-1", method="DELETE")
