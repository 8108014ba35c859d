"""Where scenarios (规划方案) are kept: three side tables in the store's own database, apart from the live layers.

A scenario is a named set of draft edits of vector layers. `geoplan_scenarios` holds one row per scenario (its
unique name, its author and the token it was made with, when); `geoplan_scenario_layers` the live version of
each layer when the scenario first touched it (`LayerStore.layer_version`); `geoplan_scenario_edits` one net
edit per feature: `create`, `replace` or `delete`, with the whole feature (properties and WKB geometry) so the
scenario stands on its own, and for a replacement or deletion the live feature it was drafted against (`base`),
which is what adoption checks for conflicts. Every change is audited under the pseudo-layer `scenarios`, in the
transaction of the change. Nothing here is public: the API shows a scenario to its author's role only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from geoplan.actors import MAX_ACTOR
from geoplan.errors import InputError, NotFoundError
from geoplan.storage import LayerStore
from geoplan.storage.audit_actions import SCENARIOS_LAYER
from geoplan.storage.audit_log import ensure_audit_table, write_entry
from geoplan.storage.base import AUDIT_TABLE, now_utc
from geoplan.storage.side_tables import side_table_engine

__all__ = [
    "EDIT_OPS",
    "EditOp",
    "FeatureEdit",
    "Scenario",
    "ScenarioRegistry",
    "scenario_registry",
]

EditOp = Literal["create", "replace", "delete"]
EDIT_OPS: tuple[EditOp, ...] = ("create", "replace", "delete")
OP_TITLES = {"create": "新增", "replace": "修改", "delete": "删除"}
MAX_NAME = 100
SCENARIOS_TABLE = "geoplan_scenarios"
LAYERS_TABLE = "geoplan_scenario_layers"
EDITS_TABLE = "geoplan_scenario_edits"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_metadata = MetaData()
_scenarios = Table(
    SCENARIOS_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_NAME), nullable=False, unique=True),
    Column("author", String(MAX_ACTOR), nullable=False),
    Column("token", String(MAX_ACTOR)),
    Column("created_at", Text, nullable=False),
)
_layers = Table(
    LAYERS_TABLE,
    _metadata,
    Column("scenario_id", Integer, primary_key=True),
    Column("layer", String(63), primary_key=True),
    Column("base_version", Integer, nullable=False),
)
_edits = Table(
    EDITS_TABLE,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scenario_id", Integer, nullable=False, index=True),
    Column("layer", String(63), nullable=False),
    Column("feature_id", Text, nullable=False),
    Column("op", String(10), nullable=False),
    Column("feature", Text),
    Column("base", Text),
    Column("at", Text, nullable=False),
    UniqueConstraint("scenario_id", "layer", "feature_id"),
)

Record = dict[str, Any]
"""A stored feature: {"properties": {field: plain value}, "wkb": hex} (`scenario_features` makes and reads them)."""


@dataclass(frozen=True)
class Scenario:
    """A scenario as stored. `bases`: layer -> the live layer version when the scenario first edited it."""

    id: int
    name: str
    author: str
    token: str | None
    created_at: str
    """UTC, ISO 8601 (show it with `beijing_time.shown_time`)."""
    bases: dict[str, int]
    edit_count: int


@dataclass(frozen=True)
class FeatureEdit:
    """One net edit of one feature: `feature` is None for a deletion, `base` None for a creation."""

    layer: str
    feature_id: str
    op: EditOp
    feature: Record | None
    base: Record | None
    id: int = 0


class ScenarioRegistry:
    """The scenarios of one store's database (SQLAlchemy engine: the GeoPackage as SQLite, or PostGIS)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)
        ensure_audit_table(engine)

    def create(self, name: str, *, author: str, token: str | None = None) -> Scenario:
        """A new, empty scenario; a name already taken is refused."""
        name = checked_name(name)
        author = _checked_actor(author)
        at = now_utc()
        try:
            with self.engine.begin() as connection:
                new_id = connection.execute(
                    _scenarios.insert().returning(_scenarios.c.id),
                    {"name": name, "author": author, "token": token, "created_at": at},
                ).scalar_one()
                detail = {"mode": "scenario", "ids": [name], "scenario": name, "token": token}
                write_entry(
                    connection, actor=author, layer=SCENARIOS_LAYER, action="scenario:create", count=0, detail=detail
                )
        except IntegrityError:
            raise InputError(
                f"a scenario named {name!r} exists already", zh=f"已有名为“{name}”的方案，请换一个名称。"
            ) from None
        return Scenario(int(new_id), name, author, token, at, {}, 0)

    def get(self, name: str) -> Scenario:
        """The scenario of that name, or NotFoundError (with the names there are)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(_scenarios).where(_scenarios.c.name == name)).mappings().first()
            if row is None:
                names = [r[0] for r in connection.execute(select(_scenarios.c.name).order_by(_scenarios.c.name))]
                known = ", ".join(names[:20]) or "none yet"
                raise NotFoundError(
                    f"no scenario named {name!r} (scenarios: {known})",
                    zh=f"没有名为“{name}”的方案（现有方案：{'、'.join(names[:20]) or '暂无'}）。",
                )
            return self._scenario(connection, row)

    def all(self, *, author: str | None = None) -> list[Scenario]:
        """Every scenario (or one author's), oldest first."""
        query = select(_scenarios).order_by(_scenarios.c.id)
        if author is not None:
            query = query.where(_scenarios.c.author == author)
        with self.engine.connect() as connection:
            return [self._scenario(connection, row) for row in connection.execute(query).mappings().all()]

    def edits(self, scenario: Scenario, layer: str | None = None) -> list[FeatureEdit]:
        """The scenario's net edits (of one layer when given), in the order they were made."""
        query = select(_edits).where(_edits.c.scenario_id == scenario.id).order_by(_edits.c.id)
        if layer is not None:
            query = query.where(_edits.c.layer == layer)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_edit(row) for row in rows]

    def put_edits(
        self,
        scenario: Scenario,
        layer: str,
        *,
        base_version: int,
        edits: Sequence[FeatureEdit],
        dropped: Sequence[str] = (),
        actor: str,
    ) -> None:
        """Store the net edits of `layer` (each replacing any earlier edit of its feature) and forget the edits of
        the `dropped` feature ids (a created feature deleted again), recording the layer's base version when the
        scenario touches it first. One transaction with its audit entry."""
        actor = _checked_actor(actor)
        at = now_utc()
        ids = [e.feature_id for e in edits]
        with self.engine.begin() as connection:
            known = connection.execute(
                select(_layers.c.layer).where(_layers.c.scenario_id == scenario.id, _layers.c.layer == layer)
            ).first()
            if known is None:
                connection.execute(
                    _layers.insert(), {"scenario_id": scenario.id, "layer": layer, "base_version": base_version}
                )
            stale = [*ids, *dropped]
            for start in range(0, len(stale), 500):
                connection.execute(
                    delete(_edits).where(
                        _edits.c.scenario_id == scenario.id,
                        _edits.c.layer == layer,
                        _edits.c.feature_id.in_(stale[start : start + 500]),
                    )
                )
            if edits:
                connection.execute(_edits.insert(), [_edit_row(scenario.id, e, at) for e in edits])
            ops = {op: sum(e.op == op for e in edits) for op in EDIT_OPS}
            detail = {
                "mode": "scenario",
                "ids": [scenario.name],
                "scenario": scenario.name,
                "layer": layer,
                "features": ids[:50],
                "ops": ops,
                "dropped": list(dropped)[:50],
            }
            write_entry(
                connection,
                actor=actor,
                layer=SCENARIOS_LAYER,
                action="scenario:edit",
                count=len(ids) + len(dropped),
                detail=detail,
                at=at,
            )

    def discard(self, scenario: Scenario, *, actor: str) -> None:
        """Drop the scenario and its edits (audited); the live layers are untouched."""
        actor = _checked_actor(actor)
        with self.engine.begin() as connection:
            if connection.execute(delete(_scenarios).where(_scenarios.c.id == scenario.id)).rowcount != 1:
                raise NotFoundError(f"scenario {scenario.name!r} is gone", zh=f"方案“{scenario.name}”已不存在。")
            connection.execute(delete(_layers).where(_layers.c.scenario_id == scenario.id))
            connection.execute(delete(_edits).where(_edits.c.scenario_id == scenario.id))
            detail = {"mode": "scenario", "ids": [scenario.name], "scenario": scenario.name}
            write_entry(
                connection,
                actor=actor,
                layer=SCENARIOS_LAYER,
                action="scenario:discard",
                count=scenario.edit_count,
                detail=detail,
            )

    def close(self) -> None:
        self.engine.dispose()

    def _scenario(self, connection: Connection, row: RowMapping) -> Scenario:
        bases = connection.execute(
            select(_layers.c.layer, _layers.c.base_version).where(_layers.c.scenario_id == row["id"])
        ).all()
        count = connection.execute(
            select(func.count()).select_from(_edits).where(_edits.c.scenario_id == row["id"])
        ).scalar_one()
        return Scenario(
            id=int(row["id"]),
            name=str(row["name"]),
            author=str(row["author"]),
            token=None if row["token"] is None else str(row["token"]),
            created_at=str(row["created_at"]),
            bases={str(layer): int(version) for layer, version in bases},
            edit_count=int(count),
        )


def adoption_statements(
    scenario: Scenario, *, actor: str, detail: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The side-table statements that end an adopted scenario: drop its rows and audit the adoption. Plain SQL
    with named parameters, for `EditBatches.apply_edits(after=…)`: they commit with the layer edits, or not at all."""
    actor = _checked_actor(actor)
    key = {"id": scenario.id}
    entry = {
        "at": now_utc(),
        "actor": actor,
        "layer": SCENARIOS_LAYER,
        "action": "scenario:adopt",
        "count": scenario.edit_count,
        "detail": json.dumps(dict(detail), ensure_ascii=False),
    }
    return [
        (f"DELETE FROM {EDITS_TABLE} WHERE scenario_id = :id", key),
        (f"DELETE FROM {LAYERS_TABLE} WHERE scenario_id = :id", key),
        (f"DELETE FROM {SCENARIOS_TABLE} WHERE id = :id", key),
        (
            f"INSERT INTO {AUDIT_TABLE} (at, actor, layer, action, feature_count, detail) "
            "VALUES (:at, :actor, :layer, :action, :count, :detail)",
            entry,
        ),
    ]


def scenario_registry(store: LayerStore) -> ScenarioRegistry:
    """The registry in `store`'s own database. The caller closes it."""
    return ScenarioRegistry(side_table_engine(store.url))


def checked_name(name: str) -> str:
    """A scenario name: one line of 1 to MAX_NAME characters."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME or _CONTROL.search(text):
        raise InputError(
            f"a scenario name is one line of 1 to {MAX_NAME} characters, not {name!r}",
            zh=f"方案名称应为一行文字，1 至 {MAX_NAME} 个字符。",
        )
    return text


def _checked_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR or _CONTROL.search(actor):
        raise InputError(f"the actor must be one line of 1 to {MAX_ACTOR} characters")
    return actor.strip()


def _edit_row(scenario_id: int, edit: FeatureEdit, at: str) -> dict[str, Any]:
    return {
        "scenario_id": scenario_id,
        "layer": edit.layer,
        "feature_id": edit.feature_id,
        "op": edit.op,
        "feature": None if edit.feature is None else json.dumps(edit.feature, ensure_ascii=False),
        "base": None if edit.base is None else json.dumps(edit.base, ensure_ascii=False),
        "at": at,
    }


def _edit(row: RowMapping) -> FeatureEdit:
    return FeatureEdit(
        layer=str(row["layer"]),
        feature_id=str(row["feature_id"]),
        op=cast(EditOp, row["op"]),
        feature=None if row["feature"] is None else json.loads(row["feature"]),
        base=None if row["base"] is None else json.loads(row["base"]),
        id=int(row["id"]),
    )
