"""The token pages' shared session script (web/static/geoplan-session.js) and form (templates/_session.html).

The browser tests (tests/web/test_browser_*.py) run the form on each page; these check the pieces they rely on:
each page has the form once and loads the session script before its own, which keeps no token handling of its
own, and the shared script builds no HTML from strings.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.web.script_checks import assert_builds_no_html_from_strings, script_code

PAGES = ("planner", "coverage", "lifecircle", "audit", "dashboard")
CONTENT = {
    "planner": "gp-thresholds",
    "coverage": "gp-settings",
    "lifecircle": "gp-service-form",
    "audit": "gp-audit-filters",
    "dashboard": "gp-quarter",
}
"""An element of each page's own content, which the token form's app must hold."""


def test_the_session_script_builds_no_html_from_strings() -> None:
    assert_builds_no_html_from_strings("geoplan-session.js")


@pytest.mark.parametrize("page", PAGES)
def test_each_token_page_has_the_form_once_and_loads_the_session_script_first(client: TestClient, page: str) -> None:
    html = client.get(f"/{page}").text
    for ident in ("gp-login", "gp-token", "gp-login-error", "gp-app", "gp-logout"):
        assert html.count(f'id="{ident}"') == 1, ident
    assert 'type="password"' in html
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/geoplan-session.js" in scripts and f"/static/geoplan-{page}.js" in scripts
    assert scripts.index("/static/geoplan-session.js") < scripts.index(f"/static/geoplan-{page}.js")
    # The form comes first, then the app it opens (hidden until then) holding the page's own content.
    start = html.index('id="gp-app"')
    end = min(i for i in (html.find("</aside>", start), html.find("</main>", start)) if i >= 0)
    assert html.index('id="gp-login"') < start and "hidden" in html[start : html.index(">", start)]
    assert f'id="{CONTENT[page]}"' in html[start:end]


@pytest.mark.parametrize("page", PAGES)
def test_the_page_scripts_leave_the_token_to_the_session_script(page: str) -> None:
    code = script_code(f"geoplan-{page}.js")
    for own in ("sessionStorage", "Authorization", "Bearer", ".download =", "function AuthError"):
        assert own not in code, (page, own)
    assert ".tokenPage(" in code


@pytest.mark.parametrize("part", ["patch-detail", "site-check"])
def test_the_planner_tabs_use_the_planner_session(part: str) -> None:
    """The planner's tab scripts get the API from the planner's session: they neither keep nor send a token."""
    code = script_code(f"geoplan-{part}.js")
    for own in ("sessionStorage", "Authorization", "Bearer", "function AuthError", ".tokenPage(", "fetch("):
        assert own not in code, (part, own)
    assert "page.api()" in code
