"""Coverage per village, partitioned on a real dask cluster: the same village table as the whole-district run.

The reference is `compute_coverage` on the whole demo (itself checked against networkx and shapely in
test_coverage.py). A partition's villages see the whole network, and every village that shares a raster cell
with them, so each row must come out equal, whatever the number of partitions or the raster's CRS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio.warp
import shapely
from affine import Affine
from distributed import Client

from geoplan.analysis.coverage import COVERAGE_COLUMNS, CoverageRules, CoverageSettings, compute_coverage
from geoplan.analysis.coverage_partitioned import coverage_partitioned, raster_window
from geoplan.cli import main
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData
from tests.demo_layers import DemoLayers

NETWORK = CoverageRules()
EUCLID = CoverageRules(urban=CoverageSettings(mode="euclidean"), rural=CoverageSettings(mode="euclidean"))
NUMBERS = [c for c in COVERAGE_COLUMNS if c not in ("village_code", "village_name", "town", "type", "nearest_facility")]


def _assert_same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == COVERAGE_COLUMNS
    assert got["village_code"].tolist() == want["village_code"].tolist()  # the villages' order
    for column in ("village_name", "town", "type", "nearest_facility"):
        assert got[column].tolist() == want[column].tolist(), column
    np.testing.assert_allclose(got[NUMBERS].to_numpy(float), want[NUMBERS].to_numpy(float), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("partitions", [1, 3, 7, 40])
@pytest.mark.parametrize("rules", [NETWORK, EUCLID], ids=["network", "euclidean"])
def test_partitioned_coverage_equals_the_whole_run(
    demo: DemoLayers, dask_client: Client, partitions: int, rules: CoverageRules
) -> None:
    whole = demo.coverage(rules)
    got = coverage_partitioned(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=demo.graph,
        rules=rules,
        client=dask_client,
        partitions=partitions,
    )
    _assert_same_table(got.table, whole.table)
    assert got.facilities_off_network == whole.facilities_off_network
    assert got.table["population"].sum() > 100_000  # a real district, not an empty table


def test_a_raster_in_the_store_crs_gives_the_same_rows(demo: DemoLayers, dask_client: Client) -> None:
    """The demo raster warped to EPSG:4490 (degrees): windows are cut in its own grid, cells placed in metres."""
    source = demo.raster
    cols = source.array.shape[1]
    bounds = rasterio.warp.transform_bounds(METRIC_CRS, STORE_CRS, *source.bounds)
    step = (bounds[2] - bounds[0]) / cols
    transform = Affine(step, 0.0, bounds[0], 0.0, -step, bounds[3])
    height = int(np.ceil((bounds[3] - bounds[1]) / step))
    warped = np.full((height, cols), -1.0, dtype=np.float32)
    rasterio.warp.reproject(
        source.array.astype(np.float32),
        warped,
        src_transform=source.transform,
        src_crs=METRIC_CRS,
        src_nodata=source.nodata,
        dst_transform=transform,
        dst_crs=STORE_CRS,
        dst_nodata=-1.0,
    )
    raster = RasterData(array=warped, transform=transform, crs=STORE_CRS, nodata=-1.0)
    assert float(raster.valid_sum()) > 0.5 * float(source.valid_sum())
    want = compute_coverage(
        villages=demo.villages, facilities=demo.facilities, population=raster, graph=demo.graph, rules=NETWORK
    ).table
    got = coverage_partitioned(
        villages=demo.villages,
        facilities=demo.facilities,
        population=raster,
        graph=demo.graph,
        rules=NETWORK,
        client=dask_client,
        partitions=5,
    )
    _assert_same_table(got.table, want)


def test_a_window_holds_every_cell_that_meets_its_box(demo: DemoLayers) -> None:
    """Brute force over the whole grid: each cell whose outline meets the box is in the window, with its value
    at the same place."""
    raster = demo.raster
    minx, miny, maxx, maxy = raster.bounds
    box = (
        minx + 0.31 * (maxx - minx),
        miny + 0.42 * (maxy - miny),
        minx + 0.55 * (maxx - minx),
        miny + 0.6 * (maxy - miny),
    )
    window = raster_window(raster, box)
    assert 0 < window.array.size < raster.array.size
    probe = shapely.box(*box)
    t, tw = raster.transform, window.transform
    for r in range(raster.array.shape[0]):
        for c in range(raster.array.shape[1]):
            outline = shapely.box(*(t @ (c, r + 1)), *(t @ (c + 1, r)))
            if not outline.intersects(probe):
                continue
            col, row = (~tw) @ (t @ (c + 0.5, r + 0.5))
            wr, wc = int(np.floor(row)), int(np.floor(col))
            assert 0 <= wr < window.array.shape[0] and 0 <= wc < window.array.shape[1], (r, c)
            assert window.array[wr, wc] == raster.array[r, c]


def test_bad_partition_counts_are_refused(demo: DemoLayers, dask_client: Client) -> None:
    for bad in (0, -2, True, 1.5):
        with pytest.raises(InputError, match="partitions"):
            coverage_partitioned(
                villages=demo.villages,
                facilities=demo.facilities,
                population=demo.raster,
                graph=demo.graph,
                rules=NETWORK,
                client=dask_client,
                partitions=bad,  # type: ignore[arg-type]
            )


def test_cli_partitioned_prints_the_same_district_line(
    demo_store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(demo_store_path)]
    assert main(["coverage", *store]) == 0
    plain = capsys.readouterr().out
    assert main(["coverage", *store, "--partitioned", "--workers", "2"]) == 0
    partitioned = capsys.readouterr().out
    line = next(text for text in plain.splitlines() if text.startswith("district:"))
    assert line in partitioned.splitlines()
    assert main(["coverage", *store, "--workers", "2"]) == 2
    assert "go with --partitioned" in capsys.readouterr().err
