"""The monitoring dashboard (/dashboard) in a real browser: Debian's Chromium driven by Playwright, on a copy of the
Gaoming demo store.

The browser, the live server and the guarded tab come from tests/web/browser.py: every tab fails its test on a
dialog, a CSP violation, a console error or a request to another host. What the page shows is compared with what
the API answers for the same token (outside the browser) and with layers/indicators.yaml. The must-shows: the
page opens on the plan's last quarter (2020Q4) with the trend over the demo's quarterly snapshots 2017Q4–2020Q4,
and offers the plan's quarters in a list; a snapshot (the page's button), an edit that adds a cultural facility
(the edit API), a second snapshot -> the history table and the trend chart on the page show the coverage rise.
Screenshots go to test-artifacts/dashboard-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook

from geoplan.catalog import Catalog
from geoplan.monitoring.asof import as_of_now
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.monitoring.uncovered import facility_feature, uncovered_site
from tests.web.accessibility import axe_violations
from tests.web.browser import Server, Session, api, browser, server, session
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens
from tests.web.token_pages import open_without_token, refused, sign_in

__all__ = ["browser", "demo", "server", "tokens"]  # the shared fixtures (snapshots and an edit go to the copy)

pytestmark = pytest.mark.browser

DEFINITIONS = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
INDICATOR_IDS = [d["id"] for d in DEFINITIONS]
LIFE_CIRCLE_IDS = [d["id"] for d in DEFINITIONS if d["kind"].startswith("life_circle_")]
TABLE_IDS = [i for i in INDICATOR_IDS if i not in LIFE_CIRCLE_IDS]
"""The general indicator table; the life-circle indicators are a group (公共服务生活圈) with a table of its own."""
LOAD_TIMEOUT_MS = 180_000  # the first load computes every indicator (two coverage runs, the conflict overlay)


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Session]:
    """A guarded tab that waits as long as the first load takes."""
    with session(browser, server) as opened:
        opened.page.set_default_timeout(LOAD_TIMEOUT_MS)
        yield opened


def login(tab: Session, token: str) -> None:
    sign_in(tab, "/dashboard", token)


def snapshot_by_button(tab: Session) -> int:
    before = tab.page.get_attribute("body", "data-last-snapshot")
    tab.page.click("#gp-snapshot")
    tab.page.wait_for_function(
        "before => document.body.dataset.lastSnapshot && document.body.dataset.lastSnapshot !== before"
        " && document.body.dataset.dashboard === 'ready'",
        arg=before,
    )
    return int(tab.page.get_attribute("body", "data-last-snapshot") or 0)


def history_values(tab: Session, indicator: str, key: str = "") -> list[tuple[str, float, str]]:
    """(snapshot id, value, shown text) of one history row on the page."""
    cells = tab.page.locator(f"#gp-history tr[data-indicator='{indicator}'][data-key='{key}'] td[data-snapshot]")
    return [
        (
            cells.nth(i).get_attribute("data-snapshot") or "",
            float(cells.nth(i).get_attribute("data-value") or "nan"),
            cells.nth(i).inner_text(),
        )
        for i in range(cells.count())
    ]


def percent(value: float) -> str:
    return f"{value:,.1f}%"


# --------------------------------------------------------------------------------------------- tests


def test_without_a_token_the_dashboard_asks_for_one_and_fetches_nothing(browser: Any, server: Server) -> None:
    with session(browser, server, expected_errors="status of 401") as tab:
        open_without_token(tab, "/dashboard")
        refused(tab, "gp_not-a-token", "令牌无效")
        assert tab.page.locator("#gp-indicators tbody tr").count() == 0
        tab.shot("dashboard-login")


def test_every_indicator_with_its_target_then_a_snapshot_an_edit_and_a_snapshot(
    tab: Session, server: Server, tokens: Tokens, demo: tuple[Path, Tokens], catalog: Catalog
) -> None:
    login(tab, tokens.staff)
    shown = api(server, tokens.staff, "/api/dashboard")
    assert shown["quarter"] == "2020Q4"  # the plan's last monitored quarter: today is past it
    numbers = {i["id"]: i for i in api(server, tokens.staff, "/api/indicators?quarter=2020Q4")["indicators"]}

    # Every indicator of the definitions file, with its value and the target that applies, as the API says.
    rows = tab.page.locator("#gp-indicators tbody tr.gp-ind")
    assert [rows.nth(i).get_attribute("data-indicator") for i in range(rows.count())] == TABLE_IDS
    by_id = {i["id"]: i for i in shown["indicators"]}
    # 公共服务生活圈: a row per service and circle, 全区 then the four towns, as the API says
    group = tab.page.locator("#gp-life-circles tbody tr")
    assert [group.nth(i).get_attribute("data-indicator") for i in range(group.count())] == LIFE_CIRCLE_IDS
    heads = tab.page.locator("#gp-life-circles thead th").all_inner_texts()
    assert heads[2:7] == ["全区（%）", "荷城街道（%）", "杨和镇（%）", "明城镇（%）", "更合镇（%）"]
    for ident in LIFE_CIRCLE_IDS:
        cells = tab.page.locator(f"#gp-life-circles tr[data-indicator='{ident}'] td.gp-num").all_inner_texts()
        expected = {r["scope_key"]: r["value"] for r in numbers[ident]["rows"]}
        keys = ["", "荷城街道", "杨和镇", "明城镇", "更合镇"]
        assert cells[:5] == [f"{expected[k]:.1f}" for k in keys], ident
    for definition in (d for d in DEFINITIONS if d["id"] in TABLE_IDS):
        row = tab.page.locator(f"#gp-indicators tr.gp-ind[data-indicator='{definition['id']}']")
        assert definition["title_zh"] in row.locator(".gp-ind-name").inner_text()
        assert row.locator(".gp-ind-value").inner_text() == by_id[definition["id"]]["value_text"]
        target = row.locator(".gp-ind-target").inner_text()
        assert target == by_id[definition["id"]]["target_text"]
        if definition.get("targets"):
            assert target.startswith(("≥", "≤")), definition["id"]  # a defined target is always shown
            assert row.locator(".gp-ind-state").inner_text() != "无目标（监测）"
    district = {i: next((r["value"] for r in n["rows"] if r["scope"] == "district"), None) for i, n in numbers.items()}
    coverage_row = tab.page.locator("#gp-indicators tr.gp-ind[data-indicator='culture_coverage']")
    assert coverage_row.locator(".gp-ind-value").inner_text() == percent(district["culture_coverage"])
    sponge_row = tab.page.locator("#gp-indicators tr.gp-ind[data-indicator='sponge_share']")
    assert sponge_row.locator(".gp-ind-value").inner_text() == percent(district["sponge_share"])
    assert "≥ 20%（2020）" in sponge_row.locator(".gp-ind-target").inner_text()

    # The per-scope rows open under their indicator.
    coverage_row.locator("button").click()
    detail = tab.page.locator("#gp-indicators tr.gp-ind-detail").first
    towns = [r for r in numbers["culture_coverage"]["rows"] if r["scope"] == "town"]
    assert detail.locator("tr[data-scope='town']").count() == len(towns)

    # The charts: bars per town carry the town rows' values; the sponge chart draws both targets.
    bars = tab.page.eval_on_selector_all(
        "#gp-charts figure[data-chart='coverage'] rect.gp-bar",
        "bs => bs.map(b => [b.getAttribute('data-category'), Number(b.getAttribute('data-value'))])",
    )
    assert dict(bars) == pytest.approx({r["scope_key"]: r["value"] for r in towns if r["value"]})
    targets = tab.page.eval_on_selector_all(
        "#gp-charts figure[data-chart='sponge'] line.gp-target",
        "ls => ls.map(l => Number(l.getAttribute('data-value')))",
    )
    assert sorted(targets) == [20.0]
    assert tab.page.locator("#gp-charts figure[data-chart='progress'] rect.gp-bar").count() > 8
    assert tab.page.locator("#gp-synthetic-note").is_visible()
    tab.shot("dashboard-indicators")

    # The must-show: today's figures (from the list), a snapshot, a new cultural facility through the edit API,
    # a second snapshot.
    tab.page.select_option("#gp-quarter", "NOW")
    tab.page.click("#gp-dash-controls button[type=submit]")
    tab.page.wait_for_function("() => document.getElementById('gp-dash').dataset.quarter === ''")
    tab.page.wait_for_selector("body[data-dashboard='ready']")
    first = snapshot_by_button(tab)
    store = GeoPackageStore(demo[0], catalog)
    try:
        lon, lat, _ = uncovered_site(store)
    finally:
        store.close()
    added = api(server, tokens.staff, "/api/layers/culture_facilities/features", body=facility_feature(lon, lat))
    assert added["ids"] == ["TEST-NEW-SITE"]
    second = snapshot_by_button(tab)
    assert second > first

    history = api(server, tokens.staff, "/api/indicators/culture_coverage/history?scope_key=")["history"]
    assert [h["snapshot_id"] for h in history][-2:] == [first, second]  # after the demo's 2017Q4–2020Q4
    before, after = (h["value"] for h in history[-2:])
    assert after > before  # the facility reaches people nobody reached
    shown_history = history_values(tab, "culture_coverage")
    assert shown_history[-2:] == [(str(first), before, percent(before)), (str(second), after, percent(after))]
    headers = tab.page.eval_on_selector_all(
        "#gp-history thead th[data-snapshot]", "hs => hs.map(h => h.dataset.snapshot)"
    )
    assert headers[-2:] == [str(first), str(second)] and len(headers) == len(history)
    points = tab.page.eval_on_selector_all(
        "#gp-trends figure[data-chart='trend-culture_coverage'] circle.gp-point",
        "ps => ps.map(p => Number(p.getAttribute('data-value')))",
    )
    assert points[-2:] == [before, after]
    assert coverage_row.locator(".gp-ind-value").inner_text() == percent(after)
    change = tab.page.locator("#gp-indicators tr.gp-ind[data-indicator='culture_coverage'] .gp-ind-change")
    assert change.inner_text() == "+" + percent(after - before)  # against the first snapshot (see test_dashboard)
    tab.page.locator("#gp-history tr[data-indicator='culture_coverage']").scroll_into_view_if_needed()
    tab.shot("dashboard-history")


def test_the_report_downloads_from_the_page(tab: Session, tokens: Tokens, tmp_path: Path) -> None:
    login(tab, tokens.staff)
    with tab.page.expect_download(timeout=LOAD_TIMEOUT_MS) as download:
        tab.page.click("button[data-report='xlsx']")
    saved = tmp_path / "report.xlsx"
    download.value.save_as(saved)
    book = load_workbook(saved)
    assert {row[0] for row in book["明细"].iter_rows(min_row=2, values_only=True)} == set(INDICATOR_IDS)
    tab.page.wait_for_function("() => document.getElementById('gp-dash-status').textContent.includes('已下载')")


def test_a_quarter_the_data_cannot_answer_is_explained_in_chinese(browser: Any, server: Server, tokens: Tokens) -> None:
    """Before the data begins (the demo's layers are written as of 2017-07-01) and not begun yet: the server's
    reason in Chinese in the page, and the page shows the default quarter's figures instead of a blank page."""
    with session(browser, server, expected_errors="status of 400") as tab:
        tab.page.set_default_timeout(LOAD_TIMEOUT_MS)
        sign_in(tab, "/dashboard?quarter=2017Q2", tokens.staff)
        notice = tab.page.locator("#gp-dash-error")
        assert notice.is_visible() and notice.get_attribute("role") == "alert"
        text = notice.inner_text()
        assert text == (
            "无法显示 2017Q2 的数据：所选时点（2017-06-30）数据尚未录入：栅格图层“人口栅格”最早于 2017-07-01 写入，"
            "请选择此后的时点。 下面显示默认时点的数据。"
        )
        tab.page.wait_for_selector("body[data-dashboard='ready']")
        assert tab.page.input_value("#gp-quarter") == "2020Q4" and "quarter" not in tab.page.url
        rows = tab.page.locator("#gp-indicators > tbody > tr[data-indicator]")
        assert rows.count() == len(TABLE_IDS)
        assert tab.page.locator("#gp-charts figure").count() > 0
        tab.shot("dashboard-quarter-before-data")
        assert axe_violations(tab.page) == []  # WCAG 2.0 A/AA: no serious or critical violation
    with session(browser, server, expected_errors="status of 400") as tab:
        tab.page.set_default_timeout(LOAD_TIMEOUT_MS)
        sign_in(tab, "/dashboard?quarter=2099Q1", tokens.staff)
        assert tab.page.locator("#gp-dash-error").inner_text() == (
            f"无法显示 2099Q1 的数据：2099Q1 尚未开始（当前为 {as_of_now().quarter}）：指标只能反映过去和现在。"
            " 下面显示默认时点的数据。"
        )


def test_the_trend_over_the_plans_quarters(tab: Session, server: Server, tokens: Tokens) -> None:
    """The must-show: the page opens on 2020Q4 and draws the trend over the demo's snapshots 2017Q4–2020Q4; the
    list offers the plan's quarters with data (2017Q3–2020Q4) and today; choosing 2018Q3 shows that quarter."""
    login(tab, tokens.staff)
    quarters = [f"{y}Q{q}" for y in range(2017, 2021) for q in range(1, 5)][2:]
    options = tab.page.eval_on_selector_all("#gp-quarter option", "os => os.map(o => o.value)")
    assert options == [*quarters, "NOW"] and tab.page.input_value("#gp-quarter") == "2020Q4"
    assert "2020Q4 季末" in tab.page.locator("#gp-dash-status").inner_text()
    snapshots = api(server, tokens.staff, "/api/snapshots")["snapshots"]
    demo = [s for s in snapshots if s["actor"] == "geoplan demo"]
    assert [s["quarter"] for s in demo] == quarters[1:]
    history = api(server, tokens.staff, "/api/indicators/culture_coverage/history?scope_key=")["history"]
    values = [h["value"] for h in history if h["snapshot_id"] in {s["id"] for s in demo}]
    headers = tab.page.eval_on_selector_all(
        "#gp-history thead th[data-snapshot]", "hs => hs.map(h => h.dataset.snapshot)"
    )
    assert headers == [str(s["id"]) for s in demo]  # the snapshots up to the quarter shown
    assert [v for _, v, _ in history_values(tab, "culture_coverage")] == pytest.approx(values)
    points = tab.page.eval_on_selector_all(
        "#gp-trends figure[data-chart='trend-culture_coverage'] circle.gp-point",
        "ps => ps.map(p => Number(p.getAttribute('data-value')))",
    )
    assert points == pytest.approx(values) and len(points) == 13
    completed = tab.page.eval_on_selector_all(
        "#gp-trends figure[data-chart='trend-projects_completed'] circle.gp-point",
        "ps => ps.map(p => Number(p.getAttribute('data-value')))",
    )
    assert completed == sorted(completed) and completed[0] < completed[-1]  # projects finish over the period
    tab.page.locator("#gp-trends").scroll_into_view_if_needed()
    tab.shot("dashboard-plan-trend")

    tab.page.select_option("#gp-quarter", "2018Q3")
    tab.page.click("#gp-dash-controls button[type=submit]")
    tab.page.wait_for_function("() => document.getElementById('gp-dash').dataset.quarter === '2018Q3'")
    tab.page.wait_for_selector("body[data-dashboard='ready']")
    assert "quarter=2018Q3" in tab.page.url and "2018Q3 季末" in tab.page.locator("#gp-dash-status").inner_text()
    shown = tab.page.eval_on_selector_all(
        "#gp-history thead th[data-snapshot]", "hs => hs.map(h => h.dataset.snapshot)"
    )
    assert shown == [str(s["id"]) for s in demo[:4]]  # 2017Q4–2018Q3
