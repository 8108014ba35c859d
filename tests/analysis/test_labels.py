"""Label points: inside the area whatever its shape, and with room around them."""

from __future__ import annotations

import numpy as np
import shapely

from geoplan.analysis.labels import label_point, label_points


def test_a_crescent_is_labelled_inside_where_its_centroid_is_not() -> None:
    # A C shape, 3 km by 3 km with 1 km thick arms: the centroid lies in the gap.
    c = shapely.box(0, 0, 3000, 3000).difference(shapely.box(1000, 1000, 3000, 2000))
    assert not c.contains(c.centroid)
    point = label_point(c)
    assert c.contains(point)
    # The widest part is the 1 km thick back and arms: the best point is ~500 m from every edge (10 m tolerance).
    assert c.exterior.distance(point) >= 490


def test_the_largest_part_of_a_multipolygon_carries_the_name() -> None:
    small = shapely.box(0, 0, 100, 100)
    large = shapely.box(5000, 0, 7000, 2000)
    point = label_points(np.array([shapely.MultiPolygon([small, large])], dtype=object))[0]
    assert large.contains(point) and abs(point.x - 6000) <= 10 and abs(point.y - 1000) <= 10
