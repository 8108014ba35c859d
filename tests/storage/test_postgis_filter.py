"""CQL2 as SQL: every literal is a bound parameter, geometries carry the store's SRID, numbers keep their own
type, string order is by code point. Compiled for PostgreSQL without a database; the results on a real one are
checked in tests/web/test_ogc_filter.py."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import psycopg

from geoplan.catalog import Catalog
from geoplan.cql2 import GEOMETRY, parse_filter
from geoplan.storage.postgis import STORE_SRID, PostGISStore
from geoplan.storage.postgis_filter import to_sql

QUERYABLES = {"name": "string", "start_year": "integer", "progress_pct": "float", GEOMETRY: "geometry"}


def _bind_types(text: str, catalog: Catalog) -> list[str]:
    """The SQL types the literals are bound with."""
    store = PostGISStore("postgresql://unused@127.0.0.1:1/none", catalog)
    table = store.tables["projects"]
    node = parse_filter(text, lang="cql2-text", queryables=QUERYABLES)
    compiled = to_sql(node, {"start_year": table.c.start_year}, srid=STORE_SRID).compile(dialect=psycopg.dialect())
    store.close()
    return sorted({type(bind.type).__name__ for bind in compiled.binds.values()})


def _compiled(text: str, catalog: Catalog) -> tuple[str, dict[str, object]]:
    store = PostGISStore("postgresql://unused@127.0.0.1:1/none", catalog)
    table = store.tables["projects"]
    mapping = {name: table.c[name] for name in QUERYABLES if name != GEOMETRY} | {GEOMETRY: table.c.geom}
    node = parse_filter(text, lang="cql2-text", queryables=QUERYABLES)
    compiled = to_sql(node, mapping, srid=STORE_SRID).compile(dialect=psycopg.dialect())
    store.close()
    return str(compiled), dict(compiled.params)


def test_literals_are_bound_never_pasted(catalog: Catalog) -> None:
    sql, params = _compiled("name = 'x; DROP TABLE projects; --' OR name IN ('a', 'b')", catalog)
    assert "DROP" not in sql and "'a'" not in sql
    assert "x; DROP TABLE projects; --" in params.values() and ["a", "b"] in params.values()


def test_geometry_srid_numbers_and_string_order(catalog: Catalog) -> None:
    sql, params = _compiled("S_INTERSECTS(geometry, POINT(112.8 22.9))", catalog)
    assert "ST_Intersects" in sql and "ST_GeomFromText" in sql
    assert STORE_SRID in params.values() and "POINT (112.8 22.9)" in params.values()
    # Bound as FLOAT, not as the column's INTEGER (which would turn 2018.5 into 2019).
    assert _bind_types("start_year > 2018.5", catalog) == ["Float"]
    assert _bind_types("start_year = 2019", catalog) == ["Float"]  # cql2-text numbers are all floats
    sql, _ = _compiled("name < 'park'", catalog)
    assert 'COLLATE "C"' in sql
    sql, _ = _compiled("name = 'park'", catalog)
    assert "COLLATE" not in sql  # equality needs no order
