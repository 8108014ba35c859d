"""Where quarterly progress records live: `geoplan_project_progress`, a plain table in the store's database.

Like the conflict marks, the table sits beside the layers (in the GeoPackage file or in PostGIS) and is reached
through SQLAlchemy. It is append-only: a correction is a new record for the same quarter, which supersedes the
earlier one, so nothing recorded is ever overwritten. Every insert writes an entry into the store's audit log
(`geoplan_audit`, as the pseudo-layer `project_progress`) in the same transaction, so records appear in the
audit viewer beside the layer edits they cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)

from geoplan.actors import MAX_ACTOR
from geoplan.storage import LayerStore
from geoplan.storage.audit_log import ensure_audit_table, write_entry
from geoplan.storage.side_tables import side_table_engine

PROGRESS_TABLE = "geoplan_project_progress"
PROGRESS_LAYER = "project_progress"
"""The layer name progress records carry in the audit log (not a catalogue layer)."""

MAX_TEXT = 2000
MAX_UNIT = 100

_metadata = MetaData()
progress_table = Table(
    PROGRESS_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(32), nullable=False),
    Column("quarter", String(6), nullable=False),
    Column("progress_pct", Float(precision=53), nullable=False),
    Column("investment_to_date_wan", Float(precision=53)),
    Column("problems", Text, nullable=False),
    Column("responsible_unit", String(MAX_UNIT), nullable=False),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20)),
    Column("previous_progress_pct", Float(precision=53)),
    Column("note", Text, nullable=False),
    Column("recorded_by", String(MAX_ACTOR), nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("synthetic", Boolean, nullable=False),
    Index(f"ix_{PROGRESS_TABLE}_project", "project_id", "quarter", "id"),
)

RECORD_FIELDS = [
    "project_id",
    "quarter",
    "progress_pct",
    "investment_to_date_wan",
    "problems",
    "responsible_unit",
    "status",
    "previous_status",
    "previous_progress_pct",
    "note",
    "recorded_by",
    "recorded_at",
    "synthetic",
]
RECORD_COLUMNS = ["record_id", *RECORD_FIELDS]
RECORD_TITLES = {
    "project_id": "项目编号",
    "quarter": "季度",
    "progress_pct": "形象进度（%）",
    "investment_to_date_wan": "累计完成投资（万元）",
    "problems": "存在问题",
    "responsible_unit": "责任单位",
    "status": "状态",
    "previous_status": "原状态",
    "previous_progress_pct": "原形象进度（%）",
    "note": "说明",
    "recorded_by": "记录人",
    "recorded_at": "记录时间",
    "synthetic": "示意数据",
}
PROGRESS_TITLE = "项目季度进度记录"


def create_progress_table(engine: Engine) -> None:
    """Idempotent; called by `init_store` so the table exists before any reader looks for it."""
    _metadata.create_all(engine)
    ensure_audit_table(engine)


@contextmanager
def ledger_engine(engine_or_store: Engine | LayerStore) -> Iterator[Engine]:
    """The store's database as an SQLAlchemy engine (disposed afterwards when made here)."""
    if isinstance(engine_or_store, Engine):
        yield engine_or_store
        return
    engine = side_table_engine(engine_or_store.url)
    try:
        yield engine
    finally:
        engine.dispose()


def has_progress_table(engine: Engine) -> bool:
    return bool(inspect(engine).has_table(PROGRESS_TABLE))


def read_records(engine: Engine, *, project_id: str | None = None) -> pd.DataFrame:
    """Every record (oldest first within each project), or an empty frame with the columns."""
    if not has_progress_table(engine):
        return empty_records()
    table = progress_table
    query = select(table.c.id.label("record_id"), *(table.c[name] for name in RECORD_FIELDS))
    if project_id is not None:
        query = query.where(table.c.project_id == project_id)
    query = query.order_by(table.c.project_id, table.c.quarter, table.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    if not rows:
        return empty_records()
    return typed_records(pd.DataFrame([dict(r) for r in rows], columns=RECORD_COLUMNS))


def empty_records() -> pd.DataFrame:
    return typed_records(pd.DataFrame({name: [] for name in RECORD_COLUMNS}))


def typed_records(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["record_id"] = out["record_id"].astype("int64")
    for name in ("progress_pct", "investment_to_date_wan", "previous_progress_pct"):
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    out["synthetic"] = out["synthetic"].astype(bool)
    for name in ("project_id", "quarter", "problems", "responsible_unit", "status", "note", "recorded_by"):
        out[name] = out[name].astype(object)
    return out.reset_index(drop=True)


def record_feature(record_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A record shaped like an audited feature (id, properties, no geometry), so the viewer diffs it alike."""
    return {"type": "Feature", "id": str(record_id), "properties": dict(row), "geometry": None}


def audit_entry(
    connection: Connection, *, actor: str, action: str, count: int, detail: dict[str, Any], at: str | None = None
) -> None:
    write_entry(connection, actor=actor, layer=PROGRESS_LAYER, action=action, count=count, detail=detail, at=at)


def insert_record(engine: Engine, row: dict[str, Any], *, rule_files: list[dict[str, str]] | None = None) -> int:
    """Insert one record and its audit entry in one transaction; returns the record id. `rule_files`: the
    status flow file the record was checked against (name and SHA-256), kept in the entry."""
    with engine.begin() as connection:
        result = connection.execute(progress_table.insert(), row)
        key = result.inserted_primary_key
        assert key is not None
        record_id = int(key[0])
        detail = {
            "mode": "record",
            "ids": [row["project_id"]],
            "record_id": record_id,
            "quarter": row["quarter"],
            "after": [record_feature(record_id, row)],
        }
        if rule_files:
            detail["rule_files"] = rule_files
        audit_entry(connection, actor=row["recorded_by"], action="progress:record", count=1, detail=detail)
    return record_id


def withdraw_record(engine: Engine, record_id: int, row: dict[str, Any], *, reason: str) -> None:
    """Remove a record whose layer update failed; the audit keeps that it was written and withdrawn."""
    with engine.begin() as connection:
        connection.execute(progress_table.delete().where(progress_table.c.id == record_id))
        detail = {
            "mode": "withdraw",
            "ids": [row["project_id"]],
            "record_id": record_id,
            "quarter": row["quarter"],
            "reason": reason,
            "before": [record_feature(record_id, row)],
        }
        audit_entry(connection, actor=row["recorded_by"], action="progress:withdraw", count=1, detail=detail)


def replace_all_records(engine: Engine, rows: list[dict[str, Any]], *, actor: str) -> int:
    """Replace the whole table (the demo loader): one transaction, one audit entry."""
    create_progress_table(engine)
    with engine.begin() as connection:
        connection.execute(progress_table.delete())
        if rows:
            connection.execute(progress_table.insert(), rows)
        ids = sorted({str(r["project_id"]) for r in rows})
        detail = {"mode": "replace", "ids": ids[:50], "ids_truncated": len(ids) > 50, "records": len(rows)}
        audit_entry(connection, actor=actor, action="progress:load", count=len(rows), detail=detail)
    return len(rows)
