"""Audit entries for the side tables, written on the side table's own connection, inside its transaction.

The stores write layer entries themselves. Marks, progress records, snapshots and tokens live in plain tables
of the same database, reached through SQLAlchemy (`side_tables.side_table_engine`); each inserts its entry here
in the transaction of its write, so a write and its entry are kept or lost together, in both backends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, Engine, Index, Integer, MetaData, Table, Text

from geoplan.storage.base import AUDIT_TABLE, now_utc

__all__ = ["ensure_audit_table", "write_entry"]

# The same columns as the stores' own definition (storage/gpkg.py, storage/postgis.py): a store made later keeps
# the table, and a bare database (a test's SQLite file) gets one that the stores would accept.
_audit = Table(
    AUDIT_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("layer", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("feature_count", Integer, nullable=False),
    Column("detail", Text),
    Index(f"ix_{AUDIT_TABLE}_layer", "layer", "id"),
    sqlite_autoincrement=True,
)


def ensure_audit_table(engine: Engine) -> None:
    """Idempotent: the registries call it, so their writes never meet a database without the log."""
    _audit.metadata.create_all(engine, checkfirst=True)


def write_entry(
    connection: Connection,
    *,
    actor: str,
    layer: str,
    action: str,
    count: int,
    detail: Mapping[str, Any],
    at: str | None = None,
) -> None:
    """One entry, on the caller's connection (so in the caller's transaction); `at` defaults to now (UTC)."""
    connection.execute(
        _audit.insert(),
        {
            "at": at or now_utc(),
            "actor": actor,
            "layer": layer,
            "action": action,
            "feature_count": count,
            "detail": json.dumps(dict(detail), ensure_ascii=False),
        },
    )
