"""Serialised layers kept in memory, keyed by the layer's store version.

The public data endpoints serve the same few layers over and over: serialising once per change (not per
request) is what lets one process answer hundreds of requests a second. The version check is one indexed query,
so a write from another process (the CLI, a second worker) is seen at the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from geoplan.catalog import LayerDef
from geoplan.geojson import feature_strings
from geoplan.storage import LayerStore
from geoplan.storage.base import Bounds

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CachedLayer:
    version: int
    frame: gpd.GeoDataFrame
    features: list[str]
    fields: tuple[str, ...]
    tree: shapely.STRtree
    views: dict[str, list[str]] = field(default_factory=dict)
    """Serialisations in another CRS (crs URI -> features), made on first use. Bounded: one per offered CRS."""

    def view(self, crs: str, transform: Transform | None, id_field: str | None) -> list[str]:
        """All features in `crs`, serialised once per layer version. A racing second build is harmless."""
        if transform is None:
            return self.features
        found = self.views.get(crs)
        if found is None:
            frame = self.transformed(np.arange(len(self.frame)), transform)
            found = feature_strings(frame, fields=list(self.fields), id_field=id_field)
            self.views[crs] = found
        return found

    def subset(
        self, rows: np.ndarray, fields: tuple[str, ...], transform: Transform | None, id_field: str | None
    ) -> list[str]:
        """Only `rows` with only `fields` (a `properties` request): serialised per request, since the number of
        field subsets is unbounded and would make a cache of them a memory sink."""
        return feature_strings(self.transformed(rows, transform), fields=list(fields), id_field=id_field)

    def transformed(self, rows: np.ndarray, transform: Transform | None) -> gpd.GeoDataFrame:
        frame = self.frame.iloc[rows]
        if transform is None:
            return frame
        return frame.set_geometry(shapely.transform(np.asarray(frame.geometry.values, dtype=object), transform))

    def rows_in_bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Row positions of features intersecting the box, in stored order."""
        hits = self.tree.query(shapely.box(*bbox), predicate="intersects")
        return np.sort(hits)


@dataclass(frozen=True)
class LayerSummary:
    """What a collection's metadata needs: feature count and extent, at a layer version."""

    version: int
    count: int
    bounds: Bounds | None


class LayerCache:
    def __init__(self, store: LayerStore) -> None:
        self._store = store
        self._entries: dict[tuple[str, tuple[str, ...]], CachedLayer] = {}
        self._locks: dict[tuple[str, tuple[str, ...]], threading.Lock] = {}
        self._guard = threading.Lock()
        self._summaries: dict[str, LayerSummary] = {}

    def fresh_summary(self, layer: LayerDef) -> LayerSummary | None:
        """The layer's count and extent if current (one indexed version query), else None."""
        summary = self._summaries.get(layer.name)
        if summary is not None and summary.version == self._store.layer_version(layer.name):
            return summary
        return None

    def summary(self, layer: LayerDef) -> LayerSummary:
        """Count and extent, recomputed only when the layer changed (a count and an extent query)."""
        version = self._store.layer_version(layer.name)
        summary = self._summaries.get(layer.name)
        if summary is None or summary.version != version:
            summary = LayerSummary(version, self._store.count(layer.name), self._store.bounds(layer.name))
            self._summaries[layer.name] = summary
        return summary

    def fresh(self, layer: LayerDef, fields: list[str]) -> CachedLayer | None:
        """The cached entry if it is current (one indexed query), else None: cheap enough for the event loop."""
        entry = self._entries.get((layer.name, tuple(fields)))
        if entry is not None and entry.version == self._store.layer_version(layer.name):
            return entry
        return None

    def get(self, layer: LayerDef, fields: list[str]) -> CachedLayer:
        key = (layer.name, tuple(fields))
        version = self._store.layer_version(layer.name)
        entry = self._entries.get(key)
        if entry is not None and entry.version == version:
            return entry
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one rebuild per key at a time; the others wait and reuse it
            entry = self._entries.get(key)
            if entry is not None and entry.version == version:
                return entry
            frame = self._store.read(layer.name)
            features = feature_strings(frame, fields=fields, id_field=layer.id_field)
            entry = CachedLayer(
                version=version,
                frame=frame,
                features=features,
                fields=tuple(fields),
                tree=shapely.STRtree(np.asarray(frame.geometry.values, dtype=object)),
            )
            self._entries[key] = entry
            return entry
