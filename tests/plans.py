"""Small plan layers for the overlap tests, and a reference implementation to check the engine against.

Layers are built in EPSG:4547 metres around a point inside Gaoming, so areas and widths are exact by hand. The
reference (`brute_force`) is the textbook double loop over shapely objects with the sliver rule written out
plainly (negative buffer on every part, no shortcuts): nothing of the engine's code is reused.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoplan.analysis.rules import ConflictRule, Relation
from geoplan.crs import METRIC_CRS

X0, Y0 = 360_000.0, 2_526_000.0  # EPSG:4547, inside the district


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle in metres relative to (X0, Y0)."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def plan(
    geoms: Sequence[BaseGeometry],
    *,
    prefix: str,
    construction: Sequence[bool] | None = None,
    crs: str = METRIC_CRS,
) -> gpd.GeoDataFrame:
    """A frame shaped like the catalogue's plan layers (parcel_id, land_class, construction)."""
    n = len(geoms)
    flags = list(construction) if construction is not None else [True] * n
    return gpd.GeoDataFrame(
        {
            "parcel_id": [f"{prefix}-{i:04d}" for i in range(n)],
            "land_class": ["耕地"] * n,
            "construction": flags,
        },
        geometry=list(geoms),
        crs=crs,
    )


def rule(
    relation: Relation = "intersection",
    *,
    code: str = "T",
    layer_a: str = "urban_plan",
    layer_b: str = "landuse_plan",
    filter_a: tuple[tuple[str, tuple[bool, ...]], ...] = (),
    filter_b: tuple[tuple[str, tuple[bool, ...]], ...] = (),
) -> ConflictRule:
    return ConflictRule(
        code=code,
        title_zh="测试",
        title_en="test",
        severity="medium",
        relation=relation,
        layer_a=layer_a,
        layer_b=layer_b,
        basis="test",
        filter_a=filter_a,
        filter_b=filter_b,
    )


def random_shapes(n: int, seed: int, *, extent: float = 600.0) -> list[BaseGeometry]:
    """A mix of what plans hold: thin convex strips (widths near the 2 m threshold), rectangles, star-shaped
    non-convex parcels, parcels with holes and round-ish blobs, crowded into one square so they overlap."""
    rng = np.random.default_rng(seed)
    shapes: list[BaseGeometry] = []
    for i in range(n):
        cx, cy = X0 + rng.uniform(0, extent), Y0 + rng.uniform(0, extent)
        kind = i % 5
        if kind == 0:  # a strip 1.6–2.4 m wide: the width rule decides, on both sides of the threshold
            width, length = rng.uniform(1.6, 2.4), rng.uniform(20, 150)
            shape: BaseGeometry = shapely.box(-length / 2, -width / 2, length / 2, width / 2)
        elif kind == 1:
            shape = shapely.box(0, 0, rng.uniform(5, 120), rng.uniform(5, 120))
        elif kind == 2:  # star-shaped, non-convex
            k = int(rng.integers(5, 12))
            angles = np.sort(rng.uniform(0, 2 * np.pi, k))
            radii = rng.uniform(10, 90, k)
            shape = shapely.Polygon(np.c_[np.cos(angles) * radii, np.sin(angles) * radii])
        elif kind == 3:  # a parcel with a hole
            outer = rng.uniform(40, 120)
            shape = shapely.box(0, 0, outer, outer).difference(shapely.box(outer / 3, outer / 3, outer / 2, outer / 2))
        else:
            shape = shapely.Point(0, 0).buffer(rng.uniform(3, 60), quad_segs=int(rng.integers(2, 8)))
        shape = shapely.affinity.rotate(shape, rng.uniform(0, 180), origin=(0, 0))
        shape = shapely.affinity.translate(shape, cx, cy)
        shapes.append(shapely.make_valid(shape) if not shape.is_valid else shape)
    return shapes


def _polygons(geom: BaseGeometry) -> list[shapely.Polygon]:
    if isinstance(geom, shapely.Polygon):
        return [] if geom.is_empty else [geom]
    if isinstance(geom, shapely.MultiPolygon | shapely.GeometryCollection):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def _surviving_area(geom: BaseGeometry, min_area: float, min_width: float) -> float:
    kept = [
        p.area
        for p in _polygons(geom)
        if p.area >= min_area and p.area > 0 and (min_width <= 0 or not p.buffer(-min_width / 2).is_empty)
    ]
    return float(sum(kept)) if kept else -1.0


def brute_force(
    a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, relation: Relation, *, min_area: float, min_width: float
) -> dict[tuple[str, str | None], float]:
    """{(id_a, id_b or None): patch area} by a plain double loop (frames in metres)."""
    result: dict[tuple[str, str | None], float] = {}
    b_items = list(zip(b["parcel_id"], b.geometry, strict=True))
    for id_a, geom_a in zip(a["parcel_id"], a.geometry, strict=True):
        if relation == "intersection":
            for id_b, geom_b in b_items:
                if geom_a.intersects(geom_b):
                    area = _surviving_area(geom_a.intersection(geom_b), min_area, min_width)
                    if area >= 0:
                        result[(id_a, id_b)] = area
        else:
            near = [geom_b for _, geom_b in b_items if geom_a.intersects(geom_b)]
            rest = geom_a.difference(shapely.union_all(near)) if near else geom_a
            area = _surviving_area(rest, min_area, min_width)
            if area >= 0:
                result[(id_a, None)] = area
    return result


def overlay_peer(
    a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, *, min_area: float, min_width: float
) -> dict[tuple[str, str | None], float]:
    """geopandas.overlay(intersection, keep_geom_type) + the sliver rule per exploded part."""
    left = a[["parcel_id", "geometry"]].rename(columns={"parcel_id": "id_a"})
    right = b[["parcel_id", "geometry"]].rename(columns={"parcel_id": "id_b"})
    overlay = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    parts = overlay.explode(index_parts=True)
    wide = ~parts.buffer(-min_width / 2).is_empty if min_width > 0 else True
    kept = parts[(parts.area >= min_area) & wide]
    areas = kept.area.groupby([kept["id_a"], kept["id_b"]]).sum()
    return {(str(ia), str(ib)): float(v) for (ia, ib), v in areas.items()}


def crossing_plans() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A set where most patches cross partition boundaries. A: 24 x 24 jittered 40 m parcels every 30 m (each
    overlaps its neighbours); B: long strips and a ring across the whole extent, plus scattered small parcels."""
    rng = np.random.default_rng(7)
    a_shapes = []
    for i in range(24):
        for j in range(24):
            x, y = i * 30 + rng.uniform(-4, 4), j * 30 + rng.uniform(-4, 4)
            a_shapes.append(box(x, y, x + rng.uniform(25, 45), y + rng.uniform(25, 45)))
    big = [
        box(-50, 100, 800, 160),  # horizontal strips across every partition
        box(-50, 400, 800, 437),
        box(200, -50, 251, 800),  # a vertical one
        shapely.affinity.rotate(box(-100, 330, 900, 390), 35, origin=box(0, 0, 720, 720).centroid),  # diagonal
        box(500, 500, 760, 760).difference(box(560, 560, 700, 700)),  # a ring with a hole
    ]
    small = [box(x, y, x + 20, y + 20) for x, y in rng.uniform(0, 700, size=(60, 2))]
    return plan(a_shapes, prefix="A"), plan(big + small, prefix="B")


def pairs_crossing_partitions(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, part_of: np.ndarray) -> set[tuple[str, str]]:
    """(A id, B id) pairs whose patch crosses a partition boundary, found by brute force: the B feature meets A
    parcels of several partitions, or the A parcel reaches into another partition's extent. `part_of` gives the
    partition of each A row; both layers are in the same metric CRS."""
    partitions = sorted(set(part_of.tolist()))
    extents = {k: shapely.box(*shapely.total_bounds(a.geometry.to_numpy()[part_of == k])) for k in partitions}
    a_ids, b_ids = a["parcel_id"].tolist(), b["parcel_id"].tolist()
    pairs: set[tuple[str, str]] = set()
    for j, geom_b in enumerate(b.geometry):
        touched = [i for i, geom_a in enumerate(a.geometry) if geom_a.intersects(geom_b)]
        spans = len({part_of[i] for i in touched}) > 1
        for i in touched:
            reaches_out = any(k != part_of[i] and extents[k].intersects(a.geometry.iloc[i]) for k in partitions)
            if spans or reaches_out:
                pairs.add((a_ids[i], b_ids[j]))
    return pairs
