"""The server store: PostGIS through SQLAlchemy and GeoAlchemy2.

Tables are made from the catalogue: typed columns, NOT NULL for required fields, a UNIQUE id column, and a
`geometry(<type>, 4490)` column (the typmod enforces type and SRID) with a GiST index. Every write runs in one
transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from geoalchemy2 import Geometry
from geoalchemy2.shape import from_shape
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    cast,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.types import TypeEngine

from geoplan.catalog import Catalog, FieldDef, LayerDef
from geoplan.cql2 import GEOMETRY, Node
from geoplan.errors import InputError, NotFoundError, StoreError
from geoplan.rasterdata import RasterData
from geoplan.storage import postgis_raster, postgis_tiles, raster_grid
from geoplan.storage.base import (
    AUDIT_TABLE,
    AuditEntry,
    AuditQuery,
    AuditReader,
    Bounds,
    FeatureReader,
    LayerEdits,
    SideStatement,
    WriteMode,
    audit_detail,
    backdated_at,
    backdated_detail,
    check_all_found,
    check_batch_rows,
    check_tile_fields,
    check_where,
    edit_audits,
    edit_parts,
    frame_from_records,
    now_utc,
    raster_layer,
    require_ids,
    rows_for_write,
    vector_layer,
)
from geoplan.storage.postgis_filter import to_sql
from geoplan.storage.raster_grid import LEGACY_RASTER_TABLE, RASTER_VERSIONS_TABLE
from geoplan.storage.tile_matrix import TileKey

log = logging.getLogger(__name__)
STORE_SRID = 4490
_GEOMETRY_NAMES = {"MultiPolygon": "MULTIPOLYGON", "MultiLineString": "MULTILINESTRING", "Point": "POINT"}


def _column_type(field: FieldDef) -> TypeEngine[Any]:
    if field.type == "integer":
        return Integer()
    if field.type == "float":
        return Float(precision=53)
    if field.type == "boolean":
        return Boolean()
    return Text()


def engine_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (SQLAlchemy would default to psycopg2)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


class PostGISStore(AuditReader):
    """LayerStore on a PostGIS database."""

    def __init__(self, url: str, catalog: Catalog, *, schema: str | None = None) -> None:
        self.url = url
        self.catalog = catalog
        self.engine: Engine = create_engine(engine_url(url), pool_pre_ping=True)
        self.metadata = MetaData(schema=schema)
        self.tables = {layer.name: self._layer_table(layer) for layer in catalog.vector_layers()}
        self.raster_versions = Table(
            RASTER_VERSIONS_TABLE,
            self.metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("layer", String(63), nullable=False, index=True),
            Column("at", Text, nullable=False),
            Column("audit_id", Integer),
            Column("crs", Text, nullable=False),
            Column("width", Integer, nullable=False),
            Column("height", Integer, nullable=False),
            Column("transform", Text, nullable=False),
            Column("nodata", Float(precision=53)),
            Column("codec", Text, nullable=False),
            Column("data", LargeBinary, nullable=False),
        )
        self.audit = Table(
            AUDIT_TABLE,
            self.metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("at", Text, nullable=False),
            Column("actor", Text, nullable=False),
            Column("layer", Text, nullable=False, index=True),
            Column("action", Text, nullable=False),
            Column("feature_count", Integer, nullable=False),
            Column("detail", Text),
        )

    def _layer_table(self, layer: LayerDef) -> Table:
        assert layer.geometry is not None
        columns = [
            Column(f.name, _column_type(f), nullable=not f.required, unique=f.name == layer.id_field)
            for f in layer.fields
        ]
        geometry = Geometry(geometry_type=_GEOMETRY_NAMES[layer.geometry], srid=STORE_SRID, spatial_index=True)
        return Table(
            layer.name,
            self.metadata,
            Column("fid", Integer, primary_key=True, autoincrement=True),
            *columns,
            Column("geom", geometry, nullable=False),
        )

    # -- schema -------------------------------------------------------------------------------------------

    def init(self) -> None:
        try:
            with self.engine.begin() as connection:
                # Only when missing: a read replica refuses even CREATE EXTENSION IF NOT EXISTS, and an app
                # process serving the public map from one runs this at start-up (create_all only looks there).
                if connection.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").first() is None:
                    connection.exec_driver_sql("CREATE EXTENSION postgis")
                postgis_raster.ensure_extension(connection)
                self.metadata.create_all(connection)
                for layer in self.catalog.raster_layers():
                    postgis_raster.ensure_table(connection, layer.name, self.metadata.schema)
                self._migrate_legacy_rasters(connection)
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None

    def is_initialised(self) -> bool:
        try:
            names = set(inspect(self.engine).get_table_names(schema=self.metadata.schema))
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None
        rasters = {layer.name for layer in self.catalog.raster_layers()}
        return set(self.tables) | rasters | {RASTER_VERSIONS_TABLE, AUDIT_TABLE} <= names

    # -- vector layers ------------------------------------------------------------------------------------

    def read(
        self, layer: str, *, bbox: Bounds | None = None, where: Mapping[str, Any] | None = None
    ) -> gpd.GeoDataFrame:
        definition = vector_layer(self.catalog, layer)
        filters = check_where(definition, where)
        table = self.tables[layer]
        query = select(*(table.c[name] for name in definition.field_names), func.ST_AsBinary(table.c.geom))
        if bbox is not None:
            envelope = func.ST_MakeEnvelope(*(float(v) for v in bbox), STORE_SRID)
            query = query.where(table.c.geom.op("&&")(envelope))
        for name, value in filters.items():
            query = query.where(table.c[name] == value)
        query = query.order_by(table.c.fid)
        with self._connection() as connection:
            rows = connection.execute(query).all()
        records = pd.DataFrame([r[:-1] for r in rows], columns=definition.field_names)
        geometry = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else np.empty(0, dtype=object)
        return frame_from_records(definition, records, geometry)

    def read_batches(self, layer: str, *, rows: int) -> Iterator[gpd.GeoDataFrame]:
        definition = vector_layer(self.catalog, layer)
        check_batch_rows(rows)
        table = self.tables[layer]
        columns = (*(table.c[name] for name in definition.field_names), func.ST_AsBinary(table.c.geom), table.c.fid)
        last = -1
        while True:  # keyset paging on fid: each batch is one index range scan, however deep into the table
            query = select(*columns).where(table.c.fid > last).order_by(table.c.fid).limit(rows)
            with self._connection() as connection:
                found = connection.execute(query).all()
            if not found:
                return
            last = int(found[-1][-1])
            records = pd.DataFrame([r[:-2] for r in found], columns=definition.field_names)
            yield frame_from_records(definition, records, shapely.from_wkb([bytes(r[-2]) for r in found]))
            if len(found) < rows:
                return

    def write(
        self,
        layer: str,
        frame: gpd.GeoDataFrame,
        *,
        mode: WriteMode = "replace",
        actor: str = "system",
        at: datetime | None = None,
    ) -> int:
        definition = vector_layer(self.catalog, layer)
        if mode not in ("replace", "append"):
            raise InputError(f"mode must be replace or append, not {mode!r}")
        params = self._insert_params(definition, frame)
        table = self.tables[layer]
        try:
            with self.engine.begin() as connection:
                when = self._backdated(connection, layer, at)
                if mode == "replace":
                    connection.execute(table.delete())
                if params:
                    connection.execute(table.insert(), params)
                detail = backdated_detail(audit_detail(frame, definition, mode), when)
                self._audit(connection, actor, layer, f"write:{mode}", len(params), detail, at=when)
        except IntegrityError as exc:
            raise InputError(
                f"layer '{layer}': the write breaks a store constraint ({_first_line(exc.orig)}); nothing was written"
            ) from None
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None
        return len(params)

    def update_features(
        self, layer: str, frame: gpd.GeoDataFrame, *, actor: str = "system", at: datetime | None = None
    ) -> int:
        definition = vector_layer(self.catalog, layer)
        ids = require_ids(definition, frame)
        params = self._insert_params(definition, frame)
        table = self.tables[layer]
        with self.engine.begin() as connection:
            when = self._backdated(connection, layer, at)
            before = self._select_ids(connection, definition, ids)
            check_all_found(definition, ids, before)
            connection.execute(table.delete().where(table.c[definition.id_field or ""].in_(ids)))
            connection.execute(table.insert(), params)
            detail = backdated_detail(audit_detail(frame, definition, "update", before=before), when)
            self._audit(connection, actor, layer, "update", len(params), detail, at=when)
        return len(params)

    def delete_features(self, layer: str, ids: list[str], *, actor: str = "system", at: datetime | None = None) -> int:
        definition = vector_layer(self.catalog, layer)
        table = self.tables[layer]
        with self.engine.begin() as connection:
            when = self._backdated(connection, layer, at)
            before = self._select_ids(connection, definition, ids)
            check_all_found(definition, ids, before)
            connection.execute(table.delete().where(table.c[definition.id_field or ""].in_(ids)))
            detail = backdated_detail(audit_detail(before, definition, "delete", before=before), when)
            self._audit(connection, actor, layer, "delete", len(ids), detail, at=when)
        return len(ids)

    def apply_edits(
        self,
        edits: Sequence[LayerEdits],
        *,
        actor: str,
        guard: Callable[[FeatureReader], None] | None = None,
        after: Sequence[SideStatement] = (),
    ) -> dict[str, int]:
        planned = []
        for edit in edits:
            definition = vector_layer(self.catalog, edit.layer)
            existing, inserted = edit_parts(definition, edit)
            params = [] if inserted is None else self._insert_params(definition, inserted)
            planned.append((edit, definition, existing, params))
        written: dict[str, int] = {}
        try:
            with self.engine.begin() as connection:
                # one writer at a time on these layers: the guard's reads stay true until the commit
                for name in sorted({edit.layer for edit in edits}):
                    connection.exec_driver_sql(f"LOCK TABLE {self._qualified(name)} IN SHARE ROW EXCLUSIVE MODE")
                if guard is not None:
                    guard(lambda name, ids: self._select_ids(connection, vector_layer(self.catalog, name), ids))
                for edit, definition, existing, params in planned:
                    table = self.tables[edit.layer]
                    before = self._select_ids(connection, definition, existing)
                    check_all_found(definition, existing, before)
                    if existing:
                        connection.execute(table.delete().where(table.c[definition.id_field or ""].in_(existing)))
                    if params:
                        connection.execute(table.insert(), params)
                    for action, count, detail in edit_audits(definition, edit, before):
                        self._audit(connection, actor, edit.layer, action, count, detail)
                    written[edit.layer] = written.get(edit.layer, 0) + len(params) + len(edit.deletes)
                for sql, values in after:
                    connection.execute(text(sql), dict(values))
        except IntegrityError as exc:
            raise InputError(
                f"the edits break a store constraint ({_first_line(exc.orig)}); nothing was written"
            ) from None
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None
        return written

    def _qualified(self, name: str) -> str:
        quoted = '"' + name.replace('"', '""') + '"'
        schema = self.metadata.schema
        return quoted if schema is None else '"' + schema.replace('"', '""') + '".' + quoted

    def _select_ids(self, connection: Connection, layer: LayerDef, ids: list[str]) -> gpd.GeoDataFrame:
        table = self.tables[layer.name]
        query = select(*(table.c[n] for n in layer.field_names), func.ST_AsBinary(table.c.geom)).where(
            table.c[layer.id_field or ""].in_(ids)
        )
        rows = connection.execute(query).all()
        records = pd.DataFrame([r[:-1] for r in rows], columns=layer.field_names)
        geometry = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else np.empty(0, dtype=object)
        return frame_from_records(layer, records, geometry)

    def _insert_params(self, layer: LayerDef, frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
        rows, geoms = rows_for_write(layer, frame)
        return [
            {**dict(zip(layer.field_names, row, strict=True)), "geom": from_shape(geom, srid=STORE_SRID)}
            for row, geom in zip(rows, geoms, strict=True)
        ]

    def _audit(
        self,
        connection: Connection,
        actor: str,
        layer: str,
        action: str,
        count: int,
        detail: str,
        *,
        at: str | None = None,
    ) -> int:
        return connection.execute(
            self.audit.insert().returning(self.audit.c.id),
            {
                "at": at or now_utc(),
                "actor": actor,
                "layer": layer,
                "action": action,
                "feature_count": count,
                "detail": detail,
            },
        ).scalar_one()

    def _backdated(self, connection: Connection, layer: str, at: datetime | None) -> str | None:
        """The checked audit time of a write as of `at` (`backdated_at`); None for a write made now."""
        if at is None:
            return None
        latest = connection.execute(select(func.max(self.audit.c.at)).where(self.audit.c.layer == layer)).scalar()
        return backdated_at(at, layer=layer, latest=None if latest is None else str(latest))

    def count(self, layer: str) -> int:
        vector_layer(self.catalog, layer)
        with self._connection() as connection:
            return int(connection.execute(select(func.count()).select_from(self.tables[layer])).scalar_one())

    def bounds(self, layer: str) -> Bounds | None:
        vector_layer(self.catalog, layer)
        table = self.tables[layer]
        extent = func.ST_Extent(table.c.geom)
        query = select(func.ST_XMin(extent), func.ST_YMin(extent), func.ST_XMax(extent), func.ST_YMax(extent))
        with self._connection() as connection:
            row = connection.execute(query).one()
        return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))

    # -- rasters ------------------------------------------------------------------------------------------

    def write_raster(
        self, layer: str, raster: RasterData, *, actor: str = "system", at: datetime | None = None
    ) -> None:
        write = raster_grid.prepared_write(raster_layer(self.catalog, layer), raster)
        wkbs = postgis_raster.tile_wkbs(write.grid)
        try:
            with self.engine.begin() as connection:
                when = self._backdated(connection, layer, at)
                stamp = when or now_utc()
                postgis_raster.write_tiles(connection, layer, self.metadata.schema, wkbs)
                detail = backdated_detail(write.detail, when)
                audit_id = self._audit(connection, actor, layer, "write:raster", write.cells, detail, at=stamp)
                self._insert_version(connection, layer, stamp, audit_id, write.version)
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None

    def _insert_version(
        self, connection: Connection, layer: str, at: str, audit_id: int | None, version: raster_grid.Version
    ) -> None:
        values = dict(zip(raster_grid.Version.COLUMNS, version.row(), strict=True))
        connection.execute(self.raster_versions.insert(), {"layer": layer, "at": at, "audit_id": audit_id, **values})

    def read_raster(self, layer: str) -> RasterData:
        raster_layer(self.catalog, layer)
        table = self.raster_versions
        latest = (
            select(table.c.width, table.c.height, table.c.transform, table.c.nodata, table.c.crs)
            .where(table.c.layer == layer)
            .order_by(table.c.id.desc())
            .limit(1)
        )
        # one snapshot for the description and the tiles, so a concurrent write cannot mix two versions
        with self._connection() as connection, connection.begin():
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = connection.execute(latest).first()
            if row is None:
                raise NotFoundError(f"raster layer '{layer}' holds no data yet")
            width, height, transform_text, nodata, crs = row
            transform = Affine(*json.loads(transform_text))
            array = postgis_raster.read_tiles(
                connection, layer, self.metadata.schema, shape=(height, width), origin=(transform.c, transform.f)
            )
        return RasterData(array, transform, crs, None if nodata is None else float(nodata))

    def read_raster_version(self, layer: str, at: datetime) -> RasterData:
        raster_layer(self.catalog, layer)
        table = self.raster_versions
        # a version's time is its audit entry's (the log is the one record of when), else its own
        when = func.coalesce(self.audit.c.at, table.c.at)
        query = (
            select(*(table.c[name] for name in raster_grid.Version.COLUMNS))
            .select_from(table.outerjoin(self.audit, self.audit.c.id == table.c.audit_id))
            .where(table.c.layer == layer, when <= raster_grid.history_time(at))
            .order_by(table.c.id.desc())
            .limit(1)
        )
        with self._connection() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"raster layer '{layer}' has no version written at or before {raster_grid.history_time(at)}"
            )
        return raster_grid.decode_version(raster_grid.Version.from_row(row))

    def has_raster(self, layer: str) -> bool:
        raster_layer(self.catalog, layer)
        table = self.raster_versions
        with self._connection() as connection:
            found = connection.execute(select(table.c.id).where(table.c.layer == layer).limit(1)).first()
        return found is not None

    def _migrate_legacy_rasters(self, connection: Connection) -> None:
        """Stores from before the tiled form kept each raster as one GeoTIFF blob in `geoplan_rasters`: move
        each into its tile table and the history (dated by its last write), then drop the old table."""
        legacy = postgis_raster.qualified(LEGACY_RASTER_TABLE, self.metadata.schema)
        if connection.exec_driver_sql("SELECT to_regclass(%s::text)", (legacy,)).scalar() is None:
            return
        for name, updated_at, data in connection.exec_driver_sql(f"SELECT name, updated_at, data FROM {legacy}").all():
            definition = raster_layer(self.catalog, name)
            grid = raster_grid.checked(definition, RasterData.from_geotiff(bytes(data), source=name))
            postgis_raster.write_tiles(connection, name, self.metadata.schema, postgis_raster.tile_wkbs(grid))
            audit_id = connection.execute(
                select(func.max(self.audit.c.id)).where(
                    self.audit.c.layer == name, self.audit.c.action == "write:raster"
                )
            ).scalar()
            self._insert_version(connection, name, updated_at, audit_id, raster_grid.encode_version(grid))
            log.info("migrated raster %s to postgis_raster tiles", name)
        connection.exec_driver_sql(f"DROP TABLE {legacy}")

    # -- audit --------------------------------------------------------------------------------------------

    def _audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        start, end = query.window()
        table = self.audit
        select_rows = select(
            table.c.at, table.c.actor, table.c.layer, table.c.action, table.c.feature_count, table.c.detail, table.c.id
        )
        if query.layer is not None:
            select_rows = select_rows.where(table.c.layer == query.layer)
        if query.actor is not None:
            select_rows = select_rows.where(table.c.actor == query.actor)
        actions = query.actions()
        if actions is not None:
            select_rows = select_rows.where(table.c.action.in_(actions))
        if query.hidden_layers:
            select_rows = select_rows.where(table.c.layer.not_in(query.hidden_layers))
        if start is not None:
            select_rows = select_rows.where(table.c.at >= start)
        if end is not None:
            select_rows = select_rows.where(table.c.at <= end)
        if query.feature_id is not None:
            # the ids a write lists in its detail; jsonb containment keeps the match exact
            ids = func.jsonb_extract_path(cast(table.c.detail, JSONB), "ids")
            select_rows = select_rows.where(ids.op("@>")(func.jsonb_build_array(cast(query.feature_id, Text))))
        select_rows = select_rows.order_by(table.c.id.desc()).limit(query.limit).offset(query.offset)
        with self._connection() as connection:
            rows = connection.execute(select_rows).all()
        return [AuditEntry.from_row(row) for row in rows]

    def filter_rows(self, layer: str, node: Node) -> tuple[int, np.ndarray]:
        """Positions (in `read` order) of the features a checked CQL2 filter selects, as bound SQL, and the
        layer version they belong to (both read in one snapshot, so they match a cache of that version)."""
        definition = vector_layer(self.catalog, layer)
        table = self.tables[layer]
        position = (func.row_number().over(order_by=table.c.fid) - 1).label("position")
        ranked = select(*table.c, position).subquery()
        mapping = {name: ranked.c[name] for name in definition.field_names} | {GEOMETRY: ranked.c.geom}
        where = to_sql(node, mapping, srid=STORE_SRID)
        query = select(ranked.c.position).where(where).order_by(ranked.c.position)
        version_query = select(func.max(self.audit.c.id)).where(self.audit.c.layer == layer)
        with self._connection() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                version = int(connection.execute(version_query).scalar_one() or 0)
                found = connection.execute(query).scalars().all()
        return version, np.asarray(found, dtype=np.int64)

    def vector_tile(self, layer: str, tile: TileKey, fields: Sequence[str], node: Node | None = None) -> bytes:
        definition = vector_layer(self.catalog, layer)
        names = check_tile_fields(definition, fields)
        where = None
        if node is not None:
            table = self.tables[layer].alias("t")  # the tile query's name for the layer table
            mapping = {name: table.c[name] for name in definition.field_names} | {GEOMETRY: table.c.geom}
            where = to_sql(node, mapping, srid=STORE_SRID)
        with self._connection() as connection:
            return postgis_tiles.vector_tile(connection, definition, tile, names, self.metadata.schema, where)

    def layer_version(self, layer: str) -> int:
        query = select(func.max(self.audit.c.id)).where(self.audit.c.layer == layer)
        with self._connection() as connection:
            return int(connection.execute(query).scalar_one() or 0)

    def _connection(self):  # type: ignore[no-untyped-def]
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise StoreError(f"cannot reach the PostGIS store: {_first_line(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException | SQLAlchemyError | None) -> str:
    """Database messages can be long and carry SQL; the first line says what went wrong."""
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else "unknown error"
