"""The hand-chosen layout of the synthetic geography (EPSG:4547 metres).

No public town or village boundaries, terrain or land-use data are at hand, so the demo needs a few anchoring
decisions: where each town reaches, where the special units and hills sit, how big each urban area is. They
are collected here so that every builder agrees on them and a reviewer can see them in one place. The town
seats themselves are real (GeoNames) and come from the sources, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass

HECHENG = "440608004"
YANGHE = "440608106"
MINGCHENG = "440608107"
GENGHE = "440608108"
TOWN_SEAT_CODES = (HECHENG, YANGHE, MINGCHENG, GENGHE)


@dataclass(frozen=True)
class TownLayout:
    """How a town-level unit is grown: its target area and the extra anchor points it grows from."""

    code: str
    kind: str  # town | subdistrict | special
    target_km2: float
    anchors: tuple[tuple[float, float], ...]  # besides the seat (towns) or the only seeds (special units)


# Rough real areas: 荷城 ~160 km², 杨和 ~150, 明城 ~230, 更合 ~380; special units a few km² to ~20 km².
TOWN_LAYOUT: dict[str, TownLayout] = {
    HECHENG: TownLayout(HECHENG, "subdistrict", 160.0, ((380_000.0, 2_543_000.0), (383_500.0, 2_538_500.0))),
    YANGHE: TownLayout(YANGHE, "town", 150.0, ((375_000.0, 2_521_000.0), (378_500.0, 2_526_000.0))),
    MINGCHENG: TownLayout(MINGCHENG, "town", 230.0, ((362_000.0, 2_532_000.0), (364_000.0, 2_522_500.0))),
    GENGHE: TownLayout(GENGHE, "town", 380.0, ((341_000.0, 2_518_000.0), (350_500.0, 2_511_000.0))),
    "440608400": TownLayout("440608400", "special", 4.5, ((361_000.0, 2_531_500.0),)),  # 高明监狱
    "440608401": TownLayout("440608401", "special", 20.0, ((352_800.0, 2_509_300.0),)),  # 云勇林场
    "440608402": TownLayout("440608402", "special", 8.0, ((374_000.0, 2_516_000.0),)),  # 对川茶场
    "440608403": TownLayout("440608403", "special", 3.0, ((370_500.0, 2_524_000.0),)),  # 佛山监狱
}


@dataclass(frozen=True)
class UrbanArea:
    """A town's built-up area as an ellipse around (an offset from) its seat."""

    dx: float
    dy: float
    a: float
    b: float
    angle: float
    grid_spacing: float
    communities_radius: float  # communities are seeded within this share of the ellipse
    urban_weight: float  # share of the urban population living here


URBAN: dict[str, UrbanArea] = {
    HECHENG: UrbanArea(-2_300.0, 1_500.0, 4_400.0, 2_600.0, 112.0, 190.0, 0.8, 0.62),
    YANGHE: UrbanArea(0.0, 0.0, 2_500.0, 1_700.0, 30.0, 210.0, 0.7, 0.16),
    MINGCHENG: UrbanArea(0.0, 0.0, 1_900.0, 1_300.0, 0.0, 230.0, 0.5, 0.10),
    GENGHE: UrbanArea(0.0, 0.0, 2_100.0, 1_500.0, 60.0, 220.0, 0.9, 0.12),
}


@dataclass(frozen=True)
class Hill:
    """A hill massif: the red lines cover it and hardly anyone lives on it."""

    name: str
    kind: str  # 水源涵养 | 生物多样性维护 | 水土保持
    x: float
    y: float
    radius: float


HILLS: tuple[Hill, ...] = (
    Hill("皂幕山水源涵养生态保护红线", "水源涵养", 341_500.0, 2_518_500.0, 4_300.0),
    Hill("老香山水土保持生态保护红线", "水土保持", 347_500.0, 2_522_800.0, 2_300.0),
    Hill("云勇林场生物多样性维护生态保护红线", "生物多样性维护", 352_500.0, 2_509_500.0, 2_800.0),
    Hill("明城南部山地水土保持生态保护红线", "水土保持", 360_500.0, 2_516_300.0, 2_500.0),
    Hill("对川水源涵养生态保护红线", "水源涵养", 374_500.0, 2_515_500.0, 2_700.0),
    Hill("更合北部山地水土保持生态保护红线", "水土保持", 357_000.0, 2_527_300.0, 2_000.0),
    Hill("荷城北部山地生物多样性维护生态保护红线", "生物多样性维护", 376_500.0, 2_541_500.0, 2_200.0),
)
