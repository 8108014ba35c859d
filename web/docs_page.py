"""/docs: Swagger UI from our own static files, under a strict Content-Security-Policy.

FastAPI's default page loads Swagger UI from a CDN and its favicon from another host, which fails on an offline
intranet and hands every visit to third parties. The page's one inline <script> (Swagger UI's start-up) is
allowed by its sha256 rather than 'unsafe-inline', so no injected script could run. ReDoc is not served.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from web.maps.csp import policy

SWAGGER_DIR = "/static/vendor/swagger-ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hashes(html: str) -> list[str]:
    """CSP hash-sources of the page's inline scripts, over their exact text."""
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(html))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]


def docs_csp(html: str) -> str:
    # Swagger UI's icons are data: SVGs in its stylesheet.
    return policy(script=" ".join(["'self'", *_script_hashes(html)]), style="'self'", images="'self' data:")


def install_docs(app: FastAPI) -> None:
    """Serve /docs (the app must be built with docs_url=None and redoc_url=None)."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} – API",
        swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_DIR}/favicon-32x32.png",
        # No validator badge: it is an image from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    headers = {"Content-Security-Policy": docs_csp(html), "X-Content-Type-Options": "nosniff"}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)
