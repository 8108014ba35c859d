"""Indicator snapshots: every indicator recorded quarter by quarter, its history, and early warnings.

Snapshots live beside the layers in the store's own database (the GeoPackage file or PostGIS), in two plain
tables: `geoplan_indicator_snapshots` (one row per snapshot: its quarter, the moment its values describe,
when and by whom it was taken, the SHA-256 of the definitions file) and `geoplan_indicator_values` (the tidy
indicator rows of each snapshot, with the target that applied and the good direction at the time). Both are
append-only: a quarter may be recorded again (after a correction, or to see an edit's effect), and every
snapshot stays; the history lists them all, oldest first.

A snapshot of quarter Q describes the store at the end of Q (the audit log is replayed back to it), or now
while Q is not over yet. Early warnings compare a snapshot with the one before it: an indicator row that
misses its target, or that moved against its good direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from geoplan.actors import MAX_ACTOR
from geoplan.errors import InputError, NotFoundError
from geoplan.monitoring.indicator_columns import MEASURE_COLUMNS
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.storage import LayerStore
from geoplan.storage.audit_actions import SNAPSHOTS_LAYER
from geoplan.storage.audit_log import ensure_audit_table, write_entry
from geoplan.storage.base import now_utc
from geoplan.storage.side_tables import side_table_engine

if TYPE_CHECKING:
    from geoplan.monitoring.indicator_defs import IndicatorSet

__all__ = [
    "HISTORY_COLUMNS",
    "WARNING_COLUMNS",
    "Snapshot",
    "SnapshotRegistry",
    "create_snapshot_tables",
    "find_warnings",
    "history",
    "snapshot_registry",
    "warnings",
]

SNAPSHOTS_TABLE = "geoplan_indicator_snapshots"
VALUES_TABLE = "geoplan_indicator_values"
RELATIVE_TOLERANCE = 1e-9
"""A change smaller than this (relative, or absolute below 1) is no move: float noise never warns."""

_metadata = MetaData()
_snapshots = Table(
    SNAPSHOTS_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarter", String(6), nullable=False, index=True),
    Column("as_of", Text, nullable=False),
    Column("taken_at", Text, nullable=False),
    Column("actor", String(MAX_ACTOR), nullable=False),
    Column("definitions_sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
)
_values = Table(
    VALUES_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("snapshot_id", Integer, nullable=False),
    Column("indicator", String(64), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("scope_key", String(300), nullable=False),
    Column("value", Float(precision=53)),
    Column("value_ellipsoid", Float(precision=53)),
    Column("unit", String(20), nullable=False),
    Column("target", Float(precision=53)),
    Column("target_op", String(2), nullable=False),
    Column("target_year", Integer),
    Column("target_met", Boolean),
    Column("good_direction", String(8), nullable=False),
    Column("note", Text, nullable=False),
    Index(f"ix_{VALUES_TABLE}_indicator", "indicator", "scope_key", "snapshot_id"),
    Index(f"ix_{VALUES_TABLE}_snapshot", "snapshot_id"),
)

HISTORY_COLUMNS = ["snapshot_id", "quarter", "as_of", "taken_at", *MEASURE_COLUMNS, "note"]
WARNING_COLUMNS = [
    "snapshot_id",
    "quarter",
    "indicator",
    "scope",
    "scope_key",
    "warning",
    "value",
    "previous_value",
    "previous_snapshot_id",
    "unit",
    "target",
    "target_op",
    "target_year",
    "good_direction",
    "message",
]
"""`warning` is `target_missed` (the value misses the target that applies) or `wrong_direction` (it moved
against `good_direction` since the previous snapshot)."""


@dataclass(frozen=True)
class Snapshot:
    id: int
    quarter: str
    as_of: str
    taken_at: str
    actor: str
    definitions_sha256: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "quarter": self.quarter,
            "as_of": self.as_of,
            "taken_at": self.taken_at,
            "actor": self.actor,
            "definitions_sha256": self.definitions_sha256,
            "rows": self.rows,
        }


def create_snapshot_tables(engine: Engine) -> None:
    """Idempotent; `init_store` calls it, so the tables exist before any reader looks for them."""
    _metadata.create_all(engine)
    ensure_audit_table(engine)


class SnapshotRegistry:
    """The snapshot tables of one store's database (an SQLAlchemy engine on the SQLite file or PostGIS)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_snapshot_tables(engine)

    def record(
        self,
        table: pd.DataFrame,
        *,
        quarter: str,
        as_of: str,
        actor: str,
        definitions: IndicatorSet,
        rule_files: Sequence[Mapping[str, str]] = (),
        taken_at: str | None = None,
    ) -> Snapshot:
        """Store one evaluated indicator table as a snapshot, with its audit entry (one transaction).

        The entry names the definitions file and `rule_files` (name and SHA-256 of each rule file the run read),
        so a snapshot can be traced to the rules that made it. `taken_at` (UTC ISO) dates a snapshot of the
        demo's history on its synthetic report day; everyone else takes it now."""
        quarter = str(Quarter.parse(quarter))
        actor = _checked_actor(actor)
        directions = {d.id: d.good_direction for d in definitions}
        taken_at = taken_at or now_utc()
        with self.engine.begin() as connection:
            inserted = connection.execute(
                _snapshots.insert(),
                {
                    "quarter": quarter,
                    "as_of": as_of,
                    "taken_at": taken_at,
                    "actor": actor,
                    "definitions_sha256": definitions.sha256,
                    "rows": len(table),
                },
            )
            key = inserted.inserted_primary_key
            assert key is not None
            snapshot_id = int(key[0])
            rows = [
                {
                    "snapshot_id": snapshot_id,
                    "indicator": str(r["indicator"]),
                    "scope": str(r["scope"]),
                    "scope_key": str(r["scope_key"]),
                    "value": _number(r["value"]),
                    "value_ellipsoid": _number(r["value_ellipsoid"]),
                    "unit": str(r["unit"]),
                    "target": _number(r["target"]),
                    "target_op": str(r["target_op"] or ""),
                    "target_year": None if _number(r["target_year"]) is None else int(r["target_year"]),
                    "target_met": None if r["target_met"] is None else bool(r["target_met"]),
                    "good_direction": directions.get(str(r["indicator"]), "none"),
                    "note": str(r["note"] or ""),
                }
                for r in table.to_dict("records")
            ]
            if rows:
                connection.execute(_values.insert(), rows)
            files = [{"name": definitions.source, "sha256": definitions.sha256}, *(dict(f) for f in rule_files)]
            detail = {
                "mode": "snapshot",
                "ids": [str(snapshot_id)],
                "snapshot_id": snapshot_id,
                "quarter": quarter,
                "as_of": as_of,
                "rows": len(table),
                "rule_files": files,
            }
            write_entry(
                connection,
                actor=actor,
                layer=SNAPSHOTS_LAYER,
                action="snapshot:record",
                count=1,
                detail=detail,
                at=taken_at,
            )
        return Snapshot(snapshot_id, quarter, as_of, taken_at, actor, definitions.sha256, len(table))

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(_snapshots).order_by(_snapshots.c.id)).mappings().all()
        return [
            Snapshot(
                int(r["id"]),
                str(r["quarter"]),
                str(r["as_of"]),
                str(r["taken_at"]),
                str(r["actor"]),
                str(r["definitions_sha256"]),
                int(r["rows"]),
            )
            for r in rows
        ]

    def get(self, snapshot_id: int) -> Snapshot:
        for snapshot in self.snapshots():
            if snapshot.id == snapshot_id:
                return snapshot
        raise NotFoundError(f"no indicator snapshot {snapshot_id}")

    def values(self, snapshot_id: int) -> pd.DataFrame:
        """The rows of one snapshot (the tidy columns plus good_direction)."""
        query = select(_values).where(_values.c.snapshot_id == snapshot_id).order_by(_values.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return _value_frame([dict(r) for r in rows])

    def history(self, indicator: str, scope_key: str | None = None) -> pd.DataFrame:
        """Every recorded row of one indicator (of one scope key), oldest snapshot first (HISTORY_COLUMNS)."""
        query = (
            select(_values, _snapshots.c.quarter, _snapshots.c.as_of, _snapshots.c.taken_at)
            .join(_snapshots, _snapshots.c.id == _values.c.snapshot_id)
            .where(_values.c.indicator == indicator)
        )
        if scope_key is not None:
            query = query.where(_values.c.scope_key == scope_key)
        query = query.order_by(_values.c.snapshot_id, _values.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        frame = _value_frame([dict(r) for r in rows])
        for column in ("quarter", "as_of", "taken_at"):
            frame[column] = [str(r[column]) for r in rows]
        return frame[HISTORY_COLUMNS]

    def latest_id(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(_snapshots.c.id))).scalar() or 0)

    def close(self) -> None:
        self.engine.dispose()


def _checked_actor(actor: str) -> str:
    text = actor.strip() if isinstance(actor, str) else ""
    if not text or len(text) > MAX_ACTOR or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"the actor must be a single line of 1–{MAX_ACTOR} characters")
    return text


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _value_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["snapshot_id", *MEASURE_COLUMNS, "good_direction", "note"]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    for column in ("value", "value_ellipsoid", "target", "target_year"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["snapshot_id"] = frame["snapshot_id"].astype("int64")
    frame["target_met"] = frame["target_met"].astype(object).where(frame["target_met"].notna(), None)
    frame["target_met"] = [None if v is None else bool(v) for v in frame["target_met"]]
    return frame


def snapshot_registry(store: LayerStore) -> SnapshotRegistry:
    return SnapshotRegistry(side_table_engine(store.url))


# --------------------------------------------------------------------------------------------- history and warnings


def history(store: LayerStore, indicator: str, scope_key: str | None = None) -> pd.DataFrame:
    """Every snapshot's rows of one indicator (optionally one scope key), oldest first."""
    registry = snapshot_registry(store)
    try:
        return registry.history(indicator, scope_key)
    finally:
        registry.close()


def warnings(store: LayerStore, *, snapshot_id: int | None = None) -> pd.DataFrame:
    """The early warnings of a snapshot (default: the latest) against the snapshot before it (WARNING_COLUMNS).
    Without any snapshot the table is empty."""
    registry = snapshot_registry(store)
    try:
        shots = registry.snapshots()
        if snapshot_id is not None:
            registry.get(snapshot_id)  # NotFoundError for an unknown snapshot
        if not shots:
            return pd.DataFrame(columns=WARNING_COLUMNS)
        ids = [s.id for s in shots]
        chosen = ids[-1] if snapshot_id is None else snapshot_id
        position = ids.index(chosen)
        previous = registry.values(ids[position - 1]) if position > 0 else None
        current = registry.values(chosen)
        return find_warnings(
            current=current,
            previous=previous,
            snapshot=shots[position],
            previous_id=ids[position - 1] if position > 0 else None,
        )
    finally:
        registry.close()


def find_warnings(
    *, current: pd.DataFrame, previous: pd.DataFrame | None, snapshot: Snapshot, previous_id: int | None
) -> pd.DataFrame:
    """Warnings of one snapshot's rows (with good_direction), compared with the previous snapshot's rows."""
    before: dict[tuple[str, str, str], float] = {}
    if previous is not None:
        for r in previous.to_dict("records"):
            before[(str(r["indicator"]), str(r["scope"]), str(r["scope_key"]))] = float(r["value"])
    out: list[dict[str, Any]] = []
    for r in current.to_dict("records"):
        key = (str(r["indicator"]), str(r["scope"]), str(r["scope_key"]))
        value = float(r["value"])
        prior = before.get(key, math.nan)
        base = {
            "snapshot_id": snapshot.id,
            "quarter": snapshot.quarter,
            "indicator": key[0],
            "scope": key[1],
            "scope_key": key[2],
            "value": value,
            "previous_value": prior,
            "previous_snapshot_id": previous_id,
            "unit": r["unit"],
            "target": r["target"],
            "target_op": r["target_op"],
            "target_year": r["target_year"],
            "good_direction": r["good_direction"],
        }
        where = f"{key[0]}" + (f" [{key[2]}]" if key[2] else "")
        if r["target_met"] is False:
            due = (
                "" if math.isnan(float(r["target"])) or pd.isna(r["target_year"]) else f" (due {int(r['target_year'])})"
            )
            message = f"{where}: {value:g} {r['unit']} misses the target {r['target_op']} {float(r['target']):g}{due}"
            out.append({**base, "warning": "target_missed", "message": message})
        if _moved_wrong_way(value, prior, str(r["good_direction"])):
            direction = r["good_direction"]
            message = (
                f"{where}: moved from {prior:g} to {value:g} {r['unit']}, against the good direction ({direction})"
            )
            out.append({**base, "warning": "wrong_direction", "message": message})
    return pd.DataFrame(out, columns=WARNING_COLUMNS)


def _moved_wrong_way(value: float, prior: float, direction: str) -> bool:
    if direction not in ("up", "down") or math.isnan(value) or math.isnan(prior):
        return False
    change = value - prior
    if abs(change) <= RELATIVE_TOLERANCE * max(1.0, abs(prior)):
        return False
    return change < 0 if direction == "up" else change > 0
