"""The embedded store: one GeoPackage file, readable by QGIS and GDAL as it is.

GDAL (through pyogrio) creates each layer's table, R-tree and triggers, so the file is a standard GeoPackage.
Rows are then written through sqlite3 in a single transaction per write, which is what makes a write all or
nothing: on any error the transaction rolls back and the file is as it was.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from geoplan.catalog import Catalog, FieldDef, LayerDef
from geoplan.cql2 import Node
from geoplan.crs import STORE_CRS
from geoplan.errors import InputError, NotFoundError, StoreError
from geoplan.rasterdata import RasterData
from geoplan.storage import gpkg_blob, gpkg_coverage, gpkg_tiles, raster_grid
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
from geoplan.storage.raster_grid import LEGACY_RASTER_TABLE, RASTER_VERSIONS_TABLE
from geoplan.storage.tile_matrix import TileKey

log = logging.getLogger(__name__)

STORE_SRS_ID = 4490
_SQLITE_TYPES = {"string": "TEXT", "integer": "INTEGER", "float": "REAL", "boolean": "BOOLEAN"}
_PANDAS_DTYPES = {"string": "object", "integer": "int64", "float": "float64", "boolean": "bool"}


def _quote(identifier: str) -> str:
    # Identifiers come from the validated catalogue; quoting still keeps SQL keywords (e.g. "type") safe.
    return '"' + identifier.replace('"', '""') + '"'


class GeoPackageStore(AuditReader):
    """LayerStore on a GeoPackage file."""

    def __init__(self, path: Path | str, catalog: Catalog) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.catalog = catalog
        # Small hot reads (versions, counts) reuse one connection per thread: opening one costs ~1 ms, more
        # than the query. Writes always take a fresh connection and their own transaction.
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # -- connection ---------------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            raise StoreError(f"no store at {self.path}; run `geoplan db init` or `geoplan demo` first")
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            gpkg_blob.register_functions(connection)
            yield connection
        finally:
            connection.close()

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if not self.path.exists():
                raise StoreError(f"no store at {self.path}; run `geoplan db init` or `geoplan demo` first")
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _tables(self, connection: sqlite3.Connection) -> set[str]:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    # -- schema -------------------------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        if not self.path.exists():
            return False
        with self._connect() as connection:
            tables = self._tables(connection)
        return all(layer.name in tables for layer in self.catalog.vector_layers()) and RASTER_VERSIONS_TABLE in tables

    def init(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing: set[str] = set()
        if self.path.exists():
            with self._connect() as connection:
                existing = self._tables(connection)
        for layer in self.catalog.vector_layers():
            if layer.name not in existing:
                self._create_layer(layer)
        with self._transaction() as connection:
            for layer in self.catalog.vector_layers():
                self._add_missing_columns(connection, layer)
                if layer.id_field:
                    connection.execute(
                        f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote(f'ux_{layer.name}_{layer.id_field}')} "
                        f"ON {_quote(layer.name)} ({_quote(layer.id_field)})"
                    )
            gpkg_coverage.ensure_schema(connection)
            self._create_attribute_table(
                connection,
                RASTER_VERSIONS_TABLE,
                "id INTEGER PRIMARY KEY AUTOINCREMENT, layer TEXT NOT NULL, at TEXT NOT NULL, audit_id INTEGER, "
                "crs TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, transform TEXT NOT NULL, "
                "nodata REAL, codec TEXT NOT NULL, data BLOB NOT NULL",
            )
            connection.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{RASTER_VERSIONS_TABLE}_layer ON {RASTER_VERSIONS_TABLE} (layer, id)"
            )
            self._create_attribute_table(
                connection,
                AUDIT_TABLE,
                "id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, "
                "layer TEXT NOT NULL, action TEXT NOT NULL, feature_count INTEGER NOT NULL, detail TEXT",
            )
            connection.execute(f"CREATE INDEX IF NOT EXISTS ix_{AUDIT_TABLE}_layer ON {AUDIT_TABLE} (layer, id)")
            if LEGACY_RASTER_TABLE in existing:
                self._migrate_legacy_rasters(connection)

    def _create_layer(self, layer: LayerDef) -> None:
        columns = {f.name: pd.Series([], dtype=_PANDAS_DTYPES[f.type]) for f in layer.fields}
        empty = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=STORE_CRS))
        pyogrio.write_dataframe(
            empty,
            self.path,
            layer=layer.name,
            driver="GPKG",
            geometry_type=layer.geometry,
            append=self.path.exists(),
            layer_options={"SPATIAL_INDEX": "YES", "FID": "fid", "GEOMETRY_NAME": "geom"},
            metadata={"title_zh": layer.title_zh, "synthetic": str(layer.synthetic)},
        )
        log.info("created layer %s in %s", layer.name, self.path)

    def _add_missing_columns(self, connection: sqlite3.Connection, layer: LayerDef) -> None:
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({_quote(layer.name)})")}
        for field in layer.fields:
            if field.name not in present:
                connection.execute(
                    f"ALTER TABLE {_quote(layer.name)} ADD COLUMN {_quote(field.name)} {_sql_type(field)}"
                )

    def _create_attribute_table(self, connection: sqlite3.Connection, name: str, columns: str) -> None:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {_quote(name)} ({columns})")
        connection.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) VALUES (?, 'attributes', ?)",
            (name, name),
        )

    # -- vector layers ------------------------------------------------------------------------------------

    def read(
        self, layer: str, *, bbox: Bounds | None = None, where: Mapping[str, Any] | None = None
    ) -> gpd.GeoDataFrame:
        definition = vector_layer(self.catalog, layer)
        filters = check_where(definition, where)
        self._require_table(layer)
        clause = " AND ".join(f"{_quote(k)} = {_ogr_literal(v)}" for k, v in filters.items()) or None
        frame = pyogrio.read_dataframe(
            self.path,
            layer=layer,
            bbox=bbox,
            where=clause,
            columns=definition.field_names,
            use_arrow=True,
        )
        return frame_from_records(definition, frame, frame.geometry.values)

    def read_batches(self, layer: str, *, rows: int) -> Iterator[gpd.GeoDataFrame]:
        definition = vector_layer(self.catalog, layer)
        check_batch_rows(rows)
        self._require_table(layer)
        last = -1
        while True:  # keyset paging on the integer primary key: each batch is one index range scan
            frame = pyogrio.read_dataframe(
                self.path,
                layer=layer,
                where=f"fid > {last}",
                max_features=rows,
                columns=definition.field_names,
                fid_as_index=True,
                use_arrow=True,
            )
            if frame.empty:
                return
            last = int(frame.index.max())
            yield frame_from_records(definition, frame.reset_index(drop=True), frame.geometry.values)
            if len(frame) < rows:
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
        rows, geoms = rows_for_write(definition, frame)
        blobs = gpkg_blob.encode(geoms, STORE_SRS_ID)
        insert = self._insert_sql(definition)
        self._require_table(layer)
        try:
            with self._transaction() as connection:
                when = self._backdated(connection, layer, at)
                if mode == "replace":
                    connection.execute(f"DELETE FROM {_quote(layer)}")
                connection.executemany(insert, ([*row, blob] for row, blob in zip(rows, blobs, strict=True)))
                self._refresh_extent(connection, layer)
                self._audit(
                    connection,
                    actor,
                    layer,
                    f"write:{mode}",
                    len(rows),
                    backdated_detail(audit_detail(frame, definition, mode), when),
                    at=when,
                )
        except sqlite3.IntegrityError as exc:
            raise InputError(
                f"layer '{layer}': the write breaks a store constraint ({exc}); nothing was written"
            ) from None
        return len(rows)

    def update_features(
        self, layer: str, frame: gpd.GeoDataFrame, *, actor: str = "system", at: datetime | None = None
    ) -> int:
        definition = vector_layer(self.catalog, layer)
        ids = require_ids(definition, frame)
        rows, geoms = rows_for_write(definition, frame)
        blobs = gpkg_blob.encode(geoms, STORE_SRS_ID)
        with self._transaction() as connection:
            when = self._backdated(connection, layer, at)
            before = self._select_ids(connection, definition, ids)
            check_all_found(definition, ids, before)
            self._delete_ids(connection, definition, ids)
            connection.executemany(self._insert_sql(definition), ([*r, b] for r, b in zip(rows, blobs, strict=True)))
            self._refresh_extent(connection, layer)
            detail = backdated_detail(audit_detail(frame, definition, "update", before=before), when)
            self._audit(connection, actor, layer, "update", len(rows), detail, at=when)
        return len(rows)

    def delete_features(self, layer: str, ids: list[str], *, actor: str = "system", at: datetime | None = None) -> int:
        definition = vector_layer(self.catalog, layer)
        with self._transaction() as connection:
            when = self._backdated(connection, layer, at)
            before = self._select_ids(connection, definition, ids)
            check_all_found(definition, ids, before)
            self._delete_ids(connection, definition, ids)
            self._refresh_extent(connection, layer)
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
            self._require_table(edit.layer)
            existing, inserted = edit_parts(definition, edit)
            rows: list[list[Any]] = []
            blobs: list[bytes] = []
            if inserted is not None:
                rows, geoms = rows_for_write(definition, inserted)
                blobs = gpkg_blob.encode(geoms, STORE_SRS_ID)
            planned.append((edit, definition, existing, [[*r, b] for r, b in zip(rows, blobs, strict=True)]))
        written: dict[str, int] = {}
        try:
            with self._transaction() as connection:
                if guard is not None:
                    guard(lambda name, ids: self._select_ids(connection, vector_layer(self.catalog, name), ids))
                for edit, definition, existing, rows in planned:
                    before = self._select_ids(connection, definition, existing)
                    check_all_found(definition, existing, before)
                    self._delete_ids(connection, definition, existing)
                    connection.executemany(self._insert_sql(definition), rows)
                    self._refresh_extent(connection, edit.layer)
                    for action, count, detail in edit_audits(definition, edit, before):
                        self._audit(connection, actor, edit.layer, action, count, detail)
                    written[edit.layer] = written.get(edit.layer, 0) + len(rows) + len(edit.deletes)
                for sql, params in after:
                    connection.execute(sql, dict(params))
        except sqlite3.IntegrityError as exc:
            raise InputError(f"the edits break a store constraint ({exc}); nothing was written") from None
        return written

    def _select_ids(self, connection: sqlite3.Connection, layer: LayerDef, ids: list[str]) -> gpd.GeoDataFrame:
        assert layer.id_field is not None
        columns = ", ".join(_quote(n) for n in [*layer.field_names, "geom"])
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows += connection.execute(
                f"SELECT {columns} FROM {_quote(layer.name)} WHERE {_quote(layer.id_field)} IN "
                f"({', '.join('?' for _ in chunk)})",
                chunk,
            ).fetchall()
        records = pd.DataFrame([r[:-1] for r in rows], columns=layer.field_names)
        return frame_from_records(layer, records, gpkg_blob.decode([r[-1] for r in rows]))

    def _delete_ids(self, connection: sqlite3.Connection, layer: LayerDef, ids: list[str]) -> None:
        assert layer.id_field is not None
        connection.executemany(
            f"DELETE FROM {_quote(layer.name)} WHERE {_quote(layer.id_field)} = ?", ([i] for i in ids)
        )

    def _insert_sql(self, layer: LayerDef) -> str:
        names = [*layer.field_names, "geom"]
        return (
            f"INSERT INTO {_quote(layer.name)} ({', '.join(_quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )

    def count(self, layer: str) -> int:
        self._require_table(layer)
        with self._connect() as connection:
            return int(connection.execute(f"SELECT count(*) FROM {_quote(layer)}").fetchone()[0])

    def bounds(self, layer: str) -> Bounds | None:
        vector_layer(self.catalog, layer)
        self._require_table(layer)
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {_quote(f'rtree_{layer}_geom')}"
            ).fetchone()
        return None if row[0] is None else (row[0], row[1], row[2], row[3])

    def _refresh_extent(self, connection: sqlite3.Connection, layer: str) -> None:
        connection.execute(
            f"UPDATE gpkg_contents SET (min_x, min_y, max_x, max_y) = "
            f"(SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {_quote(f'rtree_{layer}_geom')}), "
            f"last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?",
            (layer,),
        )

    def _require_table(self, layer: str) -> None:
        with self._connect() as connection:
            if layer not in self._tables(connection):
                raise StoreError(f"layer '{layer}' has no table in {self.path}; run `geoplan db init`")

    # -- rasters ------------------------------------------------------------------------------------------

    def write_raster(
        self, layer: str, raster: RasterData, *, actor: str = "system", at: datetime | None = None
    ) -> None:
        definition = raster_layer(self.catalog, layer)
        # the CPU work (TIFF tiles, the compressed history copy) happens before the file is locked
        write = raster_grid.prepared_write(definition, raster)
        tiles = gpkg_coverage.encode_tiles(write.grid)
        with self._transaction() as connection:
            when = self._backdated(connection, layer, at)
            stamp = when or now_utc()
            gpkg_coverage.write_coverage(
                connection, layer, write.grid, tiles, description=definition.title_zh, last_change=stamp
            )
            detail = backdated_detail(write.detail, when)
            audit_id = self._audit(connection, actor, layer, "write:raster", write.cells, detail, at=stamp)
            self._insert_version(connection, layer, stamp, audit_id, write.version)

    def _insert_version(
        self, connection: sqlite3.Connection, layer: str, at: str, audit_id: int | None, version: raster_grid.Version
    ) -> None:
        connection.execute(
            f"INSERT INTO {RASTER_VERSIONS_TABLE} (layer, at, audit_id, crs, width, height, transform, nodata, "
            "codec, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (layer, at, audit_id, *version.row()),
        )

    def read_raster(self, layer: str) -> RasterData:
        raster_layer(self.catalog, layer)
        with self._connect() as connection:
            # one read transaction: the description and the tiles come from the same version
            connection.execute("BEGIN")
            try:
                raster = gpkg_coverage.read_coverage(connection, layer)
            finally:
                connection.execute("COMMIT")
        if raster is None:
            raise NotFoundError(f"raster layer '{layer}' holds no data yet")
        return raster

    def read_raster_version(self, layer: str, at: datetime) -> RasterData:
        raster_layer(self.catalog, layer)
        with self._connect() as connection:
            row = connection.execute(
                # a version's time is its audit entry's (the log is the one record of when), else its own
                "SELECT v.crs, v.width, v.height, v.transform, v.nodata, v.codec, v.data "
                f"FROM {RASTER_VERSIONS_TABLE} v "
                f"LEFT JOIN {AUDIT_TABLE} a ON a.id = v.audit_id "
                "WHERE v.layer = ? AND coalesce(a.at, v.at) <= ? ORDER BY v.id DESC LIMIT 1",
                (layer, raster_grid.history_time(at)),
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"raster layer '{layer}' has no version written at or before {raster_grid.history_time(at)}"
            )
        return raster_grid.decode_version(raster_grid.Version.from_row(row))

    def has_raster(self, layer: str) -> bool:
        raster_layer(self.catalog, layer)
        with self._connect() as connection:
            return gpkg_coverage.has_coverage(connection, layer)

    def _migrate_legacy_rasters(self, connection: sqlite3.Connection) -> None:
        """Stores from before the tiled form kept each raster as one GeoTIFF blob: move each into a coverage and
        the history (dated by its last write), then drop the old table. Inside `init`'s transaction."""
        rows = connection.execute(f"SELECT name, updated_at, data FROM {LEGACY_RASTER_TABLE}").fetchall()
        for name, updated_at, data in rows:
            definition = raster_layer(self.catalog, name)
            grid = raster_grid.checked(definition, RasterData.from_geotiff(bytes(data), source=name))
            tiles = gpkg_coverage.encode_tiles(grid)
            gpkg_coverage.write_coverage(
                connection, name, grid, tiles, description=definition.title_zh, last_change=updated_at
            )
            audit = connection.execute(
                f"SELECT max(id) FROM {AUDIT_TABLE} WHERE layer = ? AND action = 'write:raster'", (name,)
            ).fetchone()
            self._insert_version(connection, name, updated_at, audit[0], raster_grid.encode_version(grid))
            log.info("migrated raster %s in %s to a tiled gridded coverage", name, self.path)
        connection.execute(f"DROP TABLE {LEGACY_RASTER_TABLE}")
        connection.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (LEGACY_RASTER_TABLE,))

    # -- audit --------------------------------------------------------------------------------------------

    def _audit(
        self,
        connection: sqlite3.Connection,
        actor: str,
        layer: str,
        action: str,
        count: int,
        detail: str,
        *,
        at: str | None = None,
    ) -> int | None:
        cursor = connection.execute(
            f"INSERT INTO {AUDIT_TABLE} (at, actor, layer, action, feature_count, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (at or now_utc(), actor, layer, action, count, detail),
        )
        return cursor.lastrowid

    def _backdated(self, connection: sqlite3.Connection, layer: str, at: datetime | None) -> str | None:
        """The checked audit time of a write as of `at` (`backdated_at`); None for a write made now."""
        if at is None:
            return None
        row = connection.execute(f"SELECT max(at) FROM {AUDIT_TABLE} WHERE layer = ?", (layer,)).fetchone()
        return backdated_at(at, layer=layer, latest=None if row[0] is None else str(row[0]))

    def _audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        start, end = query.window()
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("layer = ?", query.layer),
            ("actor = ?", query.actor),
            ("at >= ?", start),
            ("at <= ?", end),
            # the ids a write lists in its detail; json_each keeps the match exact (no LIKE wildcards)
            ("EXISTS (SELECT 1 FROM json_each(detail, '$.ids') WHERE json_each.value = ?)", query.feature_id),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        sql = f"SELECT at, actor, layer, action, feature_count, detail, id FROM {AUDIT_TABLE}"
        actions = query.actions()
        if actions is not None:
            clauses.append(f"action IN ({', '.join('?' for _ in actions)})")
            params.extend(actions)
        if query.hidden_layers:
            clauses.append(f"layer NOT IN ({', '.join('?' for _ in query.hidden_layers)})")
            params.extend(query.hidden_layers)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        with self._connect() as connection:
            rows = connection.execute(sql, (*params, query.limit, query.offset)).fetchall()
        return [AuditEntry.from_row(row) for row in rows]

    def vector_tile(self, layer: str, tile: TileKey, fields: Sequence[str], node: Node | None = None) -> bytes:
        definition = vector_layer(self.catalog, layer)
        names = check_tile_fields(definition, fields)
        try:
            return gpkg_tiles.vector_tile(self._reader(), definition, tile, names, node)
        except sqlite3.OperationalError:
            self._require_table(layer)  # a clear StoreError when the layer has no table (or R-tree) at all
            raise

    def layer_version(self, layer: str) -> int:
        row = self._reader().execute(f"SELECT max(id) FROM {AUDIT_TABLE} WHERE layer = ?", (layer,)).fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._readers_lock:
            for connection in self._readers:
                connection.close()
            self._readers.clear()
        self._local = threading.local()


def _sql_type(field: FieldDef) -> str:
    return _SQLITE_TYPES[field.type]


def _ogr_literal(value: Any) -> str:
    """A value as an OGR SQL literal. Strings are quoted with '' escaping, so user text cannot end the literal."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
