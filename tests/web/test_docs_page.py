"""/docs works offline: Swagger UI from our own static files, nothing from another host, a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.testclient import TestClient


def test_docs_reference_no_other_host_and_send_a_strict_csp(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "a URL to another host"
    assert "validatorUrl" in html and '"validatorUrl": null' in html  # no badge image from validator.swagger.io
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_vendored_swagger_ui_files_are_served(client: TestClient) -> None:
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) == 3  # bundle, stylesheet, favicon
    for path in [*assets, "/static/vendor/swagger-ui/LICENSE", "/static/vendor/swagger-ui/oauth2-redirect.html"]:
        response = client.get(path)
        assert response.status_code == 200 and len(response.content) > 100, path
    assert client.get("/openapi.json").json()["info"]["title"] == "geoplan"


def test_redoc_and_the_cdn_pages_are_not_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
