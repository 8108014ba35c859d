"""A place where a new cultural facility surely raises the ten-minute coverage, found from the layers alone
(numpy and scipy, none of geoplan's coverage code): a populated raster cell more than 2 km in a straight line
from every facility (so no walk of 750 m reaches it now) whose centre lies within 100 m of a walking-network
node (a walkable segment's end point). A facility on exactly that node covers the cell: both link to the node,
and the walk is the cell's link of at most 100 m.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from geoplan.storage import LayerStore

METRIC = "EPSG:4547"
MIN_DISTANCE_M = 2_000.0
MAX_LINK_M = 100.0


def uncovered_site(store: LayerStore) -> tuple[float, float, float]:
    """(lon, lat) of the site in EPSG:4490 and the people it surely covers (more are likely: those within a
    750 m walk, not only those linked to the node itself)."""
    raster = store.read_raster("population")
    assert raster.crs.upper().endswith("4547"), raster.crs
    rows, cols = np.nonzero(np.nan_to_num(raster.array, nan=0.0) > 0)
    people = raster.array[rows, cols]
    t = raster.transform
    xs = t.c + (cols + 0.5) * t.a + (rows + 0.5) * t.b
    ys = t.f + (cols + 0.5) * t.d + (rows + 0.5) * t.e

    facilities = store.read("culture_facilities").to_crs(METRIC)
    far = cKDTree(shapely.get_coordinates(facilities.geometry.to_numpy())).query(np.c_[xs, ys])[0] > MIN_DISTANCE_M

    roads = store.read("roads")
    lines = shapely.get_parts(roads[roads["walkable"].astype(bool)].to_crs(METRIC).geometry.to_numpy())
    lines = lines[shapely.get_type_id(lines) == 1]
    ends = np.unique(
        np.round(
            np.vstack(
                [
                    shapely.get_coordinates(shapely.get_point(lines, 0)),
                    shapely.get_coordinates(shapely.get_point(lines, -1)),
                ]
            ),
            2,
        ),
        axis=0,
    )
    link, node = cKDTree(ends).query(np.c_[xs, ys])
    chosen = far & (link <= MAX_LINK_M)
    assert chosen.any(), "no populated cell far from every facility lies next to the network"
    # The node whose surely-covered people (far cells linked to it) are most.
    gain = np.bincount(node[chosen], weights=people[chosen], minlength=len(ends))
    best = int(np.argmax(gain))
    x, y = ends[best]
    point = gpd.GeoSeries([shapely.Point(x, y)], crs=METRIC).to_crs("EPSG:4490").iloc[0]
    return float(point.x), float(point.y), float(gain[best])


def facility_feature(lon: float, lat: float, facility_id: str = "TEST-NEW-SITE") -> dict[str, Any]:
    """A new 文化站 at (lon, lat) as a GeoJSON Feature the edit API accepts."""
    return {
        "type": "Feature",
        "properties": {"facility_id": facility_id, "name": "新建文化站（测试）", "kind": "文化站", "capacity": 200},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }
