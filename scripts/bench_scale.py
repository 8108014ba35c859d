"""Scale benchmark of the 多规合一 overlap: synthetic land patches, in memory vs partitioned on dask.

Two layers of N parcels each (default 20,000; `--n 1000000` for the province-scale run) tile a square in
EPSG:4547: A on a grid of jittered rectangles a little larger than their cells (each overlaps its neighbours),
B on the same grid shifted by half a cell, plus a few strips across the whole extent, so most patches cross
partition boundaries. Two rules run: A ∩ B (construction on non-construction land) and A − ∪B.

Each mode runs in a fresh process so its peak memory is its own:
  memory   overlap.find_conflicts in one process (its threads)
  part1    find_conflicts_partitioned on a LocalCluster of 1 worker process
  part2    the same with 2 worker processes
The partitioned modes report the client's peak RSS and each worker's (dask holds a worker to --memory-limit).
All modes must give the same patches: the script prints a digest of the sorted patch ids and the total area.

    .venv/bin/python scripts/bench_scale.py --n 20000
    .venv/bin/python scripts/bench_scale.py --n 1000000 --memory-limit 1GB --partitions 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.overlap_partitioned import find_conflicts_partitioned, local_client
from geoplan.analysis.rules import ConflictRule
from geoplan.catalog import load_catalog
from geoplan.crs import METRIC_CRS

ROOT = Path(__file__).resolve().parent.parent
X0, Y0 = 340_000.0, 2_500_000.0  # EPSG:4547, Gaoming's south-west
CELL = 40.0


def patches(n: int, seed: int, *, prefix: str, shift: float) -> gpd.GeoDataFrame:
    """n jittered rectangles on a square grid of CELL-metre cells, shifted by `shift` cells."""
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(n))
    i, j = np.divmod(np.arange(n), side)
    x = X0 + (i + shift) * CELL + rng.uniform(-4, 4, n)
    y = Y0 + (j + shift) * CELL + rng.uniform(-4, 4, n)
    w, h = rng.uniform(0.8, 1.3, n) * CELL, rng.uniform(0.8, 1.3, n) * CELL
    geoms = shapely.box(x, y, x + w, y + h)
    if prefix == "B":  # strips across the whole extent: their patches lie in every partition
        extent = side * CELL
        for k in range(min(4, n)):
            geoms[k] = shapely.box(X0, Y0 + (k + 0.5) * extent / 4, X0 + extent, Y0 + (k + 0.5) * extent / 4 + 30)
    return gpd.GeoDataFrame(
        {
            "parcel_id": np.char.add(f"{prefix}-", np.arange(n).astype(str)),
            "land_class": "耕地",
            "construction": rng.random(n) < (0.6 if prefix == "A" else 0.4),
        },
        geometry=geoms,
        crs=METRIC_CRS,
    )


def rules() -> list[ConflictRule]:
    common = {"title_zh": "基准", "title_en": "benchmark", "severity": "medium", "basis": "benchmark"}
    return [
        ConflictRule(
            code="BENCH_CROSS",
            relation="intersection",
            layer_a="urban_plan",
            layer_b="landuse_plan",
            filter_a=(("construction", (True,)),),
            filter_b=(("construction", (False,)),),
            **common,  # type: ignore[arg-type]
        ),
        ConflictRule(
            code="BENCH_REST",
            relation="difference",
            layer_a="urban_plan",
            layer_b="landuse_plan",
            **common,  # type: ignore[arg-type]
        ),
    ]


def rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM of its own address space (Linux). Not ru_maxrss, which
    a spawned dask worker inherits from the process it was forked from and so overstates."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(mode: str, args: argparse.Namespace) -> dict[str, object]:
    catalog = load_catalog(ROOT / "layers")
    layers = {
        "urban_plan": patches(args.n, 1, prefix="A", shift=0.0),
        "landuse_plan": patches(args.n, 2, prefix="B", shift=0.5),
    }
    settings = OverlapSettings()
    input_mb = (
        sum(
            float(frame.drop(columns="geometry").memory_usage(deep=True).sum())
            + float(sum(len(g) for g in shapely.to_wkb(frame.geometry.to_numpy())))
            for frame in layers.values()
        )
        / 2**20
    )
    before = rss_mb()
    start = time.perf_counter()
    workers_peak: list[float] = []
    if mode == "memory":
        result = find_conflicts(layers=layers, catalog=catalog, rules=rules(), settings=settings, workers=args.threads)
    else:
        with local_client(workers=int(mode[-1]), memory_limit=args.memory_limit) as client:
            result = find_conflicts_partitioned(
                layers=layers,
                catalog=catalog,
                rules=rules(),
                settings=settings,
                client=client,
                partitions=args.partitions,
            )
            peaks = client.run(rss_mb)
            workers_peak = sorted(float(v) for v in peaks.values())
    seconds = time.perf_counter() - start
    ids = np.sort(result["patch_id"].to_numpy(dtype=str))
    return {
        "mode": mode,
        "n": args.n,
        "input_mb": round(input_mb, 1),
        "seconds": round(seconds, 2),
        "client_peak_mb": round(rss_mb(), 1),
        "client_before_run_mb": round(before, 1),
        "worker_peak_mb": [round(v, 1) for v in workers_peak],
        "patches": len(result),
        "area_m2": float(result["area_m2"].sum()),
        "ids_digest": hashlib.blake2b("\n".join(ids).encode(), digest_size=8).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="parcels per layer (1000000 for the full run)")
    parser.add_argument("--modes", default="memory,part1,part2")
    parser.add_argument("--memory-limit", default="1GB", help="per dask worker")
    parser.add_argument("--partitions", type=int, default=None, help="default: one per 20,000 A parcels")
    parser.add_argument("--threads", type=int, default=2, help="threads of the in-memory run")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    results = []
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--one", mode, *sys.argv[1:]]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{r['mode']:7s} n={r['n']:,} input {r['input_mb']:.0f} MB  {r['seconds']:8.2f} s  "
            f"client peak {r['client_peak_mb']:.0f} MB  workers peak {r['worker_peak_mb']} MB "
            f"(limit {args.memory_limit})  "
            f"patches {r['patches']:,}  area {r['area_m2']:,.3f} m²  ids {r['ids_digest']}",
            flush=True,
        )
    same = {(r["patches"], r["ids_digest"]) for r in results}
    areas = [float(r["area_m2"]) for r in results]  # type: ignore[arg-type]
    print(
        f"same patches in every mode: {len(same) == 1}; total areas within 1e-6 m²: {max(areas) - min(areas) <= 1e-6}"
    )


if __name__ == "__main__":
    main()
