"""Layer stores: one interface (`LayerStore`), two backends chosen by the store URL."""

from __future__ import annotations

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.storage.base import AuditEntry, LayerStore, LayerSummary, WriteMode

__all__ = [
    "AuditEntry",
    "LayerStore",
    "LayerSummary",
    "WriteMode",
    "is_postgis_url",
    "open_store",
    "require_initialised",
]


def is_postgis_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def open_store(url: str, catalog: Catalog) -> LayerStore:
    """A GeoPackage path opens the embedded store; a postgresql:// URL opens PostGIS."""
    if is_postgis_url(url):
        from geoplan.storage.postgis import PostGISStore

        return PostGISStore(url, catalog)
    from geoplan.storage.gpkg import GeoPackageStore

    return GeoPackageStore(url, catalog)


def require_initialised(store: LayerStore) -> None:
    """Refuse a store nobody has set up, with the command that sets it up (not a missing-table error later)."""
    if not store.is_initialised():
        raise InputError(f"the store {store.url} is not initialised; run `geoplan db init` or `geoplan demo`")
