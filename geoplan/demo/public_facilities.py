"""Synthetic public service facilities (schools, clinics, elderly care, sports, markets, parks) on the network.

Life-circle analysis needs every service, not only culture. Counts follow the settlement pattern: town seats
hold the district- and town-level venues (middle schools, health centres, nursing homes, sports centres,
markets, large parks; more of them in 荷城街道), every community (社区) holds the 5- and 10-minute services,
and villages (村) hold a village clinic and, with some chance, the rest, so rural gaps are real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from geoplan.demo.facilities import off_the_node
from geoplan.demo.frames import make_frame
from geoplan.demo.geometry import IntArray
from geoplan.demo.layout import HECHENG, TOWN_SEAT_CODES
from geoplan.demo.partition import Partition
from geoplan.demo.roads import RoadNetwork
from geoplan.demo.sources import Sources

SPEC = (
    ("facility_id", "string"),
    ("name", "string"),
    ("service", "string"),
    ("kind", "string"),
    ("town", "string"),
    ("village_code", "string"),
    ("capacity", "integer"),
    ("area_ha", "float"),
)

# Per town seat: (service, kind, count in 荷城街道, count in the other towns).
SEAT_VENUES = (
    ("middle_school", "初级中学", 5, 2),
    ("primary_school", "小学", 4, 1),
    ("kindergarten", "幼儿园", 3, 1),
    ("clinic", "社区卫生服务中心", 2, 1),
    ("elderly_care", "养老院", 2, 1),
    ("sports", "体育中心", 1, 1),
    ("market", "农贸市场", 3, 1),
    ("park", "综合公园", 3, 1),
)
# Per community (社区): (service, kind, probability); a probability of 1 or more places that many.
COMMUNITY_VENUES = (
    ("kindergarten", "幼儿园", 2.0),
    ("primary_school", "小学", 0.6),
    ("clinic", "社区卫生服务站", 1.0),
    ("elderly_care", "社区居家养老服务站", 1.0),
    ("sports", "社区运动场", 0.6),
    ("market", "肉菜市场", 0.5),
    ("park", "社区公园", 0.7),
    ("park", "游园", 0.6),
)
HUB_NODES = 12
"""A unit's venues take free nodes among the 12 nearest its hub, then any node of the unit."""
# Per village (村): rural services are sparser, so the rural circles show gaps.
VILLAGE_VENUES = (
    ("clinic", "村卫生站", 0.85),
    ("kindergarten", "幼儿园", 0.4),
    ("primary_school", "教学点", 0.35),
    ("elderly_care", "农村幸福院", 0.5),
    ("sports", "村级健身广场", 0.6),
    ("market", "肉菜市场", 0.15),
    ("park", "游园", 0.3),
)
CAPACITY = {  # places, beds or visitors a day, by kind
    "初级中学": (900, 2400),
    "小学": (600, 1800),
    "教学点": (40, 200),
    "幼儿园": (90, 360),
    "社区卫生服务中心": (200, 600),
    "社区卫生服务站": (40, 150),
    "村卫生站": (10, 60),
    "养老院": (100, 400),
    "社区居家养老服务站": (20, 80),
    "农村幸福院": (10, 40),
    "体育中心": (1000, 3000),
    "社区运动场": (100, 400),
    "村级健身广场": (30, 150),
    "农贸市场": (1500, 4000),
    "肉菜市场": (300, 1200),
    "综合公园": (2000, 8000),
    "社区公园": (300, 1500),
    "游园": (50, 300),
}
PARK_HA = {"综合公园": (10.0, 40.0), "社区公园": (1.0, 5.0), "游园": (0.2, 0.95)}


@dataclass
class _Placed:
    name: str
    service: str
    kind: str
    node: int


def _count(p: float, rng: np.random.Generator) -> int:
    return int(p) if p >= 1 else int(rng.random() < p)


def build_public_facilities(
    src: Sources, part: Partition, roads: RoadNetwork, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Seat venues on each town's street grid, then community and village venues on nodes inside the unit."""
    nodes = roads.nodes
    unit_of_node = part.village_at(nodes)
    used: set[int] = set()
    placed: list[_Placed] = []
    town_name = dict(zip(src.towns["town_code"], src.towns["town_name"], strict=True))
    for code in TOWN_SEAT_CODES:
        grid = roads.grid_nodes[code]
        tn = town_name[code]
        for service, kind, here, elsewhere in SEAT_VENUES:
            n = here if code == HECHENG else elsewhere
            for k in range(n):
                node = _free(grid, used, rng)
                if node is not None:
                    label = f"{tn}{kind}" if n == 1 else f"{tn}第{k + 1}{kind}"
                    placed.append(_Placed(label, service, kind, node))

    names = part.villages["village_name"].to_numpy()
    types = part.villages["type"].to_numpy()
    hearts = shapely.get_coordinates(shapely.point_on_surface(part.village_geoms))
    for v in range(len(part.villages)):
        venues = COMMUNITY_VENUES if types[v] == "community" else VILLAGE_VENUES if types[v] == "village" else ()
        pool = _around_a_hub(np.flatnonzero(unit_of_node == v), nodes, hearts[v])
        short = str(names[v]).removesuffix("居委会").removesuffix("委会")
        for service, kind, p in venues:
            for k in range(_count(p, rng)):
                node = _free(pool[:HUB_NODES], used, rng)
                node = _free(pool, used, rng) if node is None else node
                if node is not None:
                    placed.append(_Placed(f"{short}{kind}" + (f"{k + 1}" if k else ""), service, kind, node))

    xy, unit = off_the_node(nodes[[p.node for p in placed]], part, rng)
    codes = part.villages["village_code"].to_numpy()
    unit_town = part.villages["town_code"].to_numpy()
    rows: dict[str, list[Any]] = {
        "facility_id": [f"PF-{i + 1:04d}" for i in range(len(placed))],
        "name": [p.name for p in placed],
        "service": [p.service for p in placed],
        "kind": [p.kind for p in placed],
        "town": [town_name[str(unit_town[u])] if u >= 0 else None for u in unit],
        "village_code": [str(codes[u]) if u >= 0 else None for u in unit],
        "capacity": [int(rng.integers(*CAPACITY[p.kind])) for p in placed],
        "area_ha": [round(float(rng.uniform(*PARK_HA[p.kind])), 2) if p.kind in PARK_HA else None for p in placed],
    }
    return make_frame(rows, SPEC, shapely.points(xy))


def _around_a_hub(pool: IntArray, nodes: NDArray[np.float64], heart: NDArray[np.float64]) -> IntArray:
    """The unit's nodes, nearest first to its heart (its service hub): a community's venues stand together
    around its service centre (党群服务中心), as they do in Gaoming, not scattered at random."""
    order = np.argsort(np.hypot(*(nodes[pool] - heart).T), kind="stable")
    return pool[order]


def _free(pool: IntArray, used: set[int], rng: np.random.Generator) -> int | None:
    """A random node of `pool` not yet taken (two venues never share a node)."""
    free = [int(n) for n in pool if int(n) not in used]
    if not free:
        return None
    node = free[int(rng.integers(len(free)))]
    used.add(node)
    return node
