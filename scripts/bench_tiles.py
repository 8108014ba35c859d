#!/usr/bin/env python3
"""Benchmark: building a zoom-14 roads tile on each store, the same tiles: the GeoPackage's in-process encoder
(R-tree read, shapely clip and snap, mapbox-vector-tile) beside PostGIS's ST_AsMVTGeom + ST_AsMVT in SQL.

The demo store is built into a temp dir (geoplan demo) and its roads copied into a throwaway PostGIS cluster
(or the database at --postgis URL, which must be empty). The tiles are every zoom-14 tile holding roads; each
tile is built --repeat times on each store and the best time kept. Both stores must give the same road ids per
tile (checked). Printed: tiles, features per tile, median and total time per store, and the ratio
GeoPackage / PostGIS.

    python scripts/bench_tiles.py --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mapbox_vector_tile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoplan.catalog import load_catalog  # noqa: E402
from geoplan.cli import main as cli  # noqa: E402
from geoplan.storage import LayerStore  # noqa: E402
from geoplan.storage.gpkg import GeoPackageStore  # noqa: E402
from geoplan.storage.postgis import PostGISStore  # noqa: E402
from geoplan.storage.tile_matrix import TileKey  # noqa: E402
from geoplan.testing import start_postgis  # noqa: E402

LAYER = "roads"
ZOOM = 14


def tiles_over(bounds: tuple[float, float, float, float], z: int) -> Iterator[TileKey]:
    def column(lon: float) -> int:
        return int((lon + 180) / 360 * 2**z)

    def row(lat: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)

    west, south, east, north = bounds
    for x in range(column(west), column(east) + 1):
        for y in range(row(north), row(south) + 1):
            yield TileKey(z, x, y)


def best_of(repeat: int, build: Callable[[], bytes]) -> tuple[float, bytes]:
    times, data = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        data = build()
        times.append(time.perf_counter() - start)
    return min(times), data


def ids(data: bytes, id_field: str) -> set[str]:
    if not data:
        return set()
    return {f["properties"][id_field] for f in mapbox_vector_tile.decode(data)[LAYER]["features"]}


def run(gpkg: LayerStore, postgis: LayerStore, repeat: int) -> None:
    layer = gpkg.catalog.get(LAYER)
    assert layer.id_field is not None
    fields = layer.public_fields
    bounds = gpkg.bounds(LAYER)
    assert bounds is not None
    rows = []
    for tile in tiles_over(bounds, ZOOM):
        ours, ours_data = best_of(repeat, lambda t=tile: gpkg.vector_tile(LAYER, t, fields))
        sql, sql_data = best_of(repeat, lambda t=tile: postgis.vector_tile(LAYER, t, fields))
        found = ids(ours_data, layer.id_field)
        if not found and not sql_data:
            continue
        assert found == ids(sql_data, layer.id_field), f"tile {tile}: the stores disagree"
        rows.append((len(found), ours, sql, len(ours_data), len(sql_data)))
    counts = [r[0] for r in rows]
    gpkg_times, sql_times = [r[1] for r in rows], [r[2] for r in rows]
    print(
        f"{len(rows)} zoom-{ZOOM} tiles with roads; features per tile: median {statistics.median(counts):.0f}, "
        f"max {max(counts)}; best of {repeat}"
    )
    print(f"{'store':<28}{'median ms':>12}{'max ms':>10}{'total s':>10}{'median kB':>11}")
    for name, times, sizes in (
        ("GeoPackage (in process)", gpkg_times, [r[3] for r in rows]),
        ("PostGIS (ST_AsMVT)", sql_times, [r[4] for r in rows]),
    ):
        print(
            f"{name:<28}{statistics.median(times) * 1000:>12.1f}{max(times) * 1000:>10.1f}"
            f"{sum(times):>10.2f}{statistics.median(sizes) / 1024:>11.1f}"
        )
    ratio = statistics.median(gpkg_times) / statistics.median(sql_times)
    print(f"ratio GeoPackage / PostGIS (median tile): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgis", help="an empty PostGIS database URL (default: a throwaway cluster)")
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "layers")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        path = Path(tmp) / "demo.gpkg"
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(["demo", "--store", str(path), "--no-snapshots"]) == 0
        url = args.postgis
        if url is None:
            server = start_postgis()
            stack.callback(server.stop)
            url = server.url
        gpkg, postgis = GeoPackageStore(path, catalog), PostGISStore(url, catalog)
        stack.callback(gpkg.close)
        stack.callback(postgis.close)
        postgis.init()
        postgis.write(LAYER, gpkg.read(LAYER))
        run(gpkg, postgis, args.repeat)


if __name__ == "__main__":
    main()
