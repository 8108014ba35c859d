"""What the store holds, layer by layer (the `geoplan layers` listing)."""

from __future__ import annotations

from geoplan.crs import STORE_CRS
from geoplan.storage import LayerStore, LayerSummary


def layer_summaries(store: LayerStore) -> list[LayerSummary]:
    """Feature count, CRS and bounds of every catalogue layer (rasters: cell count, their own CRS)."""
    summaries = []
    for layer in store.catalog:
        if layer.kind == "raster":
            if store.has_raster(layer.name):
                raster = store.read_raster(layer.name)
                summaries.append(LayerSummary(layer.name, "raster", int(raster.array.size), raster.crs, raster.bounds))
            else:
                summaries.append(LayerSummary(layer.name, "raster", 0, layer.raster.get("crs", ""), None))
            continue
        summaries.append(
            LayerSummary(layer.name, "vector", store.count(layer.name), STORE_CRS, store.bounds(layer.name))
        )
    return summaries
