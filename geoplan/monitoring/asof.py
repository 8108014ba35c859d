"""The layers as they were at an earlier moment, rebuilt from the store's audit log (全过程留痕).

Every write goes through the store and leaves an audit entry (`geoplan_audit`). Small writes (at most
`AUDIT_FEATURES_MAX` features) keep the features themselves: an append its new features, an update the
features before and after, a delete the features it removed. That is enough to undo them, so a layer as of
time T is rebuilt by taking today's layer and undoing, newest first, every audited change made after T.
Where undoing is impossible the layer is rebuilt forwards instead: from the newest whole-layer replace at or
before T whose features the audit kept (or from the empty layer before its first write), replaying each
later change up to T.

Either way each step is checked against the state it is applied to (an undone append's features must be
exactly what the layer holds, a deleted feature must be absent, …), so a store changed behind geoplan's back
is refused rather than reconstructed wrongly. When neither direction has the detail — a bulk import of more
than `AUDIT_FEATURES_MAX` features after T that replaced or appended to a layer — the answer is a clear
`InputError`, never a guess. Rasters need no replay: the store keeps every written version
(`read_raster_version`).

Dates are local: the plan's dates are Chinese administrative dates, so "as of 2026-06-30" is the end of that
day in China Standard Time (UTC+8), and a quarter ends at midnight after its last day there. Audit times are
stored in UTC and compared as instants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import geopandas as gpd
import pandas as pd

from geoplan.catalog import LayerDef
from geoplan.errors import InputError, NotFoundError
from geoplan.geojson import feature_strings, frame_from_geojson
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore
from geoplan.storage.base import AuditEntry, frame_from_records, vector_layer

__all__ = [
    "LOCAL_TZ",
    "AsOf",
    "as_of_date",
    "as_of_either",
    "as_of_now",
    "as_of_quarter",
    "layer_as_of",
    "parse_as_of",
    "raster_as_of",
    "replay_layer",
]

LOCAL_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the zone the plan's dates (quarters, case dates) are written in."""
_AUDIT_LIMIT = 10_000_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class AsOf:
    """The moment indicators describe. `current` means "the store as it is now": nothing is replayed."""

    at: datetime
    """An aware instant."""
    current: bool = False

    @property
    def local_date(self) -> date:
        return self.at.astimezone(LOCAL_TZ).date()

    @property
    def quarter(self) -> Quarter:
        """The quarter the moment falls in (local time)."""
        return Quarter.of(self.local_date)

    @property
    def iso(self) -> str:
        """The instant in UTC, in the audit log's format."""
        return self.at.astimezone(UTC).isoformat(timespec="seconds")


def as_of_now(now: datetime | None = None) -> AsOf:
    return AsOf(at=(now or datetime.now(UTC)).astimezone(UTC), current=True)


def as_of_date(day: date, *, now: datetime | None = None) -> AsOf:
    """The end of a local day (the first instant of the next day is not included)."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_TZ) - timedelta(microseconds=1)
    return _capped(end, what=f"date {day.isoformat()}", now=now)


def as_of_quarter(quarter: str | Quarter, *, now: datetime | None = None) -> AsOf:
    """The end of a quarter (local time); the current quarter, not over yet, means now."""
    q = quarter if isinstance(quarter, Quarter) else Quarter.parse(quarter)
    nxt = q.next()
    first_day_after = date(nxt.year, 3 * (nxt.q - 1) + 1, 1)
    end = datetime.combine(first_day_after, time(0), tzinfo=LOCAL_TZ) - timedelta(microseconds=1)
    current = as_of_now(now)
    if datetime.combine(date(q.year, 3 * (q.q - 1) + 1, 1), time(0), tzinfo=LOCAL_TZ) > current.at:
        raise InputError(
            f"quarter {q} has not begun yet; the current quarter is {current.quarter}",
            zh=f"{q} 尚未开始（当前为 {current.quarter}）：指标只能反映过去和现在。",
        )
    return current if end >= current.at else AsOf(at=end.astimezone(UTC))


def parse_as_of(value: str, *, now: datetime | None = None) -> AsOf:
    """`YYYY-MM-DD` (the end of that local day), an ISO date-time (local time unless it names its zone), or
    `now`. A moment in the future is refused: nothing is known about it yet."""
    raw = value.strip() if isinstance(value, str) else ""
    if raw.lower() == "now":
        return as_of_now(now)
    try:
        if _DATE.fullmatch(raw):
            return as_of_date(date.fromisoformat(raw), now=now)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None:
        raise InputError(f"invalid date {value!r}: write YYYY-MM-DD (e.g. 2026-06-30) or an ISO date-time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return _capped(moment, what=raw, now=now)


def as_of_either(
    as_of: str | None,
    quarter: str | None,
    *,
    names: tuple[str, str] = ("as_of", "quarter"),
    now: datetime | None = None,
) -> AsOf:
    """The moment a caller chose: a date or time (`parse_as_of`), or the end of a quarter; never both; now when
    neither. `names` are the two options as the caller spells them, for the error."""
    if as_of is not None and quarter is not None:
        raise InputError(f"give {names[0]} or {names[1]}, not both")
    if as_of is not None:
        return parse_as_of(as_of, now=now)
    if quarter is not None:
        return as_of_quarter(quarter, now=now)
    return as_of_now(now)


def _capped(moment: datetime, *, what: str, now: datetime | None) -> AsOf:
    current = as_of_now(now)
    if moment.astimezone(UTC) > current.at:
        if moment.astimezone(LOCAL_TZ).date() == current.local_date:
            return current  # the end of today: the store as it is
        raise InputError(
            f"{what} is in the future; indicators can only describe the past and the present",
            zh=f"{what} 在未来：指标只能反映过去和现在。",
        )
    return AsOf(at=moment.astimezone(UTC))


# --------------------------------------------------------------------------------------------- vector layers


class _CannotReplay(Exception):
    """The audit lacks what one direction of the replay needs (the message says what)."""


@dataclass(frozen=True)
class _Entry:
    at: datetime
    actor: str
    action: str
    count: int
    detail: dict[str, Any]

    def describe(self) -> str:
        return f"the {self.action} of {self.count} feature(s) by {self.actor} at {self.at.isoformat()}"


def layer_as_of(store: LayerStore, layer: str, as_of: AsOf) -> gpd.GeoDataFrame:
    """The layer's features as they were at `as_of` (EPSG:4490, catalogue columns, sorted by id when rebuilt)."""
    definition = vector_layer(store.catalog, layer)
    if as_of.current:
        return store.read(layer)
    entries = _audit(store, layer)
    if not entries or _entry(entries[-1]).at <= as_of.at:
        return store.read(layer)
    return replay_layer(definition, current=store.read(layer), entries=entries, at=as_of.at)


def replay_layer(
    definition: LayerDef, *, current: gpd.GeoDataFrame, entries: Sequence[AuditEntry], at: datetime
) -> gpd.GeoDataFrame:
    """The layer at `at`, from its current features and its audit entries (oldest first). Pure."""
    log = [_entry(e) for e in entries]
    later = [i for i, e in enumerate(log) if e.at > at]
    if later and later != list(range(later[0], len(log))):
        raise InputError(f"layer '{definition.name}': the audit log's times are out of order; cannot go back to {at}")
    if definition.id_field is None:
        raise InputError(f"layer '{definition.name}' has no id field, so its history cannot be replayed")
    try:
        return _sorted(_backward(definition, current, log, at), definition)
    except _CannotReplay as backward:
        try:
            return _sorted(_forward(definition, log, at), definition)
        except _CannotReplay as forward:
            raise InputError(
                f"layer '{definition.name}' cannot be reconstructed as of {at.isoformat()}: {backward} "
                f"(and rebuilding it forwards fails: {forward})",
                zh=f"图层“{definition.title_zh}”无法还原到 {at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}（北京时间）："
                "审计日志中缺少还原所需的记录。",
            ) from None


def _backward(definition: LayerDef, current: gpd.GeoDataFrame, log: list[_Entry], at: datetime) -> gpd.GeoDataFrame:
    """Undo, newest first, every change after `at`."""
    state = current
    first_later = next(i for i, e in enumerate(log) if e.at > at)
    for index in range(len(log) - 1, first_later - 1, -1):
        entry = log[index]
        action = entry.action
        if action == "write:append":
            after = _features(entry, "after")
            _expect_present(definition, state, after, entry)
            state = _without(definition, state, _ids(definition, after))
        elif action == "update":
            after, before = _features(entry, "after"), _features(entry, "before")
            _expect_present(definition, state, after, entry)
            state = _with(definition, _without(definition, state, _ids(definition, after)), before)
        elif action == "delete":
            before = _features(entry, "before")
            _expect_absent(definition, state, _ids(definition, before), entry)
            state = _with(definition, state, before)
        elif action == "write:replace":
            if index != 0:
                raise _CannotReplay(
                    f"{entry.describe()} replaced the whole layer, and the audit does not keep what it replaced"
                )
            if len(state) != entry.count:
                raise _CannotReplay(
                    f"the layer holds {len(state)} features, not the {entry.count} of {entry.describe()}"
                )
            if entry.detail.get("after") is not None:
                _expect_present(definition, state, _features(entry, "after"), entry)
            state = state.iloc[0:0]
        else:
            raise _CannotReplay(f"{entry.describe()} is not a change geoplan knows how to undo")
    return state


def _forward(definition: LayerDef, log: list[_Entry], at: datetime) -> gpd.GeoDataFrame:
    """Replay from the newest kept whole-layer state at or before `at` (or the empty layer) up to `at`."""
    upto = [e for e in log if e.at <= at]
    start = 0
    state = _empty(definition)
    for index in range(len(upto) - 1, -1, -1):
        if upto[index].action == "write:replace" and upto[index].detail.get("after") is not None:
            state = _frame(definition, _features(upto[index], "after"))
            start = index + 1
            break
    for entry in upto[start:]:
        if entry.action == "write:replace":
            state = _frame(definition, _features(entry, "after"))
        elif entry.action == "write:append":
            after = _features(entry, "after")
            _expect_absent(definition, state, _ids(definition, after), entry)
            state = _with(definition, state, after)
        elif entry.action == "update":
            after = _features(entry, "after")
            ids = _ids(definition, after)
            _expect_ids(definition, state, ids, entry)
            state = _with(definition, _without(definition, state, ids), after)
        elif entry.action == "delete":
            ids = _deleted_ids(entry)
            _expect_ids(definition, state, ids, entry)
            state = _without(definition, state, ids)
        else:
            raise _CannotReplay(f"{entry.describe()} is not a change geoplan knows how to replay")
    return state


def _audit(store: LayerStore, layer: str) -> list[AuditEntry]:
    """Every audit entry of a layer, oldest first."""
    return list(reversed(store.audit_log(limit=_AUDIT_LIMIT, layer=layer)))


def _entry(entry: AuditEntry) -> _Entry:
    moment = datetime.fromisoformat(entry.at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _Entry(moment, entry.actor, entry.action, int(entry.feature_count), dict(entry.detail or {}))


def _features(entry: _Entry, key: str) -> list[dict[str, Any]]:
    features = entry.detail.get(key)
    if not isinstance(features, list):
        raise _CannotReplay(f"the audit keeps no features of {entry.describe()} (it keeps them for small writes only)")
    return features


def _deleted_ids(entry: _Entry) -> list[str]:
    if isinstance(entry.detail.get("before"), list):
        return [str(f.get("id")) for f in entry.detail["before"]]
    ids = entry.detail.get("ids")
    if not isinstance(ids, list) or entry.detail.get("ids_truncated"):
        raise _CannotReplay(f"the audit does not list every id of {entry.describe()}")
    return [str(i) for i in ids]


def _ids(definition: LayerDef, features: list[dict[str, Any]]) -> list[str]:
    assert definition.id_field is not None
    return [str((f.get("properties") or {}).get(definition.id_field, f.get("id"))) for f in features]


def _frame(definition: LayerDef, features: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    if not features:
        return _empty(definition)
    frame = frame_from_geojson({"type": "FeatureCollection", "features": features}, source="audit log")
    return frame_from_records(definition, pd.DataFrame(frame.drop(columns="geometry")), frame.geometry.values)


def _empty(definition: LayerDef) -> gpd.GeoDataFrame:
    return frame_from_records(definition, pd.DataFrame(columns=definition.field_names), gpd.GeoSeries([]).values)


def _with(definition: LayerDef, state: gpd.GeoDataFrame, features: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    added = _frame(definition, features)
    if not len(state):
        return added
    if not len(added):
        return state
    combined = pd.concat([state, added], ignore_index=True)
    return frame_from_records(definition, pd.DataFrame(combined.drop(columns="geometry")), combined.geometry.values)


def _without(definition: LayerDef, state: gpd.GeoDataFrame, ids: list[str]) -> gpd.GeoDataFrame:
    assert definition.id_field is not None
    keep = ~state[definition.id_field].astype(str).isin(set(ids))
    return state[keep.to_numpy()].reset_index(drop=True)


def _expect_present(
    definition: LayerDef, state: gpd.GeoDataFrame, features: list[dict[str, Any]], entry: _Entry
) -> None:
    """The features an entry wrote must be exactly what the layer holds under their ids."""
    assert definition.id_field is not None
    ids = _ids(definition, features)
    _expect_ids(definition, state, ids, entry)
    rows = state[state[definition.id_field].astype(str).isin(set(ids)).to_numpy()]
    held = {
        str(f["id"]): f
        for f in (
            json.loads(s) for s in feature_strings(rows, fields=definition.field_names, id_field=definition.id_field)
        )
    }
    for feature_id, feature in zip(ids, features, strict=True):
        mine = held.get(feature_id)
        if (
            mine is None
            or mine.get("properties") != feature.get("properties")
            or mine.get("geometry") != feature.get("geometry")
        ):
            raise _CannotReplay(
                f"feature {feature_id} differs from what {entry.describe()} wrote: the layer was changed outside "
                "geoplan's audited writes"
            )


def _expect_ids(definition: LayerDef, state: gpd.GeoDataFrame, ids: list[str], entry: _Entry) -> None:
    assert definition.id_field is not None
    held = set(state[definition.id_field].astype(str))
    missing = [i for i in ids if i not in held]
    if missing:
        raise _CannotReplay(
            f"feature(s) {', '.join(missing[:5])} of {entry.describe()} are missing: the layer was changed outside "
            "geoplan's audited writes"
        )


def _expect_absent(definition: LayerDef, state: gpd.GeoDataFrame, ids: list[str], entry: _Entry) -> None:
    assert definition.id_field is not None
    present = sorted(set(ids) & set(state[definition.id_field].astype(str)))
    if present:
        raise _CannotReplay(
            f"feature(s) {', '.join(present[:5])} of {entry.describe()} are present where they cannot be: the layer "
            "was changed outside geoplan's audited writes"
        )


def _sorted(frame: gpd.GeoDataFrame, definition: LayerDef) -> gpd.GeoDataFrame:
    assert definition.id_field is not None
    order = frame[definition.id_field].astype(str).sort_values(kind="stable").index
    return frame.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------------------- rasters, marks


def raster_as_of(store: LayerStore, layer: str, as_of: AsOf) -> RasterData:
    """The raster at `as_of`: the version the store's raster history holds for that moment."""
    if as_of.current:
        return store.read_raster(layer)
    try:
        return store.read_raster_version(layer, as_of.at)
    except NotFoundError:
        writes = [_entry(e) for e in _audit(store, layer) if e.action == "write:raster"]
        if not writes:
            raise
        if writes[0].at > as_of.at:
            raise InputError(
                f"raster '{layer}' did not exist yet at {as_of.iso}: "
                f"it was first written at {writes[0].at.isoformat()}",
                zh=f"所选时点（{as_of.local_date.isoformat()}）数据尚未录入：栅格图层“{_title(store, layer)}”"
                f"最早于 {writes[0].at.astimezone(LOCAL_TZ):%Y-%m-%d} 写入，请选择此后的时点。",
            ) from None
        # a store migrated from the single-blob form keeps history only from its last write before migrating
        raise InputError(
            f"raster '{layer}' was written before {as_of.iso}, but the store's raster history starts later: "
            "that version was not kept",
            zh=f"所选时点（{as_of.local_date.isoformat()}）的栅格图层“{_title(store, layer)}”版本未保留，无法回溯。",
        ) from None


def _title(store: LayerStore, layer: str) -> str:
    """The layer's Chinese title for a message (its name when the catalogue does not know it)."""
    return store.catalog.get(layer).title_zh if layer in store.catalog else layer
