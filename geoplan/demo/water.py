"""Synthetic water for the maps: a strip of the 西江 along the district's east edge and the 沧江 through 荷城.

Only drawn so that every store has a water layer to show; the district boundary runs in the 西江, so the river
line is that stretch of the boundary and the strip is the district's side of it. Real water replaces both with
`geoplan import water|waterways FILE.osm.pbf`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.ops import substring

from geoplan.demo.geometry import wiggly_path
from geoplan.demo.sources import Sources
from geoplan.demo.zones import river_frame

XIJIANG_REACH = 7_000.0  # m of bank on either side of the point nearest the 荷城 seat
XIJIANG_STRIP = 150.0  # m: the district's side of the river shown as water
CANGJIANG_HALF_WIDTH = 30.0  # m


@dataclass(frozen=True)
class Water:
    """Areas and centre lines in EPSG:4547, with their names and kinds."""

    areas: list[shapely.MultiPolygon]
    area_names: list[str]
    area_kinds: list[str]
    lines: list[shapely.MultiLineString]
    line_names: list[str]
    line_kinds: list[str]


def _multi_polygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    parts = shapely.get_parts(geom)
    return shapely.MultiPolygon(list(parts[shapely.get_type_id(parts) == 3]))


def _multi_line(geom: shapely.Geometry) -> shapely.MultiLineString:
    parts = shapely.get_parts(geom)
    return shapely.MultiLineString(list(parts[shapely.get_type_id(parts) == 1]))


def build_water(src: Sources, rng: np.random.Generator) -> Water:
    rf = river_frame(src)
    district = src.district
    ring = max(shapely.get_parts(district), key=lambda p: p.area).exterior
    bank = shapely.Point(rf.seat + rf.to_river)
    at = ring.project(bank)
    xijiang = substring(ring, max(0.0, at - XIJIANG_REACH), min(ring.length, at + XIJIANG_REACH))
    strip = shapely.intersection(xijiang.buffer(XIJIANG_STRIP), district)
    unit = rf.to_river / np.hypot(*rf.to_river)
    bank_xy = rf.seat + rf.to_river
    waypoints = np.array(
        [
            rf.seat - 9_000.0 * unit + 1_500.0 * rf.along,
            rf.seat - 3_000.0 * unit + 800.0 * rf.along,
            rf.seat + 600.0 * rf.along,
            bank_xy + 500.0 * rf.along,
        ]
    )
    cangjiang = shapely.intersection(shapely.LineString(wiggly_path(waypoints, rng, step=300.0)), district)
    cangjiang_area = shapely.intersection(cangjiang.buffer(CANGJIANG_HALF_WIDTH), district)
    return Water(
        areas=[_multi_polygon(strip), _multi_polygon(cangjiang_area)],
        area_names=["西江", "沧江"],
        area_kinds=["river", "river"],
        lines=[_multi_line(xijiang), _multi_line(cangjiang)],
        line_names=["西江", "沧江"],
        line_kinds=["river", "river"],
    )
