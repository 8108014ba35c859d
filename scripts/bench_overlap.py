#!/usr/bin/env python3
"""Benchmark: the conflict engine against geopandas.overlay on two synthetic plan layers, side by side.

Each size n builds two partitions of a 40 x 40 km square in EPSG:4547 into n Voronoi cells. The second plan
re-draws the first with 3 m of digitising noise on 70 % of its cells' generators and fresh cells elsewhere,
so the overlay holds both real differences and the thin strips the sliver rule exists for. Both sides apply
the same sliver rule (area < min_area or buffer(part, -min_width/2) empty drops the part):

    engine  geoplan.analysis.overlap.find_conflicts with one intersection rule (ids, both areas, EPSG:4490
            output included)
    peer    geopandas.overlay(how="intersection", keep_geom_type=True), explode, area + negative buffer per
            part, then the surviving parts regrouped into one MultiPolygon per pair with shapely (the cheapest
            honest way to get the same patches from geopandas; no dissolve)

For each size it prints the engine's time with --workers threads (and its CPU time, and its time with one
thread), the peer's time (and geopandas.overlay's share of it), the ratio peer / engine, patch counts, total
areas and their relative difference, and the engine's time / (n log n) relative to the smallest size (flat
means n log n growth). Times are the best of --repeat runs, in seconds.

    python scripts/bench_overlap.py --sizes 10000 50000 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.analysis.overlap import OverlapSettings, find_conflicts  # noqa: E402
from geoplan.analysis.rules import ConflictRule  # noqa: E402
from geoplan.catalog import Catalog, load_catalog  # noqa: E402
from geoplan.crs import METRIC_CRS  # noqa: E402

EXTENT = (330_000.0, 2_510_000.0, 370_000.0, 2_550_000.0)  # 40 x 40 km around Gaoming, EPSG:4547
T = TypeVar("T")
RULE = ConflictRule(
    code="BENCH",
    title_zh="基准",
    title_en="benchmark",
    severity="low",
    relation="intersection",
    layer_a="urban_plan",
    layer_b="landuse_plan",
    basis="benchmark",
)


@dataclass
class Row:
    n: int
    pairs: int
    engine_s: float
    engine_cpu_s: float
    engine_count: int
    engine_area: float
    engine_1_s: float | None = None
    peer_s: float | None = None
    overlay_s: float | None = None
    peer_count: int | None = None
    peer_area: float | None = None


def partitions(n: int, seed: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Two n-cell plans of the square: B is A re-drawn with noise on 70 % of its cells, fresh elsewhere."""
    rng = np.random.default_rng(seed)
    low, high = np.array(EXTENT[:2]), np.array(EXTENT[2:])
    seeds_a = rng.uniform(low, high, (n, 2))
    seeds_b = seeds_a + rng.normal(0.0, 3.0, seeds_a.shape)
    fresh = rng.random(n) < 0.3
    seeds_b[fresh] = rng.uniform(low, high, (int(fresh.sum()), 2))
    return _voronoi(seeds_a, "UP"), _voronoi(seeds_b, "LU")


def _voronoi(seeds: np.ndarray, prefix: str) -> gpd.GeoDataFrame:
    box = shapely.box(*EXTENT)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box))
    cells = shapely.intersection(cells, box)
    ids = [f"{prefix}-{i:07d}" for i in range(len(cells))]
    return gpd.GeoDataFrame({"parcel_id": ids}, geometry=cells, crs=METRIC_CRS)


def run_engine(
    a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, settings: OverlapSettings, workers: int, catalog: Catalog
) -> tuple[int, float]:
    patches = find_conflicts(
        layers={"urban_plan": a, "landuse_plan": b}, catalog=catalog, rules=[RULE], settings=settings, workers=workers
    )
    return len(patches), float(patches["area_m2"].sum())


def run_peer(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, settings: OverlapSettings) -> tuple[int, float, float]:
    """overlay, then the sliver rule on each exploded part, then one MultiPolygon per surviving pair.

    Returns the patch count, their total area and the time geopandas.overlay alone took."""
    left = a.rename(columns={"parcel_id": "id_a"})
    right = b.rename(columns={"parcel_id": "id_b"})
    started = time.perf_counter()
    overlay = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    overlay_s = time.perf_counter() - started
    parts = overlay.explode(index_parts=False)  # index: the overlay row (one per pair)
    geoms = parts.geometry.to_numpy()
    areas = parts.area.to_numpy()
    keep = areas >= settings.min_area_m2
    if settings.min_width_m > 0:
        keep[keep] = ~shapely.is_empty(shapely.buffer(geoms[keep], -settings.min_width_m / 2))
    rows, compact = np.unique(parts.index.to_numpy()[keep], return_inverse=True)
    patches = gpd.GeoDataFrame(
        overlay.loc[rows, ["id_a", "id_b"]].reset_index(drop=True),
        geometry=shapely.multipolygons(geoms[keep], indices=compact),
        crs=overlay.crs,
    )
    patches["area_m2"] = np.bincount(compact, weights=areas[keep])
    return len(patches), float(patches["area_m2"].sum()), overlay_s


def best_of(repeat: int, func: Callable[[], T]) -> tuple[float, float, T]:
    """Best wall time, the CPU time of that run, and its result."""
    best: tuple[float, float, T] | None = None
    for _ in range(max(1, repeat)):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        timing = (time.perf_counter() - wall, time.process_time() - cpu, result)
        if best is None or timing[0] < best[0]:
            best = timing
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--workers", type=int, default=2, help="engine threads")
    parser.add_argument("--min-area", type=float, default=10.0)
    parser.add_argument("--min-width", type=float, default=2.0)
    parser.add_argument("--skip-peer-above", type=int, default=None, help="no geopandas run for larger sizes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-single-thread", action="store_true", help="skip the engine run with one worker")
    args = parser.parse_args(argv)
    settings = OverlapSettings(min_area_m2=args.min_area, min_width_m=args.min_width)
    print(f"cores: {os.cpu_count()}, engine workers: {args.workers}, repeat: {args.repeat}, {settings}")
    rows: list[Row] = []
    catalog = load_catalog(ROOT / "layers")
    for n in args.sizes:
        a, b = partitions(n, args.seed)
        pairs = len(shapely.STRtree(b.geometry.to_numpy()).query(a.geometry.to_numpy(), predicate="intersects")[0])
        load = os.getloadavg()[0]
        wall, cpu, result = best_of(args.repeat, partial(run_engine, a, b, settings, args.workers, catalog))
        count, area = result
        row = Row(n, pairs, wall, cpu, count, area)
        if not args.no_single_thread:
            row.engine_1_s, _, _ = best_of(args.repeat, partial(run_engine, a, b, settings, 1, catalog))
        if args.skip_peer_above is None or n <= args.skip_peer_above:
            row.peer_s, _, peer = best_of(args.repeat, partial(run_peer, a, b, settings))
            row.peer_count, row.peer_area, row.overlay_s = peer
        rows.append(row)
        print(f"n={n:,}: {pairs:,} candidate pairs, load average before the runs {load:.2f}", flush=True)
    _print_table(rows)
    return 0 if all(r.peer_count is None or r.peer_count == r.engine_count for r in rows) else 1


def _print_table(rows: list[Row]) -> None:
    """One line per size. Times are the best of --repeat runs, in seconds; ratio = peer / engine."""

    def num(value: float | None, spec: str, width: int) -> str:
        return f"{value:{width}{spec}}" if value is not None else f"{'-':>{width}}"

    print(
        f"{'n':>8} {'pairs':>9} {'engine':>7} {'cpu':>6} {'1 thr':>6} {'peer':>7} {'overlay':>7} {'ratio':>6} "
        f"{'engine patches':>14} {'peer patches':>12} {'engine area m2':>16} {'peer area m2':>16} {'rel diff':>8} "
        f"{'t/nlogn':>7}"
    )
    base = rows[0].engine_s / (rows[0].n * math.log(rows[0].n))
    for r in rows:
        ratio = r.peer_s / r.engine_s if r.peer_s is not None else None
        rel = abs(r.engine_area - r.peer_area) / r.peer_area if r.peer_area else None
        growth = r.engine_s / (r.n * math.log(r.n)) / base
        print(
            f"{r.n:8,} {r.pairs:9,} {r.engine_s:7.2f} {r.engine_cpu_s:6.2f} {num(r.engine_1_s, '.2f', 6)} "
            f"{num(r.peer_s, '.2f', 7)} {num(r.overlay_s, '.2f', 7)} {num(ratio, '.2f', 6)} {r.engine_count:14,} "
            f"{num(r.peer_count, ',', 12)} {r.engine_area:16,.1f} {num(r.peer_area, ',.1f', 16)} "
            f"{num(rel, '.1e', 8)} {growth:7.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
