"""PostGIS-specific guarantees: the database itself enforces SRID, geometry type, NOT NULL and indexes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from geoplan.catalog import Catalog
from geoplan.storage.postgis import PostGISStore

pytestmark = pytest.mark.postgis


@pytest.fixture
def pg(catalog: Catalog, postgis_url: str) -> PostGISStore:
    store = PostGISStore(postgis_url, catalog)
    store.init()
    return store


def _execute(store: PostGISStore, sql: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(sa.text(sql))


def test_srid_is_enforced(pg: PostGISStore) -> None:
    with pytest.raises(DBAPIError, match="SRID"):
        _execute(
            pg,
            "INSERT INTO culture_facilities (facility_id, name, kind, geom) "
            "VALUES ('a', 'b', '图书馆', ST_SetSRID(ST_MakePoint(112.8, 22.9), 4326))",
        )


def test_geometry_type_is_enforced(pg: PostGISStore) -> None:
    with pytest.raises(DBAPIError, match=r"(?i)geometry type"):
        _execute(
            pg,
            "INSERT INTO eco_redlines (redline_id, name, geom) "
            "VALUES ('a', 'b', ST_SetSRID(ST_MakePoint(112.8, 22.9), 4490))",
        )


def test_required_fields_are_not_null(pg: PostGISStore) -> None:
    with pytest.raises(DBAPIError, match="null value"):
        _execute(
            pg,
            "INSERT INTO eco_redlines (redline_id, geom) VALUES ('a', "
            "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(112.8, 22.9), 4490), 0.01)))",
        )


def test_every_layer_table_has_a_gist_index_and_typmod(pg: PostGISStore, catalog: Catalog) -> None:
    with pg.engine.connect() as connection:
        gist = {
            row[0]
            for row in connection.execute(
                sa.text("SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist (geom)%'")
            )
        }
        columns = {
            row[0]: (row[1], row[2])
            for row in connection.execute(
                sa.text("SELECT f_table_name, srid, type FROM geometry_columns WHERE f_geometry_column = 'geom'")
            )
        }
    for layer in catalog.vector_layers():
        assert layer.name in gist
        assert columns[layer.name] == (4490, (layer.geometry or "").upper())
