"""Hills: the synthetic terrain that the ecological red lines protect and that people avoid.

The hills are drawn first because three other layers lean on them: the population grid is near zero there,
village centres avoid them, and the land-use plan marks them as forest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geoplan.demo.geometry import blob, to_multipolygon
from geoplan.demo.layout import HILLS, Hill


@dataclass(frozen=True)
class HillArea:
    """One hill massif clipped to the district."""

    hill: Hill
    geometry: shapely.MultiPolygon


def build_hills(district: shapely.MultiPolygon, rng: np.random.Generator) -> list[HillArea]:
    """Irregular hill outlines around the layout's hill centres, clipped to the district and to each other.

    Later hills lose the parts that earlier ones already cover, so the red lines never overlap.
    """
    out: list[HillArea] = []
    taken: shapely.Geometry = shapely.Polygon()
    for hill in HILLS:
        shape = blob((hill.x, hill.y), hill.radius, rng, roughness=0.35)
        clipped = shapely.difference(shapely.intersection(shape, district), taken)
        parts = [p for p in shapely.get_parts(to_multipolygon(clipped)) if p.area > 20_000.0]
        if not parts:
            continue
        geom = shapely.MultiPolygon(parts)
        out.append(HillArea(hill, geom))
        taken = shapely.union(taken, geom)
    return out


def hill_union(hills: list[HillArea]) -> shapely.MultiPolygon:
    """All hills as one MultiPolygon (empty when there are none)."""
    return to_multipolygon(shapely.union_all([h.geometry for h in hills]))
