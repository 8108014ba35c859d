"""Where village-checklist records live: `geoplan_village_checklist`, a plain table in the store's database.

Like the project ledger's progress records (`ledger_store`), the table sits beside the layers (in the GeoPackage
file or in PostGIS) and is append-only: a later record for the same village, item and quarter supersedes the
earlier one. Every write leaves an entry in the store's audit log (`geoplan_audit`, as the pseudo-layer
`village_checklist`) in the same transaction.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
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
from geoplan.storage.audit_log import write_entry

__all__ = [
    "CHECKLIST_COLUMNS",
    "CHECKLIST_FIELDS",
    "CHECKLIST_LAYER",
    "CHECKLIST_TABLE",
    "CHECKLIST_TITLE",
    "CHECKLIST_TITLES",
    "create_checklist_table",
    "insert_checklist_records",
    "read_checklist_records",
    "replace_checklist_records",
]

CHECKLIST_TABLE = "geoplan_village_checklist"
CHECKLIST_LAYER = "village_checklist"
"""The layer name checklist records carry in the audit log (not a catalogue layer)."""

_metadata = MetaData()
checklist_table = Table(
    CHECKLIST_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("village_code", String(12), nullable=False),
    Column("quarter", String(6), nullable=False),
    Column("item", String(40), nullable=False),
    Column("state", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("recorded_by", String(MAX_ACTOR), nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("synthetic", Boolean, nullable=False),
    Index(f"ix_{CHECKLIST_TABLE}_village", "village_code", "item", "quarter", "id"),
)

CHECKLIST_TITLE = "村居检查记录（镇村发展现代化）"
CHECKLIST_TITLES = {
    "village_code": "村（社区）代码",
    "quarter": "季度",
    "item": "检查项",
    "state": "状态",
    "note": "说明",
    "recorded_by": "记录人",
    "recorded_at": "记录时间",
    "synthetic": "示意数据",
}
CHECKLIST_FIELDS = ["village_code", "quarter", "item", "state", "note", "recorded_by", "recorded_at", "synthetic"]
CHECKLIST_COLUMNS = ["record_id", *CHECKLIST_FIELDS]


def create_checklist_table(engine: Engine) -> None:
    """Idempotent; called by `init_store` so the table exists before any reader looks for it."""
    _metadata.create_all(engine)


def read_checklist_records(engine: Engine) -> pd.DataFrame:
    """Every record ordered by village, item, quarter and id; an empty frame with the columns when none."""
    if not inspect(engine).has_table(CHECKLIST_TABLE):
        return _typed(pd.DataFrame({name: [] for name in CHECKLIST_COLUMNS}))
    t = checklist_table
    query = select(t.c.id.label("record_id"), *(t.c[name] for name in CHECKLIST_FIELDS)).order_by(
        t.c.village_code, t.c.item, t.c.quarter, t.c.id
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return _typed(pd.DataFrame([dict(r) for r in rows], columns=CHECKLIST_COLUMNS))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["record_id"] = out["record_id"].astype("int64")
    out["synthetic"] = out["synthetic"].astype(bool)
    for name in ("village_code", "quarter", "item", "state", "note", "recorded_by", "recorded_at"):
        out[name] = out[name].astype(object)
    return out.reset_index(drop=True)


def _audit_entry(connection: Connection, *, actor: str, action: str, count: int, detail: dict[str, Any]) -> None:
    write_entry(connection, actor=actor, layer=CHECKLIST_LAYER, action=action, count=count, detail=detail)


def _as_feature(record_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A record shaped like an audited feature (id, properties, no geometry), so the viewer shows it alike."""
    return {"type": "Feature", "id": str(record_id), "properties": dict(row), "geometry": None}


def insert_checklist_records(engine: Engine, rows: list[dict[str, Any]], *, actor: str) -> list[int]:
    """Insert checked records and one audit entry listing them, in one transaction; returns the record ids."""
    create_checklist_table(engine)
    ids: list[int] = []
    with engine.begin() as connection:
        for row in rows:
            key = connection.execute(checklist_table.insert(), row).inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        detail = {
            "mode": "record",
            "ids": sorted({str(r["village_code"]) for r in rows}),
            "record_ids": ids,
            "after": [_as_feature(i, r) for i, r in zip(ids, rows, strict=True)][:50],
        }
        _audit_entry(connection, actor=actor, action="checklist:record", count=len(rows), detail=detail)
    return ids


def replace_checklist_records(engine: Engine, rows: list[dict[str, Any]], *, actor: str) -> int:
    """Replace the whole table (the demo loader): one transaction, one audit entry."""
    create_checklist_table(engine)
    with engine.begin() as connection:
        connection.execute(checklist_table.delete())
        if rows:
            connection.execute(checklist_table.insert(), rows)
        villages = sorted({str(r["village_code"]) for r in rows})
        detail = {"mode": "replace", "ids": villages[:50], "ids_truncated": len(villages) > 50, "records": len(rows)}
        _audit_entry(connection, actor=actor, action="checklist:load", count=len(rows), detail=detail)
    return len(rows)
