"""The one engine factory for geoplan's side tables (tokens, conflict marks, progress records, snapshots).

Side tables live in the same database as the layers, so a store is one thing to back up and move: the PostGIS
database itself, or the GeoPackage file opened as plain SQLite. Every owner of a side table asks here.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine

from geoplan.storage import is_postgis_url
from geoplan.storage.postgis import engine_url

__all__ = ["side_table_engine"]


def side_table_engine(store_url: str) -> Engine:
    """An engine on the store's own database: PostGIS, or the GeoPackage file as SQLite. The caller disposes it."""
    if is_postgis_url(store_url):
        return create_engine(engine_url(store_url), pool_pre_ping=True)
    return create_engine(f"sqlite:///{Path(store_url).resolve()}")
