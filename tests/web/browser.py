"""What the browser tests share: Debian's headless Chromium driven by Playwright, the app in a live server and a
tab that fails its test on what no page may do (the staff pages' token form: tests/web/token_pages.py).

The app runs under uvicorn in a subprocess (a server thread in the test process deadlocks against Playwright's
blocking client). Every tab goes through a route that aborts and records any request to a host other than the
app itself, and fails its test on a dialog, a Content-Security-Policy violation, a console error or such a
request, unless the test says which it expects: "loads nothing from another host" is checked on every test, not
only in the one that says so. Screenshots go to test-artifacts/.

A test module imports the fixtures it uses (pytest finds fixtures by the module's names) and lists them in its
`__all__` (so the linter sees them used): `browser` and `tab`; `server` with `demo` (and `tokens`) from
tests/web/module_demo.py for the module's own copy of the demo store, or a `server` fixture of its own.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.conftest import ROOT
from tests.web.conftest import Tokens
from tests.web.live_server import live_server

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is a dev dependency: pip install -e .[dev]")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
API_TIMEOUT_S = 300
"""For the API calls made outside the browser: the first answer of a staff page may compute for minutes on a busy
2-core machine (the dashboard's indicators, the coverage)."""


# --------------------------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Server:
    base: str

    @property
    def netloc(self) -> str:
        return urlsplit(self.base).netloc


@contextmanager
def serve(store: Path, log_path: Path, **env: str) -> Iterator[Server]:
    with live_server(store, log_path, **env) as base:
        yield Server(base)


def serve_without_basemap(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """For a module's `server` fixture: the app on `store` with no basemap (no tile host to reach)."""
    with serve(store, tmp_path_factory.mktemp("logs") / "uvicorn.log", GEOPLAN_BASEMAP="none") as running:
        yield running


@pytest.fixture(scope="module")
def server(demo: tuple[Path, Tokens], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on the module's copy of the demo store."""
    yield from serve_without_basemap(demo[0], tmp_path_factory)


def api(server: Server, token: str, path: str, *, method: str | None = None, body: Any = None, **params: Any) -> Any:
    """What the API answers this token, fetched outside the browser: GET, POST when there is a body, or `method`;
    `params` go into the query string. An HTTP error fails the test with the server's answer."""
    url = server.base + path + ("?" + urlencode(params) if params else "")
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{request.get_method()} {path}: HTTP {error.code}: {error.read().decode()}") from None


# --------------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Session:
    """One browser tab plus what it tried to do that it should not."""

    page: Any
    server: Server
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.server.base + path)
        self.page.wait_for_selector("body[data-ready='true']")

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.wait_for_timeout(300)  # let Leaflet's fade and zoom animations finish
        self.page.screenshot(path=str(path))
        return path


# Records Content-Security-Policy violations; Playwright's init scripts are exempt from the page's CSP.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@contextmanager
def session(
    browser: Any,
    server: Server,
    *,
    expected_errors: str | tuple[str, ...] | None = None,
    expected_csp_violations: tuple[str, ...] = (),
    other_hosts: bool = False,
) -> Iterator[Session]:
    """A tab that fails the test on a dialog, a CSP violation, a console error or a request to another host, except
    those expected (console errors containing one of `expected_errors`; violations equal to one of
    `expected_csp_violations`; requests to other hosts with `other_hosts`, which the test then checks itself in
    `Session.foreign`: they are aborted either way).
    """
    expected = (expected_errors,) if isinstance(expected_errors, str) else expected_errors or ()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(15_000)
    context.add_init_script(_CSP_RECORDER)
    page = context.new_page()
    tab = Session(page, server)

    def route(route: Any) -> None:
        if urlsplit(route.request.url).netloc == server.netloc:
            route.continue_()
        else:
            tab.foreign.append(route.request.url)
            route.abort()

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if message.type == "error" and not any(text in message.text for text in expected):
            tab.errors.append(message.text)

    context.route("**/*", route)
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    try:
        yield tab
        assert tab.dialogs == [], f"a dialog fired: {tab.dialogs}"
        assert [v for v in tab.csp_violations() if v not in expected_csp_violations] == []
        assert tab.errors == []
        assert other_hosts or tab.foreign == [], f"requests to other hosts: {tab.foreign}"
    finally:
        context.close()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Session]:
    """A guarded tab (see `session`) on the module's `server`."""
    with session(browser, server) as opened:
        yield opened
