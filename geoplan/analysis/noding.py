"""Noding a surveyed centre-line layer: lines that cross or touch without a shared vertex are cut there.

A walking graph joins lines only at their end points, so two surveyed streets that cross without a common
vertex would not be connected. `node_lines` cuts every walkable line at each point where it meets another
walkable line (crossings, T-junctions, the ends of overlaps), gives both lines the very same coordinates there,
and keeps each piece's attributes from its source line. Non-walkable lines are left alone: a road crossing a
walkway is often a bridge.

Noding is topological, so it works in the frame's own coordinates: re-projecting would move the vertices of
lines that need no cut, and a store's existing network should import bit for bit unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from geoplan.errors import CRSError, InputError

GEOGRAPHIC_DECIMALS = 8  # ~1 mm in degrees: intersection points this close are one node
PROJECTED_DECIMALS = 3  # 1 mm in metres


@dataclass(frozen=True)
class NodingResult:
    """The noded lines (one row per piece) and what noding changed."""

    frame: gpd.GeoDataFrame
    added_nodes: int
    """Points where lines now meet that were no line's end point before."""
    split_lines: int
    """Source lines cut into two or more pieces."""


def node_lines(*, lines: gpd.GeoDataFrame, id_field: str, walkable_field: str = "walkable") -> NodingResult:
    """Cut the walkable lines of `lines` where they meet each other; a cut row's id gets "-1", "-2"… appended."""
    if lines.crs is None:
        raise CRSError("the lines have no CRS; set it before noding")
    for column in (id_field, walkable_field):
        if column not in lines.columns:
            raise InputError(f"the lines have no {column!r} field")
    decimals = GEOGRAPHIC_DECIMALS if CRS.from_user_input(lines.crs).is_geographic else PROJECTED_DECIMALS
    geoms = lines.geometry.to_numpy()
    walk = lines[walkable_field].fillna(False).astype(bool).to_numpy() & ~shapely.is_missing(geoms)
    parts, part_row = shapely.get_parts(geoms[walk], return_index=True)
    part_row = np.flatnonzero(walk)[part_row]
    is_line = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)
    parts, part_row = parts[is_line], part_row[is_line]
    cuts = _cut_points(parts, decimals)
    ends = _end_keys(parts, decimals)
    pieces: list[list[shapely.LineString]] = [[line] for line in parts]
    new_nodes: set[tuple[float, float]] = set()
    for index, points in cuts.items():
        split = _split_line(parts[index], points)
        if len(split) > 1:
            pieces[index] = split
            for piece in split[:-1]:
                key = _key(shapely.get_coordinates(piece)[-1], decimals)
                if key not in ends:
                    new_nodes.add(key)
    return NodingResult(
        frame=_rebuild(lines, part_row, pieces, id_field),
        added_nodes=len(new_nodes),
        split_lines=len({int(part_row[i]) for i, p in enumerate(pieces) if len(p) > 1}),
    )


def _key(xy: NDArray[np.float64], decimals: int) -> tuple[float, float]:
    return (round(float(xy[0]), decimals), round(float(xy[1]), decimals))


def _end_keys(parts: NDArray[np.object_], decimals: int) -> set[tuple[float, float]]:
    ends = np.vstack(
        [shapely.get_coordinates(shapely.get_point(parts, 0)), shapely.get_coordinates(shapely.get_point(parts, -1))]
    )
    return {(float(x), float(y)) for x, y in np.round(ends, decimals)}


def _cut_points(parts: NDArray[np.object_], decimals: int) -> dict[int, list[NDArray[np.float64]]]:
    """Per line index, the points where other lines meet it; one coordinate per node for all lines there."""
    if len(parts) < 2:
        return {}
    left, right = shapely.STRtree(parts).query(parts, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    meetings = shapely.intersection(parts[left], parts[right])
    points, pair = shapely.get_parts(meetings, return_index=True)
    # An overlap meets the other line along a stretch: its two ends are the nodes.
    stretch = shapely.get_type_id(points) == 1
    ends, end_pair = shapely.get_parts(shapely.boundary(points[stretch]), return_index=True)
    points = np.concatenate([points[~stretch], ends])
    pair = np.concatenate([pair[~stretch], np.flatnonzero(stretch)[end_pair]])
    is_point = shapely.get_type_id(points) == 0
    points, pair = points[is_point], pair[is_point]
    xy = shapely.get_coordinates(points)
    canonical: dict[tuple[float, float], NDArray[np.float64]] = {}
    cuts: dict[int, list[NDArray[np.float64]]] = {}
    for (x, y), p in zip(xy, pair, strict=True):
        point = canonical.setdefault(_key(np.array([x, y]), decimals), np.array([x, y]))
        cuts.setdefault(int(left[p]), []).append(point)
        cuts.setdefault(int(right[p]), []).append(point)
    return cuts


def _split_line(line: shapely.LineString, points: list[NDArray[np.float64]]) -> list[shapely.LineString]:
    """`line` cut at `points` (all on it); points at its ends or on an existing vertex cut nothing new."""
    coords = shapely.get_coordinates(line)
    seg = np.hypot(*np.diff(coords, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(along[-1])
    tolerance = total * 1e-12
    where = sorted({(float(shapely.line_locate_point(line, shapely.points(p))), tuple(p)) for p in map(tuple, points)})
    pieces: list[shapely.LineString] = []
    current = [coords[0]]
    vertex = 1
    for distance, point in where:
        if distance <= tolerance or distance >= total - tolerance:
            continue
        while vertex < len(coords) - 1 and along[vertex] < distance - tolerance:
            current.append(coords[vertex])
            vertex += 1
        if abs(along[vertex] - distance) <= tolerance and vertex < len(coords) - 1:
            vertex += 1  # the cut falls on an existing vertex: keep its own coordinates
        if len(current) >= 1 and np.array_equal(current[-1], np.asarray(point)):
            continue
        current.append(np.asarray(point))
        pieces.append(shapely.LineString(current))
        current = [np.asarray(point)]
    current.extend(coords[vertex:])
    pieces.append(shapely.LineString(current))
    return [p for p in pieces if shapely.length(p) > 0]


def _rebuild(
    lines: gpd.GeoDataFrame, part_row: NDArray[np.intp], pieces: list[list[shapely.LineString]], id_field: str
) -> gpd.GeoDataFrame:
    """The frame with every cut row replaced by one row per piece, in the original order."""
    cut_rows = {int(part_row[i]) for i, p in enumerate(pieces) if len(p) > 1}
    if not cut_rows:
        return lines.copy()
    by_row: dict[int, list[shapely.LineString]] = {}
    for i, row_pieces in enumerate(pieces):
        by_row.setdefault(int(part_row[i]), []).extend(row_pieces)
    positions: list[int] = []
    geometries: list[object] = []
    ids: list[object] = []
    original = lines.geometry.to_numpy()
    for row in range(len(lines)):
        if row not in cut_rows:
            positions.append(row)
            geometries.append(original[row])
            ids.append(lines[id_field].iat[row])
            continue
        for number, piece in enumerate(by_row[row], start=1):
            positions.append(row)
            geometries.append(shapely.MultiLineString([piece]))
            ids.append(f"{lines[id_field].iat[row]}-{number}")
    out = lines.iloc[positions].copy()
    out[id_field] = pd.Series(ids, index=out.index, dtype=object).to_numpy()
    out = out.set_geometry(gpd.GeoSeries(geometries, index=out.index, crs=lines.crs))
    return out.reset_index(drop=True)
