"""The HTML encoding of the OGC API (Part 1 `html` class): the same documents, rendered for a browser.

Templates autoescape; anything a script needs (the items URL) goes in as a JSON data block, never as script
source. The pages load only our own static files (vendored Leaflet), under the pages' nonce-based CSP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web.maps.basemap import basemap_for
from web.maps.csp import new_nonce, page_headers
from web.settings import WebSettings

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
SITE_TITLE = "高明区城市治理三年行动计划"
_templates = Jinja2Templates(directory=TEMPLATES_DIR)  # autoescapes .html


def render(request: Request, settings: WebSettings, template: str, context: dict[str, Any]) -> HTMLResponse:
    nonce = new_nonce()
    headers = page_headers(nonce=nonce, basemap=basemap_for(settings))
    headers["Vary"] = "Authorization, Accept"
    context = {"site_title": SITE_TITLE, "nonce": nonce, **context}
    return _templates.TemplateResponse(request, template, context, headers=headers)
