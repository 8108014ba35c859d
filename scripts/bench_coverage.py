#!/usr/bin/env python3
"""Benchmark: the coverage engine's network step against networkx and pandana, side by side in one process.

The network step answers "which network nodes are within `threshold` metres (750 m: 10 minutes at 4.5 km/h) of
some facility". Each facility within access_m (200 m) of the network stands on its nearest node (link length
0, because networkx and pandana start their searches at nodes), and every engine must give the same covered
node set:

    ours        geoplan.analysis.coverage.network_distances (one multi-source scipy.sparse.csgraph.dijkstra
                from a virtual source per facility, min_only=True) with horizon = threshold, i.e. limit = 750 m
    nx loop     networkx.single_source_dijkstra_path_length(cutoff=threshold) per facility, union of the nodes
                reached; with --skip-networkx-above N and more than N facility nodes it runs on a random sample
                of --networkx-sample facilities and the time is EXTRAPOLATED linearly (by default it runs whole)
    nx multi    networkx.multi_source_dijkstra_path_length(sources=facility nodes, cutoff=threshold)
    pandana     pandana.Network(...).precompute(threshold) + set_pois + nearest_pois(threshold), if installed

Cases: `district` builds the demo store into a temp dir (geoplan demo), reads roads and culture_facilities
and builds the WalkGraph, and first times the whole district coverage run (cells, network, village table) with
the graph built and with it cached; `10x` is a synthetic walking network of a jittered 700 x 700 grid in
EPSG:4547 (~100 m spacing, a few random diagonals, ~1M edges) with 5,000 facilities at random nodes. Graph
building for networkx and pandana (and pandana's precompute) is timed separately as "prep"; "query" times are
the best of --repeat runs, in seconds; ratio = peer query / ours. Ours is timed up to its answer (an array of
distances per node), the peers up to theirs (a set or a Series of nodes).

Then, per case, the step as a coverage run really uses it: every node's distance to its nearest facility up to
the 60-minute search horizon (the village table's mean and 90th-percentile minutes need more than the covered
set), ours against networkx per facility with cutoff = horizon keeping the minimum (whole on the district; on a
sample, extrapolated, at 10x) and networkx multi-source; distances must agree to 1e-6 m.

    python scripts/bench_coverage.py --cases district 10x --repeat 3

pandana's contraction-hierarchy precompute on the 1M-edge case takes many minutes on a 2-core VM (it is "prep",
not part of the query time); --skip-pandana-above EDGES leaves it out for a quick run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.analysis.coverage import CoverageSettings, network_distances  # noqa: E402
from geoplan.analysis.network import WalkGraph, build_walk_graph  # noqa: E402
from geoplan.crs import METRIC_CRS  # noqa: E402

T = TypeVar("T")
SETTINGS = CoverageSettings(minutes=10.0, speed_kmh=4.5, access_m=200.0, horizon_minutes=10.0)
THRESHOLD = SETTINGS.threshold_m
TOLERANCE_M = 1e-6
ORIGIN = (330_000.0, 2_510_000.0)  # EPSG:4547, around Gaoming


@dataclass
class Case:
    name: str
    graph: WalkGraph
    fac_nodes: np.ndarray  # one entry per linked facility (nodes may repeat)
    facilities: int  # facilities in the input, linked or not


@dataclass
class Result:
    engine: str
    query_s: float | None
    covered: int | None
    equal: bool | None
    prep_s: float | None = None
    note: str = ""


def best_of(repeat: int, func: Callable[[], T]) -> tuple[float, T]:
    best: tuple[float, T] | None = None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = func()
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best[0]:
            best = (elapsed, result)
    assert best is not None
    return best


# --------------------------------------------------------------------------------------------- cases


@dataclass
class FullRun:
    """The whole district coverage (cells, network, village table), not only the network step."""

    graph_build_s: float
    cached_s: float
    villages: int
    coverage_pct: float


def district_case(repeat: int) -> tuple[Case, FullRun]:
    from geoplan.analysis.coverage import CoverageRules, compute_coverage, district_total
    from geoplan.catalog import load_catalog
    from geoplan.cli import main as cli_main
    from geoplan.storage import open_store

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "demo.gpkg")
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["demo", "--store", path, "--no-snapshots"])
        if code not in (0, None):
            raise SystemExit(f"geoplan demo failed with exit code {code}")
        store = open_store(path, load_catalog(ROOT / "layers"))
        roads = store.read("roads")
        villages = store.read("villages")
        facilities = store.read("culture_facilities")
        population = store.read_raster("population")
    build_s, graph = best_of(repeat, lambda: build_walk_graph(roads=roads))
    rules = CoverageRules()
    cached_s, result = best_of(
        repeat,
        lambda: compute_coverage(
            villages=villages, facilities=facilities, population=population, graph=graph, rules=rules
        ),
    )
    total = district_total(result.table)
    full = FullRun(build_s, cached_s, len(result.table), float(total["coverage_pct"]))
    metric = facilities.to_crs(METRIC_CRS)
    xy = np.column_stack([metric.geometry.x.to_numpy(), metric.geometry.y.to_numpy()])
    return _linked_case("district", graph, xy), full


def print_full_run(full: FullRun) -> None:
    print(
        f"\ndistrict full coverage run (default rules, {full.villages} villages, district {full.coverage_pct:.1f} %):"
        f"\n  graph build {full.graph_build_s:.3f} s; run with the graph cached {full.cached_s:.3f} s; "
        f"run including the graph build {full.graph_build_s + full.cached_s:.3f} s"
    )


def synthetic_case(side: int, facilities: int, seed: int) -> Case:
    """A jittered side x side grid (~100 m spacing, lengths ~50-150 m), 5 % of the cells with a diagonal."""
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    coords = np.column_stack([gx.ravel(), gy.ravel()]) * 100.0 + rng.uniform(-20.0, 20.0, (side * side, 2))
    coords += np.array(ORIGIN)
    ids = np.arange(side * side).reshape(side, side)
    right = (ids[:-1, :].ravel(), ids[1:, :].ravel())
    up = (ids[:, :-1].ravel(), ids[:, 1:].ravel())
    diag_a, diag_b = ids[:-1, :-1].ravel(), ids[1:, 1:].ravel()
    keep = rng.random(len(diag_a)) < 0.05  # most diagonals removed at random
    i = np.concatenate([right[0], up[0], diag_a[keep]])
    j = np.concatenate([right[1], up[1], diag_b[keep]])
    w = np.linalg.norm(coords[i] - coords[j], axis=1)
    n = side * side
    matrix = sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))), (n, n))
    graph = WalkGraph(matrix=matrix, coords=coords, tree=cKDTree(coords))
    return _linked_case("10x", graph, coords[rng.integers(0, n, facilities)])


def _linked_case(name: str, graph: WalkGraph, xy: np.ndarray) -> Case:
    link, node = graph.nearest(xy)
    return Case(name, graph, node[link <= SETTINGS.access_m], len(xy))


# --------------------------------------------------------------------------------------------- engines


def ours_distances(graph: WalkGraph, fac_nodes: np.ndarray) -> np.ndarray:
    """The timed engine call: metres from every node to its nearest facility."""
    # The facilities stand on nodes (as the peers' searches start at nodes), so the node linker is the same search
    # without the street lookup (the 10x graph is built from a matrix and carries no street shapes to link to).
    node_dist, _ = network_distances(graph, graph.coords[fac_nodes], SETTINGS, linker="node")
    return node_dist


def covered_set(node_dist: np.ndarray) -> set[int]:
    return set(np.flatnonzero(node_dist <= THRESHOLD + TOLERANCE_M).tolist())


def ours(graph: WalkGraph, fac_nodes: np.ndarray) -> set[int]:
    return covered_set(ours_distances(graph, fac_nodes))


def nx_graph(graph: WalkGraph) -> Any:
    import networkx as nx

    upper = sparse.triu(graph.matrix, k=1).tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(graph.n_nodes))
    g.add_weighted_edges_from(zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True))
    return g


def nx_loop(g: Any, fac_nodes: np.ndarray) -> set[int]:
    import networkx as nx

    covered: set[int] = set()
    for source in np.unique(fac_nodes).tolist():
        reach = nx.single_source_dijkstra_path_length(g, source, cutoff=THRESHOLD + TOLERANCE_M)
        covered.update(reach)
    return covered


def nx_multi(g: Any, fac_nodes: np.ndarray) -> set[int]:
    import networkx as nx

    sources = set(np.unique(fac_nodes).tolist())
    return set(nx.multi_source_dijkstra_path_length(g, sources, cutoff=THRESHOLD + TOLERANCE_M))


def pandana_net(graph: WalkGraph) -> Any:
    import pandana
    import pandas as pd

    upper = sparse.triu(graph.matrix, k=1).tocoo()
    net = pandana.Network(
        pd.Series(graph.coords[:, 0]),
        pd.Series(graph.coords[:, 1]),
        pd.Series(upper.row),
        pd.Series(upper.col),
        pd.DataFrame({"length": upper.data}),
        twoway=True,
    )
    net.precompute(THRESHOLD + 1.0)
    return net


def pandana_query(net: Any, graph: WalkGraph, fac_nodes: np.ndarray) -> set[int]:
    import pandas as pd

    nodes = np.unique(fac_nodes)
    xy = graph.coords[nodes]
    net.set_pois("facility", THRESHOLD + 1.0, 1, pd.Series(xy[:, 0]), pd.Series(xy[:, 1]))
    dist = net.nearest_pois(THRESHOLD + 1.0, "facility", num_pois=1, max_distance=np.inf)[1].to_numpy()
    return set(np.flatnonzero(dist <= THRESHOLD + TOLERANCE_M).tolist())


def pandana_status() -> str | None:
    """None when pandana imports; otherwise the reason."""
    try:
        import pandana  # noqa: F401
    except Exception as exc:  # any import failure means "not here"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


# --------------------------------------------------------------------------------------------- run


def run_case(case: Case, args: argparse.Namespace) -> list[Result]:
    graph, fac = case.graph, case.fac_nodes
    # ours is timed up to its array answer; turning that into a Python set is bookkeeping for the comparison
    ours_s, node_dist = best_of(args.repeat, lambda: ours_distances(graph, fac))
    truth = covered_set(node_dist)
    results = [Result("ours (scipy)", ours_s, len(truth), True)]

    started = time.perf_counter()
    g = nx_graph(graph)
    nx_prep = time.perf_counter() - started
    unique = np.unique(fac)
    if args.skip_networkx_above is not None and len(unique) > args.skip_networkx_above:
        rng = np.random.default_rng(args.seed)
        sample = rng.choice(unique, size=min(args.networkx_sample, len(unique)), replace=False)
        sample_s, reach = best_of(args.repeat, lambda: nx_loop(g, sample))
        expected = ours(graph, sample)
        results.append(
            Result(
                "nx loop",
                sample_s * len(unique) / len(sample),
                len(reach),
                reach == expected,
                nx_prep,
                f"EXTRAPOLATED from {len(sample)} of {len(unique)} facility nodes ({sample_s:.3f} s); "
                "covered/equal are for that sample against ours on the same sample",
            )
        )
    else:
        loop_s, reach = best_of(args.repeat, lambda: nx_loop(g, fac))
        results.append(Result("nx loop", loop_s, len(reach), reach == truth, nx_prep))
    multi_s, reach = best_of(args.repeat, lambda: nx_multi(g, fac))
    results.append(Result("nx multi", multi_s, len(reach), reach == truth, nx_prep))

    if args.skip_pandana_above is not None and graph.n_edges > args.skip_pandana_above:
        results.append(Result("pandana", None, None, None, note="skipped (--skip-pandana-above)"))
    elif args.pandana_reason is None:
        started = time.perf_counter()
        net = pandana_net(graph)
        pd_prep = time.perf_counter() - started
        pd_s, reach = best_of(args.repeat, lambda: pandana_query(net, graph, fac))
        results.append(
            Result("pandana", pd_s, len(reach), reach == truth, pd_prep, "prep = Network + precompute(750 m)")
        )
        if reach != truth:
            diff = np.array(sorted(reach ^ truth))
            node_dist, _ = network_distances(graph, graph.coords[fac], SETTINGS)
            results[-1].note += f"; {len(diff)} nodes differ, ours' distances there: {node_dist[diff][:5]}"
    else:
        results.append(Result("pandana", None, None, None, note=f"not installable here ({args.pandana_reason})"))
    return results


HORIZON = CoverageSettings(minutes=10.0, speed_kmh=4.5, access_m=200.0, horizon_minutes=60.0)


def nx_loop_nearest(g: Any, fac_nodes: np.ndarray, cutoff: float) -> dict[int, float]:
    """Per node, metres to the nearest facility: one networkx Dijkstra per facility, the minimum kept."""
    import networkx as nx

    best: dict[int, float] = {}
    for source in np.unique(fac_nodes).tolist():
        for node, dist in nx.single_source_dijkstra_path_length(g, source, cutoff=cutoff).items():
            if dist < best.get(node, math.inf):
                best[node] = dist
    return best


def run_horizon(case: Case, args: argparse.Namespace) -> bool:
    """The network step as a coverage run uses it: each node's distance to its nearest facility up to the
    60-minute horizon (4,500 m), for the mean and 90th-percentile minutes, not only the covered set."""
    graph, fac = case.graph, case.fac_nodes
    cutoff = HORIZON.horizon_m + TOLERANCE_M
    ours_s, (node_dist, _) = best_of(args.repeat, lambda: network_distances(graph, graph.coords[fac], HORIZON))
    g = nx_graph(graph)
    unique = np.unique(fac)
    rng = np.random.default_rng(args.seed)
    # to the horizon the loop takes about a minute at 10x: there it runs on a sample, extrapolated
    whole = len(unique) <= 500
    sample = unique if whole else rng.choice(unique, size=min(args.networkx_sample, len(unique)), replace=False)
    loop_s, reach = best_of(1, lambda: nx_loop_nearest(g, sample, cutoff))
    sample_dist, _ = network_distances(graph, graph.coords[sample], HORIZON)
    nodes = np.fromiter(reach.keys(), dtype=np.intp, count=len(reach))
    theirs = np.fromiter(reach.values(), dtype=np.float64, count=len(reach))
    loop_equal = bool(
        len(nodes) == int(np.isfinite(sample_dist).sum()) and np.allclose(sample_dist[nodes], theirs, atol=1e-6)
    )
    loop_all = loop_s * len(unique) / len(sample)
    multi_s, multi = best_of(1, lambda: _nx_multi_distances(g, unique, cutoff))
    m_nodes = np.fromiter(multi.keys(), dtype=np.intp, count=len(multi))
    m_dist = np.fromiter(multi.values(), dtype=np.float64, count=len(multi))
    multi_equal = bool(
        len(m_nodes) == int(np.isfinite(node_dist).sum()) and np.allclose(node_dist[m_nodes], m_dist, atol=1e-6)
    )
    print(
        f"\ncase {case.name}, distances to the nearest facility up to the {HORIZON.horizon_minutes:g}-minute "
        f"horizon ({HORIZON.horizon_m:,.0f} m), as the coverage run needs them for its mean and p90 minutes:"
    )
    print(f"  {'engine':<14} {'query s':>9} {'ratio':>8} {'nodes':>9} {'same':>5}  note")
    print(f"  {'ours (scipy)':<14} {ours_s:9.3f} {1.0:8.1f} {int(np.isfinite(node_dist).sum()):9,} {'yes':>5}")
    print(
        f"  {'nx loop':<14} {loop_all:9.3f} {loop_all / ours_s:8.1f} {len(reach):9,} "
        f"{'yes' if loop_equal else 'NO':>5}  "
        + (
            "whole loop"
            if whole
            else f"EXTRAPOLATED from {len(sample)} of {len(unique)} facility nodes ({loop_s:.3f} s); nodes/same: "
            "the sample's minimum distances against ours for the same sample"
        )
    )
    print(
        f"  {'nx multi':<14} {multi_s:9.3f} {multi_s / ours_s:8.1f} {len(multi):9,} "
        f"{'yes' if multi_equal else 'NO':>5}  one run"
    )
    return loop_equal and multi_equal


def _nx_multi_distances(g: Any, sources: np.ndarray, cutoff: float) -> dict[int, float]:
    import networkx as nx

    result: dict[int, float] = nx.multi_source_dijkstra_path_length(g, set(sources.tolist()), cutoff=cutoff)
    return result


def print_case(case: Case, results: list[Result]) -> None:
    print(
        f"\ncase {case.name}: {case.graph.n_nodes:,} nodes, {case.graph.n_edges:,} edges, {case.facilities:,} "
        f"facilities ({len(case.fac_nodes):,} linked, {len(np.unique(case.fac_nodes)):,} distinct nodes), "
        f"threshold {THRESHOLD:.0f} m"
    )
    print(f"  {'engine':<14} {'prep s':>8} {'query s':>9} {'ratio':>8} {'covered':>9} {'same set':>8}  note")
    base = results[0].query_s
    for r in results:
        prep = f"{r.prep_s:8.2f}" if r.prep_s is not None else f"{'-':>8}"
        query = f"{r.query_s:9.3f}" if r.query_s is not None else f"{'-':>9}"
        ratio = f"{r.query_s / base:8.1f}" if r.query_s is not None and base else f"{'-':>8}"
        covered = f"{r.covered:9,}" if r.covered is not None else f"{'-':>9}"
        same = {True: "yes", False: "MISMATCH", None: "-"}[r.equal]
        print(f"  {r.engine:<14} {prep} {query} {ratio} {covered} {same:>8}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=["district", "10x"], default=["district", "10x"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument(
        "--skip-networkx-above",
        type=int,
        default=None,
        help="above this many facility nodes, time the networkx per-facility loop on a sample and extrapolate "
        "(default: always run the whole loop)",
    )
    parser.add_argument("--networkx-sample", type=int, default=50)
    parser.add_argument("--side", type=int, default=700, help="10x case: grid side in nodes")
    parser.add_argument("--facilities", type=int, default=5000, help="10x case: facilities")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--skip-pandana-above",
        type=int,
        default=None,
        help="no pandana run on graphs with more edges (its contraction-hierarchy precompute is slow at 1M edges)",
    )
    parser.add_argument("--no-horizon", action="store_true", help="leave out the distances-to-the-horizon comparison")
    args = parser.parse_args(argv)
    args.pandana_reason = pandana_status()
    print(f"cores: {os.cpu_count()}, repeat: {args.repeat}, threshold: {THRESHOLD:.0f} m")
    if args.pandana_reason is not None:
        print(f"pandana: not installable here ({args.pandana_reason})")
    ok = True
    for name in args.cases:
        if name == "district":
            case, full = district_case(args.repeat)
            print_full_run(full)
        else:
            case = synthetic_case(args.side, args.facilities, args.seed)
        results = run_case(case, args)
        print_case(case, results)
        if any(r.equal is False for r in results):
            ok = False
            print(f"MISMATCH in case {case.name}: covered node sets differ (see 'same set')")
        if not args.no_horizon and not run_horizon(case, args):
            ok = False
            print(f"MISMATCH in case {case.name}: horizon distances differ")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
