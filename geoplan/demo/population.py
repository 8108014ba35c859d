"""The synthetic 100 m population grid and the exact zonal sums that give villages their population.

The grid is built from an exact overlay of raster cells with the partition's faces, so the share of each cell
that lies in the district (and in each village) is an area, not a centre-point guess. A cell's value is its
density times its in-district area; a village receives each cell's value in proportion to the part of the
cell's in-district area it holds. Villages therefore sum to the grid total to floating-point precision, and
district-edge cells are neither lost nor double counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.features import rasterize

from geoplan.demo.geometry import METRIC_CRS, FloatArray, GeomArray, IntArray
from geoplan.demo.layout import TOWN_SEAT_CODES, URBAN
from geoplan.demo.partition import Partition, urban_radius
from geoplan.demo.sources import Sources
from geoplan.rasterdata import RasterData

CELL = 100.0
NODATA = -1.0
HILL_SUPPRESSION = 0.985  # share of density removed on the hills
SETTLED_M = 100.0
"""Rural people live along the roads and lanes: the rural density is whole up to this far from a walkable
road and fades beyond it (halving about every ROAD_FADE_M * ln 2 metres)."""
ROAD_FADE_M = 80.0
_SUPERSAMPLE = 5  # hill fraction per cell from a 20 m rasterisation


@dataclass(frozen=True)
class Overlay:
    """Every (face, cell) pair with a positive or touching intersection, and its area in m²."""

    nrows: int
    ncols: int
    transform: Affine
    face: IntArray
    cell: IntArray  # flat index row * ncols + col
    area: FloatArray
    inside_area: FloatArray  # per flat cell: area inside the district
    valid: NDArray[np.bool_]  # per flat cell: the cell intersects (or touches) the district

    def centers(self) -> FloatArray:
        idx = np.arange(self.nrows * self.ncols)
        col, row = idx % self.ncols, idx // self.ncols
        x = self.transform.c + (col + 0.5) * CELL
        y = self.transform.f - (row + 0.5) * CELL
        return np.column_stack([x, y])


@dataclass(frozen=True)
class Population:
    raster: RasterData
    village_population: FloatArray  # per village row, exact zonal sums
    face_population: FloatArray  # per face of the partition


def grid_for(bounds: tuple[float, float, float, float]) -> tuple[int, int, Affine]:
    """A 100 m grid aligned to multiples of 100 m that covers `bounds`."""
    x0 = np.floor(bounds[0] / CELL) * CELL
    y0 = np.floor(bounds[1] / CELL) * CELL
    x1 = np.ceil(bounds[2] / CELL) * CELL
    y1 = np.ceil(bounds[3] / CELL) * CELL
    ncols, nrows = round(float(x1 - x0) / CELL), round(float(y1 - y0) / CELL)
    return nrows, ncols, Affine(CELL, 0.0, float(x0), 0.0, -CELL, float(y1))


def build_overlay(faces: GeomArray, bounds: tuple[float, float, float, float]) -> Overlay:
    """Intersect the grid with the faces; cells wholly inside a face skip the polygon clipping."""
    nrows, ncols, transform = grid_for(bounds)
    idx = np.arange(nrows * ncols)
    col, row = idx % ncols, idx // ncols
    x0 = transform.c + col * CELL
    y1 = transform.f - row * CELL
    boxes = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    tree = shapely.STRtree(boxes)
    fi, ci = tree.query(faces, predicate="intersects")
    fc, cc = tree.query(faces, predicate="contains_properly")
    n = nrows * ncols
    full = np.isin(fi.astype(np.int64) * n + ci, fc.astype(np.int64) * n + cc)
    area = np.where(full, CELL * CELL, 0.0)
    rest = np.flatnonzero(~full)
    area[rest] = shapely.area(shapely.intersection(faces[fi[rest]], boxes[ci[rest]]))
    inside_area = np.bincount(ci, weights=area, minlength=n).astype(np.float64)
    valid = np.bincount(ci, minlength=n) > 0
    return Overlay(nrows, ncols, transform, fi.astype(np.int64), ci.astype(np.int64), area, inside_area, valid)


def _gauss(pts: FloatArray, center: FloatArray, sigma: float) -> FloatArray:
    d2 = ((pts - center) ** 2).sum(axis=1)
    return np.asarray(np.exp(-d2 / (2 * sigma * sigma)) / (2 * np.pi * sigma * sigma), dtype=np.float64)


def _hill_fraction(hills: shapely.MultiPolygon, ov: Overlay) -> FloatArray:
    if hills.is_empty:
        return np.zeros(ov.nrows * ov.ncols)
    sub = CELL / _SUPERSAMPLE
    t = Affine(sub, 0.0, ov.transform.c, 0.0, -sub, ov.transform.f)
    mask = rasterize(
        [(hills, 1)], out_shape=(ov.nrows * _SUPERSAMPLE, ov.ncols * _SUPERSAMPLE), transform=t, dtype="uint8"
    )
    frac = mask.reshape(ov.nrows, _SUPERSAMPLE, ov.ncols, _SUPERSAMPLE).mean(axis=(1, 3))
    return np.asarray(frac.ravel(), dtype=np.float64)


def _road_proximity(pts: FloatArray, roads: GeomArray) -> FloatArray:
    """Per point: 1 within SETTLED_M of a walkable road, fading exponentially beyond (1 everywhere without roads)."""
    if len(roads) == 0:
        return np.ones(len(pts))
    tree = shapely.STRtree(roads)
    _, dist = tree.query_nearest(shapely.points(pts), return_distance=True, all_matches=False)
    return np.asarray(np.exp(-np.clip(dist - SETTLED_M, 0.0, None) / ROAD_FADE_M), dtype=np.float64)


def build_population(
    src: Sources,
    part: Partition,
    hills: shapely.MultiPolygon,
    rng: np.random.Generator,
    roads: GeomArray | None = None,
) -> Population:
    """Density = urban kernels (seats, communities) + rural kernels (villages) + a thin base, off the hills.

    The rural density (village kernels and farmsteads) follows the walkable `roads` (EPSG:4547 lines), as
    hamlets line the roads and lanes: without that, a fifth of the rural people would be scattered evenly over
    fields and forest far from any road, beyond walking access to every service."""
    ov = build_overlay(part.faces.geoms, src.district.bounds)
    valid = np.flatnonzero(ov.valid)
    pts = ov.centers()[valid]
    villages = part.villages
    types = villages["type"].to_numpy()
    town_codes = villages["town_code"].to_numpy()
    areas = np.array([g.area for g in part.village_geoms])

    urban = np.zeros(len(valid))
    for code in TOWN_SEAT_CODES:
        u = URBAN[code]
        seat = np.asarray(src.seats[code])
        core = _gauss(pts, seat, 0.35 * u.a)
        comm = np.flatnonzero((types == "community") & (town_codes == code))
        ring = np.zeros(len(valid))
        for v in comm:
            ring += rng.uniform(0.6, 1.4) * _gauss(pts, part.hubs[v], 0.3 * np.sqrt(areas[v]))
        ring /= max(len(comm), 1)
        # the urban kernels fade out at the edge of the town's built-up ellipse
        r = urban_radius(pts, src.seats[code], u)
        taper = 1.0 / (1.0 + np.exp(np.clip((r - 1.05) / 0.08, -50, 50)))
        urban += u.urban_weight * (0.4 * core / core.sum() + 0.6 * ring / max(ring.sum(), 1e-300)) * taper
    rural = np.zeros(len(valid))
    for v in np.flatnonzero(types != "community"):
        sigma = rng.uniform(350.0, 700.0)
        rural += rng.uniform(0.5, 1.5) * _gauss(pts, part.hubs[v], sigma)
    near_road = _road_proximity(pts, roads) if roads is not None else np.ones(len(valid))
    rural = rural / rural.sum() * near_road
    rural = rural / rural.sum() + 0.25 * near_road / near_road.sum()  # a thin scatter of farmsteads by the roads

    keep = 1.0 - HILL_SUPPRESSION * _hill_fraction(hills, ov)[valid]
    noise = rng.lognormal(0.0, 0.25, len(valid))
    inside = ov.inside_area[valid]
    total = float(src.population)
    u_val = urban * inside * keep * noise
    r_val = rural * inside * keep * noise
    values = src.urban_share * total * u_val / u_val.sum() + (1 - src.urban_share) * total * r_val / r_val.sum()

    flat = np.full(ov.nrows * ov.ncols, NODATA, dtype=np.float32)
    flat[valid] = values.astype(np.float32)
    # float32 rounding leaves the total a few hundredths of a person off: put that on the fullest cell
    residual = total - float(flat[valid].astype(np.float64).sum())
    top = valid[np.argmax(values)]
    flat[top] = np.float32(float(flat[top]) + residual)
    array = flat.reshape(ov.nrows, ov.ncols)
    raster = RasterData(array=array, transform=ov.transform, crs=METRIC_CRS, nodata=NODATA)

    face_pop = zonal_by_face(ov, flat, len(part.faces.geoms))
    village_pop = np.bincount(part.village_of_face, weights=face_pop, minlength=len(villages)).astype(np.float64)
    return Population(raster=raster, village_population=village_pop, face_population=face_pop)


def zonal_by_face(ov: Overlay, flat_values: NDArray[np.float32], n_faces: int) -> FloatArray:
    """Each face's share of each cell: value * (face ∩ cell area) / (district ∩ cell area)."""
    vals = flat_values[ov.cell].astype(np.float64)
    denom = ov.inside_area[ov.cell]
    share = np.divide(ov.area, denom, out=np.zeros_like(ov.area), where=denom > 0)
    vals = np.where(vals == NODATA, 0.0, vals)
    return np.asarray(np.bincount(ov.face, weights=share * vals, minlength=n_faces), dtype=np.float64)
