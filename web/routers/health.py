"""/healthz: is the store reachable, and which library versions are in use (GEOS, PROJ, GDAL, PostGIS)."""

from __future__ import annotations

from typing import Any

import pyogrio
import pyproj
import shapely
from fastapi import APIRouter
from sqlalchemy import text

from geoplan import __version__
from geoplan.storage.postgis import PostGISStore
from web.deps import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and versions")
def healthz(store: StoreDep) -> dict[str, Any]:
    versions: dict[str, Any] = {
        "geoplan": __version__,
        "geos": shapely.geos_version_string,
        "proj": pyproj.proj_version_str,
        "gdal": pyogrio.__gdal_version_string__,
    }
    backend = "postgis" if isinstance(store, PostGISStore) else "geopackage"
    if isinstance(store, PostGISStore):
        with store.engine.connect() as connection:
            versions["postgis"] = connection.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return {"status": "ok", "store": backend, "initialised": store.is_initialised(), "versions": versions}
