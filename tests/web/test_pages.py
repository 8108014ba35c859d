"""The HTML pages through the TestClient: titles, no foreign sources, basemaps, legends and security headers.

What the pages *do* in a browser is in test_browser.py; this file checks what the server sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import SAMPLE_COUNTS, Tokens, bearer
from tests.web.script_checks import HTML_SINKS, assert_builds_no_html_from_strings, script_code
from web.app import create_app
from web.maps.basemap import NO_BASEMAP
from web.maps.project_map import build_project_map
from web.maps.render import render_map
from web.settings import WebSettings

PAGES = ["/", "/layers", "/layers/projects", "/layers/district", "/layers/culture_facilities"]
PROJECT_MAP_TITLE = "高明区城市治理三年行动计划 项目地图"


class _Resources(HTMLParser):
    """Every URL the document makes the browser fetch, and every inline <script>/<style> tag's nonce."""

    LOADS: ClassVar[dict[str, str]] = {
        "script": "src",
        "img": "src",
        "iframe": "src",
        "source": "src",
        "embed": "src",
        "object": "data",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_nonces: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        elif tag in self.LOADS and values.get(self.LOADS[tag]):
            self.urls.append(values[self.LOADS[tag]] or "")
        if tag == "style" or (tag == "script" and not values.get("src")):
            self.inline_nonces.append(values.get("nonce"))


def resources(html: str) -> _Resources:
    parser = _Resources()
    parser.feed(html)
    return parser


@pytest.fixture
def page_client(web_store: GeoPackageStore, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A client with the basemap settings given by indirect parametrisation."""
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, **request.param)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def basemap(**options: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("page_client", [options], indirect=True)


def map_config(html: str) -> str:
    """The JSON the page hands to geoplan-map.js (one line in the inline script)."""
    match = re.search(r"GeoplanMap\.(?:projectMap|layerMap)\(.*", html)
    assert match, "no page-script call in the page"
    return match.group(0)


# --------------------------------------------------------------------------------------------- pages


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_chinese_and_load_only_our_own_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text and "高明区城市治理三年行动计划" in response.text
    found = resources(response.text)
    assert found.urls, "expected the page's own stylesheet at least"
    for url in found.urls:
        assert not re.match(r"^(https?:)?//", url), f"{path} loads {url} from another host"
        assert url.startswith("/static/"), url
        # Every file the page needs is served: run scripts/install_web_assets.sh if vendor/ is missing.
        assert client.get(url).status_code == 200, f"{url} is not served (web assets installed?)"
    # One viewport tag, and it lets people zoom (WCAG 1.4.4): folium's forbids it.
    viewports = re.findall(r'<meta\s+name="viewport"[^>]*>', response.text)
    assert viewports == ['<meta name="viewport" content="width=device-width, initial-scale=1">'], viewports


def test_project_map_page(client: TestClient, web_store: GeoPackageStore) -> None:
    html = client.get("/").text
    assert f"<title>{PROJECT_MAP_TITLE}</title>" in html
    assert "/static/vendor/leaflet/leaflet.js" in html and "/static/geoplan-map.js" in html
    # Each map script adds to GeoplanMap.lib what the next one uses: the shift, the helpers, the by-view loader.
    scripts = re.findall(r'<script src="([^"]+)"', html)
    parts = [scripts.index(f"/static/geoplan-{name}.js") for name in ("map-ui", "gcj02", "map", "by-view")]
    assert parts == sorted(parts), scripts
    for cdn in ("cdn.jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "unpkg", "bootstrap", "font-awesome"):
        assert cdn not in html
    # The data is fetched from the OGC API, not embedded: no project name is in the HTML.
    names = web_store.read("projects")["name"]
    assert not any(name in html for name in names)
    assert "/ogc/collections/projects/items?limit=10000" in html
    assert "/ogc/collections/district/items" in html
    # Filters: the catalogue's eight task areas and four statuses as options; towns come with the data.
    for value in ("规划建设科学化", "城市发展国际化", "前期", "暂缓"):
        assert f'<option value="{value}">{value}</option>' in html
    assert 'id="gp-town"' in html and 'id="gp-search"' in html and 'id="gp-list"' in html


def test_map_config_lists_public_fields_only(client: TestClient, catalog: Catalog) -> None:
    config = map_config(client.get("/").text)
    layer = catalog.get("projects")
    for name in layer.public_fields:
        assert f'"name": "{name}"' in config
    for name in set(layer.field_names) - set(layer.public_fields):
        assert name not in config


def test_legend_marks_synthetic_layers(client: TestClient, catalog: Catalog) -> None:
    html = client.get("/").text
    legend = html[html.index('class="gp-legend ') :]
    projects_at, district_at = legend.index("建设项目"), legend.index("区界")
    assert catalog.get("projects").synthetic and not catalog.get("district").synthetic
    assert "示意数据 / synthetic" in legend[projects_at:district_at]
    assert "真实数据" in legend[district_at:] and "示意数据" not in legend[district_at:]
    for area in catalog.get("projects").field("task_area").allowed or ():
        assert area in legend[projects_at:district_at]
    one = client.get("/layers/culture_facilities").text
    assert "文化设施" in one and "示意数据 / synthetic" in one


def test_layer_browser_is_public_only(client: TestClient, catalog: Catalog, tokens: Tokens) -> None:
    # A token changes nothing: pages are always the public view.
    html = client.get("/layers", headers=bearer(tokens.admin)).text
    for layer in catalog.vector_layers():
        assert (f'data-layer="{layer.name}"' in html) is layer.public
    assert "土地利用总体规划" not in html and "landuse_plan" not in html
    for name, count in SAMPLE_COUNTS.items():
        if catalog.get(name).public:
            row = html[html.index(f'data-layer="{name}"') :]
            assert f'<td class="gp-num">{count}</td>' in row[: row.index("</tr>")]


@pytest.mark.parametrize("path", ["/layers/landuse_plan", "/layers/population", "/layers/nope"])
def test_private_raster_and_unknown_layers_have_no_page(client: TestClient, tokens: Tokens, path: str) -> None:
    assert client.get(path).status_code == 404
    assert client.get(path, headers=bearer(tokens.staff)).status_code == 404


# --------------------------------------------------------------------------------------------- basemaps


def test_the_default_reference_basemap_needs_no_tiles(client: TestClient) -> None:
    html = client.get("/").text
    assert "L.tileLayer" not in html and "{z}" not in html
    assert '"displayCrs": "cgcs2000"' in map_config(html)
    assert "参考底图：本库区界、镇街、村居、道路、水系" in html
    assert '"reference": "full"' in html


@basemap(basemap="none")
def test_no_basemap_means_no_tiles(page_client: TestClient) -> None:
    html = page_client.get("/").text
    assert "L.tileLayer" not in html and "{z}" not in html
    assert "无底图" in html and '"reference": "off"' in html


@basemap(basemap="osm")
def test_osm_basemap(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in response.text
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in response.headers["content-security-policy"]
    assert '"displayCrs": "cgcs2000"' in map_config(response.text)


@basemap(basemap="tianditu", tianditu_key="abc123&x=<y>")
def test_tianditu_basemap_uses_the_key(page_client: TestClient) -> None:
    response = page_client.get("/")
    literals = re.findall(r'"https://t\{s\}\.tianditu\.gov\.cn/[^"]+"', response.text)
    tiles = [json.loads(literal) for literal in literals]  # folium writes them as escaped JSON strings
    assert [t.split("/")[3] for t in tiles] == ["vec_w", "cva_w"]
    for url in tiles:
        assert "TILEMATRIXSET=w" in url and "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in url
        assert url.endswith("&tk=abc123%26x%3D%3Cy%3E")  # the key is URL-encoded, so it cannot add parameters
    assert '"subdomains": "01234567"' in response.text
    assert "https://*.tianditu.gov.cn" in response.headers["content-security-policy"]
    assert '"displayCrs": "cgcs2000"' in map_config(response.text)


@basemap(basemap="tianditu", tianditu_key="")
def test_tianditu_without_a_key_shows_no_basemap(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert "tianditu" not in response.text and "L.tileLayer" not in response.text
    assert "tianditu" not in response.headers["content-security-policy"]


@basemap(basemap="amap")
def test_amap_basemap_marks_the_display_shift(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert "https://webrd0{s}.is.autonavi.com/appmaptile?" in response.text
    assert '"subdomains": "1234"' in response.text
    assert '"displayCrs": "gcj02"' in map_config(response.text)
    assert "GCJ-02" in response.text and "CGCS2000" in response.text  # the legend says what is shifted
    assert "https://*.is.autonavi.com" in response.headers["content-security-policy"]
    # The API is unchanged: still CGCS2000, whatever the display does.
    layer_page = page_client.get("/layers/culture_facilities").text
    assert '"displayCrs": "gcj02"' in map_config(layer_page)


# --------------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", PAGES)
def test_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", directives["script-src"])
    assert nonce
    assert directives["script-src"] == f"'self' 'nonce-{nonce.group(1)}'"  # no 'unsafe-inline' / 'unsafe-eval'
    assert directives["style-src"] == f"'self' 'nonce-{nonce.group(1)}'"
    assert directives["img-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    # Every inline <script> and <style> carries this response's nonce, so the browser runs it.
    assert all(n == nonce.group(1) for n in resources(response.text).inline_nonces)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert client.get(path).headers["content-security-policy"] != csp  # a fresh nonce per response


def test_catalogue_text_is_escaped_in_legend_and_config(catalog: Catalog) -> None:
    """Catalogue titles are trusted, but a "<" in one still renders as text, never as a tag."""
    evil = "<script>alert(1)</script>"
    projects = replace(catalog.get("projects"), title_zh=evil)
    district = catalog.get("district")
    m = build_project_map(
        projects=projects, district=district, basemap=NO_BASEMAP, page_size=10, synthetic={"projects"}
    )
    parts = render_map(m, nonce="N")
    assert evil not in parts.header + parts.html + parts.script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in parts.html  # the legend
    assert "\\u003cscript\\u003ealert(1)" in parts.script  # the config JSON


# --------------------------------------------------------------------------------------------- our JS


def test_page_script_builds_no_html_from_strings() -> None:
    """User data reaches the DOM as text only: the script may not use any HTML-parsing sink."""
    assert_builds_no_html_from_strings("geoplan-map.js")
    assert_builds_no_html_from_strings("geoplan-by-view.js", leaflet=True)
    assert_builds_no_html_from_strings("geoplan-basemap.js", leaflet=True)
    assert_builds_no_html_from_strings("geoplan-map-ui.js", leaflet=True)


def test_gcj02_script_touches_no_dom() -> None:
    """The display shift is arithmetic only: no sink, and no DOM to write text into either."""
    code = script_code("geoplan-gcj02.js")
    for sink in (*HTML_SINKS, "document", "textContent", "appendChild"):
        assert sink not in code, sink
    assert "function wgs84ToGcj02" in code and "function displayToLonLat" in code


def test_tile_script_builds_no_html_from_strings() -> None:
    """The vector-tile layer writes nothing itself: its popups are popupContent's DOM nodes (or the page's own)."""
    code = script_code("geoplan-tiles.js")
    for sink in HTML_SINKS:
        assert sink not in code, sink
    [content] = re.findall(r"\.setContent\(([^)]*)\)", code)
    assert content == "content"
    assert "options.popup(feature) : lib.popupContent(layerConfig, feature, null)" in code
    assert "bindPopup" not in code and "bindTooltip" not in code
