"""The audit viewer (/audit) in a real browser: Debian's Chromium driven by Playwright, on a copy of the demo store.

Edits are made through the API outside the browser (a layer edit with hostile text, a progress record); the page
must list them with their field diffs, as text, and its filters must narrow the list to what the API answers for
the same filters. Every tab fails its test on a dialog, a CSP violation, a console error or a request to another
host (see tests/web/browser.py). Screenshots go to test-artifacts/audit-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from geoplan.cli import main
from tests.web.accessibility import axe_violations
from tests.web.browser import Server, Session, api, browser, server, session, tab
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens
from tests.web.token_pages import open_without_token, refused, sign_in

__all__ = ["browser", "demo", "server", "tab", "tokens"]  # the shared fixtures (the edits go to the demo copy)

pytestmark = pytest.mark.browser

HOSTILE_NAME = "<img src=x onerror=alert(1)>荷香路"
EDITED = "GM-2024-003"
RECORDED = "GM-2024-016"


@pytest.fixture(scope="module")
def edits(server: Server, tokens: Tokens) -> dict[str, Any]:
    """A layer edit by a planner (a hostile name) and a progress record by staff, both through the API."""
    feature = api(server, tokens.planner, f"/ogc/collections/projects/items/{EDITED}")
    old_name = feature["properties"]["name"]
    feature["properties"]["name"] = HOSTILE_NAME
    api(server, tokens.planner, f"/api/layers/projects/features/{EDITED}", method="PUT", body=feature)
    history = api(server, tokens.staff, f"/api/ledger/{RECORDED}/progress")["records"]
    body = {"quarter": "2021Q1", "progress_pct": history[-1]["progress_pct"] + 3, "problems": "雨季停工两周"}
    record = api(server, tokens.staff, f"/api/ledger/{RECORDED}/progress", method="POST", body=body)
    return {"old_name": old_name, "record": record}


def login(tab: Session, token: str, path: str = "/audit") -> None:
    sign_in(tab, path, token, state="loaded")


def loads(tab: Session) -> int:
    return int(tab.page.get_attribute("body", "data-audit-loads") or 0)


def submit_filters(tab: Session) -> None:
    before = loads(tab)
    tab.page.click("#gp-audit-filters button[type=submit]")
    tab.page.wait_for_function(
        f"() => Number(document.body.dataset.auditLoads) > {before} && document.body.dataset.audit === 'loaded'"
    )


def shown_entries(tab: Session) -> list[str]:
    return list(tab.page.eval_on_selector_all("#gp-audit-table > tbody > tr", "rows => rows.map(r => r.dataset.entry)"))


def test_without_a_token_nothing_is_fetched(browser: Any, server: Server, tokens: Tokens) -> None:
    with session(browser, server, expected_errors="status of 401") as tab:
        open_without_token(tab, "/audit")
        refused(tab, "gp_not-a-token", "令牌无效")
        assert tab.page.locator("#gp-audit-table > tbody > tr").count() == 0


def test_the_page_lists_an_api_edit_with_its_diff(
    tab: Session, server: Server, tokens: Tokens, edits: dict[str, Any]
) -> None:
    login(tab, tokens.staff)  # staff is enough for the audit log
    # the page asks for one more than it shows (is there a next page?) and shows the first 50 of what it may see
    newest = api(server, tokens.staff, "/api/audit?limit=51")[:50]
    assert shown_entries(tab) == [str(e["id"]) for e in newest]

    # the progress record: the layer update and the record itself, newest first
    first, second = newest[0], newest[1]
    assert (first["layer"], first["action"], second["action"]) == ("projects", "update", "progress:record")
    row = tab.page.locator(f"#gp-audit-table tr[data-entry='{first['id']}']")
    assert row.locator(".gp-audit-actor").inner_text() == "staff:staff-1"
    assert row.locator(".gp-audit-action").inner_text() == "修改"
    progress = row.locator("tr[data-field='progress_pct'] td")
    assert progress.nth(1).inner_text() == str(edits["record"]["progress_pct"]).removesuffix(".0")
    record_row = tab.page.locator(f"#gp-audit-table tr[data-entry='{second['id']}']")
    assert "雨季停工两周" in record_row.locator("tr[data-field='problems']").inner_text()

    # the planner's edit: the hostile name shows as text, before and after side by side
    edit = next(e for e in newest if e["action"] == "update" and e["detail"]["ids"] == [EDITED])
    name_cells = tab.page.locator(f"#gp-audit-table tr[data-entry='{edit['id']}'] tr[data-field='name'] td")
    assert [name_cells.nth(0).inner_text(), name_cells.nth(1).inner_text()] == [edits["old_name"], HOSTILE_NAME]
    assert tab.page.locator("#gp-audit-table img").count() == 0
    tab.shot("audit-list")


def test_filters_narrow_the_list_like_the_api(
    tab: Session, server: Server, tokens: Tokens, edits: dict[str, Any]
) -> None:
    login(tab, tokens.admin)
    tab.page.fill("#gp-f-id", EDITED)
    submit_filters(tab)
    expected = api(server, tokens.admin, "/api/audit?" + urlencode({"id": EDITED, "limit": 51}))
    assert shown_entries(tab) == [str(e["id"]) for e in expected]
    assert len(expected) >= 2  # the demo load and the planner's edit
    assert "id=" + EDITED in tab.page.url  # the filtered view is a link

    tab.page.fill("#gp-f-id", "")
    tab.page.select_option("#gp-f-layer", "project_progress")
    submit_filters(tab)
    expected = api(server, tokens.admin, "/api/audit?layer=project_progress&limit=51")
    assert shown_entries(tab) == [str(e["id"]) for e in expected]
    assert {tab.page.locator(f"tr[data-entry='{e['id']}']").get_attribute("data-layer") for e in expected} == {
        "project_progress"
    }

    tab.page.select_option("#gp-f-layer", "")
    tab.page.fill("#gp-f-actor", "planner:planner-1")
    submit_filters(tab)
    assert len(shown_entries(tab)) == 1
    tab.page.fill("#gp-f-actor", "")
    tab.page.fill("#gp-f-until", "2001-01-01")
    submit_filters(tab)
    assert shown_entries(tab) == [] and "没有符合条件的记录" in tab.page.inner_text("#gp-audit-count")

    # clicking a feature id in a diff filters by it
    tab.page.click("#gp-f-clear")
    tab.page.wait_for_function("() => document.querySelectorAll('#gp-audit-table > tbody > tr').length > 2")
    before = loads(tab)
    tab.page.locator(f"#gp-audit-table button.gp-audit-id:text-is('{RECORDED}')").first.click()
    tab.page.wait_for_function(f"() => Number(document.body.dataset.auditLoads) > {before}")
    tab.page.wait_for_selector("body[data-audit='loaded']")
    expected = api(server, tokens.admin, "/api/audit?" + urlencode({"id": RECORDED, "limit": 51}))
    assert shown_entries(tab) == [str(e["id"]) for e in expected]
    tab.shot("audit-filtered")
    assert tab.page.locator("summary button").count() == 0  # no control inside a control
    assert axe_violations(tab.page) == []


def test_a_filtered_link_opens_filtered(tab: Session, server: Server, tokens: Tokens, edits: dict[str, Any]) -> None:
    login(tab, tokens.staff)
    tab.open(f"/audit?layer=projects&id={EDITED}")  # the token is kept for the tab
    tab.page.wait_for_selector("body[data-audit='loaded']")
    assert tab.page.input_value("#gp-f-id") == EDITED and tab.page.input_value("#gp-f-layer") == "projects"
    expected = api(server, tokens.staff, "/api/audit?" + urlencode({"id": EDITED, "layer": "projects", "limit": 51}))
    assert shown_entries(tab) == [str(e["id"]) for e in expected]


def test_marks_snapshots_and_tokens_show_in_chinese_in_beijing_time(
    tab: Session, server: Server, demo: tuple[Path, Tokens], capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs last: it adds a planner's mark, which the filter test above counts on not being there."""
    path, tokens = demo
    patch_id = api(server, tokens.planner, "/api/overlaps")["features"][0]["id"]
    api(server, tokens.planner, f"/api/overlaps/{patch_id}/mark", body={"status": "to_adjust", "note": "需避让"})
    api(server, tokens.staff, "/api/snapshots", body={})
    assert main(["token", "create", "--role", "staff", "--name", "巡查-浏览器", "--store", str(path)]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["token", "revoke", "巡查-浏览器", "--store", str(path)]) == 0

    login(tab, tokens.admin)
    shown: dict[str, str] = {}
    kinds = (("token", {"撤销令牌", "创建令牌"}), ("mark", {"图斑标记"}), ("snapshot", {"指标快照"}))
    for kind, expected_titles in kinds:
        tab.page.select_option("#gp-f-action", kind)
        submit_filters(tab)
        entries = api(server, tokens.admin, "/api/audit?" + urlencode({"action": kind, "limit": 51}))
        assert shown_entries(tab) == [str(e["id"]) for e in entries] and entries
        for entry in entries[:2]:
            row = tab.page.locator(f"#gp-audit-table tr[data-entry='{entry['id']}']")
            # the API's Beijing time, as the page writes it (the browser's own zone plays no part)
            assert entry["at"].endswith("+08:00")
            assert row.locator(".gp-audit-when").inner_text() == entry["at"][:19].replace("T", " ")
            assert row.locator(".gp-audit-action").inner_text() in expected_titles
            shown.setdefault(entry["action"], row.locator(".gp-audit-changes").inner_text())  # the newest
    assert "撤销令牌“巡查-浏览器”" in shown["token:revoke"] and "工作人员（staff）" in shown["token:revoke"]
    assert f"图斑 {patch_id}" in shown["mark:record"] and "需调整" in shown["mark:record"]
    assert "规则文件" in shown["mark:record"] and "conflicts.yaml" in shown["mark:record"]
    assert "指标快照" in shown["snapshot:record"] and "indicators.yaml" in shown["snapshot:record"]
    assert "时间（北京时间）" in tab.page.inner_text("#gp-audit-table thead")
    assert secret not in tab.page.content()
    tab.shot("audit-side-tables")
    assert axe_violations(tab.page) == []
