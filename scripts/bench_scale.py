"""Scale benchmark of the 多规合一 overlap: synthetic land patches, every way geoplan can run it, side by side.

Two layers of N parcels each (default 20,000; `--n 1000000` and `--n 5000000` for the province-scale runs) tile a
square in EPSG:4547: A on a grid of jittered rectangles a little larger than their cells (each overlaps its
neighbours), B on the same grid shifted by half a cell, plus strips across the whole extent, so most patches cross
partition boundaries. Two rules run: A ∩ B (construction on non-construction land) and A − ∪B. The layers are
written once to a GeoPackage store (kept in --data-dir for the next run) and, for the push-down, to PostGIS.

Each mode runs in a fresh process, so its peak memory is its own:
  memory    read both layers from the store, overlap.find_conflicts in one process (its threads)
  part1/2   read both layers, find_conflicts_partitioned on a LocalCluster of 1 or 2 worker processes
  ooc1/2    run_overlaps_out_of_core on 1 or 2 workers: no process holds a layer; patches go to disk
  pushdown  PostGIS does the overlay (find_conflicts_in_database), batches streamed and counted, not kept
Peak memory is each process's VmHWM: the client's and every dask worker's (dask holds a worker to
--memory-limit). Every mode must give the same patches: count, an order-free digest of the patch ids, total area.

    python scripts/bench_scale.py --n 20000
    python scripts/bench_scale.py --n 1000000 --memory-limit 1GB
    python scripts/bench_scale.py --n 5000000 --modes ooc2 --memory-limit 1GB
    python scripts/bench_scale.py --n 1000000 --modes pushdown --url postgresql://user@host/db

Without --url the push-down starts a throwaway PostGIS (it needs the server installed); the database named by
--url is overwritten.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geoplan.analysis.overlap import OverlapSettings, find_conflicts  # noqa: E402
from geoplan.analysis.overlap_partitioned import find_conflicts_partitioned  # noqa: E402
from geoplan.catalog import Catalog, load_catalog  # noqa: E402
from geoplan.demo.synthetic_parcels import LAYERS, parcel_chunk, parcel_rules  # noqa: E402
from geoplan.peak_memory import current_rss_mb, peak_rss_mb  # noqa: E402
from geoplan.services.dask_cluster import local_client  # noqa: E402
from geoplan.services.overlap_out_of_core import id_digest, run_overlaps_out_of_core  # noqa: E402
from geoplan.services.overlap_pushdown import find_conflicts_in_database  # noqa: E402
from geoplan.storage import LayerStore  # noqa: E402
from geoplan.storage.gpkg import GeoPackageStore  # noqa: E402
from geoplan.storage.postgis import PostGISStore  # noqa: E402

WRITE_ROWS = 250_000  # parcels generated and written at a time


def fill(store: LayerStore, n: int) -> float:
    """Both layers into `store`, chunk by chunk; returns their size in memory as frames (MB: attributes, deep,
    plus WKB geometry), the input a one-process run must hold."""
    store.init()
    size = 0.0
    for name in LAYERS:
        for start in range(0, n, WRITE_ROWS):
            frame = parcel_chunk(n, name, start, min(n, start + WRITE_ROWS))
            store.write(name, frame, mode="replace" if start == 0 else "append", actor="bench")
            size += float(frame.drop(columns="geometry").memory_usage(deep=True).sum())
            size += float(sum(len(g) for g in shapely.to_wkb(frame.geometry.to_numpy())))
    return size / 2**20


def gpkg_data(args: argparse.Namespace, catalog: Catalog) -> tuple[Path, float]:
    """The GeoPackage of n parcels a layer (made once, kept), and the input's size in memory."""
    path = Path(args.data_dir) / f"scale-{args.n}.gpkg"
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        store = GeoPackageStore(path, catalog)
        try:
            size = fill(store, args.n)
        finally:
            store.close()
        meta.write_text(json.dumps({"input_mb": size}))
        print(f"wrote {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return path, float(json.loads(meta.read_text())["input_mb"])


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    catalog = load_catalog(ROOT / "layers")
    settings = OverlapSettings()
    started = time.perf_counter()
    workers_peak: list[float] = []
    if mode == "pushdown":
        database = PostGISStore(args.url, catalog)
        count, area, digest_parts = 0, 0.0, []
        try:
            for batch in find_conflicts_in_database(
                store=database, rules=parcel_rules(), settings=settings, locate=False
            ):
                count += len(batch)
                area += float(batch["area_m2"].sum())
                digest_parts.extend(batch["patch_id"].tolist())
        finally:
            database.close()
        digest = id_digest(digest_parts)
    elif mode == "read":
        return {"mode": mode, "input_mb": _layers_in_memory_mb(args)}
    else:
        store = GeoPackageStore(Path(args.data_dir) / f"scale-{args.n}.gpkg", catalog)
        try:
            if mode.startswith("ooc"):
                with (
                    tempfile.TemporaryDirectory(dir=args.data_dir) as work,
                    local_client(workers=int(mode[-1]), memory_limit=args.memory_limit) as client,
                ):
                    result = run_overlaps_out_of_core(
                        store,
                        rules=parcel_rules(),
                        client=client,
                        work_dir=Path(work),
                        settings=settings,
                        with_marks=False,
                    )
                    count, area, digest = result.patches, result.area_m2, result.id_digest
                    workers_peak = sorted(result.worker_peak_mb.values())
            else:
                layers = {name: store.read(name) for name in LAYERS}
                if mode == "memory":
                    patches = find_conflicts(
                        layers=layers, catalog=catalog, rules=parcel_rules(), settings=settings, workers=args.threads
                    )
                else:
                    with local_client(workers=int(mode[-1]), memory_limit=args.memory_limit) as client:
                        patches = find_conflicts_partitioned(
                            layers=layers, catalog=catalog, rules=parcel_rules(), settings=settings, client=client
                        )
                        workers_peak = sorted(float(v) for v in client.run(peak_rss_mb).values())
                count, area, digest = len(patches), float(patches["area_m2"].sum()), id_digest(patches["patch_id"])
        finally:
            store.close()
    return {
        "mode": mode,
        "seconds": round(time.perf_counter() - started, 2),
        "client_peak_mb": round(peak_rss_mb(), 1),
        "worker_peak_mb": [round(v, 1) for v in workers_peak],
        "patches": count,
        "area_m2": area,
        "ids_digest": digest,
    }


def _layers_in_memory_mb(args: argparse.Namespace) -> float:
    """How much memory both layers take once read into frames: what a one-process run must hold at least."""
    store = GeoPackageStore(Path(args.data_dir) / f"scale-{args.n}.gpkg", load_catalog(ROOT / "layers"))
    try:
        before = current_rss_mb()
        layers = {name: store.read(name) for name in LAYERS}
        held = current_rss_mb() - before
    finally:
        store.close()
    assert sum(len(frame) for frame in layers.values()) == 2 * args.n
    return round(held, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="parcels per layer")
    parser.add_argument("--modes", default="memory,part1,part2,ooc1,ooc2,pushdown")
    parser.add_argument("--memory-limit", default="1GB", help="per dask worker")
    parser.add_argument("--threads", type=int, default=2, help="threads of the in-memory run")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "geoplan-bench-scale"))
    parser.add_argument("--url", help="a PostGIS database to overwrite [default: a throwaway cluster]")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_mode(args.one, args)))
        return
    modes = args.modes.split(",")
    catalog = load_catalog(ROOT / "layers")
    _, frames_mb = gpkg_data(args, catalog)
    read = _child("read", args)
    print(
        f"n = {args.n:,} parcels a layer; read into frames the two layers take {read['input_mb']:,.0f} MB of memory "
        f"({frames_mb:,.0f} MB of attributes and WKB)",
        flush=True,
    )
    server = None
    if "pushdown" in modes and args.url is None:
        from geoplan.testing import start_postgis

        server = start_postgis()
        args.url = server.url
    try:
        if "pushdown" in modes:
            started = time.perf_counter()
            target = PostGISStore(args.url, catalog)
            try:
                fill(target, args.n)
            finally:
                target.close()
            print(f"loaded PostGIS in {time.perf_counter() - started:.0f} s", flush=True)
        results = [_child(mode, args) for mode in modes]
    finally:
        if server is not None:
            server.stop()
    same = {(r["patches"], r["ids_digest"]) for r in results}
    areas = [float(r["area_m2"]) for r in results]
    print(
        f"same patches in every mode: {len(same) == 1}; "
        f"total areas within 1e-6 relative: {max(areas) - min(areas) <= 1e-6 * max(areas)}"
    )


def _child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", mode, "--n", str(args.n), "--memory-limit", args.memory_limit]
    command += ["--threads", str(args.threads), "--data-dir", args.data_dir]
    if args.url:
        command += ["--url", args.url]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if mode == "read":
        return result
    print(
        f"{mode:8s} {result['seconds']:9.2f} s  client peak {result['client_peak_mb']:7.0f} MB  "
        f"workers peak {result['worker_peak_mb']} MB (limit {args.memory_limit})  "
        f"patches {result['patches']:,}  area {result['area_m2']:,.3f} m²  ids {result['ids_digest']}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
