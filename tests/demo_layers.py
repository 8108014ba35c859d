"""The demo store's coverage inputs as one value, for the tests that check the engine on the whole district."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd

from geoplan.analysis.coverage import CoverageResult, CoverageRules, compute_coverage
from geoplan.analysis.network import WalkGraph, build_walk_graph
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore


@dataclass(frozen=True)
class DemoLayers:
    """villages, culture_facilities, roads (as stored, EPSG:4490), the population raster and the walking graph."""

    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    raster: RasterData
    graph: WalkGraph

    def coverage(self, rules: CoverageRules, *, facilities: gpd.GeoDataFrame | None = None) -> CoverageResult:
        """The engine's coverage of these layers (with other `facilities`, e.g. added sites, if given)."""
        return compute_coverage(
            villages=self.villages,
            facilities=self.facilities if facilities is None else facilities,
            population=self.raster,
            graph=self.graph,
            rules=rules,
        )


def read_demo_layers(store: LayerStore) -> DemoLayers:
    roads = store.read("roads")
    return DemoLayers(
        villages=store.read("villages"),
        facilities=store.read("culture_facilities"),
        roads=roads,
        raster=store.read_raster("population"),
        graph=build_walk_graph(roads=roads),
    )
