"""The HTML pages (Chinese interface): the public project map, the layer browser, one layer on a map, the
planners' 多规合一 map, the staff's cultural-circle coverage map and their life-circle map.

Pages are always public: browsers send no bearer token on a page load, so these routes never look at one and
show only the layers and fields the catalogue marks public. The maps' data is fetched by the browser from the
OGC API (also anonymously), so it is not embedded here. The planner and coverage maps are empty skeletons: their
scripts ask for a token and fetch everything with it (see web/maps/planner_map.py, web/maps/coverage_map.py).

Every page is rendered once per state of what it shows and then served from memory (web/page_cache.py): the
layer pages are keyed by their layers' store versions, the others by nothing (catalogue and settings only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import folium
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from geoplan.access import Role, visible_layers
from geoplan.catalog import LayerDef
from geoplan.services.provenance import synthetic_now
from geoplan.storage import LayerStore
from web.deps import CatalogDep, SettingsDep, StoreDep, visible_vector_layer
from web.maps.basemap import Basemap, basemap_for
from web.maps.coverage_map import build_coverage_map
from web.maps.csp import new_nonce, page_headers
from web.maps.layer_map import LargeLayerPolicy, build_layer_map
from web.maps.legend import REAL_LABEL, SYNTHETIC_LABEL
from web.maps.lifecircle_map import build_lifecircle_map
from web.maps.planner_map import build_planner_map
from web.maps.project_map import build_project_map
from web.maps.render import render_map
from web.page_cache import PageCache

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"], include_in_schema=False)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
LEAFLET_FILE = Path(__file__).resolve().parents[1] / "static" / "vendor" / "leaflet" / "leaflet.js"
SITE_TITLE = "高明区城市治理三年行动计划"
PROJECT_MAP_TITLE = f"{SITE_TITLE} 项目地图"
PLANNER_TITLE = "多规合一冲突图斑"
AUDIT_TITLE = "审计日志（全过程留痕）"
COVERAGE_TITLE = "十分钟文化圈覆盖"
LIFECIRCLE_TITLE = "社区生活圈"


@cache
def _templates() -> Jinja2Templates:
    if not LEAFLET_FILE.exists():  # the maps would be blank: say why, once
        log.error("web assets missing (%s): run scripts/install_web_assets.sh", LEAFLET_FILE)
    return Jinja2Templates(directory=TEMPLATES_DIR)  # autoescapes .html templates


def render_page(request: Request, basemap: Basemap, template: str, nonce: str, context: dict[str, Any]) -> HTMLResponse:
    headers = page_headers(nonce=nonce, basemap=basemap)
    context = {"site_title": SITE_TITLE, "nonce": nonce, **context}
    return _templates().TemplateResponse(request, template, context, headers=headers)


def render_html(template: str, nonce: str, context: dict[str, Any]) -> str:
    return _templates().get_template(template).render({"site_title": SITE_TITLE, "nonce": nonce, **context})


_CACHE_GUARD = threading.Lock()


def _page_cache(request: Request) -> PageCache:
    """The app's page cache, made on first use (one per app, so per process and per settings)."""
    state = request.app.state
    with _CACHE_GUARD:
        cached: tuple[object, PageCache] | None = getattr(state, "page_cache", None)
        # A new lifespan opens the store anew (perhaps a replaced file, its versions counted afresh): start empty.
        if cached is None or cached[0] is not state.store:
            cached = state.page_cache = (state.store, PageCache())
    return cached[1]


def _map_page(template: str, build: Callable[[], folium.Map], context: dict[str, Any]) -> Callable[[str], str]:
    """The renderer of a map page: folium's map and the template, both with the given nonce."""

    def render(nonce: str) -> str:
        return render_html(template, nonce, {**context, "map": render_map(build(), nonce=nonce)})

    return render


# The routes are plain functions: FastAPI runs them in its thread pool, so the version queries and a render
# after an edit never hold up the event loop; a current page is only joined around a fresh nonce.


def _synthetic(store: LayerStore, layers: list[LayerDef]) -> frozenset[str]:
    """Which of `layers` hold synthetic demo data now: part of a page's cache key, so a real import shows."""
    return synthetic_now(store) & {layer.name for layer in layers}


@router.get("/", response_class=HTMLResponse)
def project_map(request: Request, catalog: CatalogDep, store: StoreDep, settings: SettingsDep) -> Response:
    projects = visible_vector_layer(catalog, Role.PUBLIC, "projects", what="layer")
    district = visible_vector_layer(catalog, Role.PUBLIC, "district", what="layer")
    basemap = basemap_for(settings)
    synthetic = _synthetic(store, [projects, district])
    context = {
        "title": PROJECT_MAP_TITLE,
        "task_areas": projects.field("task_area").allowed or (),
        "statuses": projects.field("status").allowed or (),
        "synthetic": projects.name in synthetic,
    }

    def build() -> folium.Map:
        return build_project_map(
            projects=projects,
            district=district,
            basemap=basemap,
            page_size=settings.max_page_size,
            synthetic=synthetic,
        )

    # Catalogue facts and where the data comes from (the projects come from the OGC API).
    render = _map_page("project_map.html", build, context)
    return _page_cache(request).page(("project_map", synthetic), basemap, render).response(request)


@dataclass(frozen=True)
class LayerRow:
    layer: LayerDef
    count: int
    synthetic: bool
    """The layer holds synthetic demo data now (not merely the catalogue's flag)."""

    @property
    def synthetic_label(self) -> str:
        return SYNTHETIC_LABEL if self.synthetic else REAL_LABEL


@router.get("/layers", response_class=HTMLResponse)
def layer_browser(request: Request, catalog: CatalogDep, store: StoreDep, settings: SettingsDep) -> Response:
    layers = [layer for layer in visible_layers(catalog, Role.PUBLIC) if layer.kind == "vector"]
    versions = tuple((layer.name, store.layer_version(layer.name)) for layer in layers)
    synthetic = _synthetic(store, layers)

    def render(nonce: str) -> str:
        rows = [LayerRow(layer, store.count(layer.name), layer.name in synthetic) for layer in layers]
        return render_html("layers.html", nonce, {"title": f"图层目录 · {SITE_TITLE}", "rows": rows})

    basemap = basemap_for(settings)
    return _page_cache(request).page(("layers", versions, synthetic), basemap, render).response(request)


@router.get("/layers/{name}", response_class=HTMLResponse)
def layer_map(name: str, request: Request, catalog: CatalogDep, store: StoreDep, settings: SettingsDep) -> Response:
    layer = visible_vector_layer(catalog, Role.PUBLIC, name, what="layer")
    district = visible_vector_layer(catalog, Role.PUBLIC, "district", what="layer")
    basemap = basemap_for(settings)
    version = store.layer_version(layer.name)  # the count and extent below change only with it
    synthetic = _synthetic(store, [layer, district])

    def build() -> folium.Map:
        return build_layer_map(
            layer=layer,
            district=district,
            basemap=basemap,
            page_size=settings.max_page_size,
            feature_count=store.count(layer.name),  # decides whole layer or by view (see layer_map.py)
            extent=store.bounds(layer.name),
            policy=LargeLayerPolicy.from_settings(settings),
            synthetic=synthetic,
        )

    context = {
        "title": f"{layer.title_zh} · {SITE_TITLE}",
        "layer": layer,
        "synthetic": layer.name in synthetic,
        "synthetic_label": SYNTHETIC_LABEL if layer.name in synthetic else REAL_LABEL,
    }
    render = _map_page("layer_map.html", build, context)
    return _page_cache(request).page(("layer", name, version, synthetic), basemap, render).response(request)


@router.get("/planner", response_class=HTMLResponse)
def planner_map(request: Request, settings: SettingsDep) -> Response:
    basemap = basemap_for(settings)

    def build() -> folium.Map:
        return build_planner_map(basemap=basemap, policy=LargeLayerPolicy.from_settings(settings))

    context = {"title": f"{PLANNER_TITLE} · {SITE_TITLE}", "heading": PLANNER_TITLE}
    render = _map_page("planner.html", build, context)
    return _page_cache(request).page(("planner",), basemap, render).response(request)


@router.get("/coverage", response_class=HTMLResponse)
def coverage_map(request: Request, catalog: CatalogDep, store: StoreDep, settings: SettingsDep) -> Response:
    basemap = basemap_for(settings)
    shown = [catalog.get(name) for name in ("district", "culture_facilities") if name in catalog]
    synthetic = _synthetic(store, shown)

    def build() -> folium.Map:
        return build_coverage_map(
            basemap=basemap, catalog=catalog, page_size=settings.max_page_size, synthetic=synthetic
        )

    context = {"title": f"{COVERAGE_TITLE} · {SITE_TITLE}", "heading": COVERAGE_TITLE}
    render = _map_page("coverage.html", build, context)
    return _page_cache(request).page(("coverage", synthetic), basemap, render).response(request)


@router.get("/lifecircle", response_class=HTMLResponse)
def lifecircle_map(request: Request, catalog: CatalogDep, store: StoreDep, settings: SettingsDep) -> Response:
    basemap = basemap_for(settings)
    synthetic = _synthetic(store, [catalog.get("district")] if "district" in catalog else [])

    def build() -> folium.Map:
        return build_lifecircle_map(
            basemap=basemap, catalog=catalog, page_size=settings.max_page_size, synthetic=synthetic
        )

    context = {"title": f"{LIFECIRCLE_TITLE} · {SITE_TITLE}", "heading": LIFECIRCLE_TITLE}
    render = _map_page("lifecircle.html", build, context)
    return _page_cache(request).page(("lifecircle", synthetic), basemap, render).response(request)


@router.get("/audit", response_class=HTMLResponse)
def audit_viewer(request: Request, settings: SettingsDep) -> Response:
    """The audit viewer: an empty page whose script asks for a staff token (see web/static/geoplan-audit.js)."""
    context = {"title": f"{AUDIT_TITLE} · {SITE_TITLE}", "heading": AUDIT_TITLE}
    basemap = basemap_for(settings)
    page = _page_cache(request).page(("audit",), basemap, lambda nonce: render_html("audit.html", nonce, context))
    return page.response(request)


def report_viewer_csp(nonce: str) -> str:
    """The report's own policy (see routers/compliance.py) plus this page's one script.

    A blob: document inherits the policy of the page that created it; created on the planner page, the report
    would lose its inline styles. So the planner page opens this page, hands it the report's HTML
    (postMessage, same origin only), and this page turns it into a blob: URL and shows it, under a policy that
    allows inline styles and data: images but runs no script of the report's (its only script-src is a nonce
    the report cannot know).
    """
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


_REPORT_VIEWER = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>建设项目选址合规性审查报告</title>
<script src="/static/geoplan-report-viewer.js" nonce="{nonce}"></script>
</head>
<body>
<p id="gp-viewer-status">正在打开审查报告…</p>
<script nonce="{nonce}">GeoplanMap.reportViewer();</script>
</body>
</html>
"""


@router.get("/planner/report", response_class=HTMLResponse)
def planner_report_viewer() -> HTMLResponse:
    """An empty page that shows the compliance report the planner page sends it (see `report_viewer_csp`)."""
    nonce = new_nonce()
    headers = {
        "Content-Security-Policy": report_viewer_csp(nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(_REPORT_VIEWER.replace("{nonce}", nonce), headers=headers)
