"""Server errors shown in the pages are the API's Chinese `detail_zh`, in a real browser (Chromium, Playwright).

The planner's site check with a file that is not a site (a point, then garbage) shows the same Chinese sentence
the API answers for the same upload, and none of its English `detail`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.web.browser import Server, Session, browser, server, session
from tests.web.conftest import Tokens
from tests.web.module_demo import demo, tokens
from tests.web.token_pages import sign_in

__all__ = ["browser", "demo", "server", "tokens"]

pytestmark = pytest.mark.browser

POINT_SITE = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [112.88, 22.9]}}


def _api_answer(server: Server, token: str, name: str, content: bytes) -> dict[str, Any]:
    """What the API itself answers for the upload: the body the page has to show."""
    response = requests.post(
        f"{server.base}/api/compliance?format=json",
        files={"file": (name, content, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    return body


def _check_upload(tab: Session, name: str, content: bytes) -> str:
    upload = {"name": name, "mimeType": "application/octet-stream", "buffer": content}
    tab.page.set_input_files("#gp-site-file", files=[upload])
    tab.page.click("#gp-upload button[type=submit]")
    tab.page.wait_for_selector("#gp-site-result .gp-error")
    return str(tab.page.locator("#gp-site-result .gp-error").inner_text())


def test_the_site_check_shows_the_chinese_reason(browser: Any, server: Server, tokens: Tokens) -> None:
    # The refused uploads are logged by the browser as failed loads (status 400).
    with session(browser, server, expected_errors="status of 400") as tab:
        sign_in(tab, "/planner", tokens.planner)
        tab.page.click("#gp-tab-site")
        cases = [("point.geojson", json.dumps(POINT_SITE).encode()), ("broken.geojson", b"{not geojson")]
        for name, content in cases:
            body = _api_answer(server, tokens.planner, name, content)
            shown = _check_upload(tab, name, content)
            assert shown == "审查未完成：" + body["detail_zh"]
            assert body["detail"] not in shown  # the English stays in the API body
        assert "选址范围必须是面" in _api_answer(server, tokens.planner, *cases[0])["detail_zh"]
        tab.shot("planner-site-check-error")
