"""The demo's history: how its layers came to be what they are, quarter by quarter, 2017Q3–2020Q4 (SYNTHETIC).

The demo builder makes the layers as they stand at the end of the plan; this module works out a plausible
past that ends exactly there, as a list of dated writes:

- at the plan's start (2017-07-01) the base layers, the plans and the population raster are written whole;
  a quarter of the cultural facilities (not the district's own library, museum and cultural centre) and a
  tenth of the public service facilities are not there yet;
- the facilities that were missing open quarter by quarter (appended, at most `BATCH` a write);
- the sponge-city areas grow: each starts as a planned core and is extended and brought to 在建 and 达标;
- the renewal zones move through 规划 → 启动 → 实施中 → 已完成 to their end status;
- the land-use plan is adjusted twice (土规调整): parcels that the urban master plan builds on were
  non-construction land at the start, a conflict (URBAN_ON_NONCONSTRUCTION) the edits resolve;
- the projects layer is brought up to each quarterly report (status and progress of the latest progress
  record known on the report day), all projects in one write, so their order stays the layer's.

Every write that changes features keeps at most `BATCH` of them (`AUDIT_FEATURES_MAX`), so the audit log keeps
the features and the as-of replay can go back to any moment. Pure: frames in, events out, nothing mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.affinity

from geoplan.monitoring.ledger_quarters import Quarter, quarter_range

__all__ = [
    "BATCH",
    "HISTORY_FIRST",
    "HISTORY_LAST",
    "PLAN_START",
    "Event",
    "demo_timeline",
    "mid_quarter",
    "report_day",
]

HISTORY_FIRST, HISTORY_LAST = Quarter(2017, 3), Quarter(2020, 4)
PLAN_START = datetime(2017, 7, 1, 2, 0, tzinfo=UTC)
"""10:00 Beijing time on the plan's first day: when the base layers are written."""
BATCH = 50
"""At most this many features per dated write (the audit keeps the features of such writes)."""
_DISTRICT_LEVEL = ("图书馆", "文化馆", "博物馆")
_SPONGE_STEPS = ("规划", "在建", "达标")
_RENEWAL_STEPS = ("规划", "启动", "实施中", "已完成")
_LANDUSE_EDITS = (Quarter(2018, 2), Quarter(2019, 3))
_NON_CONSTRUCTION = "其他农用地"

Action = Literal["replace", "append", "update"]


@dataclass(frozen=True)
class Event:
    """One dated write of the demo's history."""

    at: datetime
    layer: str
    action: Action
    frame: gpd.GeoDataFrame
    note: str


def mid_quarter(quarter: Quarter) -> datetime:
    """Synthetic: the 15th of a quarter's middle month, 10:00 Beijing time."""
    return datetime(quarter.year, 3 * (quarter.q - 1) + 2, 15, 2, 0, tzinfo=UTC)


def report_day(quarter: Quarter) -> datetime:
    """Synthetic: the 10th of the month after the quarter, when quarterly reports are due (as `progress`)."""
    after = quarter.next()
    return datetime(after.year, 3 * (after.q - 1) + 1, 10, 2, 0, tzinfo=UTC)


def demo_timeline(
    layers: dict[str, gpd.GeoDataFrame], progress: pd.DataFrame, *, rng: np.random.Generator
) -> list[Event]:
    """Every dated write that leads to `layers` (the end state), oldest first. `progress`: the projects'
    quarterly records (`recorded_at`, `quarter`, `status`, `progress_pct`)."""
    events: list[Event] = []
    dynamic = {"culture_facilities", "public_facilities", "sponge_areas", "renewal_zones", "landuse_plan", "projects"}
    for name, frame in layers.items():
        if name not in dynamic:
            events.append(Event(PLAN_START, name, "replace", frame, "基础图层"))
    if "culture_facilities" in layers:
        culture = layers["culture_facilities"]
        late = ~culture["kind"].isin(_DISTRICT_LEVEL).to_numpy() & (rng.random(len(culture)) < 0.25)
        events += _openings("culture_facilities", culture, late, rng)
    if "public_facilities" in layers:
        public = layers["public_facilities"]
        events += _openings("public_facilities", public, rng.random(len(public)) < 0.1, rng)
    if "sponge_areas" in layers:
        events += _stepped("sponge_areas", layers["sponge_areas"], _SPONGE_STEPS, rng, grow=True)
    if "renewal_zones" in layers:
        events += _stepped("renewal_zones", layers["renewal_zones"], _RENEWAL_STEPS, rng, grow=False)
    if "landuse_plan" in layers:
        events += _landuse_edits(layers["landuse_plan"], layers.get("urban_plan"), rng)
    if "projects" in layers:
        events += _project_reports(layers["projects"], progress)
    return sorted(events, key=lambda e: e.at)  # stable: a layer's own writes keep their order


def _openings(layer: str, frame: gpd.GeoDataFrame, late: np.ndarray, rng: np.random.Generator) -> list[Event]:
    """The features not there at the start, opened quarter by quarter (2017Q4–2020Q4)."""
    events = [Event(PLAN_START, layer, "replace", frame[~late].reset_index(drop=True), "计划开始时已有")]
    quarters = quarter_range(HISTORY_FIRST.next(), HISTORY_LAST)
    opened = rng.integers(0, len(quarters), size=int(late.sum()))
    rows = np.flatnonzero(late)
    for index, quarter in enumerate(quarters):
        chosen = rows[opened == index]
        for start in range(0, len(chosen), BATCH):
            batch = frame.iloc[chosen[start : start + BATCH]].reset_index(drop=True)
            events.append(Event(mid_quarter(quarter), layer, "append", batch, f"{quarter} 新建成开放"))
    return events


def _stepped(
    layer: str, frame: gpd.GeoDataFrame, steps: tuple[str, ...], rng: np.random.Generator, *, grow: bool
) -> list[Event]:
    """Each feature walks `steps` up to its end status, one step at a drawn quarter; with `grow`, a feature
    starts as a smaller core of its outline and reaches its full extent with its second step."""
    quarters = quarter_range(HISTORY_FIRST.next(), HISTORY_LAST)
    paths: list[list[tuple[int, str, bool]]] = []  # (quarter index, status, full extent) per feature
    for status in frame["status"]:
        end = steps.index(str(status))
        moves = sorted(int(v) for v in rng.choice(len(quarters), size=end, replace=False)) if end else []
        path = [(-1, steps[0], not grow)]
        for number, index in enumerate(moves, start=1):
            path.append((index, steps[number], True))
        if grow and len(path) == 1:  # a planned area grows once, still planned
            path.append((int(rng.integers(0, len(quarters))), steps[0], True))
        paths.append(path)
    start = frame.copy()
    start["status"] = [p[0][1] for p in paths]
    if grow:
        start = start.set_geometry([_core(g, p[0][2]) for g, p in zip(frame.geometry, paths, strict=True)])
    events = [Event(PLAN_START, layer, "replace", start.reset_index(drop=True), "计划开始时状态")]
    for index, quarter in enumerate(quarters):
        rows = [i for i, p in enumerate(paths) if any(step[0] == index for step in p)]
        if not rows:
            continue
        changed = frame.iloc[rows].copy()
        statuses, full = [], []
        for i in rows:
            reached = [step for step in paths[i] if step[0] <= index]
            statuses.append(reached[-1][1])
            full.append(any(step[2] for step in reached))
        changed["status"] = statuses
        if grow:
            changed = changed.set_geometry(
                [_core(g, f) for g, f in zip(changed.geometry, full, strict=True)], crs=frame.crs
            )
        events.append(Event(mid_quarter(quarter), layer, "update", changed.reset_index(drop=True), f"{quarter} 进展"))
    return events


def _core(geometry: shapely.Geometry, full: bool) -> shapely.Geometry:
    """The full outline, or its core at the start: the outline scaled to 60 % about its centre (a MultiPolygon)."""
    if full:
        return geometry
    core = shapely.affinity.scale(geometry, 0.6, 0.6, origin="centroid")
    return core if core.geom_type == "MultiPolygon" else shapely.MultiPolygon([core])


def _landuse_edits(landuse: gpd.GeoDataFrame, urban: gpd.GeoDataFrame | None, rng: np.random.Generator) -> list[Event]:
    """Parcels that are construction land now but were not at the start, where the urban plan builds: two
    plan adjustments (土规调整) bring them to what they are now."""
    start = landuse.copy()
    if urban is None or not len(landuse):
        return [Event(PLAN_START, "landuse_plan", "replace", start, "土地利用总体规划")]
    built = urban[urban["construction"].astype(bool).to_numpy()]
    tree = shapely.STRtree(np.asarray(built.geometry.values))
    candidates = [
        i
        for i, (geom, construction) in enumerate(zip(landuse.geometry, landuse["construction"], strict=True))
        if bool(construction) and len(tree.query(geom, predicate="intersects"))
    ]
    count = min(len(candidates), len(_LANDUSE_EDITS) * 12)
    chosen = sorted(int(v) for v in rng.choice(candidates, size=count, replace=False)) if count else []
    start.loc[chosen, "land_class"] = _NON_CONSTRUCTION
    start.loc[chosen, "construction"] = False
    events = [Event(PLAN_START, "landuse_plan", "replace", start, "土地利用总体规划（调整前）")]
    for number, quarter in enumerate(_LANDUSE_EDITS):
        rows = chosen[number :: len(_LANDUSE_EDITS)]
        if rows:
            edit = landuse.iloc[rows].reset_index(drop=True)
            events.append(Event(mid_quarter(quarter), "landuse_plan", "update", edit, f"{quarter} 土规调整"))
    return events


def _project_reports(projects: gpd.GeoDataFrame, progress: pd.DataFrame) -> list[Event]:
    """The projects layer at the start (planning, 0 % for every project with records) and brought up to each
    quarterly report day: the latest record known then."""
    start = projects.copy()
    with_records = projects["project_id"].astype(str).isin(set(progress["project_id"].astype(str))).to_numpy()
    start.loc[with_records, "status"] = "前期"
    start.loc[with_records, "progress_pct"] = 0.0
    if len(projects) > BATCH:
        return [Event(PLAN_START, "projects", "replace", projects, "项目台账")]
    events = [Event(PLAN_START, "projects", "replace", start, "项目台账（计划开始）")]
    recorded = pd.to_datetime(progress["recorded_at"], utc=True)
    state = start
    for quarter in quarter_range(HISTORY_FIRST, HISTORY_LAST):
        day = report_day(quarter)
        known = progress[(recorded <= pd.Timestamp(day)).to_numpy()].sort_values(["project_id", "quarter"])
        latest = known.groupby("project_id").tail(1).set_index("project_id")
        now = state.copy()
        for i, pid in enumerate(now["project_id"].astype(str)):
            if pid in latest.index:
                now.loc[now.index[i], "status"] = str(latest.loc[pid, "status"])
                now.loc[now.index[i], "progress_pct"] = float(latest.loc[pid, "progress_pct"])
        if not now[["status", "progress_pct"]].equals(state[["status", "progress_pct"]]):
            events.append(Event(day, "projects", "update", now.reset_index(drop=True), f"{quarter} 季度进度报送"))
        state = now
    return events
