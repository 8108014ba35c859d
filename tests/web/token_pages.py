"""The token form of the staff pages (planner, coverage, audit, dashboard) in the browser: what
web/static/geoplan-session.js shows before a token is accepted, and signing in.

Each page says its state in <body data-<page>="login|…">, <page> being its path: /audit -> data-audit.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.web.browser import Session


def _page_name(path: str) -> str:
    """The page's name, as in its body attribute data-<name> (geoplan-session.js): /audit?id=x -> audit."""
    return urlsplit(path).path.strip("/")


def sign_in(tab: Session, path: str, token: str, *, state: str = "ready", timeout_ms: float | None = None) -> None:
    """Open a staff page, give it the token and wait until the page says `state` (data-<page>)."""
    tab.open(path)
    tab.page.fill("#gp-token", token)
    tab.page.click("#gp-login button[type=submit]")
    tab.page.wait_for_selector(f"body[data-{_page_name(path)}='{state}']", timeout=timeout_ms)


def open_without_token(tab: Session, path: str, *, fetched: tuple[str, ...] = ("/api/",)) -> list[tuple[str, int]]:
    """Open a staff page without a token: it shows the token form, not the page, and fetches nothing under
    `fetched`. Returns the (path, status) of every response from then on, for the test's own checks."""
    responses: list[tuple[str, int]] = []
    tab.page.on("response", lambda r: responses.append((urlsplit(r.url).path, r.status)))
    tab.open(path)
    assert tab.page.locator(f"body[data-{_page_name(path)}='login']").count() == 1
    assert tab.page.locator("#gp-login").is_visible() and tab.page.locator("#gp-app").is_hidden()
    assert [p for p, _ in responses if p.startswith(fetched)] == []
    return responses


def refused(tab: Session, token: str, reason: str) -> None:
    """Give the form a token the server refuses: the form says why (`reason` in its message) and keeps nothing."""
    tab.page.fill("#gp-token", token)
    tab.page.click("#gp-login button[type=submit]")
    tab.page.wait_for_function(
        "reason => document.getElementById('gp-login-error').textContent.includes(reason)", arg=reason
    )
    assert tab.page.evaluate("sessionStorage.length") == 0  # a refused token is never kept
