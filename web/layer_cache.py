"""Serialised layers kept in memory, keyed by the layer's store version.

The public data endpoints serve the same few layers over and over: serialising once per change (not per
request) is what lets one process answer hundreds of requests a second. The version check is one indexed query,
so a write from another process (the CLI, a second worker) is seen at the next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from geoplan.catalog import LayerDef
from geoplan.geojson import feature_strings
from geoplan.storage import LayerStore


@dataclass(frozen=True)
class CachedLayer:
    version: int
    frame: gpd.GeoDataFrame
    features: list[str]
    fields: tuple[str, ...]
    tree: shapely.STRtree

    def rows_in_bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Row positions of features intersecting the box, in stored order."""
        hits = self.tree.query(shapely.box(*bbox), predicate="intersects")
        return np.sort(hits)


class LayerCache:
    def __init__(self, store: LayerStore) -> None:
        self._store = store
        self._entries: dict[tuple[str, tuple[str, ...]], CachedLayer] = {}
        self._locks: dict[tuple[str, tuple[str, ...]], threading.Lock] = {}
        self._guard = threading.Lock()

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
