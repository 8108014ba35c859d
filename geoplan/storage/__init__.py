"""Layer stores: one interface (`LayerStore`), two backends chosen by the store URL."""

from __future__ import annotations

from geoplan.catalog import Catalog
from geoplan.storage.base import AuditEntry, LayerStore, LayerSummary, WriteMode

__all__ = ["AuditEntry", "LayerStore", "LayerSummary", "WriteMode", "is_postgis_url", "open_store"]


def is_postgis_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def open_store(url: str, catalog: Catalog) -> LayerStore:
    """A GeoPackage path opens the embedded store; a postgresql:// URL opens PostGIS."""
    if is_postgis_url(url):
        from geoplan.storage.postgis import PostGISStore

        return PostGISStore(url, catalog)
    from geoplan.storage.gpkg import GeoPackageStore

    return GeoPackageStore(url, catalog)
