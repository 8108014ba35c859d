"""Every map page draws its own features: the screenshot script's pages, opened as it opens them, on the default
(reference) basemap, each with a map that shows at least one feature of its data in view. A page whose map is
blank (a layer drawn only after zooming in, a failed fetch, features hidden under the basemap) fails here before
anybody ships its picture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.screenshots import DRAWN_FEATURES, PAGES, PageShot
from tests.web.browser import Server, browser, serve, session
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens

__all__ = ["browser", "demo", "tokens"]

pytestmark = pytest.mark.browser

MAP_PAGES = [shot for shot in PAGES if shot.ready]


@pytest.fixture(scope="module")
def server(demo: tuple[Path, Tokens], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on the module's demo copy with the deployed default basemap (the store's own reference)."""
    with serve(demo[0], tmp_path_factory.mktemp("logs") / "uvicorn.log") as running:
        yield running


def test_the_screenshot_pages_are_every_page() -> None:
    """The script shoots every page a person opens from the navigation bar (and one page per kind of layer)."""
    nav = Path(__file__).resolve().parents[2] / "web" / "templates" / "base.html"
    linked = {line.split('href="')[1].split('"')[0] for line in nav.read_text().splitlines() if 'href="/' in line}
    shot = {page.path for page in PAGES}
    assert {path for path in linked if not path.startswith("/static")} - shot - {"/ogc", "/docs"} == set()


@pytest.mark.parametrize("shot", MAP_PAGES, ids=[shot.name for shot in MAP_PAGES])
def test_each_map_page_draws_its_features(browser: Any, server: Server, tokens: Tokens, shot: PageShot) -> None:
    with session(browser, server) as tab:
        tab.page.goto(server.base + shot.path)
        if shot.token:
            tab.page.fill("#gp-token", {"planner": tokens.planner, "admin": tokens.admin}[shot.token])
            tab.page.click("#gp-login button[type=submit]")
        tab.page.wait_for_selector(shot.ready, timeout=300_000)  # a cold overlap run takes a while on 2 cores
        tab.page.wait_for_load_state("networkidle")
        drawn = tab.page.evaluate(DRAWN_FEATURES)
        if tab.page.locator(".leaflet-container").count():
            assert drawn and drawn > 0, f"{shot.path}: the map shows none of its features"
        else:
            assert drawn is None  # a page without a map (the dashboard's charts, the audit log)
