"""OGC API – Features under /ogc: Part 1 (core, GeoJSON, HTML), Part 2 (CRS by reference) and Part 3
(queryables, CQL2 filters); and OGC API – Tiles (vector tiles of the same collections). One module per concept;
this package only joins their routers."""

from __future__ import annotations

from fastapi import APIRouter

from web.ogc import collections, items, landing, queryables, tiles

router = APIRouter(tags=["OGC API – Features"])
router.include_router(landing.router)
router.include_router(collections.router)
router.include_router(queryables.router)
router.include_router(items.router)
router.include_router(tiles.router)
