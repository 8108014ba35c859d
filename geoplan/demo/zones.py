"""Old-town renewal zones (三旧改造) and sponge-city areas, placed where the plan's names put them.

Zones named after a real village-level unit (三洲, 新圩, 罗西村…) are drawn inside that unit; the rest sit
near the seats (沿江路以东旧区 between the 荷城 seat and the Xijiang, the 西江新城 sponge pilot upstream of
it along the river). Outlines are synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.ops import nearest_points

from geoplan.demo.geometry import FloatArray, blob, to_multipolygon
from geoplan.demo.layout import GENGHE, HECHENG, MINGCHENG, TOWN_SEAT_CODES, YANGHE
from geoplan.demo.partition import Partition
from geoplan.demo.sources import Sources

RENEWAL_SPEC = (("zone_id", "string"), ("name", "string"), ("kind", "string"), ("status", "string"), ("town", "string"))
SPONGE_SPEC = (("area_id", "string"), ("name", "string"), ("status", "string"), ("town", "string"))
SPONGE_PILOT = "西江新城海绵城市试点区"


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str  # renewal kind; empty for sponge areas
    status: str
    town: str
    geometry: shapely.MultiPolygon  # EPSG:4547


@dataclass(frozen=True)
class RiverFrame:
    """Directions at the 荷城 seat: towards the Xijiang bank and along it (downstream is south-east)."""

    seat: FloatArray
    to_river: FloatArray  # vector from the seat to the nearest bank point
    along: FloatArray  # unit vector along the bank, pointing north


def river_frame(src: Sources) -> RiverFrame:
    seat = np.asarray(src.seats[HECHENG])
    bank = nearest_points(src.district.boundary, shapely.Point(seat))[0]
    to_river = np.array([bank.x, bank.y]) - seat
    along = np.array([-to_river[1], to_river[0]]) / np.hypot(*to_river)
    if along[1] < 0:
        along = -along
    return RiverFrame(seat=seat, to_river=to_river, along=along)


def _unit(part: Partition, name_prefix: str) -> int:
    names = part.villages["village_name"].to_numpy()
    hits = [i for i, n in enumerate(names) if str(n).startswith(name_prefix)]
    if not hits:
        raise ValueError(f"no village-level unit named {name_prefix}…")
    return hits[0]


def _unit_near(part: Partition, town_code: str, xy: FloatArray, exclude: set[int]) -> int:
    codes = part.villages["town_code"].to_numpy()
    cand = [i for i in np.flatnonzero(codes == town_code) if int(i) not in exclude]
    d = np.hypot(*(part.hubs[cand] - xy).T)
    return int(cand[int(np.argmin(d))])


class _Placer:
    """Cuts zone outlines to a unit (or town) and away from zones already placed in the same layer."""

    def __init__(self, src: Sources, part: Partition, rng: np.random.Generator) -> None:
        self.src, self.part, self.rng = src, part, rng
        self.inner = src.district.buffer(-15.0)
        self.taken: shapely.Geometry = shapely.Polygon()
        self.town_name = dict(zip(src.towns["town_code"], src.towns["town_name"], strict=True))

    def place(self, center: FloatArray, radius: float, within: shapely.Geometry) -> shapely.MultiPolygon:
        shape = blob((float(center[0]), float(center[1])), radius, self.rng, roughness=0.25, n=48)
        geom = shapely.intersection(shapely.intersection(shape, within.buffer(-10.0)), self.inner)
        geom = to_multipolygon(shapely.difference(geom, self.taken))
        geom = shapely.MultiPolygon([p for p in geom.geoms if p.area > 500.0])
        self.taken = shapely.union(self.taken, geom)
        return geom

    def town_of_unit(self, v: int) -> str:
        return str(self.part.villages["town_name"].iloc[v])

    def town_geom(self, code: str) -> shapely.MultiPolygon:
        return self.part.towns[self.part.town_codes.index(code)]


def build_renewal_zones(src: Sources, part: Partition, rng: np.random.Generator) -> list[Zone]:
    """The renewal zones named in the plan, plus a few old village quarters (旧村居)."""
    pl = _Placer(src, part, rng)
    rf = river_frame(src)
    hc = pl.town_geom(HECHENG)
    zones: list[Zone] = []
    riverside = rf.seat + 0.5 * rf.to_river - 150.0 * rf.along
    zones.append(Zone("沿江路以东旧区", "旧城镇", "实施中", pl.town_name[HECHENG], pl.place(riverside, 420.0, hc)))
    v = _unit(part, "三洲")
    zones.append(
        Zone("三洲旧区", "旧城镇", "启动", pl.town_of_unit(v), pl.place(part.hubs[v], 330.0, part.village_geoms[v]))
    )
    used = {v}
    v = _unit_near(part, HECHENG, rf.seat - 1_000.0 * rf.to_river / np.hypot(*rf.to_river), used)
    used.add(v)
    spot = part.hubs[v] + rng.uniform(-120, 120, 2)
    zones.append(
        Zone("原区技工学校", "旧厂房", "规划", pl.town_of_unit(v), pl.place(spot, 170.0, part.village_geoms[v]))
    )
    old_towns = (
        ("富湾旧城镇", HECHENG, rf.seat + 5_500.0 * rf.along, "规划"),
        ("西安旧城镇", HECHENG, rf.seat + np.array([-5_000.0, -500.0]), "启动"),
        ("杨梅旧城镇", GENGHE, np.asarray(src.seats[GENGHE]) + np.array([-3_500.0, -4_500.0]), "规划"),
    )
    for name, code, at, status in old_towns:
        v = _unit_near(part, code, at, used)
        used.add(v)
        zones.append(
            Zone(name, "旧城镇", status, pl.town_of_unit(v), pl.place(part.hubs[v], 400.0, part.village_geoms[v]))
        )
    v = _unit(part, "新圩")
    zones.append(
        Zone("新圩旧城镇", "旧城镇", "实施中", pl.town_of_unit(v), pl.place(part.hubs[v], 380.0, part.village_geoms[v]))
    )
    for prefix, status in (
        ("罗西", "已完成"),
        ("泽河", "实施中"),
        ("明南", "启动"),
        ("豸岗", "规划"),
        ("沙水", "已完成"),
    ):
        v = _unit(part, prefix)
        geom = pl.place(part.hubs[v] + rng.uniform(-80, 80, 2), 260.0, part.village_geoms[v])
        zones.append(Zone(f"{prefix}村旧村居", "旧村居", status, pl.town_of_unit(v), geom))
    return [z for z in zones if not z.geometry.is_empty]


def build_sponge_areas(src: Sources, part: Partition, rng: np.random.Generator) -> list[Zone]:
    """The 西江新城 pilot by the river, then smaller areas in each town's built-up area."""
    pl = _Placer(src, part, rng)
    rf = river_frame(src)
    pilot_at = rf.seat + 1_700.0 * rf.along + 0.2 * rf.to_river
    zones = [Zone(SPONGE_PILOT, "", "达标", pl.town_name[HECHENG], pl.place(pilot_at, 1_100.0, pl.town_geom(HECHENG)))]
    seats = {c: np.asarray(src.seats[c]) for c in TOWN_SEAT_CODES}
    west = np.array([-1.0, 0.0])
    others = (
        ("荷城老城区海绵化改造片区", HECHENG, seats[HECHENG] + 1_300.0 * west - 600.0 * rf.along, 600.0, "在建"),
        ("高明大道沿线海绵城市建设片区", HECHENG, seats[HECHENG] + 3_000.0 * rf.along + 1_200.0 * west, 500.0, "规划"),
        ("荷城街道公园绿地海绵化改造", HECHENG, seats[HECHENG] + 2_300.0 * west + 1_500.0 * rf.along, 350.0, "达标"),
        ("杨和镇区海绵化改造片区", YANGHE, seats[YANGHE], 600.0, "在建"),
        ("杨和产业园海绵化改造", YANGHE, seats[YANGHE] + np.array([1_300.0, -900.0]), 450.0, "规划"),
        ("明城镇区海绵城市建设片区", MINGCHENG, seats[MINGCHENG], 500.0, "规划"),
        ("沧江工业园海绵化改造", MINGCHENG, seats[MINGCHENG] + np.array([1_200.0, 300.0]), 420.0, "达标"),
        ("更合镇区海绵化改造片区", GENGHE, seats[GENGHE], 450.0, "在建"),
    )
    for name, code, at, radius, status in others:
        zones.append(Zone(name, "", status, pl.town_name[code], pl.place(at, radius, pl.town_geom(code))))
    return [z for z in zones if not z.geometry.is_empty]
