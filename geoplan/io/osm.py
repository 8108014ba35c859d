"""OpenStreetMap extracts (.osm.pbf, .osm) read with pyosmium: highway ways as a walking network, water.

Roads: every way with a `highway` tag is kept (the catalogue's `roads` layer holds all roads) and split at each
node that two or more kept ways share, and at way ends, so pieces meet only at their end points and a graph
built from end points is topologically right. A way that crosses another without a shared node (a bridge, a
tunnel) stays unconnected, as in OSM. `walkable` follows OSMnx's 'walk' network filter.

Coordinates are WGS84 lon/lat, returned as EPSG:4326 (the import pipeline treats it as CGCS2000 at map scale).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import shapely
from numpy.typing import NDArray

from geoplan.errors import InputError, NotFoundError, UnreadableFileError

log = logging.getLogger(__name__)

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm")
OSM_CRS = "EPSG:4326"

# OSMnx's 'walk' network filter, copied from osmnx/_overpass.py `_get_osm_filter` ("walk") plus its
# settings.default_access '["access"!~"private"]'. Overpass `!~` is an unanchored regex that also passes ways
# without the key, so "motor" excludes motorway and motorway_link alike; re.search keeps that meaning.
WALK_EXCLUDE: dict[str, str] = {
    "area": "yes",
    "highway": "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|raceway|razed",
    "foot": "no",
    "service": "private",
    "access": "private",
}
_WALK_EXCLUDE_RE = {key: re.compile(pattern) for key, pattern in WALK_EXCLUDE.items()}

# highway= to the catalogue's road classes (layers/roads.yaml). Unclassified and track are, in rural Guangdong,
# mostly the roads between villages.
ROAD_CLASS: dict[str, str] = {
    "motorway": "高速公路",
    "motorway_link": "高速公路",
    "trunk": "主干路",
    "trunk_link": "主干路",
    "primary": "主干路",
    "primary_link": "主干路",
    "secondary": "次干路",
    "secondary_link": "次干路",
    "tertiary": "次干路",
    "tertiary_link": "次干路",
    "residential": "支路",
    "living_street": "支路",
    "service": "支路",
    "road": "支路",
    "busway": "支路",
    "unclassified": "村道",
    "track": "村道",
    "footway": "步行道",
    "path": "步行道",
    "pedestrian": "步行道",
    "steps": "步行道",
    "corridor": "步行道",
    "bridleway": "步行道",
    "elevator": "步行道",
    "escalator": "步行道",
}
OTHER_CLASS = "其他"
"""Cycleways, construction, proposed and other highway values with no walking class of their own."""


def is_osm_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in OSM_SUFFIXES)


def walkable(tags: Mapping[str, str]) -> bool:
    """True when OSMnx's walk network would keep a highway way with these tags."""
    return not any(key in tags and rx.search(tags[key]) for key, rx in _WALK_EXCLUDE_RE.items())


def road_class(highway: str) -> str:
    return ROAD_CLASS.get(highway, OTHER_CLASS)


def _name(tags: Mapping[str, str]) -> str | None:
    return tags.get("name:zh") or tags.get("name") or None


@dataclass
class _Ways:
    """Kept ways as flat arrays: vertex refs and coordinates, with each way's first vertex index."""

    way_id: list[int] = field(default_factory=list)
    name: list[str | None] = field(default_factory=list)
    road_class: list[str] = field(default_factory=list)
    walkable: list[bool] = field(default_factory=list)
    start: list[int] = field(default_factory=lambda: [0])
    refs: list[int] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    missing_nodes: int = 0


def _check_file(path: Path, max_bytes: int | None) -> None:
    if not path.exists():
        raise NotFoundError(f"{path.name}: no such file")
    if not path.is_file():
        raise UnreadableFileError(f"{path.name}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFileError(f"{path.name}: not a readable OpenStreetMap file: the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFileError(f"{path.name}: {size:,} bytes is more than the {max_bytes:,}-byte import limit")


def _unreadable(path: Path, exc: BaseException) -> UnreadableFileError:
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return UnreadableFileError(f"{path.name}: not a readable OpenStreetMap file: {reason}")


def _collect_ways(path: Path) -> _Ways:
    ways = _Ways()
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()  # node locations are kept in an index so ways come with coordinates
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        if not isinstance(way, osmium.osm.Way):
            continue  # the filters pass ways only
        refs: list[int] = []
        lon: list[float] = []
        lat: list[float] = []
        for node in way.nodes:
            if not node.location.valid():
                ways.missing_nodes += 1  # outside the extract: the way is cut there
                continue
            if refs and refs[-1] == node.ref:
                continue  # a repeated node would make a zero-length segment
            refs.append(node.ref)
            lon.append(node.location.lon)
            lat.append(node.location.lat)
        if len(refs) < 2:
            continue
        tags = dict(way.tags)
        ways.way_id.append(way.id)
        ways.name.append(_name(tags))
        ways.road_class.append(road_class(tags["highway"]))
        ways.walkable.append(walkable(tags))
        ways.refs.extend(refs)
        ways.lon.extend(lon)
        ways.lat.extend(lat)
        ways.start.append(len(ways.refs))
    return ways


def _split(ways: _Ways) -> tuple[NDArray[np.object_], NDArray[np.intp], NDArray[np.intp]]:
    """Pieces of every way between its ends and its shared nodes: (lines, way row per piece, piece number)."""
    refs = np.asarray(ways.refs, dtype=np.int64)
    start = np.asarray(ways.start, dtype=np.intp)
    n_ways = len(start) - 1
    way_of_vertex = np.repeat(np.arange(n_ways), np.diff(start))
    _, inverse, counts = np.unique(refs, return_inverse=True, return_counts=True)
    shared = counts[inverse.ravel()] >= 2
    is_first = np.zeros(len(refs), dtype=bool)
    is_first[start[:-1]] = True
    is_last = np.zeros(len(refs), dtype=bool)
    is_last[start[1:] - 1] = True
    cut = shared & ~is_first & ~is_last
    # A cut vertex is written twice: it ends one piece and starts the next.
    repeat = 1 + cut.astype(np.intp)
    xy = np.repeat(np.column_stack([ways.lon, ways.lat]), repeat, axis=0)
    starts_piece = np.repeat(is_first, repeat)
    second_copy = np.zeros(len(xy), dtype=bool)
    second_copy[np.cumsum(repeat)[cut] - 1] = True
    starts_piece |= second_copy
    piece_of_vertex = np.cumsum(starts_piece) - 1
    lines = shapely.linestrings(xy, indices=piece_of_vertex)
    piece_way = np.repeat(way_of_vertex, repeat)[starts_piece]
    first_piece_of_way = np.flatnonzero(np.repeat(is_first, repeat)[starts_piece])
    piece_number = np.arange(len(piece_way)) - first_piece_of_way[piece_way]
    return np.asarray(lines, dtype=object), piece_way, piece_number


def clip_lines(lines: NDArray[np.object_], district: shapely.Geometry) -> NDArray[np.object_]:
    """Each line inside `district` as a MultiLineString (cut at the boundary), or None when none of it is."""
    shapely.prepare(district)
    out = np.full(len(lines), None, dtype=object)
    covered = shapely.covers(district, lines)
    out[covered] = shapely.multilinestrings(lines[covered].reshape(-1, 1).tolist()) if covered.any() else []
    crossing = np.flatnonzero(~covered & shapely.intersects(district, lines))
    for i, clipped in zip(crossing, shapely.intersection(lines[crossing], district), strict=True):
        parts = shapely.get_parts(clipped)
        parts = parts[(shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)]
        if len(parts):
            out[i] = shapely.multilinestrings(parts)
    return out


def _as_multi(lines: NDArray[np.object_]) -> list[shapely.MultiLineString]:
    return [shapely.MultiLineString([line]) for line in lines]


def read_osm_roads(
    path: Path, *, district: shapely.Geometry | None, max_bytes: int | None = None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Highway ways of an OSM file as split, clipped `roads` features (EPSG:4326) and notes for the user."""
    _check_file(path, max_bytes)
    try:
        ways = _collect_ways(path)
    except (RuntimeError, ValueError, OSError) as exc:  # libosmium reports bad data as RuntimeError
        raise _unreadable(path, exc) from None
    if not ways.way_id:
        raise InputError(f"{path.name}: the file holds no highway ways")
    lines, piece_way, piece_number = _split(ways)
    geoms = np.asarray(_as_multi(lines), dtype=object) if district is None else clip_lines(lines, district)
    keep = np.flatnonzero(geoms != None)  # noqa: E711 (element-wise)
    if not len(keep):
        raise InputError(f"{path.name}: none of its {len(ways.way_id):,} highway ways lies in the district")
    way_rows = piece_way[keep]
    way_id = np.asarray(ways.way_id, dtype=np.int64)[way_rows]
    frame = gpd.GeoDataFrame(
        {
            "road_id": [f"osm-w{w}-{p}" for w, p in zip(way_id, piece_number[keep], strict=True)],
            "name": [ways.name[i] for i in way_rows],
            "road_class": [ways.road_class[i] for i in way_rows],
            "walkable": np.asarray(ways.walkable, dtype=bool)[way_rows],
        },
        geometry=gpd.GeoSeries(geoms[keep], crs=OSM_CRS),
        crs=OSM_CRS,
    )
    notes = [
        f"{len(ways.way_id):,} highway way(s) split at shared nodes into {len(lines):,} piece(s); "
        f"{len(frame):,} lie in the district ({int(frame['walkable'].sum()):,} walkable)"
    ]
    if ways.missing_nodes:
        notes.append(f"{ways.missing_nodes:,} way node(s) missing from the extract were skipped")
    log.info("%s: %s", path.name, "; ".join(notes))
    return frame, notes


# --------------------------------------------------------------------------------------------- water

WATER_AREA_TAGS = (("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"))
WATERWAY_LINES = ("river", "stream", "canal")


def _water_kind(tags: Mapping[str, str]) -> str:
    for key, value in WATER_AREA_TAGS:
        if tags.get(key) == value:
            return tags.get("water") or value  # natural=water's own water=river/lake/pond… when given
    return tags.get("waterway", "water")


def _collect_water(path: Path, kind: str) -> tuple[list[str], list[str | None], list[str], list[object]]:
    """(ids, names, kinds, WKB geometries) of water areas (kind 'water') or waterway lines ('waterways')."""
    wkb = osmium.geom.WKBFactory()
    ids: list[str] = []
    names: list[str | None] = []
    kinds: list[str] = []
    geoms: list[object] = []
    if kind == "water":
        processor = osmium.FileProcessor(str(path)).with_areas(osmium.filter.TagFilter(*WATER_AREA_TAGS))
        processor = processor.with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
        processor = processor.with_filter(osmium.filter.TagFilter(*WATER_AREA_TAGS))
        for area in processor:
            if not isinstance(area, osmium.osm.Area):
                continue
            try:
                geoms.append(wkb.create_multipolygon(area))
            except RuntimeError:
                continue  # a ring libosmium could not close: not an area
            ids.append(f"osm-{'w' if area.from_way() else 'r'}{area.orig_id()}")
            names.append(_name(dict(area.tags)))
            kinds.append(_water_kind(dict(area.tags)))
    else:
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.TagFilter(*(("waterway", v) for v in WATERWAY_LINES)))
        )
        for way in processor:
            if not isinstance(way, osmium.osm.Way):
                continue
            try:
                geoms.append(wkb.create_linestring(way))
            except (RuntimeError, osmium.InvalidLocationError):
                continue  # nodes missing from the extract, or fewer than two distinct points
            ids.append(f"osm-w{way.id}")
            names.append(_name(dict(way.tags)))
            kinds.append(str(way.tags.get("waterway", "river")))
    return ids, names, kinds, geoms


def read_osm_water(
    path: Path, *, kind: str, district: shapely.Geometry | None, max_bytes: int | None = None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Water areas (`kind` 'water': natural=water, waterway=riverbank, landuse=reservoir, from closed ways and
    multipolygon relations) or waterway lines (`kind` 'waterways': river, stream, canal), clipped to `district`."""
    _check_file(path, max_bytes)
    try:
        ids, names, kinds, raw = _collect_water(path, kind)
    except (RuntimeError, ValueError, OSError) as exc:
        raise _unreadable(path, exc) from None
    what = "water areas" if kind == "water" else "waterway lines (river, stream, canal)"
    if not ids:
        raise InputError(f"{path.name}: the file holds no {what}")
    geoms = shapely.from_wkb(np.asarray(raw, dtype=object))
    if district is not None:
        shapely.prepare(district)
        inside = shapely.intersects(district, geoms)
        geoms = np.where(inside, shapely.intersection(geoms, district), None)
    polygonal = kind == "water"
    wanted = 3 if polygonal else 1
    out: list[object] = []
    for geom in geoms:
        parts = shapely.get_parts(geom) if geom is not None else np.empty(0, dtype=object)
        parts = parts[(shapely.get_type_id(parts) == wanted) & ~shapely.is_empty(parts)]
        if not len(parts):
            out.append(None)
        else:
            out.append(shapely.multipolygons(parts) if polygonal else shapely.multilinestrings(parts))
    keep = [i for i, g in enumerate(out) if g is not None]
    if not keep:
        raise InputError(f"{path.name}: none of its {len(ids):,} {what} lies in the district")
    id_field = "water_id" if polygonal else "waterway_id"
    frame = gpd.GeoDataFrame(
        {id_field: [ids[i] for i in keep], "name": [names[i] for i in keep], "kind": [kinds[i] for i in keep]},
        geometry=gpd.GeoSeries([out[i] for i in keep], crs=OSM_CRS),
        crs=OSM_CRS,
    )
    notes = [f"{len(ids):,} {what} read; {len(frame):,} lie in the district"]
    return frame, notes
