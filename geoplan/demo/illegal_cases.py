"""The demo's illegal-construction cases (违法建设), 2017Q3–2020Q4. SYNTHETIC.

The seed data name no village-level industrial areas (村级工业区), so the hot spots are placed where the demo's
own land-use plan has village and other construction land (村庄建设用地, 其他建设用地, where village industrial
areas sit) inside rural villages: the villages with the most such land become hot spots named after them.
Most cases lie there, a few elsewhere in rural villages. Each case is a small rotated rectangle (a shed, a
storey added, a yard enclosed) with its footprint area, found on a random day of the period and moved along
the flow (发现 → 立案 → 整改中 → 已拆除 / 已完善手续) by random delays; dates after the period's end are not
reached yet, so some cases are still open at its end, and a few stall on the way.
"""

from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity

from geoplan.demo.frames import make_frame
from geoplan.demo.geometry import to_multipolygon
from geoplan.demo.partition import Partition
from geoplan.demo.plan_layers import LandUse

__all__ = ["CASE_SPEC", "PERIOD_END", "PERIOD_START", "build_illegal_cases"]

CASE_SPEC = (
    ("case_id", "string"),
    ("town", "string"),
    ("village_code", "string"),
    ("hot_spot", "string"),
    ("status", "string"),
    ("area_m2", "float"),
    ("found_on", "string"),
    ("filed_on", "string"),
    ("rectifying_on", "string"),
    ("demolished_on", "string"),
    ("legalised_on", "string"),
    ("note", "string"),
)
PERIOD_START, PERIOD_END = date(2017, 7, 1), date(2020, 12, 31)
HOT_SPOTS = 6
CASES = 90
IN_HOT_SPOTS = 0.8
STALLED = 0.12
BUILT_CLASSES = ("村庄建设用地", "其他建设用地")
"""The land-use classes the village industrial areas lie on."""
NOTE = "示意数据（演示用合成案件）"


def _stem(name: str) -> str:
    for suffix in ("村民委员会", "村委会", "居委会", "村"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _hot_spots(part: Partition, landuse: LandUse) -> list[tuple[int, shapely.Geometry]]:
    """(village index, construction land inside it) of the rural villages with the most such land."""
    industrial = shapely.union_all(
        [g for g, c in zip(landuse.geoms, landuse.land_class, strict=True) if c in BUILT_CLASSES]
    )
    rural = np.flatnonzero(part.villages["type"].to_numpy() == "village")
    land = [(int(v), shapely.intersection(part.village_geoms[v], industrial).buffer(-15.0)) for v in rural]
    land = [(v, g) for v, g in land if g.area > 20_000.0]
    land.sort(key=lambda vg: -vg[1].area)
    return land[:HOT_SPOTS]


def _point_in(geom: shapely.Geometry, rng: np.random.Generator) -> tuple[float, float]:
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(2_000):
        x, y = float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy))
        if geom.contains(shapely.Point(x, y)):
            return x, y
    point = geom.representative_point()
    return float(point.x), float(point.y)


def _footprint(x: float, y: float, rng: np.random.Generator) -> shapely.Polygon:
    width, depth = float(rng.uniform(8.0, 45.0)), float(rng.uniform(6.0, 30.0))
    box = shapely.box(x - width / 2, y - depth / 2, x + width / 2, y + depth / 2)
    return shapely.affinity.rotate(box, float(rng.uniform(0.0, 180.0)), origin=(x, y))


def _dates(rng: np.random.Generator) -> dict[str, date | None]:
    """Found on a random day (more in the early campaign years), then the flow by random delays."""
    span = (PERIOD_END - PERIOD_START).days
    found = PERIOD_START + timedelta(days=int(span * float(rng.beta(1.2, 1.6))))
    out: dict[str, date | None] = {"found_on": found}
    filed = found + timedelta(days=int(rng.integers(3, 30)))
    rectifying = filed + timedelta(days=int(rng.integers(7, 60)))
    closed = rectifying + timedelta(days=int(rng.integers(20, 240)))
    legalised = bool(rng.random() < 0.2)
    out["filed_on"] = filed
    out["rectifying_on"] = rectifying
    out["demolished_on"] = None if legalised else closed
    out["legalised_on"] = closed if legalised else None
    if rng.random() < STALLED:  # held up (an owner who appeals, a structure nobody claims): no further step
        stop = int(rng.integers(1, 3))
        for key in ("filed_on", "rectifying_on", "demolished_on", "legalised_on")[stop:]:
            out[key] = None
    return {k: (v if v is not None and v <= PERIOD_END else None) for k, v in out.items()}


STATUS_OF = {
    "found_on": "发现",
    "filed_on": "立案",
    "rectifying_on": "整改中",
    "demolished_on": "已拆除",
    "legalised_on": "已完善手续",
}


def build_illegal_cases(part: Partition, landuse: LandUse, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The cases as a catalogue-shaped frame (EPSG:4490). SYNTHETIC."""
    spots = _hot_spots(part, landuse)
    names = part.villages["village_name"].astype(str).to_numpy()
    rural = np.flatnonzero(part.villages["type"].to_numpy() == "village")
    rows: dict[str, list[object]] = {name: [] for name, _ in CASE_SPEC}
    geoms: list[shapely.MultiPolygon] = []
    drafts = []
    for _ in range(CASES):
        if spots and rng.random() < IN_HOT_SPOTS:
            v, where = spots[int(rng.integers(len(spots)))]
            spot = f"{_stem(names[v])}村级工业区"
        else:
            v = int(rng.choice(rural))
            where, spot = part.village_geoms[v].buffer(-30.0), None
        x, y = _point_in(where, rng)
        drafts.append(
            (v, spot, to_multipolygon(_footprint(x, y, rng).intersection(part.village_geoms[v])), _dates(rng))
        )
    drafts.sort(key=lambda d: d[3]["found_on"] or PERIOD_END)
    for n, (v, spot, geom, dates) in enumerate(drafts, start=1):
        found = dates["found_on"]
        assert found is not None
        reached = [field for field in STATUS_OF if dates[field] is not None]
        rows["case_id"].append(f"WJ-{found.year}-{n:03d}")
        rows["town"].append(str(part.villages["town_name"].iloc[v]))
        rows["village_code"].append(str(part.villages["village_code"].iloc[v]))
        rows["hot_spot"].append(spot)
        rows["status"].append(STATUS_OF[reached[-1]])
        rows["area_m2"].append(round(float(geom.area), 1))
        for field in STATUS_OF:
            when = dates[field]
            rows[field].append(None if when is None else when.isoformat())
        rows["note"].append(NOTE)
        geoms.append(geom)
    return make_frame(rows, CASE_SPEC, geoms)
