"""The coverage page's banner in a real browser names the layers that still hold demo data, before and after a
real list replaces the demo's cultural facilities (Chromium via Playwright, on a copy of the demo store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geoplan.catalog import Catalog
from tests.web.browser import Server, Session, browser, server, tab
from tests.web.conftest import Tokens
from tests.web.module_demo import demo
from tests.web.test_synthetic_label import replace_facilities
from tests.web.token_pages import sign_in

__all__ = ["browser", "demo", "server", "tab"]  # the shared fixtures (the facilities of the copy are replaced)

pytestmark = pytest.mark.browser

FIRST_LOAD_MS = 120_000
"""The first answer computes coverage, service areas, gaps and sites (seconds on a busy 2-core machine)."""


def banner(tab: Session, token: str) -> str:
    sign_in(tab, "/coverage", token, timeout_ms=FIRST_LOAD_MS)
    note = tab.page.locator("#gp-synthetic-note")
    assert note.is_visible()
    return note.inner_text()


def test_the_banner_names_only_the_layers_still_synthetic(
    tab: Session, server: Server, demo: tuple[Path, Tokens], catalog: Catalog, tmp_path: Path, browser: Any
) -> None:
    store, tokens = demo
    inputs = [catalog.get(name).title_zh for name in ("villages", "culture_facilities", "roads", "population")]
    assert banner(tab, tokens.staff) == f"示意数据 / synthetic：{'、'.join(inputs)}为合成的演示数据，覆盖率非官方统计。"
    replace_facilities(store, tmp_path)
    tab.page.reload()
    tab.page.wait_for_selector("body[data-coverage='ready']", timeout=FIRST_LOAD_MS)
    shown = tab.page.locator("#gp-synthetic-note").inner_text()
    still = [t for t in inputs if t != catalog.get("culture_facilities").title_zh]
    assert shown == f"示意数据 / synthetic：{'、'.join(still)}为合成的演示数据，覆盖率非官方统计。"
    tab.shot("coverage-synthetic-banner")
