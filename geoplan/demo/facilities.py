"""Synthetic cultural facilities, placed on the walking network with deliberate gaps.

The ten-minute cultural circle analysis needs something to find: one town (更合镇) has no self-service
library, and a cluster of remote villages has no village library (农家书屋), so coverage maps and siting
suggestions show real holes instead of a uniformly covered district.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geoplan.demo.frames import make_frame
from geoplan.demo.geometry import FloatArray, IntArray
from geoplan.demo.layout import GENGHE, HECHENG, MINGCHENG, TOWN_SEAT_CODES, YANGHE
from geoplan.demo.partition import Partition
from geoplan.demo.roads import RoadNetwork
from geoplan.demo.sources import Sources

SPEC = (
    ("facility_id", "string"),
    ("name", "string"),
    ("kind", "string"),
    ("capacity", "integer"),
    ("village_code", "string"),
)
SELF_SERVICE_LIBRARIES = {HECHENG: 4, YANGHE: 2, MINGCHENG: 1, GENGHE: 0}  # 更合镇: the deliberate gap
BOOKHOUSE_SHARE = 0.70  # share of villages (村) with a 农家书屋
CAPACITY = {
    "图书馆": (1500, 3000),
    "文化馆": (800, 1500),
    "博物馆": (500, 1200),
    "综合性文化服务中心": (200, 600),
    "文化站": (150, 400),
    "自助图书馆": (40, 150),
    "农家书屋": (20, 60),
    "文化广场": (300, 1000),
}
MAX_OFFSET = 25.0  # m from the road node: "on the street", well within the 50 m snapping distance


@dataclass
class _Placed:
    name: str
    kind: str
    node: int


def _unit_short(name: str) -> str:
    return name.removesuffix("居委会").removesuffix("委会")


def _nearest_free(nodes: FloatArray, pool: IntArray, target: FloatArray, used: set[int]) -> int:
    order = pool[np.argsort(np.hypot(*(nodes[pool] - target).T), kind="stable")]
    for n in order:
        if int(n) not in used:
            used.add(int(n))
            return int(n)
    raise ValueError("no free road node left")


def build_facilities(src: Sources, part: Partition, roads: RoadNetwork, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Town centres and stations at the seats, district venues in 荷城, then community and village venues."""
    nodes = roads.nodes
    used: set[int] = set()
    placed: list[_Placed] = []
    town_name = dict(zip(src.towns["town_code"], src.towns["town_name"], strict=True))
    for code in TOWN_SEAT_CODES:
        grid = roads.grid_nodes[code]
        seat = np.asarray(src.seats[code])
        tn = town_name[code]
        placed.append(_Placed(f"{tn}综合性文化服务中心", "综合性文化服务中心", _nearest_free(nodes, grid, seat, used)))
        station_at = seat + rng.uniform(-500, 500, 2)
        placed.append(_Placed(f"{tn}文化站", "文化站", _nearest_free(nodes, grid, station_at, used)))
        if code == HECHENG:
            for name, kind in (("高明区图书馆", "图书馆"), ("高明区文化馆", "文化馆"), ("高明区博物馆", "博物馆")):
                at = seat + rng.uniform(-1_500, 1_500, 2)
                placed.append(_Placed(name, kind, _nearest_free(nodes, grid, at, used)))
        for k in range(SELF_SERVICE_LIBRARIES[code]):
            at = nodes[grid[int(rng.integers(len(grid)))]]
            placed.append(_Placed(f"{tn}自助图书馆{k + 1}号", "自助图书馆", _nearest_free(nodes, grid, at, used)))

    types = part.villages["type"].to_numpy()
    names = part.villages["village_name"].to_numpy()
    for v in np.flatnonzero(types == "community").tolist():
        hub = int(roads.hub_node[v])
        used.add(hub)
        placed.append(_Placed(f"{_unit_short(names[v])}文化广场", "文化广场", hub))
        near = _near_nodes(roads, hub, used, part, v)
        if near is not None:
            placed.append(_Placed(f"{_unit_short(names[v])}综合性文化服务中心", "综合性文化服务中心", near))

    villages = np.flatnonzero(types == "village")
    uncovered = _remote_cluster(src, part, villages, round(len(villages) * (1 - BOOKHOUSE_SHARE)))
    for v in villages.tolist():
        short = _unit_short(names[v])
        hub = int(roads.hub_node[v])
        if v not in uncovered:
            used.add(hub)
            placed.append(_Placed(f"{short}农家书屋", "农家书屋", hub))
        if rng.random() < 0.35:
            near = _near_nodes(roads, hub, used, part, v)
            if near is not None:
                placed.append(_Placed(f"{short}文化广场", "文化广场", near))

    xy, unit = off_the_node(nodes[[p.node for p in placed]], part, rng)
    all_codes = part.villages["village_code"].to_numpy()
    codes = [str(all_codes[u]) if u >= 0 else None for u in unit]
    points = shapely.points(xy)
    rows: dict[str, list[Any]] = {
        "facility_id": [f"CF-{i + 1:04d}" for i in range(len(placed))],
        "name": [p.name for p in placed],
        "kind": [p.kind for p in placed],
        "capacity": [int(rng.integers(*CAPACITY[p.kind])) for p in placed],
        "village_code": codes,
    }
    return make_frame(rows, SPEC, points)


def off_the_node(at_node: FloatArray, part: Partition, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
    """Each facility a few metres off its road node, in a random direction ("on the street"), and the unit it
    stands in; a facility the offset would carry into the next unit (or outside) stays on its node."""
    angle = rng.uniform(0, 2 * np.pi, len(at_node))
    dist = rng.uniform(5.0, MAX_OFFSET, len(at_node))
    moved = at_node + np.column_stack([dist * np.cos(angle), dist * np.sin(angle)])
    unit_node, unit_moved = part.village_at(at_node), part.village_at(moved)
    stay = (unit_moved < 0) | (unit_moved != unit_node)
    return np.where(stay[:, None], at_node, moved), np.where(stay, unit_node, unit_moved)


def _near_nodes(roads: RoadNetwork, hub: int, used: set[int], part: Partition, v: int) -> int | None:
    """A free node near `hub` inside the same unit (a second venue next to the first)."""
    d = np.hypot(*(roads.nodes - roads.nodes[hub]).T)
    geom = part.village_geoms[v]
    for n in np.argsort(d, kind="stable")[1:40]:
        if int(n) in used or d[n] > 600:
            continue
        if geom.contains(shapely.Point(roads.nodes[n])):
            used.add(int(n))
            return int(n)
    return None


def _remote_cluster(src: Sources, part: Partition, villages: IntArray, k: int) -> set[int]:
    """The k villages nearest to the village farthest from any town seat: a remote cluster."""
    seats = np.array([src.seats[c] for c in TOWN_SEAT_CODES])
    hubs = part.hubs[villages]
    far = np.min(np.hypot(hubs[:, None, 0] - seats[None, :, 0], hubs[:, None, 1] - seats[None, :, 1]), axis=1)
    anchor = hubs[int(np.argmax(far))]
    order = np.argsort(np.hypot(*(hubs - anchor).T), kind="stable")
    return {int(v) for v in villages[order[:k]]}
