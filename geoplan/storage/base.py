"""The one storage interface every capability reads and writes layers through.

Two backends implement it: `GeoPackageStore` (an embedded file, the default) and `PostGISStore`. Both keep
vector layers in EPSG:4490 in tables made from the catalogue, rasters in the standard tiled form of each (an OGC
gridded coverage in the GeoPackage, postgis_raster tiles in PostGIS) with every written version kept in
`geoplan_raster_versions`, and an audit log of every write. A write is all or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geoplan.beijing_time import BEIJING
from geoplan.catalog import Catalog, LayerDef
from geoplan.crs import STORE_CRS
from geoplan.errors import InputError, NotFoundError
from geoplan.geojson import feature_strings
from geoplan.rasterdata import RasterData
from geoplan.storage.audit_actions import actions_of
from geoplan.storage.tile_matrix import TileKey

WriteMode = Literal["replace", "append"]
Bounds = tuple[float, float, float, float]
AUDIT_TABLE = "geoplan_audit"


@dataclass(frozen=True)
class LayerSummary:
    """What `geoplan layers` prints for one layer."""

    name: str
    kind: str
    count: int
    crs: str
    bounds: Bounds | None


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change (全过程留痕): who changed which layer, when, how."""

    at: str
    actor: str
    layer: str
    action: str
    feature_count: int
    detail: dict[str, Any]
    id: int = 0
    """The entry's number: it grows with every write, so it orders entries and pages through them."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuditEntry:
        """An entry from a row of (at, actor, layer, action, feature_count, detail, id), as both backends read it."""
        return cls(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), int(row[6]))


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries to return, newest first. Every filter is optional; all given must hold.

    `feature_id` matches the ids a write lists in its detail (writes of more than AUDIT_FEATURES_MAX features
    list only the first ones). `action` is a kind of action (`mark`, `token`, …) or one action
    (`token:revoke`), as `audit_actions` lists them. `since` and `until` are ISO dates or times; dates and
    times without an offset are Beijing time (the time people read), and a date-only `until` takes in that
    whole day.
    """

    limit: int = 100
    offset: int = 0
    layer: str | None = None
    actor: str | None = None
    feature_id: str | None = None
    since: str | None = None
    until: str | None = None
    action: str | None = None
    hidden_layers: tuple[str, ...] = ()
    """Layers whose entries are left out in the query itself (those a role may not see), so that `limit`
    counts only the entries the caller gets."""

    def __post_init__(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise InputError("limit and offset must not be negative")
        if self.action is not None:
            actions_of(self.action)  # an unknown kind is refused before any query runs

    def actions(self) -> tuple[str, ...] | None:
        """The actions the `action` filter selects (None: every action)."""
        return None if self.action is None or not self.action.strip() else actions_of(self.action)

    def window(self) -> tuple[str | None, str | None]:
        """`since`/`until` as text comparable with the stored `at` (UTC, to the second)."""
        return _audit_time(self.since, end_of_day=False), _audit_time(self.until, end_of_day=True)


def _audit_time(text: str | None, *, end_of_day: bool) -> str | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 10:  # a date: YYYY-MM-DD, a Beijing day
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=BEIJING)
            moment = day.replace(hour=23, minute=59, second=59) if end_of_day else day
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment
    except ValueError:
        raise InputError(
            f"invalid time {text!r}: use an ISO date or time, e.g. 2024-05-01 or 2024-05-01T08:00+08:00",
            zh=f"时间“{text}”无法识别：请写日期或时间，如 2024-05-01 或 2024-05-01T08:00+08:00（北京时间）。",
        ) from None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class AuditReader(Protocol):
    """The audit-log half of a store. Both backends inherit `audit_log`, so the keyword filters become one
    validated `AuditQuery` in one place and each backend only runs it."""

    def audit_log(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        layer: str | None = None,
        actor: str | None = None,
        feature_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        action: str | None = None,
        hidden_layers: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """Audit entries, newest first, filtered as `AuditQuery` describes."""
        return self._audit_entries(
            AuditQuery(limit, offset, layer, actor, feature_id, since, until, action, tuple(hidden_layers))
        )

    def _audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """The backend's own query for `audit_log`."""
        ...


@dataclass(frozen=True)
class LayerEdits:
    """Feature edits of one vector layer, for `EditBatches.apply_edits`: new features, replacements of existing
    ones (matched by id) and ids to delete. Frames are validated and in EPSG:4490, as `write` wants them."""

    layer: str
    creates: gpd.GeoDataFrame | None = None
    replaces: gpd.GeoDataFrame | None = None
    deletes: tuple[str, ...] = ()


FeatureReader = Callable[[str, list[str]], gpd.GeoDataFrame]
"""Reads the features of a layer with the given ids, inside a transaction (`apply_edits`' guard gets one)."""
SideStatement = tuple[str, Mapping[str, Any]]
"""Plain SQL with :named parameters on the store's side tables, run in `apply_edits`' transaction after the edits."""


@runtime_checkable
class EditBatches(Protocol):
    """A store that applies edits of several layers as one write: both backends are one."""

    def apply_edits(
        self,
        edits: Sequence[LayerEdits],
        *,
        actor: str,
        guard: Callable[[FeatureReader], None] | None = None,
        after: Sequence[SideStatement] = (),
    ) -> dict[str, int]:
        """Apply every edit in ONE transaction: all land or none. `guard` runs first, inside the transaction
        (the store locked against other writers), with a reader of the features as they are then; whatever it
        raises rolls everything back. The `after` statements run last, in the same transaction (a scenario's
        own rows, dropped as it is adopted). Each layer's creates, replacements and deletes are audited as
        `write:append`, `update` and `delete` entries, as the one-layer writes are. Returns the features written
        per layer."""
        ...


@runtime_checkable
class LayerStore(AuditReader, Protocol):
    """Read and write catalogue layers. Implementations must be all-or-nothing on every write."""

    catalog: Catalog
    url: str

    def init(self) -> None:
        """Create every missing catalogue table (idempotent)."""

    def is_initialised(self) -> bool: ...

    def read(
        self, layer: str, *, bbox: Bounds | None = None, where: Mapping[str, Any] | None = None
    ) -> gpd.GeoDataFrame:
        """Features of a vector layer in EPSG:4490, catalogue columns in order plus `geometry`."""
        ...

    def read_batches(self, layer: str, *, rows: int) -> Iterator[gpd.GeoDataFrame]:
        """The whole layer as `read` gives it, in store order, `rows` features at a time: for layers too big to
        hold, only one batch is in memory at once."""
        ...

    def write(
        self,
        layer: str,
        frame: gpd.GeoDataFrame,
        *,
        mode: WriteMode = "replace",
        actor: str = "system",
        at: datetime | None = None,
    ) -> int:
        """Replace or append features; returns how many were written. Either all land or none. `at` writes the
        version as of a past instant (the demo and history imports only; see `backdated_at`)."""
        ...

    def count(self, layer: str) -> int: ...

    def bounds(self, layer: str) -> Bounds | None: ...

    def read_raster(self, layer: str) -> RasterData:
        """The raster as last written: float32, in the catalogue's raster CRS."""
        ...

    def read_raster_version(self, layer: str, at: datetime) -> RasterData:
        """The raster as it was at `at` (an aware instant): the newest version written at or before it.
        NotFoundError when none was (the history starts with the first write, or a migrated store's last one)."""
        ...

    def write_raster(
        self, layer: str, raster: RasterData, *, actor: str = "system", at: datetime | None = None
    ) -> None:
        """Replace the raster (checked by `raster_grid.checked`: 2-D, north-up, the catalogue's CRS, finite or
        nodata, cast to float32) and keep the version in the history. Audited as `write:raster`."""
        ...

    def has_raster(self, layer: str) -> bool: ...

    def update_features(
        self, layer: str, frame: gpd.GeoDataFrame, *, actor: str = "system", at: datetime | None = None
    ) -> int:
        """Replace existing features, matched by id; all must exist. The audit keeps before and after."""
        ...

    def delete_features(self, layer: str, ids: list[str], *, actor: str = "system", at: datetime | None = None) -> int:
        """Delete features by id; all must exist. The audit keeps what was deleted."""
        ...

    def vector_tile(self, layer: str, tile: TileKey, fields: Sequence[str], node: Any = None) -> bytes:
        """The layer's features in one WebMercatorQuad tile as a Mapbox Vector Tile: one MVT layer named after
        the layer, each feature with the catalogue `fields` given (missing values left out), selected and
        clipped as `geoplan.storage.mvt` describes. `node`, a checked CQL2 filter (`geoplan.cql2.parse_filter`),
        keeps only the features it selects, as the items endpoint's `filter` does. b"" when none is left."""
        ...

    def layer_version(self, layer: str) -> int:
        """A number that changes with every write to the layer (the id of its latest audit entry; 0 if none).

        Caches and ETags key on it, so they stay right even when another process wrote to the store.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class FilterPushdown(Protocol):
    """A store that evaluates checked CQL2 filters itself (PostGIS: as bound SQL). Others are filtered on the
    frame they return, with `geoplan.cql2.frame_mask`."""

    def filter_rows(self, layer: str, node: Any) -> tuple[int, np.ndarray]:
        """(layer version, positions in `read` order of the selected features)."""
        ...


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def vector_layer(catalog: Catalog, name: str) -> LayerDef:
    layer = catalog.get(name)
    if layer.kind != "vector":
        raise InputError(f"layer '{name}' is a {layer.kind} layer, not a vector layer")
    return layer


def raster_layer(catalog: Catalog, name: str) -> LayerDef:
    layer = catalog.get(name)
    if layer.kind != "raster":
        raise InputError(f"layer '{name}' is a {layer.kind} layer, not a raster layer")
    return layer


def check_batch_rows(rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InputError(f"batch rows must be a positive integer, not {rows!r}")


def check_tile_fields(layer: LayerDef, fields: Sequence[str]) -> list[str]:
    """The fields a tile carries: catalogue fields only (their names reach SQL)."""
    for name in fields:
        layer.field(name)  # raises NotFoundError for anything else
    return list(fields)


def check_where(layer: LayerDef, where: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only catalogue fields may be filtered on: field names reach SQL, so they must be known identifiers."""
    where = dict(where or {})
    for name in where:
        layer.field(name)  # raises NotFoundError for anything else
    return where


def rows_for_write(layer: LayerDef, frame: gpd.GeoDataFrame) -> tuple[list[list[Any]], np.ndarray]:
    """Attribute rows (plain Python values, None for missing) and the geometry array, checked for the store.

    The store trusts validated frames but still refuses the two mistakes that would corrupt it silently:
    a frame in another CRS and a frame missing catalogue columns.
    """
    if frame.crs is None or not CRS.from_user_input(frame.crs).equals(CRS.from_user_input(STORE_CRS)):
        raise InputError(f"layer '{layer.name}': frames must be in {STORE_CRS} to be stored, not {frame.crs}")
    missing = [name for name in layer.field_names if name not in frame.columns]
    if missing:
        raise InputError(f"layer '{layer.name}': missing column(s) {', '.join(missing)}")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if len(geoms) and (shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any()):
        raise InputError(f"layer '{layer.name}': every feature needs a non-empty geometry")
    columns = []
    for field in layer.fields:
        values = frame[field.name].astype(object).where(frame[field.name].notna(), None)
        columns.append([_plain(v, field.type) for v in values])
    rows = [list(r) for r in zip(*columns, strict=True)] if columns else [[] for _ in range(len(frame))]
    return rows, geoms


def _plain(value: Any, ftype: str) -> Any:
    """numpy scalars -> Python scalars, as the database drivers expect."""
    if value is None:
        return None
    if ftype == "integer":
        return int(value)
    if ftype == "float":
        return float(value)
    if ftype == "boolean":
        return bool(value)
    return str(value)


def frame_from_records(layer: LayerDef, records: pd.DataFrame, geometry: np.ndarray) -> gpd.GeoDataFrame:
    """Build the uniform result frame: catalogue columns in order, typed, plus `geometry` in EPSG:4490."""
    data: dict[str, Any] = {}
    for field in layer.fields:
        column = records[field.name] if field.name in records.columns else pd.Series([None] * len(records))
        data[field.name] = _typed(column.reset_index(drop=True), field.type)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs=STORE_CRS), crs=STORE_CRS)


def empty_frame(layer: LayerDef) -> gpd.GeoDataFrame:
    """A layer's frame with no features: its columns and types, as `read` gives them."""
    return frame_from_records(layer, pd.DataFrame(), np.empty(0, dtype=object))


def _typed(column: pd.Series, ftype: str) -> pd.Series:
    if ftype == "integer":
        return column.astype("Int64")
    if ftype == "float":
        return pd.to_numeric(column, errors="coerce").astype("float64")
    if ftype == "boolean":
        return column.astype("boolean")
    return column.astype(object).where(column.notna(), None)


AUDIT_FEATURES_MAX = 50
"""Writes of up to this many features keep the features themselves (before and after) in the audit log."""


def _feature_dicts(frame: gpd.GeoDataFrame | None, layer: LayerDef) -> list[dict[str, Any]] | None:
    if frame is None or len(frame) > AUDIT_FEATURES_MAX:
        return None
    return [json.loads(f) for f in feature_strings(frame, fields=layer.field_names, id_field=layer.id_field)]


def audit_detail(frame: gpd.GeoDataFrame, layer: LayerDef, mode: str, *, before: gpd.GeoDataFrame | None = None) -> str:
    """What a write did: mode, ids (capped), bounds and, for small writes, the features before and after."""
    ids: list[str] = []
    if layer.id_field and len(frame):
        ids = [str(v) for v in frame[layer.id_field].head(AUDIT_FEATURES_MAX)]
    bounds = [float(v) for v in frame.total_bounds] if len(frame) else None
    detail: dict[str, Any] = {
        "mode": mode,
        "ids": ids,
        "ids_truncated": len(frame) > AUDIT_FEATURES_MAX,
        "bounds": bounds,
        "after": _feature_dicts(frame, layer) if mode != "delete" else None,
    }
    if before is not None:
        detail["before"] = _feature_dicts(before, layer)
    return json.dumps(detail, ensure_ascii=False)


def require_ids(layer: LayerDef, frame: gpd.GeoDataFrame) -> list[str]:
    """The id values of a frame meant to change existing features (the layer must have an id field)."""
    if layer.id_field is None:
        raise InputError(f"layer '{layer.name}' has no id field, so its features cannot be edited one by one")
    ids = [str(v) for v in frame[layer.id_field]]
    if len(set(ids)) != len(ids):
        raise InputError(f"layer '{layer.name}': the same {layer.id_field} appears twice in one edit")
    return ids


def edit_parts(layer: LayerDef, edits: LayerEdits) -> tuple[list[str], gpd.GeoDataFrame | None]:
    """The ids that must exist before the edit and are removed first (replaced and deleted) and the frame
    inserted after (creates then replacements), checked: a feature edited twice in one batch is refused."""
    replaced = require_ids(layer, edits.replaces) if edits.replaces is not None and len(edits.replaces) else []
    created = require_ids(layer, edits.creates) if edits.creates is not None and len(edits.creates) else []
    deleted = [str(v) for v in edits.deletes]
    if edits.deletes and layer.id_field is None:
        raise InputError(f"layer '{layer.name}' has no id field, so its features cannot be deleted one by one")
    every = [*created, *replaced, *deleted]
    if len(set(every)) != len(every):
        raise InputError(f"layer '{layer.name}': one feature is edited twice in one batch")
    frames = [f for f in (edits.creates, edits.replaces) if f is not None and len(f)]
    inserted = pd.concat(frames, ignore_index=True) if frames else None
    return [*replaced, *deleted], inserted


def edit_audits(layer: LayerDef, edits: LayerEdits, before: gpd.GeoDataFrame) -> list[tuple[str, int, str]]:
    """(action, feature count, detail) of the audit entries one layer's edits make, as the one-layer writes
    would: `write:append` for new features, `update` (with before) for replacements, `delete` for deletions."""
    entries: list[tuple[str, int, str]] = []
    ids = before[layer.id_field].astype(str) if layer.id_field and len(before) else pd.Series(dtype=object)
    if edits.creates is not None and len(edits.creates):
        entries.append(("write:append", len(edits.creates), audit_detail(edits.creates, layer, "append")))
    if edits.replaces is not None and len(edits.replaces):
        replaced = before[ids.isin(require_ids(layer, edits.replaces)).to_numpy()]
        entries.append(("update", len(edits.replaces), audit_detail(edits.replaces, layer, "update", before=replaced)))
    if edits.deletes:
        deleted = before[ids.isin([str(v) for v in edits.deletes]).to_numpy()]
        entries.append(("delete", len(deleted), audit_detail(deleted, layer, "delete", before=deleted)))
    return entries


def check_all_found(layer: LayerDef, wanted: list[str], found: gpd.GeoDataFrame) -> None:
    assert layer.id_field is not None
    missing = sorted(set(wanted) - {str(v) for v in found[layer.id_field]})
    if missing:
        raise NotFoundError(f"layer '{layer.name}' has no feature with {layer.id_field} {', '.join(missing[:10])}")


def backdated_at(at: datetime | None, *, layer: str, latest: str | None) -> str | None:
    """The audit time of a write "as of" a past instant `at` (None: now). Only the demo and imports of a layer's
    history write so (no API caller can: the routers never pass `at`); the write is audited at `at` and its
    detail says it was back-dated and when it was really made (`backdated_detail`).

    `at` must be aware, not in the future, and not before the layer's newest audit entry (`latest`): the as-of
    replay undoes the log newest first, so its times must keep the order of its entries.
    """
    if at is None:
        return None
    if at.tzinfo is None:
        raise InputError(f"layer '{layer}': a back-dated write needs an aware time, not {at.isoformat()}")
    when = at.astimezone(UTC).isoformat(timespec="seconds")
    if when > now_utc():
        raise InputError(f"layer '{layer}': a write cannot be dated in the future ({when})")
    if latest is not None and when < latest:
        raise InputError(
            f"layer '{layer}': a write dated {when} would go before the layer's latest audited change ({latest}); "
            "history is written oldest first"
        )
    return when


def backdated_detail(detail: str, at: str | None) -> str:
    """An audit detail marked as back-dated (when `at` is set), with the moment it was really written."""
    if at is None:
        return detail
    data = json.loads(detail) if detail else {}
    data.update(backdated=True, recorded_at=now_utc())
    return json.dumps(data, ensure_ascii=False)
