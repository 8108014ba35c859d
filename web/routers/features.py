"""OGC API – Features: the routes live in the `web.ogc` package (one module per concept)."""

from __future__ import annotations

from web.ogc import router

__all__ = ["router"]
