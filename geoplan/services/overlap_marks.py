"""Planners' resolution marks on conflict patches: accepted, to adjust, resolved — with a note and a name.

Marks live in `geoplan_patch_marks`, in the same database as the layers (the GeoPackage file or PostGIS), as
an append-only history: a new mark never overwrites an old one, so who decided what and when stays on record
(全过程留痕), and the current mark of a patch is simply its latest row. Marks refer to the stable patch id, so
they survive re-runs and edits of unrelated features; a patch that disappears keeps its history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

import geopandas as gpd
import pandas as pd
from sqlalchemy import Column, Engine, Integer, MetaData, RowMapping, String, Table, Text, func, select

from geoplan.actors import MAX_ACTOR
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf
from geoplan.storage import LayerStore, require_initialised
from geoplan.storage.audit_actions import MARKS_LAYER
from geoplan.storage.audit_log import ensure_audit_table, write_entry
from geoplan.storage.base import now_utc
from geoplan.storage.side_tables import side_table_engine

MarkStatus = Literal["accepted", "to_adjust", "resolved"]
STATUSES: tuple[MarkStatus, ...] = ("accepted", "to_adjust", "resolved")
STATUS_TITLES = {"accepted": "予以认可", "to_adjust": "需调整", "resolved": "已解决"}
MARKS_TABLE = "geoplan_patch_marks"
MAX_NOTE = 2000
MARK_COLUMNS = ["mark_status", "mark_note", "mark_actor", "mark_at"]

_PATCH_ID = re.compile(r"^[0-9a-f]{16}$")
_RULE_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline are fine in a note

_metadata = MetaData()
_marks = Table(
    MARKS_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patch_id", String(16), nullable=False, index=True),
    Column("rule", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("actor", String(MAX_ACTOR), nullable=False),
    Column("at", Text, nullable=False),
)


@dataclass(frozen=True)
class Mark:
    patch_id: str
    rule: str
    status: MarkStatus
    note: str
    actor: str
    at: str


class MarkRegistry:
    """The mark history of one store's database (SQLAlchemy engine: SQLite file or PostGIS)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)
        ensure_audit_table(engine)

    def mark(
        self,
        patch_id: str,
        *,
        rule: str,
        status: str,
        note: str,
        actor: str,
        rule_files: Sequence[Mapping[str, str]] = (),
    ) -> Mark:
        """Record a decision on a patch with its audit entry (one transaction); returns it as stored. Bad input
        raises InputError, nothing is written. `rule_files`: the name and SHA-256 of the rule files that
        produced the patch, kept in the audit entry."""
        mark = Mark(
            patch_id=_checked_patch_id(patch_id),
            rule=_checked(rule, "rule code", _RULE_CODE.fullmatch(rule or "") is not None),
            status=_checked_status(status),
            note=_checked_text(note, "note", MAX_NOTE, allow_empty=True),
            actor=_checked_text(actor, "actor", MAX_ACTOR, allow_empty=False, single_line=True),
            at=now_utc(),
        )
        detail = {
            "mode": "mark",
            "ids": [mark.patch_id],
            "patch_id": mark.patch_id,
            "rule": mark.rule,
            "status": mark.status,
            "status_zh": STATUS_TITLES[mark.status],
            "note": mark.note,
            "rule_files": [dict(f) for f in rule_files],
        }
        with self.engine.begin() as connection:
            connection.execute(_marks.insert(), [_row(mark)])
            write_entry(
                connection,
                actor=mark.actor,
                layer=MARKS_LAYER,
                action="mark:record",
                count=1,
                detail=detail,
                at=mark.at,
            )
        return mark

    def current(self) -> dict[str, Mark]:
        """The latest mark of every marked patch."""
        latest = select(func.max(_marks.c.id)).group_by(_marks.c.patch_id).scalar_subquery()
        query = select(_marks).where(_marks.c.id.in_(latest))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return {row["patch_id"]: _mark(row) for row in rows}

    def history(self, patch_id: str) -> list[Mark]:
        """Every mark of one patch, oldest first."""
        query = select(_marks).where(_marks.c.patch_id == _checked_patch_id(patch_id)).order_by(_marks.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_mark(row) for row in rows]

    def latest_id(self) -> int:
        """The newest mark's row id (0 without marks). The history is append-only, so every mark raises it:
        caches of marked patches key on it."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(_marks.c.id))).scalar() or 0)

    def close(self) -> None:
        self.engine.dispose()


def attach_marks(patches: gpd.GeoDataFrame, marks: Mapping[str, Mark]) -> gpd.GeoDataFrame:
    """A copy of `patches` with mark_status, mark_note, mark_actor and mark_at (None where unmarked)."""
    if "patch_id" not in patches.columns:
        raise InputError("not a conflict patch table: no 'patch_id' column")
    out = patches.copy()
    found = [marks.get(pid) for pid in out["patch_id"]]
    for column, attribute in zip(MARK_COLUMNS, ("status", "note", "actor", "at"), strict=True):
        values = [None if m is None else getattr(m, attribute) for m in found]
        out[column] = pd.Series(values, index=out.index, dtype=object)
    return out


def _checked(value: str, what: str, ok: bool) -> str:
    if not ok:
        raise InputError(f"invalid {what}: {value!r}")
    return value


def _checked_patch_id(patch_id: str) -> str:
    if not isinstance(patch_id, str) or not _PATCH_ID.fullmatch(patch_id):
        raise InputError(f"invalid patch id {patch_id!r}: patch ids are 16 hexadecimal digits")
    return patch_id


def _checked_status(status: str) -> MarkStatus:
    if status not in STATUSES:
        raise InputError(f"invalid status {status!r}: choose one of {', '.join(STATUSES)}")
    return cast(MarkStatus, status)


def _checked_text(value: str, what: str, limit: int, *, allow_empty: bool, single_line: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"the {what} must be text")
    text = value.replace("\r\n", "\n").strip()
    if not text and not allow_empty:
        raise InputError(f"the {what} must not be empty")
    if len(text) > limit:
        raise InputError(f"the {what} is {len(text)} characters long; at most {limit} are allowed")
    if _CONTROL.search(text) or (single_line and ("\n" in text or "\t" in text)):
        raise InputError(f"the {what} contains control characters")
    return text


def _row(mark: Mark) -> dict[str, str]:
    return {
        "patch_id": mark.patch_id,
        "rule": mark.rule,
        "status": mark.status,
        "note": mark.note,
        "actor": mark.actor,
        "at": mark.at,
    }


def _mark(row: RowMapping) -> Mark:
    return Mark(
        patch_id=str(row["patch_id"]),
        rule=str(row["rule"]),
        status=_checked_status(str(row["status"])),
        note=str(row["note"]),
        actor=str(row["actor"]),
        at=str(row["at"]),
    )


def mark_registry(store: LayerStore) -> MarkRegistry:
    """The marks table in the store's own database (created with the store; made here if a store predates it)."""
    require_initialised(store)
    return MarkRegistry(side_table_engine(store.url))


def marks_as_of(store: LayerStore, as_of: AsOf) -> dict[str, str]:
    """The status of every marked conflict patch at `as_of` (its latest mark then). The mark history is
    append-only and timed, so this is exact."""
    registry = mark_registry(store)  # creates the table if a store predates it
    try:
        with registry.engine.connect() as connection:
            rows = connection.execute(
                select(_marks.c.patch_id, _marks.c.status, _marks.c.at).order_by(_marks.c.id)
            ).all()
    finally:
        registry.close()
    out: dict[str, str] = {}
    for patch_id, status, at in rows:
        moment = datetime.fromisoformat(str(at))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if as_of.current or moment <= as_of.at:
            out[str(patch_id)] = str(status)
    return out
