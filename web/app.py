"""The FastAPI application. `create_app(settings)` builds it; nothing is built at import time.

The store, the token registry and the layer, overlap, coverage and life-circle caches open in the lifespan and
close with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from geoplan import __version__
from geoplan.catalog import load_catalog
from geoplan.services.store_setup import init_store
from geoplan.services.tokens import TokenRegistry
from geoplan.storage import open_store
from geoplan.storage.side_tables import side_table_engine
from web.coverage_cache import CoverageCache
from web.docs_page import install_docs
from web.errors import install_error_handlers
from web.layer_cache import LayerCache
from web.lifecircle_cache import LifeCircleCache
from web.middleware import HeadAsGet, RefuseInvisiblePaths
from web.overlap_cache import OverlapCache
from web.routers import (
    audit,
    basemap,
    checklist,
    compliance,
    coverage,
    dashboard,
    edit,
    features,
    health,
    ledger,
    lifecircle,
    monitoring,
    overlaps,
    pages,
    report,
    scenarios,
)
from web.scenario_cache import ScenarioDiffCache
from web.settings import WebSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = load_catalog(settings.layers_dir)
        store = open_store(settings.store, catalog)
        init_store(store)
        tokens = TokenRegistry(side_table_engine(settings.store))
        app.state.settings = settings
        app.state.store = store
        app.state.tokens = tokens
        app.state.layer_cache = LayerCache(store)
        app.state.overlaps = OverlapCache(store, settings.layers_dir)
        app.state.coverage = CoverageCache(store, settings.layers_dir)
        app.state.lifecircle = LifeCircleCache(store, settings.layers_dir)
        app.state.scenario_diffs = ScenarioDiffCache(store, settings.layers_dir)
        try:
            yield
        finally:
            app.state.overlaps.close()
            tokens.close()
            store.close()

    app = FastAPI(
        title="geoplan",
        version=__version__,
        description="Gaoming District action-plan layers: OGC API – Features, maps, analyses.",
        lifespan=lifespan,
        docs_url=None,  # served by web.docs_page from vendored files
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,  # bearer tokens only, no OAuth2 flow
    )
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(RefuseInvisiblePaths)  # added last, so it runs first
    app.include_router(health.router)
    app.include_router(features.router)
    app.include_router(edit.router)
    app.include_router(audit.router)
    app.include_router(ledger.router)
    app.include_router(checklist.router)
    app.include_router(compliance.router)
    app.include_router(overlaps.router)
    app.include_router(monitoring.router)
    app.include_router(dashboard.router)
    app.include_router(report.router)
    app.include_router(coverage.router)
    app.include_router(lifecircle.router)
    app.include_router(scenarios.router)
    app.include_router(basemap.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
