"""Where a map writes an area's name: a point well inside it, not its centroid (which can fall outside a
crescent-shaped town or in a neighbour's bay).

The pole of inaccessibility (shapely's polylabel: the interior point farthest from the edge) of the largest part
gives the most room for the text. Computed in a metric CRS, so `tolerance` is metres and the answer does not
depend on latitude's stretch of degrees.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel


def largest_part(geometry: BaseGeometry) -> BaseGeometry:
    """The polygon with the largest area of a (multi)polygon; the geometry itself otherwise."""
    parts = shapely.get_parts(geometry)
    if len(parts) <= 1:
        return geometry
    return parts[int(np.argmax(shapely.area(parts)))]


def label_point(geometry: BaseGeometry, *, tolerance: float = 10.0) -> shapely.Point:
    """The label point of one polygonal geometry (metric coordinates); a point inside it whatever its shape."""
    part = largest_part(geometry)
    if isinstance(part, shapely.Polygon) and not part.is_empty:
        try:
            return polylabel(part, tolerance=tolerance)
        except shapely.errors.GEOSException:  # a degenerate ring: fall back to a point surely inside
            pass
    return part.representative_point()


def label_points(geometries: np.ndarray, *, tolerance: float = 10.0) -> np.ndarray:
    """`label_point` of each geometry."""
    return np.array([label_point(g, tolerance=tolerance) for g in geometries], dtype=object)
