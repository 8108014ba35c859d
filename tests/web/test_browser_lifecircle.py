"""The life-circle map (/lifecircle) in a real browser: Debian's Chromium driven by Playwright, on the Gaoming demo.

The browser, the live server and the guarded tab come from tests/web/browser.py: every tab fails its test on a
dialog, a CSP violation, a console error or a request to another host. What the page shows is compared with what
the API answers for the same token (fetched outside the browser). Screenshots go to test-artifacts/lifecircle-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.accessibility import axe_violations
from tests.web.browser import Server, Session, api, browser, server, session, tab
from tests.web.conftest import Tokens
from tests.web.module_demo import demo
from tests.web.token_pages import open_without_token, refused, sign_in

__all__ = ["browser", "demo", "server", "tab"]

pytestmark = pytest.mark.browser

FIRST_LOAD_MS = 120_000
"""The first answer computes every service's coverage (seconds on a busy 2-core machine)."""


def login(tab: Session, token: str) -> None:
    sign_in(tab, "/lifecircle", token, timeout_ms=FIRST_LOAD_MS)


def village_fills(tab: Session) -> dict[str, str]:
    return dict(
        tab.page.eval_on_selector_all(
            "path.gp-village", "ps => Object.fromEntries(ps.map(p => [p.dataset.id, p.getAttribute('fill')]))"
        )
    )


def expected_color(classes: dict[str, Any], value: float | None) -> str:
    """The colour of a coverage % under the API's classes: its first class whose upper bound holds it."""
    if value is None:
        return str(classes["noDataColor"])
    for upper, color in zip(classes["upper"], classes["colors"], strict=True):
        if value <= upper:
            return str(color)
    raise AssertionError(f"{value} above every class")


def rgb(color: str) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def choose(tab: Session, service: str) -> None:
    tab.page.select_option("#gp-service", service)
    tab.page.wait_for_selector(f"body[data-service='{service}'][data-lifecircle='ready']", timeout=FIRST_LOAD_MS)


def test_without_a_token_the_page_asks_for_one_and_loads_nothing(browser: Any, server: Server) -> None:
    with session(browser, server, expected_errors="status of 401") as tab:
        open_without_token(tab, "/lifecircle", fetched=("/api/",))
        assert tab.page.locator("#gp-matrix").is_hidden()
        assert tab.page.locator("path.gp-village").count() == 0
        refused(tab, "gp_not-a-token", "令牌无效")


def test_the_choropleth_follows_the_chosen_service(tab: Session, server: Server, demo: tuple[Path, Tokens]) -> None:
    token = demo[1].staff
    login(tab, token)
    summary = api(server, token, "/api/lifecircle")
    services = [s["service"] for s in summary["services"]]
    assert tab.page.eval_on_selector_all("#gp-service option", "os => os.map(o => o.value)") == services
    first = services[0]
    assert tab.page.get_attribute("body", "data-service") == first

    fills: dict[str, dict[str, str]] = {}
    for service in (first, "park"):
        if service != first:
            choose(tab, service)
        layer = api(server, token, "/api/lifecircle/villages", service=service)
        drawn = village_fills(tab)
        assert len(drawn) == len(layer["features"]) == 81
        for feature in layer["features"]:
            props = feature["properties"]
            assert drawn[feature["id"]] == expected_color(summary["classes"], props["coverage_pct"]), props
        fills[service] = drawn
        # the service's facilities, one marker each
        facilities = api(server, token, "/api/lifecircle/facilities", service=service)
        assert tab.page.locator("path.gp-facility").count() == len(facilities["features"]) > 0
        # the legend counts what each class holds
        counts = tab.page.eval_on_selector_all(
            ".gp-coverage-legend li[data-class]:not([data-class='none']) .gp-legend-count",
            "cs => cs.map(c => Number(c.textContent))",
        )
        assert counts == layer["classes"]["counts"]
        # the rollup names the district's figures of this service
        district = next(r for r in summary["rollup"] if r["group"] == "全区" and r["service"] == service)
        assert f"{district['covered_population']:,}" in tab.page.inner_text("#gp-count")
    assert fills[first] != fills["park"]  # switching the service changes the fill
    tab.shot("lifecircle-park")


def test_the_heat_table_has_a_row_per_village_and_a_column_per_service(
    tab: Session, server: Server, demo: tuple[Path, Tokens]
) -> None:
    token = demo[1].staff
    login(tab, token)
    matrix = api(server, token, "/api/lifecircle/matrix")
    services = [s["service"] for s in matrix["services"]]
    rows = tab.page.locator("#gp-heat tbody tr")
    assert rows.count() == len(matrix["villages"]) == 81
    cells = tab.page.eval_on_selector_all(
        "#gp-heat tbody tr",
        "rs => rs.map(r => [r.dataset.code, [...r.querySelectorAll('td.gp-heat-cell')].map(c =>"
        " [c.dataset.service, c.textContent, getComputedStyle(c).backgroundColor])])",
    )
    by_code = {v["village_code"]: v for v in matrix["villages"]}
    for code, shown in cells:
        assert [s for s, _, _ in shown] == services
        for service, text, color in shown:
            value = by_code[code]["coverage"][service]
            assert text == ("—" if value is None else f"{value:,.1f}%")
            assert color == rgb(expected_color(matrix["classes"], value))
    # sorted by group from the start, in the rollups' order (towns, then 虚拟单位), then by code
    order = list(dict.fromkeys(r["group"] for r in api(server, token, "/api/lifecircle")["rollup"]))
    assert order[-2:] == ["虚拟单位", "全区"]
    shown = tab.page.eval_on_selector_all("#gp-heat tbody tr", "rs => rs.map(r => [r.dataset.group, r.dataset.code])")
    assert shown == sorted(
        ([v["group"], v["village_code"]] for v in matrix["villages"]), key=lambda r: (order.index(r[0]), r[1])
    )
    tab.page.click("#gp-heat th[data-key='group'] button")  # a click on the header reverses the groups
    assert tab.page.get_attribute("#gp-heat th[data-key='group']", "aria-sort") == "descending"
    groups = tab.page.eval_on_selector_all("#gp-heat tbody tr", "rs => rs.map(r => r.dataset.group)")
    assert groups[0] == "虚拟单位" and groups[-1] == order[0]


def test_a_row_opens_the_village_card_with_what_it_lacks(
    tab: Session, server: Server, demo: tuple[Path, Tokens]
) -> None:
    token = demo[1].staff
    login(tab, token)
    matrix = api(server, token, "/api/lifecircle/matrix")
    lacking = max(matrix["villages"], key=lambda v: len(v["missing"]))
    code = lacking["village_code"]
    card = api(server, token, f"/api/lifecircle/villages/{code}")
    assert card["missing"], "the demo has a village that lacks services"
    tab.page.click(f"#gp-heat tbody tr[data-code='{code}']")
    tab.page.wait_for_selector(f"#gp-card[data-code='{code}']:not([hidden])")
    assert tab.page.inner_text("#gp-card-title").startswith(card["village_name"])
    shown = tab.page.eval_on_selector_all("#gp-card-missing li", "ls => ls.map(l => l.dataset.service)")
    assert shown == [m["service"] for m in card["missing"]]
    text = tab.page.inner_text("#gp-card-missing")
    assert all(m["title_zh"] in text for m in card["missing"])
    assert "nan" not in tab.page.inner_text("#gp-card").lower() and "inf" not in tab.page.inner_text("#gp-card")

    # a click on the map opens the card of the village clicked
    other = next(v for v in matrix["villages"] if v["village_code"] != code and v["population"] > 0)
    tab.page.evaluate("code => GeoplanMap.current.select(code)", other["village_code"])
    tab.page.wait_for_selector(f"#gp-card[data-code='{other['village_code']}']")
    tab.page.evaluate("code => GeoplanMap.current.village(code).fire('click')", code)
    tab.page.wait_for_selector(f"#gp-card[data-code='{code}']")
    # by keyboard: a focused row and Enter
    tab.page.focus(f"#gp-heat tbody tr[data-code='{other['village_code']}']")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_selector(f"#gp-card[data-code='{other['village_code']}']")
    tab.shot("lifecircle-card")


def test_the_page_passes_axe(tab: Session, demo: tuple[Path, Tokens]) -> None:
    login(tab, demo[1].staff)
    code = tab.page.get_attribute("#gp-heat tbody tr", "data-code")
    tab.page.click(f"#gp-heat tbody tr[data-code='{code}']")
    tab.page.wait_for_selector("#gp-card:not([hidden])")
    assert axe_violations(tab.page) == []
