"""The 多规合一 plan layers: land-use plan, urban master plan, development boundary, basic farmland.

They are drawn to disagree in known, measurable ways. The urban plan refines the land-use parcels of each
urban area (so the two share their outlines and an overlay yields no slivers) and then deliberately differs
on a set of whole sub-parcels of 0.5–20 ha in both directions; some of the urban plan's construction land
lies outside the development boundary, and a handful of farmland patches reach into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from geoplan.demo.geometry import (
    FloatArray,
    IntArray,
    coverage_union,
    inside,
    jittered_grid,
    rep_point,
    to_multipolygon,
    voronoi_faces,
)
from geoplan.demo.layout import TOWN_SEAT_CODES, URBAN
from geoplan.demo.partition import Partition, urban_radius
from geoplan.demo.sources import Sources

LANDUSE_SPEC = (("parcel_id", "string"), ("land_class", "string"), ("construction", "boolean"))
URBAN_SPEC = LANDUSE_SPEC
DEV_SPEC = (("boundary_id", "string"), ("town", "string"))
FARMLAND_SPEC = (("farmland_id", "string"), ("grade", "integer"))

LANDUSE_CONSTRUCTION = ("城镇建设用地", "村庄建设用地", "交通水利用地", "其他建设用地")
URBAN_CONSTRUCTION = (
    "居住用地",
    "商业服务业用地",
    "工业用地",
    "公共管理与公共服务用地",
    "道路与交通设施用地",
    "绿地与广场用地",
)
URBAN_REACH = 1.25  # urban plans cover land-use parcels out to this share of the urban ellipse
HA = 10_000.0
CONFLICT_MIN, CONFLICT_MAX = 0.5 * HA, 20 * HA
N_BUILD_ON_FARMLAND = 14  # urban construction on land-use non-construction land
N_GREEN_ON_BUILT = 10  # urban non-construction on land-use construction land
N_FARMLAND_IN_BOUNDARY = 5


def _pick(rng: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...]) -> str:
    w = np.asarray(weights)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


@dataclass(frozen=True)
class LandUse:
    geoms: list[shapely.MultiPolygon]
    land_class: list[str]
    urban_town: IntArray  # index into TOWN_SEAT_CODES of the urban area the parcel belongs to, or -1

    @property
    def construction(self) -> NDArray[np.bool_]:
        return np.isin(np.asarray(self.land_class), LANDUSE_CONSTRUCTION)


@dataclass(frozen=True)
class UrbanPlan:
    geoms: list[shapely.MultiPolygon]
    land_class: list[str]

    @property
    def construction(self) -> NDArray[np.bool_]:
        return np.isin(np.asarray(self.land_class), URBAN_CONSTRUCTION)


def _urban_r(src: Sources, pts: FloatArray) -> tuple[FloatArray, IntArray]:
    r = np.vstack([urban_radius(pts, src.seats[c], URBAN[c]) for c in TOWN_SEAT_CODES])
    return r.min(axis=0), r.argmin(axis=0)


def build_landuse(src: Sources, part: Partition, hills: shapely.MultiPolygon, rng: np.random.Generator) -> LandUse:
    """Voronoi parcels (fine in towns and around village centres) with classes chosen by location."""
    district = src.district
    bounds = district.buffer(1_000).bounds
    coarse = jittered_grid(bounds, 1_200.0, rng)
    fine = jittered_grid(bounds, 460.0, rng)
    rural_hubs = part.hubs[part.villages["type"].to_numpy() != "community"]
    hub_tree = cKDTree(rural_hubs)
    near_hub = hub_tree.query(coarse)[0]
    coarse = coarse[(_urban_r(src, coarse)[0] >= 1.35) & (near_hub > 600.0)]
    fine = fine[_urban_r(src, fine)[0] < 1.35]
    around = np.vstack([hub + rng.normal(0.0, 260.0, (4, 2)) for hub in rural_hubs])
    sites = np.vstack([coarse, fine, rural_hubs, around])
    sites = sites[inside(district.buffer(1_000), sites)]
    faces, site = voronoi_faces(sites, district)
    order = np.argsort(site, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(site[order])) + 1)
    geoms = [coverage_union(faces[g]) if len(g) > 1 else to_multipolygon(faces[g[0]]) for g in groups]
    arr = np.asarray(geoms, dtype=object)
    reps = np.array([rep_point(g) for g in geoms])
    hill_frac = (
        shapely.area(shapely.intersection(arr, hills)) / shapely.area(arr) if not hills.is_empty else 0 * reps[:, 0]
    )
    r, town = _urban_r(src, reps)
    d_hub = hub_tree.query(reps)[0]
    classes = []
    for k in range(len(geoms)):
        if hill_frac[k] > 0.5:
            c = _pick(rng, ("林地", "园地"), (0.9, 0.1))
        elif r[k] < 0.9:
            c = _pick(
                rng, ("城镇建设用地", "交通水利用地", "其他建设用地", "耕地", "水域"), (0.78, 0.06, 0.06, 0.05, 0.05)
            )
        elif r[k] < URBAN_REACH:
            c = _pick(
                rng,
                ("城镇建设用地", "耕地", "园地", "其他农用地", "其他建设用地", "水域"),
                (0.35, 0.35, 0.1, 0.1, 0.05, 0.05),
            )
        elif d_hub[k] < 500.0:
            c = _pick(rng, ("村庄建设用地", "耕地"), (0.85, 0.15))
        else:
            c = _pick(
                rng,
                ("耕地", "园地", "林地", "其他农用地", "水域", "交通水利用地", "其他建设用地"),
                (0.55, 0.12, 0.15, 0.08, 0.06, 0.02, 0.02),
            )
        classes.append(c)
    urban_town = np.where(r < URBAN_REACH, town, -1).astype(np.int64)
    return LandUse(geoms=geoms, land_class=classes, urban_town=urban_town)


def build_dev_boundaries(
    src: Sources, landuse: LandUse, rng: np.random.Generator
) -> list[tuple[str, shapely.MultiPolygon]]:
    """Each seat's development boundary: the construction parcels of its urban area, closed over small gaps.

    Two cropland parcels next to each urban area are taken in as well (room to grow, as real boundaries
    do), which is where basic farmland ends up inside the boundary.
    """
    out = []
    lc = np.asarray(landuse.land_class)
    for k, code in enumerate(TOWN_SEAT_CODES):
        sel = np.flatnonzero((landuse.urban_town == k) & np.isin(lc, LANDUSE_CONSTRUCTION))
        if len(sel) == 0:
            continue
        built = shapely.union_all([landuse.geoms[i] for i in sel])
        fields = [
            int(i)
            for i in np.flatnonzero((landuse.urban_town == k) & (lc == "耕地"))
            if landuse.geoms[i].intersects(built)
        ]
        extra = rng.permutation(np.asarray(fields, dtype=np.int64))[:2]
        merged = shapely.union_all([built, *[landuse.geoms[i] for i in extra]]).buffer(150.0).buffer(-150.0)
        merged = shapely.intersection(merged, src.district)
        parts = [p for p in shapely.get_parts(to_multipolygon(merged)) if p.area >= 5 * HA]
        if parts:
            out.append((code, shapely.MultiPolygon(parts)))
    return out


def build_urban_plan(
    src: Sources, landuse: LandUse, dev: list[tuple[str, shapely.MultiPolygon]], rng: np.random.Generator
) -> UrbanPlan:
    """Split each urban area's land-use parcels into blocks, classify them, then plant the conflicts."""
    geoms: list[shapely.MultiPolygon] = []
    under: list[int] = []  # the land-use parcel each block lies on
    for k in range(len(TOWN_SEAT_CODES)):
        sel = np.flatnonzero(landuse.urban_town == k)
        if len(sel) == 0:
            continue
        parcels = np.asarray([landuse.geoms[i] for i in sel], dtype=object)
        region = coverage_union(parcels)
        sites = jittered_grid(region.buffer(300).bounds, 300.0, rng)
        sites = sites[inside(region.buffer(300), sites)]
        faces, site = voronoi_faces(sites, region, extra_lines=list(shapely.boundary(parcels)))
        tree = shapely.STRtree(parcels)
        fi, pi = tree.query(shapely.point_on_surface(faces), predicate="within")
        owner = np.full(len(faces), -1, dtype=np.int64)
        owner[fi] = pi
        keep = owner >= 0
        faces, site, owner = faces[keep], site[keep], owner[keep]
        key = site * (len(sel) + 1) + owner
        order = np.argsort(key, kind="stable")
        for g in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
            geoms.append(coverage_union(faces[g]) if len(g) > 1 else to_multipolygon(faces[g[0]]))
            under.append(int(sel[owner[g[0]]]))
    lc = np.asarray(landuse.land_class)
    dominant = _dominant_uses(src, landuse, rng)
    classes: list[str] = []
    for u in under:
        if lc[u] in LANDUSE_CONSTRUCTION:
            if rng.random() < 0.72:
                classes.append(dominant[u])
            else:
                classes.append(_pick(rng, URBAN_CONSTRUCTION, (0.25, 0.1, 0.1, 0.15, 0.2, 0.2)))
        elif lc[u] == "水域":
            classes.append("水域")
        else:
            classes.append("农林用地")

    area = np.array([g.area for g in geoms])
    sized = (area >= CONFLICT_MIN) & (area <= CONFLICT_MAX)
    under_arr = np.asarray(under)
    dev_all = shapely.union_all([g for _, g in dev]) if dev else shapely.Polygon()
    outside_dev = ~shapely.intersects(np.asarray(geoms, dtype=object), dev_all)
    # conflicts of the first kind: building on land the land-use plan keeps open (mostly beyond the boundary)
    open_land = np.isin(lc[under_arr], ("耕地", "园地", "其他农用地", "林地")) & sized
    first = np.flatnonzero(open_land & outside_dev)
    first = rng.permutation(first)[: N_BUILD_ON_FARMLAND - 3]
    inner = rng.permutation(np.flatnonzero(open_land & ~outside_dev))[:3]
    for i in np.concatenate([first, inner]):
        classes[int(i)] = _pick(rng, ("居住用地", "工业用地", "商业服务业用地"), (0.4, 0.45, 0.15))
    # and of the second kind: keeping open what the land-use plan lets be built
    built = np.flatnonzero((lc[under_arr] == "城镇建设用地") & sized)
    for i in rng.permutation(built)[:N_GREEN_ON_BUILT]:
        classes[int(i)] = _pick(rng, ("农林用地", "水域"), (0.8, 0.2))
    return UrbanPlan(geoms=geoms, land_class=classes)


def _dominant_uses(src: Sources, landuse: LandUse, rng: np.random.Generator) -> dict[int, str]:
    """The main use of each urban land-use parcel: commerce at the core, housing around, industry outside."""
    out: dict[int, str] = {}
    for i in np.flatnonzero(landuse.urban_town >= 0):
        r, _ = _urban_r(src, np.asarray([rep_point(landuse.geoms[i])]))
        if r[0] < 0.35:
            out[int(i)] = _pick(rng, ("商业服务业用地", "公共管理与公共服务用地", "居住用地"), (0.45, 0.3, 0.25))
        elif r[0] < 0.75:
            out[int(i)] = _pick(rng, ("居住用地", "公共管理与公共服务用地", "商业服务业用地"), (0.75, 0.15, 0.1))
        else:
            out[int(i)] = _pick(rng, ("工业用地", "居住用地", "绿地与广场用地"), (0.55, 0.35, 0.1))
    return out


@dataclass(frozen=True)
class FarmlandDraft:
    """Farmland patches before project footprints are cut out of them."""

    geoms: list[shapely.Geometry]
    grade: list[int]
    in_boundary: NDArray[np.bool_]  # the deliberate patches that reach into the development boundary


def draft_farmland(
    landuse: LandUse, dev: list[tuple[str, shapely.MultiPolygon]], rng: np.random.Generator
) -> FarmlandDraft:
    """Most 耕地 parcels, shrunk off their field roads; only a handful may reach into the boundary."""
    dev_all = shapely.union_all([g for _, g in dev]) if dev else shapely.Polygon()
    shapely.prepare(dev_all)
    lc = np.asarray(landuse.land_class)
    cand = np.flatnonzero(lc == "耕地")
    cand = cand[rng.random(len(cand)) < 0.8]
    touching = [i for i in cand if dev_all.intersects(landuse.geoms[i].buffer(-20.0))]
    poke = set(rng.permutation(np.asarray(touching, dtype=np.int64))[:N_FARMLAND_IN_BOUNDARY].tolist())
    geoms, grades, flags = [], [], []
    for i in cand:
        patch = landuse.geoms[i].buffer(-20.0)
        if int(i) not in poke and dev_all.intersects(patch):
            patch = patch.difference(dev_all.buffer(50.0))
        if patch.is_empty or patch.area < HA:
            continue
        geoms.append(patch)
        grades.append(int(rng.integers(3, 11)))
        flags.append(int(i) in poke and dev_all.intersects(patch))
    return FarmlandDraft(geoms=geoms, grade=grades, in_boundary=np.asarray(flags, dtype=bool))


def finish_farmland(draft: FarmlandDraft, avoid: shapely.Geometry) -> tuple[list[shapely.MultiPolygon], list[int]]:
    """Cut `avoid` (footprints of projects not meant to conflict) out of the patches; drop the crumbs."""
    shapely.prepare(avoid)
    geoms, grades = [], []
    for g, grade in zip(draft.geoms, draft.grade, strict=True):
        if not avoid.is_empty and avoid.intersects(g):
            g = g.difference(avoid)
        parts = [p for p in shapely.get_parts(to_multipolygon(g)) if p.area >= HA]
        if parts:
            geoms.append(shapely.MultiPolygon(parts))
            grades.append(grade)
    return geoms, grades
