"""What a coverage run reads from a store, gathered in one place: villages, facilities, people and the network.

The CLI (`geoplan coverage`, `suggest-sites`), the web app's coverage cache, the indicator runner and the
quarterly report all come here, so they read the same layers the same way, now or as of a past moment
(replayed from the audit log). The walking graph of the current roads is cached per state of the roads layer,
so a server builds it once per edit, not once per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import geopandas as gpd

from geoplan.analysis.coverage import CoverageRules
from geoplan.analysis.network import ROADS_LAYER, WalkGraph, build_walk_graph
from geoplan.monitoring.asof import AsOf, layer_as_of, raster_as_of
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore

__all__ = [
    "COVERAGE_LAYERS",
    "FACILITIES",
    "VILLAGES",
    "CoverageInputs",
    "coverage_inputs",
    "coverage_versions",
    "life_circle_inputs",
    "uses_network",
    "walk_graph_for",
]

VILLAGES = "villages"
FACILITIES = "culture_facilities"
POPULATION = "population"
COVERAGE_LAYERS = (VILLAGES, FACILITIES, ROADS_LAYER, POPULATION)
"""Every layer a coverage result depends on: a change to any of them changes the answer."""
_CACHE_SIZE = 4


@dataclass(frozen=True)
class CoverageInputs:
    """The coverage engine's inputs as read from one store at one moment."""

    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    population: RasterData
    graph: WalkGraph | None
    """The walking graph, or None when no rule measures along the network."""

    def engine_args(self) -> dict[str, Any]:
        """The keyword arguments every coverage engine takes for its inputs (villages, facilities, …)."""
        return {
            "villages": self.villages,
            "facilities": self.facilities,
            "population": self.population,
            "graph": self.graph,
        }


def uses_network(rules: CoverageRules) -> bool:
    """Whether urban or rural units are measured along the walking network (else no graph is needed)."""
    return "network" in (rules.urban.mode, rules.rural.mode)


def coverage_inputs(store: LayerStore, *, network: bool, as_of: AsOf | None = None) -> CoverageInputs:
    """The villages, cultural facilities, population raster and (when `network`) walking graph of `store`,
    now (`as_of` None or current) or as they were at `as_of`."""
    if as_of is None or as_of.current:
        return CoverageInputs(
            villages=store.read(VILLAGES),
            facilities=store.read(FACILITIES),
            population=store.read_raster(POPULATION),
            graph=walk_graph_for(store) if network else None,
        )
    return CoverageInputs(
        villages=layer_as_of(store, VILLAGES, as_of),
        facilities=layer_as_of(store, FACILITIES, as_of),
        population=raster_as_of(store, POPULATION, as_of),
        graph=_walk_graph_as_of(store, as_of) if network else None,
    )


def _walk_graph_as_of(store: LayerStore, as_of: AsOf) -> WalkGraph:
    """The walking graph of the roads as they were at `as_of`: the cached current one when the roads have not
    changed since (the usual case: a quarter's snapshot after the roads were imported)."""
    latest = store.audit_log(limit=1, layer=ROADS_LAYER)
    if latest and latest[0].at <= as_of.iso:
        return walk_graph_for(store)
    return build_walk_graph(roads=layer_as_of(store, ROADS_LAYER, as_of))


def coverage_versions(store: LayerStore) -> tuple[tuple[str, int], ...]:
    """The store versions of every coverage layer: a cache key that moves with any edit that changes coverage."""
    return tuple((name, store.layer_version(name)) for name in COVERAGE_LAYERS)


_cache: dict[tuple[str, int], WalkGraph] = {}
_cache_lock = threading.Lock()


def walk_graph_for(store: LayerStore) -> WalkGraph:
    """The walking graph of a store's current roads layer, cached by (store url, roads layer version)."""
    key = (str(store.url), store.layer_version(ROADS_LAYER))
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    graph = build_walk_graph(roads=store.read(ROADS_LAYER))
    with _cache_lock:
        _cache[key] = graph
        while len(_cache) > _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return graph


def life_circle_inputs(
    store: LayerStore, layers: list[str], *, network: bool, as_of: AsOf | None = None
) -> tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame], RasterData, WalkGraph | None]:
    """The villages, the named facility layers, the population raster and (when `network`) the walking graph,
    now (`as_of` None or current) or as they were at `as_of` (as `coverage_inputs`)."""
    if as_of is None or as_of.current:
        return (
            store.read(VILLAGES),
            {name: store.read(name) for name in layers},
            store.read_raster(POPULATION),
            walk_graph_for(store) if network else None,
        )
    return (
        layer_as_of(store, VILLAGES, as_of),
        {name: layer_as_of(store, name, as_of) for name in layers},
        raster_as_of(store, POPULATION, as_of),
        build_walk_graph(roads=layer_as_of(store, ROADS_LAYER, as_of)) if network else None,
    )
