#!/usr/bin/env python3
"""Benchmark: coverage with people and facilities linked to the nearest street (edge linking, the model) beside
the earlier nearest-node linking, in one process, on the demo and at 10x.

    python scripts/bench_edge_linking.py --cases district 10x --repeat 3

`district` builds the demo store into a temp dir (geoplan demo) and runs the whole district coverage
(`compute_coverage`: cells, linking, the multi-source search, the village table) with the walking graph built
once; `10x` lays ten copies of the demo side by side (raster, villages, facilities and streets shifted by the
raster's width, so the copies are disjoint: ten times the cells, streets and facilities of one district). Times
are the best of --repeat runs in seconds; ratio = edge / node. It also prints each model's district coverage and
people off the network, and the process's peak memory (VmHWM) after each case.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.analysis.coverage import compute_coverage  # noqa: E402
from geoplan.analysis.coverage_config import CoverageRules  # noqa: E402
from geoplan.analysis.network import WalkGraph, graph_of_lines  # noqa: E402
from geoplan.crs import METRIC_CRS  # noqa: E402
from geoplan.peak_memory import peak_rss_mb  # noqa: E402
from geoplan.rasterdata import RasterData  # noqa: E402
from geoplan.services.rule_files import load_coverage_rules  # noqa: E402


def demo_inputs(workdir: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, np.ndarray]:
    """The demo's villages and facilities (EPSG:4547), population raster and walkable street lines."""
    from geoplan.catalog import load_catalog
    from geoplan.cli import main
    from geoplan.settings import DEFAULT_LAYERS_DIR
    from geoplan.storage import open_store

    path = workdir / "demo.gpkg"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["demo", "--store", str(path), "--no-snapshots"]) == 0
    store = open_store(str(path), load_catalog(DEFAULT_LAYERS_DIR))
    try:
        villages = store.read("villages").to_crs(METRIC_CRS)
        facilities = store.read("culture_facilities").to_crs(METRIC_CRS)
        population = store.read_raster("population")
        roads = store.read("roads")
    finally:
        store.close()
    walkable = roads[roads["walkable"].astype(bool)].to_crs(METRIC_CRS)
    lines = shapely.get_parts(walkable.geometry.to_numpy())
    return villages, facilities, population, lines[shapely.get_type_id(lines) == 1]


def tiled(
    copies: int, villages: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, population: RasterData, lines: np.ndarray
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, np.ndarray]:
    """`copies` disjoint copies side by side, shifted by the raster's width (so the cells stay aligned)."""
    width = population.array.shape[1] * population.transform.a
    vs, fs, ls = [], [], []
    for k in range(copies):
        dx = k * width
        v = villages.copy()
        v["geometry"] = v.geometry.translate(xoff=dx)
        v["village_code"] = v["village_code"].astype(str) + f"-{k}"
        f = facilities.copy()
        f["geometry"] = f.geometry.translate(xoff=dx)
        f["facility_id"] = f["facility_id"].astype(str) + f"-{k}"
        vs.append(v)
        fs.append(f)
        ls.append(shapely.transform(lines, lambda xy, dx=dx: xy + np.array([dx, 0.0])))
    raster = RasterData(np.hstack([population.array] * copies), population.transform, population.crs, population.nodata)
    villages_n = gpd.GeoDataFrame(pd.concat(vs, ignore_index=True), geometry="geometry", crs=villages.crs)
    facilities_n = gpd.GeoDataFrame(pd.concat(fs, ignore_index=True), geometry="geometry", crs=facilities.crs)
    return villages_n, facilities_n, raster, np.concatenate(ls)


def run(
    name: str,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph,
    rules: CoverageRules,
    repeat: int,
) -> None:
    times: dict[str, float] = {}
    print(
        f"\n{name}: {int((population.array > 0).sum()):,} peopled cells, {graph.n_edges:,} streets, "
        f"{len(facilities):,} facilities, {len(villages):,} villages"
    )
    for linker in ("node", "edge"):
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            result = compute_coverage(
                villages=villages,
                facilities=facilities,
                population=population,
                graph=graph,
                rules=rules,
                linker=linker,
            )
            best = min(best, time.perf_counter() - start)
        times[linker] = best
        table = result.table
        pct = 100.0 * table["covered_population"].sum() / table["population"].sum()
        off = float(table["off_network_population"].sum()) if "off_network_population" in table else float("nan")
        print(f"  {linker:>4}-linked: {best:7.3f} s  district coverage {pct:5.1f} %  off the network {off:,.0f} people")
    print(f"  ratio edge / node: {times['edge'] / times['node']:.2f}x; peak memory so far {peak_rss_mb():,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=("district", "10x"), default=["district", "10x"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    rules = load_coverage_rules()
    with tempfile.TemporaryDirectory() as tmp:
        villages, facilities, population, lines = demo_inputs(Path(tmp))
    start = time.perf_counter()
    graph = graph_of_lines(lines)
    print(f"demo graph: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges, built in {time.perf_counter() - start:.2f} s")
    if "district" in args.cases:
        run("district", villages, facilities, population, graph, rules, args.repeat)
    if "10x" in args.cases:
        big = tiled(args.copies, villages, facilities, population, lines)
        big_graph = graph_of_lines(big[3])
        run(f"{args.copies}x", big[0], big[1], big[2], big_graph, rules, args.repeat)


if __name__ == "__main__":
    main()
