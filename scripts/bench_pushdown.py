#!/usr/bin/env python3
"""Benchmark: the conflict engine in memory against the same overlap pushed down to PostGIS, on the same tables.

For each size n the two synthetic n-cell plans of scripts/bench_overlap.py (the second re-drawn from the first
with digitising noise) are written to PostGIS as urban_plan and landuse_plan; then one intersection rule runs

    memory    read both layers from PostGIS, geoplan.analysis.overlap.find_conflicts (--workers threads)
    pushdown  geoplan.services.overlap_pushdown.find_conflicts_in_database, batches of --batch-size rows
              consumed one at a time (counted and summed, never kept)

each in a fresh child process, so the peak resident memory printed (ru_maxrss) is that run's alone. It prints
wall time, peak memory, patch count, total area and the relative difference of the totals.

    python scripts/bench_pushdown.py --url postgresql://user@host/db --sizes 10000 50000
    python scripts/bench_pushdown.py --sizes 10000          # starts a throwaway PostGIS (needs the server)

The database named by --url is overwritten (its catalogue tables are replaced).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_overlap import RULE, partitions  # noqa: E402

from geoplan.analysis.overlap import OverlapSettings, find_conflicts  # noqa: E402
from geoplan.catalog import load_catalog  # noqa: E402
from geoplan.crs import STORE_CRS  # noqa: E402
from geoplan.services.overlap_pushdown import find_conflicts_in_database  # noqa: E402
from geoplan.storage.postgis import PostGISStore  # noqa: E402


def load(url: str, n: int, seed: int) -> None:
    """Both plans, in the catalogue's shape, replacing what the database held."""
    store = PostGISStore(url, load_catalog(ROOT / "layers"))
    try:
        store.init()
        a, b = partitions(n, seed)
        for name, frame, land_class in (("urban_plan", a, "居住用地"), ("landuse_plan", b, "耕地")):
            frame = frame.to_crs(STORE_CRS)
            frame.geometry = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in frame.geometry]
            frame["land_class"] = land_class
            frame["construction"] = True
            store.write(name, frame, actor="bench")
    finally:
        store.close()


def child(mode: str, url: str, workers: int, batch_size: int, settings: OverlapSettings) -> dict[str, float]:
    store = PostGISStore(url, load_catalog(ROOT / "layers"))
    started = time.perf_counter()
    try:
        if mode == "memory":
            layers = {name: store.read(name) for name in ("urban_plan", "landuse_plan")}
            patches = find_conflicts(
                layers=layers, catalog=store.catalog, rules=[RULE], settings=settings, workers=workers
            )
            count, area, batches = len(patches), float(patches["area_m2"].sum()), 1
        else:
            count, area, batches = 0, 0.0, 0
            for batch in find_conflicts_in_database(
                store=store, rules=[RULE], settings=settings, batch_size=batch_size, locate=False
            ):
                count += len(batch)
                area += float(batch["area_m2"].sum())
                batches += 1
    finally:
        store.close()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"seconds": seconds, "peak_mb": peak_mb, "count": count, "area": area, "batches": batches}


def run_child(mode: str, args: argparse.Namespace, url: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--url", url, "--workers", str(args.workers)]
    command += ["--batch-size", str(args.batch_size), "--min-area", str(args.min_area)]
    command += ["--min-width", str(args.min_width)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostGIS database to overwrite [default: a throwaway cluster]")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="threads of the in-memory engine")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--min-area", type=float, default=10.0)
    parser.add_argument("--min-width", type=float, default=2.0)
    parser.add_argument("--child", choices=["memory", "pushdown"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = OverlapSettings(min_area_m2=args.min_area, min_width_m=args.min_width)
    if args.child:
        print(json.dumps(child(args.child, args.url, args.workers, args.batch_size, settings)))
        return 0
    server = None
    url = args.url
    if url is None:
        from geoplan.testing import start_postgis

        server = start_postgis()
        url = server.url
    try:
        print(f"{'n':>8} {'mode':>9} {'seconds':>9} {'peak MB':>8} {'batches':>7} {'patches':>8} {'area m²':>18}")
        for n in args.sizes:
            load(url, n, args.seed)
            rows = {mode: run_child(mode, args, url) for mode in ("memory", "pushdown")}
            for mode, r in rows.items():
                print(
                    f"{n:>8} {mode:>9} {r['seconds']:>9.2f} {r['peak_mb']:>8.0f} {int(r['batches']):>7} "
                    f"{int(r['count']):>8} {r['area']:>18.3f}"
                )
            memory, pushed = rows["memory"], rows["pushdown"]
            rel = abs(memory["area"] - pushed["area"]) / max(memory["area"], np.finfo(float).tiny)
            print(f"{n:>8} same count: {memory['count'] == pushed['count']}, total area rel diff {rel:.1e}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
