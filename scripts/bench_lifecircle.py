#!/usr/bin/env python3
"""Benchmark: the whole life-circle scorecard (81 villages x every service) in one engine run, beside running
the culture-only computation (`compute_coverage`) once per service, in one process on the demo store.

    scorecard cold     read the store, build the walking graph, then `life_circle_coverage` + `scorecard`
    scorecard cached   the same with the inputs and the graph already in memory (a server's second request)
    one per service    `compute_coverage` per service (and per park size class), each run cutting the cells,
                       linking them to the network and searching anew: how a scorecard would cost without the
                       shared engine

Times are the best of --repeat runs, in seconds (cold runs once per repeat too). Both ways must agree: the
script checks that every service's covered people (parks aside: one size class each) match to 1e-6 before
it prints the ratio.

    python scripts/bench_lifecircle.py --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.analysis.coverage import CoverageRules, compute_coverage  # noqa: E402
from geoplan.analysis.life_circle_scorecard import scorecard  # noqa: E402
from geoplan.analysis.life_circles import LifeCircleResult, life_circle_coverage, service_facilities  # noqa: E402
from geoplan.analysis.network import build_walk_graph  # noqa: E402
from geoplan.catalog import load_catalog  # noqa: E402
from geoplan.services.rule_files import load_life_circles  # noqa: E402
from geoplan.storage.gpkg import GeoPackageStore  # noqa: E402

T = TypeVar("T")
LAYERS = ROOT / "layers"


def best(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    assert value is not None
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from geoplan.cli import main as cli

    catalog = load_catalog(LAYERS)
    rules = load_life_circles(LAYERS / "rules" / "life_circles.yaml", catalog)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.gpkg"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert cli(["demo", "--store", str(path), "--no-snapshots"]) == 0

        def read() -> tuple:
            store = GeoPackageStore(path, catalog)
            try:
                layers = {name: store.read(name) for name in sorted({r.layer for r in rules.values()})}
                return store.read("villages"), layers, store.read_raster("population"), store.read("roads")
            finally:
                store.close()

        def cold() -> object:
            villages, layers, population, roads = read()
            graph = build_walk_graph(roads=roads)
            result = life_circle_coverage(
                villages=villages, layers=layers, population=population, graph=graph, rules=rules
            )
            return scorecard(villages, result)

        villages, layers, population, roads = read()
        graph = build_walk_graph(roads=roads)

        def cached() -> LifeCircleResult:
            return life_circle_coverage(
                villages=villages, layers=layers, population=population, graph=graph, rules=rules
            )

        def one_per_service() -> dict[str, float]:
            covered = {}
            for name, rule in rules.items():
                facilities = service_facilities(layers[rule.layer], rule)
                for runs, (u, r) in enumerate(zip(rule.urban.reaches, rule.rural.reaches, strict=True)):
                    keep = facilities
                    if u.min_ha is not None and rule.area_field is not None:
                        keep = facilities[facilities[rule.area_field].fillna(-1) >= u.min_ha]
                    one = compute_coverage(
                        villages=villages,
                        facilities=keep,
                        population=population,
                        graph=graph,
                        rules=CoverageRules(urban=rule.settings(u.radius_m), rural=rule.settings(r.radius_m)),
                    )
                    if runs == 0:
                        covered[name] = float(one.table["covered_population"].sum())
            return covered

        t_cold, _ = best(args.repeat, cold)
        t_cached, result = best(args.repeat, cached)
        t_each, covered = best(args.repeat, one_per_service)
    services = len(rules)
    print(f"life-circle scorecard: {len(villages)} villages x {services} services, {result.searches} searches")
    for name, rule in rules.items():
        if len(rule.urban.reaches) == 1 and len(rule.rural.reaches) == 1:  # parks: classes combined, not comparable
            ours = float(result.services[name].table["covered_population"].sum())
            assert np.isclose(ours, covered[name], rtol=0, atol=1e-6), name
    print(f"  scorecard cold (read + graph + engine)   {t_cold:8.2f} s")
    print(f"  scorecard cached (engine only)           {t_cached:8.2f} s")
    print(f"  culture-only computation per service     {t_each:8.2f} s")
    print(f"  ratio per-service / cached scorecard     {t_each / t_cached:8.2f} x")


if __name__ == "__main__":
    main()
