"""Synthetic land parcels at any scale, for the scale benchmark and the memory-bound tests: two plans that
disagree everywhere, generated chunk by chunk so that a layer of millions never has to be in memory at once.

A: jittered rectangles on a square grid of `CELL`-metre cells, each a little larger than its cell (it overlaps
its neighbours). B: the same grid shifted by half a cell, plus four strips across the whole extent, so most
patches cross any spatial partition's boundary. EPSG:4547 coordinates at Gaoming's south-west, stored in
EPSG:4490 as MultiPolygons with the columns of the catalogue's plan layers.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geoplan.analysis.rules import ConflictRule
from geoplan.crs import METRIC_CRS, STORE_CRS

__all__ = ["LAYERS", "parcel_chunk", "parcel_rules"]

X0, Y0 = 340_000.0, 2_500_000.0
CELL = 40.0
LAYERS = {"urban_plan": (1, "A", 0.0), "landuse_plan": (2, "B", 0.5)}
"""Each layer's seed, id prefix and shift in cells."""


def parcel_chunk(n: int, layer: str, start: int, stop: int) -> gpd.GeoDataFrame:
    """Parcels start..stop of the layer's n (drawn per chunk from a seed of its own, so a chunk never needs
    the others)."""
    seed, prefix, shift = LAYERS[layer]
    rng = np.random.default_rng([seed, start])
    side = math.ceil(math.sqrt(n))
    k = np.arange(start, stop)
    i, j = np.divmod(k, side)
    m = len(k)
    x = X0 + (i + shift) * CELL + rng.uniform(-4, 4, m)
    y = Y0 + (j + shift) * CELL + rng.uniform(-4, 4, m)
    w, h = rng.uniform(0.8, 1.3, m) * CELL, rng.uniform(0.8, 1.3, m) * CELL
    geoms = shapely.box(x, y, x + w, y + h)
    if prefix == "B":  # strips across the whole extent: their patches lie in every partition
        extent = side * CELL
        for s in range(min(4, n)):
            if start <= s < stop:
                y0 = Y0 + (s + 0.5) * extent / 4
                geoms[s - start] = shapely.box(X0, y0, X0 + extent, y0 + 30)
    frame = gpd.GeoDataFrame(
        {
            "parcel_id": np.char.add(f"{prefix}-", k.astype(str)),
            "land_class": "农林用地",
            "construction": rng.random(m) < (0.6 if prefix == "A" else 0.4),
        },
        geometry=geoms,
        crs=METRIC_CRS,
    ).to_crs(STORE_CRS)
    frame.geometry = [shapely.MultiPolygon([g]) for g in frame.geometry]
    return frame


def parcel_rules() -> list[ConflictRule]:
    """A ∩ B (construction in A on non-construction land in B) and A − ∪B."""
    common: dict[str, Any] = {"title_zh": "基准", "title_en": "benchmark", "severity": "medium", "basis": "benchmark"}
    return [
        ConflictRule(
            code="BENCH_CROSS",
            relation="intersection",
            layer_a="urban_plan",
            layer_b="landuse_plan",
            filter_a=(("construction", (True,)),),
            filter_b=(("construction", (False,)),),
            **common,
        ),
        ConflictRule(code="BENCH_REST", relation="difference", layer_a="urban_plan", layer_b="landuse_plan", **common),
    ]
