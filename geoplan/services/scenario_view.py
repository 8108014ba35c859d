"""A scenario seen as a store: the live layers with the scenario's edits applied, read-only, without a copy.

`ScenarioView` answers every reading call of `LayerStore` (`read`, `read_batches`, `count`, `bounds`,
`vector_tile`, `layer_version`, rasters, the audit log …): layers the scenario edits come back as live features
minus the replaced and deleted ones, plus the replacements and new features; every other call goes to the live
store unchanged. So the services (overlaps, the site check, coverage, life circles, indicators) run on a
scenario exactly as on the live store. An edited layer's version is a negative number made from the live version
and the edits, so caches keyed on (store, version) never mix a scenario up with the live layers, nor with another
scenario. Writes are refused: a scenario changes through its edits (`services.scenarios`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.catalog import Catalog, LayerDef
from geoplan.cql2 import frame_mask
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData
from geoplan.services.scenario_store import FeatureEdit, Record
from geoplan.storage import LayerStore
from geoplan.storage.base import (
    AuditEntry,
    AuditQuery,
    AuditReader,
    Bounds,
    WriteMode,
    check_batch_rows,
    check_tile_fields,
    check_where,
    empty_frame,
    frame_from_records,
    rows_for_write,
    vector_layer,
)
from geoplan.storage.mvt import encode_tile
from geoplan.storage.tile_matrix import TileKey

__all__ = ["ScenarioView", "apply_edits_to", "feature_records", "records_frame"]


def feature_records(layer: LayerDef, frame: gpd.GeoDataFrame) -> list[Record]:
    """The features of a (validated, EPSG:4490) frame as stored in a scenario: plain property values as the
    store writes them, and the geometry as hex WKB, so a feature comes back exactly as it went in."""
    rows, geoms = rows_for_write(layer, frame)
    wkbs = shapely.to_wkb(geoms, hex=True, byte_order=1, flavor="iso") if len(geoms) else []
    return [
        {"properties": dict(zip(layer.field_names, row, strict=True)), "wkb": str(wkb)}
        for row, wkb in zip(rows, wkbs, strict=True)
    ]


def records_frame(layer: LayerDef, records: Sequence[Record]) -> gpd.GeoDataFrame:
    """A layer frame (catalogue columns, typed, EPSG:4490) of stored scenario features."""
    if not records:
        return empty_frame(layer)
    properties = pd.DataFrame([r["properties"] for r in records], columns=layer.field_names)
    geometry = shapely.from_wkb([r["wkb"] for r in records])
    return frame_from_records(layer, properties, geometry)


def apply_edits_to(layer: LayerDef, live: gpd.GeoDataFrame, edits: Sequence[FeatureEdit]) -> gpd.GeoDataFrame:
    """`live` with the edits applied: replaced and deleted features out, replacements and new features appended
    (in the order the edits were made). Pure."""
    if not edits:
        return live
    assert layer.id_field is not None  # scenarios edit layers with ids only
    touched = {e.feature_id for e in edits}
    kept = live[~live[layer.id_field].astype(str).isin(touched).to_numpy()]
    added = records_frame(layer, [e.feature for e in edits if e.feature is not None])
    if added.empty:
        return kept.reset_index(drop=True)
    records = pd.concat([kept.drop(columns="geometry"), added.drop(columns="geometry")], ignore_index=True)
    geoms = [np.asarray(f.geometry.values, dtype=object) for f in (kept, added)]
    return frame_from_records(layer, records, np.concatenate(geoms))


class ScenarioView(AuditReader):
    """The live store with one scenario's edits applied, for reading. `edits`: the scenario's net edits."""

    def __init__(self, live: LayerStore, edits: Sequence[FeatureEdit], *, name: str = "") -> None:
        self.live = live
        self.catalog: Catalog = live.catalog
        self.url = live.url
        self.name = name
        self._edits: dict[str, list[FeatureEdit]] = {}
        for edit in edits:
            self._edits.setdefault(edit.layer, []).append(edit)
        self._edit_rows = {layer: sorted(e.id for e in found) for layer, found in self._edits.items()}

    @property
    def edited_layers(self) -> list[str]:
        """The layers the scenario changes, in catalogue order."""
        return [name for name in self.catalog.names if name in self._edits]

    # -- reading --------------------------------------------------------------------------------------------

    def read(
        self, layer: str, *, bbox: Bounds | None = None, where: Mapping[str, Any] | None = None
    ) -> gpd.GeoDataFrame:
        if layer not in self._edits:
            return self.live.read(layer, bbox=bbox, where=where)
        definition = vector_layer(self.catalog, layer)
        filters = check_where(definition, where)
        frame = apply_edits_to(definition, self.live.read(layer), self._edits[layer])
        keep = np.ones(len(frame), dtype=bool)
        if bbox is not None and len(frame):
            # bounding boxes overlap, as the stores' own bbox filters select
            b = shapely.bounds(np.asarray(frame.geometry.values, dtype=object))
            keep &= (b[:, 0] <= bbox[2]) & (b[:, 2] >= bbox[0]) & (b[:, 1] <= bbox[3]) & (b[:, 3] >= bbox[1])
        for name, value in filters.items():
            keep &= (frame[name] == value).fillna(False).to_numpy(dtype=bool)
        return frame if keep.all() else frame[keep].reset_index(drop=True)

    def read_batches(self, layer: str, *, rows: int) -> Iterator[gpd.GeoDataFrame]:
        if layer not in self._edits:
            yield from self.live.read_batches(layer, rows=rows)
            return
        check_batch_rows(rows)
        frame = self.read(layer)
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows].reset_index(drop=True)

    def count(self, layer: str) -> int:
        return len(self.read(layer)) if layer in self._edits else self.live.count(layer)

    def bounds(self, layer: str) -> Bounds | None:
        if layer not in self._edits:
            return self.live.bounds(layer)
        frame = self.read(layer)
        if frame.empty:
            return None
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        return (minx, miny, maxx, maxy)

    def vector_tile(self, layer: str, tile: TileKey, fields: Sequence[str], node: Any = None) -> bytes:
        if layer not in self._edits:
            return self.live.vector_tile(layer, tile, fields, node)
        names = check_tile_fields(vector_layer(self.catalog, layer), fields)
        frame = self.read(layer)
        if node is not None:
            frame = frame[frame_mask(node, frame)]
        return encode_tile(frame, tile, layer, names)

    def layer_version(self, layer: str) -> int:
        """The live version for untouched layers; for edited ones a negative number that moves with the live
        layer and with the scenario's edits (edit rows are never rewritten: a changed edit is a new row)."""
        live = self.live.layer_version(layer)
        if layer not in self._edits:
            return live
        text = f"{live}:{','.join(map(str, self._edit_rows[layer]))}"
        return -1 - int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "big")

    def read_raster(self, layer: str) -> RasterData:
        return self.live.read_raster(layer)

    def read_raster_version(self, layer: str, at: datetime) -> RasterData:
        return self.live.read_raster_version(layer, at)

    def has_raster(self, layer: str) -> bool:
        return self.live.has_raster(layer)

    def is_initialised(self) -> bool:
        return self.live.is_initialised()

    def _audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """The live store's audit log: a scenario has no history of its own until it is adopted."""
        return self.live._audit_entries(query)

    def close(self) -> None:
        """Nothing to close: the live store belongs to the caller."""

    # -- writing is refused ---------------------------------------------------------------------------------

    def init(self) -> None:
        raise self._read_only()

    def write(
        self,
        layer: str,
        frame: gpd.GeoDataFrame,
        *,
        mode: WriteMode = "replace",
        actor: str = "system",
        at: datetime | None = None,
    ) -> int:
        raise self._read_only()

    def update_features(
        self, layer: str, frame: gpd.GeoDataFrame, *, actor: str = "system", at: datetime | None = None
    ) -> int:
        raise self._read_only()

    def delete_features(self, layer: str, ids: list[str], *, actor: str = "system", at: datetime | None = None) -> int:
        raise self._read_only()

    def write_raster(
        self, layer: str, raster: RasterData, *, actor: str = "system", at: datetime | None = None
    ) -> None:
        raise self._read_only()

    def _read_only(self) -> InputError:
        return InputError(
            f"scenario {self.name!r} is read as a store, not written: add edits to the scenario instead",
            zh=f"方案“{self.name}”只能读取；请向方案中添加修改。",
        )
