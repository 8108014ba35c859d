"""The demo builder: every step in order, from the real sources to catalogue-shaped layers.

Each step draws from its own random stream (seed + step name), so the same seed always gives the same
layers and a change to one step does not reshuffle the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.demo.facilities import build_facilities
from geoplan.demo.frames import column, make_frame
from geoplan.demo.geometry import GEO_CRS, METRIC_CRS, rep_point, reproject_xy, step_rng, to_multipolygon
from geoplan.demo.hills import build_hills, hill_union
from geoplan.demo.illegal_cases import build_illegal_cases
from geoplan.demo.layout import TOWN_LAYOUT
from geoplan.demo.partition import build_partition
from geoplan.demo.plan_layers import (
    DEV_SPEC,
    FARMLAND_SPEC,
    LANDUSE_SPEC,
    URBAN_SPEC,
    build_dev_boundaries,
    build_landuse,
    build_urban_plan,
    draft_farmland,
    finish_farmland,
)
from geoplan.demo.population import build_population
from geoplan.demo.progress import PROGRESS_SPEC
from geoplan.demo.project_ledger import SPEC as PROJECT_SPEC
from geoplan.demo.project_ledger import ledger
from geoplan.demo.projects import FARMLAND, Context, build_project_footprints
from geoplan.demo.public_facilities import build_public_facilities
from geoplan.demo.roads import build_roads
from geoplan.demo.sources import DISTRICT_CODE, load_sources
from geoplan.demo.village_checklist import village_checklist_records
from geoplan.demo.water import build_water
from geoplan.demo.zones import RENEWAL_SPEC, SPONGE_SPEC, build_renewal_zones, build_sponge_areas
from geoplan.rasterdata import RasterData

log = logging.getLogger(__name__)

DEFAULT_SEED = 20240501
DISTRICT_SPEC = (("code", "string"), ("name", "string"), ("population_2020", "integer"), ("source", "string"))
TOWN_SPEC = (
    ("town_code", "string"),
    ("town_name", "string"),
    ("kind", "string"),
    ("seat_lon", "float"),
    ("seat_lat", "float"),
)
VILLAGE_SPEC = (
    ("village_code", "string"),
    ("village_name", "string"),
    ("town_code", "string"),
    ("town", "string"),
    ("type", "string"),
    ("population", "float"),
)
REDLINE_SPEC = (("redline_id", "string"), ("name", "string"), ("kind", "string"))
ROAD_SPEC = (("road_id", "string"), ("name", "string"), ("road_class", "string"), ("walkable", "boolean"))
WATER_SPEC = (("water_id", "string"), ("name", "string"), ("kind", "string"))
WATERWAY_SPEC = (("waterway_id", "string"), ("name", "string"), ("kind", "string"))
DISTRICT_SOURCE = (
    "outline: DataV.GeoAtlas 440608 (GCJ-02, via GitHub tnnevol/gmap), converted to WGS84 = CGCS2000; "
    "population: 2020 census county tabulation (NBS, via GitHub thebamboogrove/tudigong)"
)


@dataclass(frozen=True)
class DemoData:
    """The demo dataset: one frame per vector layer (EPSG:4490) and the population raster (EPSG:4547)."""

    layers: dict[str, gpd.GeoDataFrame]
    population: RasterData
    progress: pd.DataFrame
    """The projects' quarterly progress records, 2018Q1–2020Q4 (SYNTHETIC; `geoplan.monitoring.ledger`)."""
    checklist: pd.DataFrame | None = None
    """The village checklist records, 2017Q3–2020Q4 (SYNTHETIC; `geoplan.monitoring.village_checklist`)."""


def build_demo(
    sources_dir: Path, *, seed: int = DEFAULT_SEED, progress: Callable[[str], None] | None = None
) -> DemoData:
    """Build the Gaoming demo dataset from the real sources in `sources_dir`.

    Only the district outline, the NBS names and codes, the town seats and the census total are real;
    everything else is synthesised reproducibly from `seed`.
    """
    started = time.perf_counter()

    def step(name: str) -> None:
        log.info("demo: %s (%.1f s)", name, time.perf_counter() - started)
        if progress is not None:
            progress(name)

    step("reading sources")
    src = load_sources(Path(sources_dir))
    step("hills and red lines")
    hills = build_hills(src.district, step_rng(seed, "hills"))
    hill_all = hill_union(hills)
    step("towns and villages")
    part = build_partition(src, hill_all, step_rng(seed, "partition"))
    step("walking network")
    roads = build_roads(src, part, step_rng(seed, "roads"))
    step("population grid")  # after the roads: rural people live along them
    pop = build_population(src, part, hill_all, step_rng(seed, "population"), roads.walkable_lines())
    step("cultural facilities")
    facilities = build_facilities(src, part, roads, step_rng(seed, "facilities"))
    step("public service facilities")
    public = build_public_facilities(src, part, roads, step_rng(seed, "public_facilities"))
    step("plan layers")
    landuse = build_landuse(src, part, hill_all, step_rng(seed, "landuse"))
    dev = build_dev_boundaries(src, landuse, step_rng(seed, "dev_boundary"))
    urban = build_urban_plan(src, landuse, dev, step_rng(seed, "urban_plan"))
    farmland_draft = draft_farmland(landuse, dev, step_rng(seed, "farmland"))
    step("renewal and sponge zones")
    renewal = build_renewal_zones(src, part, step_rng(seed, "renewal"))
    sponge = build_sponge_areas(src, part, step_rng(seed, "sponge"))
    step("projects")
    ctx = Context(
        src=src,
        part=part,
        roads=roads,
        hills=hill_all,
        renewal=renewal,
        sponge=sponge,
        farmland=farmland_draft,
        rng=step_rng(seed, "project_shapes"),
        inner=src.district.buffer(-5.0),
        placed=[],
    )
    projects = build_project_footprints(ctx)
    project_rows, progress_rows = ledger(
        projects, part, step_rng(seed, "project_ledger"), step_rng(seed, "project_progress")
    )
    step("basic farmland")
    avoid = shapely.union_all([p.geometry for p in projects if p.definition.conflict != FARMLAND]).buffer(30.0)
    farmland, grades = finish_farmland(farmland_draft, avoid)

    step("water")
    water = build_water(src, step_rng(seed, "water"))

    step("assembling layers")
    town_name = dict(zip(src.towns["town_code"], src.towns["town_name"], strict=True))
    layers: dict[str, gpd.GeoDataFrame] = {}
    layers["district"] = make_frame(
        {
            "code": [DISTRICT_CODE],
            "name": [src.district_name],
            "population_2020": [src.population],
            "source": [DISTRICT_SOURCE],
        },
        DISTRICT_SPEC,
        [src.district_ll],
        metric=False,
    )
    seats = []
    for code, geom in zip(part.town_codes, part.towns, strict=True):
        if code in src.seats_ll:
            seats.append(src.seats_ll[code])
        else:
            xy = reproject_xy(np.asarray([rep_point(geom)]), METRIC_CRS, GEO_CRS)[0]
            seats.append((float(xy[0]), float(xy[1])))
    layers["towns"] = make_frame(
        {
            "town_code": part.town_codes,
            "town_name": [town_name[c] for c in part.town_codes],
            "kind": [TOWN_LAYOUT[c].kind for c in part.town_codes],
            "seat_lon": [s[0] for s in seats],
            "seat_lat": [s[1] for s in seats],
        },
        TOWN_SPEC,
        part.towns,
    )
    v = part.villages
    layers["villages"] = make_frame(
        {
            "village_code": list(v["village_code"]),
            "village_name": list(v["village_name"]),
            "town_code": list(v["town_code"]),
            "town": list(v["town_name"]),
            "type": list(v["type"]),
            "population": pop.village_population.tolist(),
        },
        VILLAGE_SPEC,
        part.village_geoms,
    )
    layers["projects"] = make_frame(project_rows, PROJECT_SPEC, [p.geometry for p in projects])
    layers["renewal_zones"] = make_frame(
        {
            "zone_id": [f"RZ-{i + 1:02d}" for i in range(len(renewal))],
            "name": [z.name for z in renewal],
            "kind": [z.kind for z in renewal],
            "status": [z.status for z in renewal],
            "town": [z.town for z in renewal],
        },
        RENEWAL_SPEC,
        [z.geometry for z in renewal],
    )
    layers["eco_redlines"] = make_frame(
        {
            "redline_id": [f"HX-{i + 1:02d}" for i in range(len(hills))],
            "name": [h.hill.name for h in hills],
            "kind": [h.hill.kind for h in hills],
        },
        REDLINE_SPEC,
        [h.geometry for h in hills],
    )
    layers["sponge_areas"] = make_frame(
        {
            "area_id": [f"SP-{i + 1:02d}" for i in range(len(sponge))],
            "name": [z.name for z in sponge],
            "status": [z.status for z in sponge],
            "town": [z.town for z in sponge],
        },
        SPONGE_SPEC,
        [z.geometry for z in sponge],
    )
    layers["culture_facilities"] = facilities
    layers["public_facilities"] = public
    layers["landuse_plan"] = make_frame(
        {
            "parcel_id": [f"LU-{i + 1:05d}" for i in range(len(landuse.geoms))],
            "land_class": landuse.land_class,
            "construction": landuse.construction.tolist(),
        },
        LANDUSE_SPEC,
        landuse.geoms,
    )
    layers["urban_plan"] = make_frame(
        {
            "parcel_id": [f"UP-{i + 1:05d}" for i in range(len(urban.geoms))],
            "land_class": urban.land_class,
            "construction": urban.construction.tolist(),
        },
        URBAN_SPEC,
        urban.geoms,
    )
    layers["basic_farmland"] = make_frame(
        {"farmland_id": [f"BF-{i + 1:05d}" for i in range(len(farmland))], "grade": grades},
        FARMLAND_SPEC,
        farmland,
    )
    layers["dev_boundary"] = make_frame(
        {"boundary_id": [f"DB-{code}" for code, _ in dev], "town": [town_name[code] for code, _ in dev]},
        DEV_SPEC,
        [g for _, g in dev],
    )
    layers["roads"] = make_frame(
        {
            "road_id": [f"RD-{i + 1:05d}" for i in range(len(roads.edges))],
            "name": roads.name,
            "road_class": roads.road_class,
            "walkable": roads.walkable,
        },
        ROAD_SPEC,
        roads.lines_ll(),
        metric=False,
    )
    layers["water"] = make_frame(
        {
            "water_id": [f"WA-{i + 1:02d}" for i in range(len(water.areas))],
            "name": water.area_names,
            "kind": water.area_kinds,
        },
        WATER_SPEC,
        water.areas,
    )
    layers["waterways"] = make_frame(
        {
            "waterway_id": [f"WW-{i + 1:02d}" for i in range(len(water.lines))],
            "name": water.line_names,
            "kind": water.line_kinds,
        },
        WATERWAY_SPEC,
        water.lines,
    )
    layers["illegal_construction"] = build_illegal_cases(part, landuse, step_rng(seed, "illegal_cases"))
    for name, frame in layers.items():
        layers[name] = _valid_polygons(name, frame)
    log.info("demo: built %d layers in %.1f s", len(layers), time.perf_counter() - started)
    records = pd.DataFrame({name: column([r[name] for r in progress_rows], ftype) for name, ftype in PROGRESS_SPEC})
    checklist = village_checklist_records(layers["villages"], step_rng(seed, "village_checklist"))
    return DemoData(layers=layers, population=pop.raster, progress=records, checklist=checklist)


def _valid_polygons(name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Repair the rare polygon that the CRS transform left invalid (a near-touching ring)."""
    geoms = frame.geometry.values
    bad = ~shapely.is_valid(np.asarray(geoms))
    if not bad.any():
        return frame
    log.debug("demo: %s: %d geometries repaired after the transform", name, int(bad.sum()))
    fixed = np.asarray(frame.geometry.values, dtype=object).copy()
    for i in np.flatnonzero(bad):
        fixed[i] = to_multipolygon(shapely.make_valid(fixed[i]))
    out = frame.copy()
    out[out.geometry.name] = gpd.GeoSeries(fixed, crs=frame.crs, index=frame.index)
    return out
