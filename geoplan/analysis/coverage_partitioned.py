"""Cultural-circle coverage per village, partitioned in space and run as tasks on a dask.distributed cluster.

There is no second implementation of the model: each task calls `coverage.compute_coverage` itself on one
partition of the villages, with the population raster cut to a window around them, and keeps the rows of its own
villages. Two things make a partition's rows equal the whole run's:

- A cell's people are shared among the villages that hold it, in proportion to the area each holds. So a task
  also passes the engine every village that meets its window ("context" villages): a cell on the partition's
  edge is shared exactly as in the whole run. Their rows are computed and dropped; each village's row comes from
  the one partition that owns it.
- The walking distances are the whole network's: every task has the whole graph and every facility (the graph
  is sent to each worker once), and the raster window only limits which cells are counted.

Partitions are runs of villages along the Hilbert curve of their box centres, the order dask-geopandas'
`spatial_shuffle` uses (`overlap_partitioned.partition_a`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from geoplan.analysis.coverage import COVERAGE_COLUMNS, CoverageRules, compute_coverage
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.overlap_partitioned import cluster_threads, partition_a
from geoplan.crs import METRIC_CRS
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = ["PartitionedCoverage", "coverage_partitioned", "raster_window"]

FloatArray = NDArray[np.float64]

DEFAULT_VILLAGES_PER_PARTITION = 50
_WINDOW_MARGIN_CELLS = 2
"""Cells added around a window: a cell that a village's edge grazes is always inside."""


@dataclass(frozen=True)
class PartitionedCoverage:
    """The village table (`compute_coverage(...).table`) and the facilities too far from the network."""

    table: pd.DataFrame
    facilities_off_network: list[str]


@dataclass(frozen=True)
class _Shared:
    """What every task needs whole, sent to each worker once (a tuple would be scattered item by item)."""

    facilities: gpd.GeoDataFrame
    graph: WalkGraph | None
    rules: CoverageRules
    kinds: Sequence[str] | None


@dataclass(frozen=True)
class _Task:
    """One partition: its own villages' positions within `villages`, which also holds the context villages."""

    own: NDArray[np.intp]
    villages: gpd.GeoDataFrame
    population: RasterData


def coverage_partitioned(
    *,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rules: CoverageRules,
    client: Any,
    kinds: Sequence[str] | None = None,
    partitions: int | None = None,
) -> PartitionedCoverage:
    """`compute_coverage(...).table` (one row per village, in the villages' order), computed partition by
    partition on the dask `client`'s workers. `partitions` defaults to one per 50 villages, at least one per
    worker thread."""
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1):
        raise InputError(f"partitions must be a positive integer, not {partitions!r}")
    # The engine's own checks (columns, CRSs, rules, graph) run first, on no villages and an empty window; the
    # facilities' links to the network do not depend on the villages.
    checked = compute_coverage(
        villages=villages.iloc[:0],
        facilities=facilities,
        population=raster_window(population, (0.0, 0.0, 0.0, 0.0)),
        graph=graph,
        rules=rules,
        kinds=kinds,
    )
    if not len(villages):
        return PartitionedCoverage(checked.table, checked.facilities_off_network)
    metric = np.asarray(villages.geometry.to_crs(METRIC_CRS).to_numpy(), dtype=object)
    bounds = np.asarray(shapely.bounds(metric), dtype="float64")
    threads = cluster_threads(client)
    count = partitions or max(threads, math.ceil(len(villages) / DEFAULT_VILLAGES_PER_PARTITION))
    tree = shapely.STRtree(metric)
    shared = client.scatter(_Shared(facilities, graph, rules, kinds), broadcast=True)
    futures = []
    owners = []
    for own in partition_a(bounds, count):
        task = _task(own, villages, metric, bounds, tree, population)
        futures.append(client.submit(_partition_table, task, shared, pure=False))
        owners.append(own)
    table = pd.concat(client.gather(futures), ignore_index=True)
    order = np.argsort(np.concatenate(owners), kind="stable")  # back to the villages' order
    table = table.iloc[order].reset_index(drop=True)[COVERAGE_COLUMNS]
    return PartitionedCoverage(table, checked.facilities_off_network)


def raster_window(population: RasterData, box: tuple[float, float, float, float]) -> RasterData:
    """The part of `population` that covers `box` (EPSG:4547), widened by a margin of cells; the same cells with
    the same values and positions, so the engine counts them exactly as in the whole raster."""
    rows, cols = population.array.shape
    corners = _corners_in_raster_crs(population, box)
    inverse = ~population.transform
    col_row = np.array([inverse @ (x, y) for x, y in corners])
    c0 = max(0, math.floor(col_row[:, 0].min()) - _WINDOW_MARGIN_CELLS)
    c1 = min(cols, math.ceil(col_row[:, 0].max()) + _WINDOW_MARGIN_CELLS)
    r0 = max(0, math.floor(col_row[:, 1].min()) - _WINDOW_MARGIN_CELLS)
    r1 = min(rows, math.ceil(col_row[:, 1].max()) + _WINDOW_MARGIN_CELLS)
    c1, r1 = max(c0, c1), max(r0, r1)
    return RasterData(
        array=population.array[r0:r1, c0:c1],
        transform=population.transform @ Affine.translation(c0, r0),
        crs=population.crs,
        nodata=population.nodata,
    )


def _corners_in_raster_crs(population: RasterData, box: tuple[float, float, float, float]) -> FloatArray:
    """Points along the box's edges in the raster's CRS (densified: a box's image in another CRS is curved)."""
    minx, miny, maxx, maxy = box
    steps = np.linspace(0.0, 1.0, 21)
    width, height = maxx - minx, maxy - miny
    xs = np.concatenate([minx + width * steps, np.full(21, maxx), maxx - width * steps, np.full(21, minx)])
    ys = np.concatenate([np.full(21, miny), miny + height * steps, np.full(21, maxy), maxy - height * steps])
    if not CRS.from_user_input(population.crs).equals(CRS.from_user_input(METRIC_CRS)):
        xs, ys = Transformer.from_crs(METRIC_CRS, population.crs, always_xy=True).transform(xs, ys)
    return np.column_stack([xs, ys])


def _task(
    own: NDArray[np.intp],
    villages: gpd.GeoDataFrame,
    metric: NDArray[np.object_],
    bounds: FloatArray,
    tree: shapely.STRtree,
    population: RasterData,
) -> _Task:
    """A partition's villages, the raster window around them, and every village meeting that window."""
    own_bounds = bounds[own]
    own_bounds = own_bounds[np.isfinite(own_bounds).all(axis=1)]
    if not len(own_bounds):  # villages without geometry: no cell is theirs
        window = population
        context = own
    else:
        box = (own_bounds[:, 0].min(), own_bounds[:, 1].min(), own_bounds[:, 2].max(), own_bounds[:, 3].max())
        window = raster_window(population, box)
        extent = shapely.box(*_window_box_metric(window))
        near = tree.query(extent, predicate="intersects")
        context = np.union1d(own, near)
    positions = np.searchsorted(context, own)
    return _Task(own=positions, villages=villages.iloc[context], population=window)


def _window_box_metric(window: RasterData) -> tuple[float, float, float, float]:
    """The window's extent in EPSG:4547 (densified edges, for a raster in another CRS)."""
    minx, miny, maxx, maxy = window.bounds
    if CRS.from_user_input(window.crs).equals(CRS.from_user_input(METRIC_CRS)):
        return (minx, miny, maxx, maxy)
    transformer = Transformer.from_crs(window.crs, METRIC_CRS, always_xy=True)
    return tuple(transformer.transform_bounds(minx, miny, maxx, maxy, densify_pts=21))  # type: ignore[return-value]


def _partition_table(task: _Task, shared: _Shared) -> pd.DataFrame:
    """On a worker: the engine on the partition's villages and their context; the rows of its own villages."""
    table = compute_coverage(
        villages=task.villages,
        facilities=shared.facilities,
        population=task.population,
        graph=shared.graph,
        rules=shared.rules,
        kinds=shared.kinds,
    ).table
    return table.iloc[task.own].reset_index(drop=True)
