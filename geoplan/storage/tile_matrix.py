"""The WebMercatorQuad tile matrix set (OGC 17-083r4, the grid of every web map): a tile's key and its bounds.

Web Mercator separates its axes (x depends on the longitude only, y on the latitude only), so a tile is a
rectangle both in EPSG:3857 and in longitude/latitude. Stores select a tile's features by true intersection with
the lon/lat rectangle in the storage CRS, the same test the OGC items query makes with that rectangle as bbox:
the ids in a tile are exactly the ids of that query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geoplan.errors import NotFoundError

TILE_MATRIX_SET = "WebMercatorQuad"
MAX_ZOOM = 22
"""Deepest level served: about 4 cm per tile unit at 4096 units a tile, well below any survey's accuracy."""
EXTENT = 4096
"""Tile units along a side: the MVT default, what every client expects."""
BUFFER = 64
"""Tile units of geometry kept beyond each edge, so strokes and fills join seamlessly across tiles."""
HALF_WORLD = 20037508.342789244
"""Half the width of the Web Mercator square, in metres (pi times the WGS84 semi-major axis)."""

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class TileKey:
    """One tile: zoom level and column/row, counted from the north-west corner as XYZ and OGC do."""

    z: int
    x: int
    y: int

    def __post_init__(self) -> None:
        if not 0 <= self.z <= MAX_ZOOM:
            raise NotFoundError(f"zoom level {self.z} is not in {TILE_MATRIX_SET} (0 to {MAX_ZOOM})")
        last = 2**self.z - 1
        if not (0 <= self.x <= last and 0 <= self.y <= last):
            raise NotFoundError(
                f"no tile at column {self.x}, row {self.y} of zoom level {self.z}: columns and rows run from 0 "
                f"to {last} there"
            )

    @property
    def mercator_bounds(self) -> Bounds:
        """The tile's rectangle in EPSG:3857 metres: min x, min y, max x, max y."""
        size = 2 * HALF_WORLD / 2**self.z
        min_x = -HALF_WORLD + self.x * size
        max_y = HALF_WORLD - self.y * size
        return (min_x, max_y - size, min_x + size, max_y)

    @property
    def lonlat_bounds(self) -> Bounds:
        """The same rectangle in degrees: min lon, min lat, max lon, max lat."""
        min_x, min_y, max_x, max_y = self.mercator_bounds
        return (_lon(min_x), _lat(min_y), _lon(max_x), _lat(max_y))

    @property
    def unit_m(self) -> float:
        """The length of one tile unit in Web Mercator metres."""
        return 2 * HALF_WORLD / 2**self.z / EXTENT


def _lon(x: float) -> float:
    return x / HALF_WORLD * 180.0


def _lat(y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(y / HALF_WORLD * math.pi)) - math.pi / 2)
