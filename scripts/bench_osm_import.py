#!/usr/bin/env python3
"""Benchmark: importing a county-sized OpenStreetMap extract as a walking network, beside GDAL's OSM driver.

A synthetic extract is written with pyosmium into a temp .osm.pbf inside Gaoming's bounding box: a jittered
street grid whose ways each run over --blocks blocks (so ways share nodes mid-way, as real streets do), with
two bend nodes per block, a mix of highway values (some motorways, foot=no and access=private ways), about
--ways ways in all (200,000 by default: the order of a Chinese county's OSM ways). Then, in this process:

    ours   geoplan.io.osm stages: read (pyosmium, locations, highway ways only), split at shared nodes, clip to
           the real district outline, build the frame; then geoplan.analysis.network.build_walk_graph on it
           (EPSG:4326 -> 4547 and the sparse graph); optionally (--store) validate and write into a fresh
           GeoPackage store through geoplan.services.ingest.import_frame, as `geoplan import roads` does
    peer   GDAL's OSM driver through pyogrio: read_dataframe(layer="lines") of the same file (its own
           highway/other_tags columns; it neither splits nor clips, so the peer does less work)

It prints each stage's time (best of --repeat), the peak resident memory of each side (VmHWM, reset between
sides through /proc/self/clear_refs where the kernel allows; otherwise the process's peak so far is shown and
marked), the counts, and the ratio ours / peer for reading alone and for the whole import-to-graph.

    python scripts/bench_osm_import.py --ways 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import osmium
import shapely
from osmium.osm.mutable import Node, Way

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.analysis.network import build_walk_graph  # noqa: E402
from geoplan.demo.sources import load_sources  # noqa: E402
from geoplan.io import osm  # noqa: E402
from geoplan.peak_memory import current_rss_mb, peak_rss_mb  # noqa: E402

T = TypeVar("T")
BBOX = (112.38, 22.64, 112.92, 23.02)  # Gaoming's bounding box, lon/lat
HIGHWAYS = ("residential", "residential", "residential", "service", "unclassified", "tertiary", "footway", "path")


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: writing 5 to clear_refs); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def write_extract(path: Path, ways: int, blocks: int, seed: int) -> tuple[int, int]:
    """A jittered grid of G x G intersections, streets of `blocks` blocks each way; returns (nodes, ways)."""
    rng = np.random.default_rng(seed)
    # 2 * G * (G - 1) / blocks ways in all.
    g = int(np.ceil((1 + np.sqrt(1 + 2 * ways * blocks)) / 2))
    lon0, lat0, lon1, lat1 = BBOX
    xs = np.linspace(lon0, lon1, g)
    ys = np.linspace(lat0, lat1, g)
    step = min(xs[1] - xs[0], ys[1] - ys[0])
    gx = xs[None, :] + rng.uniform(-0.2, 0.2, (g, g)) * step
    gy = ys[:, None] + rng.uniform(-0.2, 0.2, (g, g)) * step

    def inter(r: int, c: int) -> int:
        return 1 + r * g + c

    next_id = 1 + g * g
    bends: list[tuple[int, float, float]] = []
    way_nodes: list[list[int]] = []
    for horizontal in (True, False):
        for line in range(g):
            for first in range(0, g - 1, blocks):
                last = min(first + blocks, g - 1)
                nodes: list[int] = []
                for k in range(first, last + 1):
                    r, c = (line, k) if horizontal else (k, line)
                    nodes.append(inter(r, c))
                    if k == last:
                        break
                    r2, c2 = (line, k + 1) if horizontal else (k + 1, line)
                    for t in (1 / 3, 2 / 3):  # two bend nodes per block
                        bx = gx[r, c] + t * (gx[r2, c2] - gx[r, c]) + rng.normal(0, 0.05) * step
                        by = gy[r, c] + t * (gy[r2, c2] - gy[r, c]) + rng.normal(0, 0.05) * step
                        bends.append((next_id, bx, by))
                        nodes.append(next_id)
                        next_id += 1
                way_nodes.append(nodes)
    writer = osmium.SimpleWriter(str(path))
    try:
        for r in range(g):
            for c in range(g):
                writer.add_node(Node(id=inter(r, c), location=(float(gx[r, c]), float(gy[r, c])), tags={}))
        for node_id, x, y in bends:
            writer.add_node(Node(id=node_id, location=(float(x), float(y)), tags={}))
        draw = rng.random(len(way_nodes))
        for i, nodes in enumerate(way_nodes):
            tags = {"highway": HIGHWAYS[i % len(HIGHWAYS)], "name": f"路{i}"}
            if draw[i] < 0.01:
                tags["highway"] = "motorway"
            elif draw[i] < 0.02:
                tags["foot"] = "no"
            elif draw[i] < 0.03:
                tags["access"] = "private"
            writer.add_way(Way(id=i + 1, nodes=nodes, tags=tags))
    finally:
        writer.close()
    return g * g + len(bends), len(way_nodes)


def best(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return min(times), result


def run_ours(path: Path, district: shapely.Geometry, repeat: int, store_dir: Path | None) -> tuple[float, float, bool]:
    """Our stages, timed and printed; returns (read time, read-to-graph time, whether the peak was reset).
    In a function so that its frames are freed before the peer runs."""
    clean = reset_peak()
    base = current_rss_mb()
    t_read, ways = best(repeat, lambda: osm._collect_ways(path))
    t_split, (lines, _pieces_way, _) = best(repeat, lambda: osm._split(ways))
    t_clip, clipped = best(repeat, lambda: osm.clip_lines(lines, district))
    t_frame, (frame, _) = best(repeat, lambda: osm.read_osm_roads(path, district=district))
    t_graph, graph = best(repeat, lambda: build_walk_graph(roads=frame))
    ours_peak = peak_rss_mb()
    kept = int(np.count_nonzero(clipped != None))  # noqa: E711 (element-wise)
    print(f"ours:  {len(ways.way_id):,} highway ways -> {len(lines):,} pieces -> {kept:,} in the district")
    print(f"  read (pyosmium)             {t_read:8.2f} s")
    print(f"  split at shared nodes       {t_split:8.2f} s")
    print(f"  clip to the district        {t_clip:8.2f} s")
    print(f"  read_osm_roads (all above)  {t_frame:8.2f} s")
    print(f"  build_walk_graph            {t_graph:8.2f} s  ({graph.n_nodes:,} nodes, {graph.n_edges:,} edges)")
    print(f"  peak memory {ours_peak:,.0f} MB ({ours_peak - base:+,.0f} MB over the start){'' if clean else ' *'}")
    if store_dir is not None:
        from geoplan.catalog import load_catalog
        from geoplan.services.ingest import import_frame
        from geoplan.storage.gpkg import GeoPackageStore

        store = GeoPackageStore(store_dir / "store.gpkg", load_catalog(ROOT / "layers"))
        store.init()
        try:
            started = time.perf_counter()
            written = import_frame(store, "roads", frame, source=path.name).written
            t_store = time.perf_counter() - started
        finally:
            store.close()
        print(f"  validate + write (GeoPackage) {t_store:6.2f} s  ({written:,} features)")
    return t_read, t_frame + t_graph, clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ways", type=int, default=200_000)
    parser.add_argument("--blocks", type=int, default=4, help="blocks per way (ways share nodes mid-way)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--store", action="store_true", help="also validate and write into a GeoPackage store")
    args = parser.parse_args()

    district = load_sources(ROOT / "layers" / "sources").district_ll
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "county.osm.pbf"
        started = time.perf_counter()
        n_nodes, n_ways = write_extract(path, args.ways, args.blocks, args.seed)
        print(
            f"extract: {n_ways:,} ways, {n_nodes:,} nodes, {path.stat().st_size / 1e6:.1f} MB "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )

        t_read, t_ours, clean = run_ours(path, district, args.repeat, Path(tmp) if args.store else None)

        import pyogrio

        clean = reset_peak() and clean
        base = current_rss_mb()
        t_peer, peer = best(
            args.repeat, lambda: pyogrio.read_dataframe(path, layer="lines", columns=["osm_id", "name", "highway"])
        )
        peer_peak = peak_rss_mb()
        print(f"peer:  GDAL OSM driver 'lines' layer: {len(peer):,} lines")
        print(f"  read (pyogrio)              {t_peer:8.2f} s")
        print(f"  peak memory {peer_peak:,.0f} MB ({peer_peak - base:+,.0f} MB over the start){'' if clean else ' *'}")
        print(f"ratio ours / peer: read {t_read / t_peer:.2f}, read+split+clip+frame+graph {t_ours / t_peer:.2f}")
        if not clean:
            print("* the kernel did not allow resetting the peak: both peaks are the process's peak so far")


if __name__ == "__main__":
    main()
