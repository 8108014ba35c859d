"""The 多规合一 conflict engine, partitioned in space and run as tasks on a dask.distributed cluster.

There is no second implementation of the rules: each task calls `overlap.find_conflicts` itself on one partition
of a rule's A layer and every B feature whose box meets a box of that partition's A features. Every A feature
lies in exactly one partition and sees every B feature it could touch, and a patch is keyed by (rule, A, B), so
a patch crossing partition boundaries is computed once, whole, by the partition of its A feature: nothing is
lost, nothing is counted twice. Extra B features in a task are harmless (the engine tests them itself); missing
ones are impossible because boxes are compared in EPSG:4547, the CRS the engine intersects in, with a margin.

Partitions are contiguous runs of A along the Hilbert curve of the box centres (the order dask-geopandas'
`spatial_shuffle` uses), so neighbouring features share a task and the B subsets stay small. At most
`max_in_flight` partitions are on the cluster at a time: a worker's memory holds a few partitions, not the layer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from geoplan.analysis.areas import transform
from geoplan.analysis.overlap import PATCH_COLUMNS, OverlapSettings, find_conflicts
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS
from geoplan.errors import InputError

__all__ = [
    "BOX_MARGIN_M",
    "DEFAULT_PARTITION_ROWS",
    "PartitionTask",
    "cluster_threads",
    "find_conflicts_partitioned",
    "hilbert_keys",
    "partition_a",
    "partition_patches",
    "partition_tasks",
    "rule_groups",
]

log = logging.getLogger(__name__)

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]

DEFAULT_PARTITION_ROWS = 20_000
"""A features per partition when the caller gives no count: a few tens of MB per task with its B subset."""
BOX_MARGIN_M = 1.0
"""Boxes are widened by this much before B features are picked, so a make_valid repair or a rounding in the
reprojection can never hide a touching B; a wider net only costs a few extra candidates."""
_HILBERT_LEVEL = 16


@dataclass(frozen=True)
class PartitionTask:
    """One partition's input to `find_conflicts`: a slice of A and the B features near it, per rule group."""

    layers: dict[str, gpd.GeoDataFrame]
    rules: list[ConflictRule]


def find_conflicts_partitioned(
    *,
    layers: Mapping[str, gpd.GeoDataFrame],
    catalog: Catalog,
    rules: Sequence[ConflictRule],
    client: Any,
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    towns: gpd.GeoDataFrame | None = None,
    villages: gpd.GeoDataFrame | None = None,
    partitions: int | None = None,
    max_in_flight: int | None = None,
) -> gpd.GeoDataFrame:
    """`find_conflicts`' patches, computed partition by partition on the dask `client`'s workers.

    The result equals the in-memory engine's, row for row and in the same order (rule, then A, then B by their
    positions in the input layers). `partitions` splits each rule's A layer (default: one per
    `DEFAULT_PARTITION_ROWS` features, at least one per worker thread); `max_in_flight` bounds how many
    partitions are submitted at once (default: twice the cluster's threads). Inputs are never modified.
    """
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1):
        raise InputError(f"partitions must be a positive integer, not {partitions!r}")
    if max_in_flight is not None and (
        isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1
    ):
        raise InputError(f"max_in_flight must be a positive integer, not {max_in_flight!r}")
    # The engine itself checks the rules, layers, CRSs, id and filter columns, on empty frames; its empty
    # answer is also the typed empty result.
    empty = find_conflicts(
        layers={name: frame.iloc[:0] for name, frame in layers.items()},
        catalog=catalog,
        rules=rules,
        settings=settings,
        towns=None if towns is None else towns.iloc[:0],
        villages=None if villages is None else villages.iloc[:0],
        workers=1,
    )
    positions = {name: _id_positions(layers[name], name, catalog) for name in layers_of(rules)}
    threads = cluster_threads(client)
    in_flight = max_in_flight or 2 * threads
    admin = [client.scatter(frame, broadcast=True) if frame is not None else None for frame in (towns, villages)]
    results: list[gpd.GeoDataFrame] = []
    for group in rule_groups(rules):
        tasks = partition_tasks(group, layers, partitions, threads)
        results.extend(_run(client, tasks, settings, admin, catalog, in_flight))
    if not results:
        return empty
    patches = pd.concat([empty, *results], ignore_index=True)
    return _in_engine_order(patches, rules, positions)


# --------------------------------------------------------------------------------------------- partitions


def partition_a(bounds: FloatArray, partitions: int) -> list[IntArray]:
    """Row positions of A split into `partitions` runs of (nearly) equal size along the Hilbert curve of the
    box centres; a feature without a box (empty or missing geometry) goes with the first run."""
    order = np.argsort(hilbert_keys(bounds), kind="stable")
    return [np.sort(run) for run in np.array_split(order, min(partitions, len(order))) if len(run)]


def hilbert_keys(bounds: FloatArray, extent: tuple[float, float, float, float] | None = None) -> NDArray[np.int64]:
    """Each box centre's distance along the Hilbert curve over `extent` (default: the centres' own extent), at
    the level dask-geopandas' `spatial_shuffle` uses; 0 for a feature without a box (it sorts first)."""
    centres = (bounds[:, :2] + bounds[:, 2:]) / 2
    present = np.isfinite(centres).all(axis=1)
    keys = np.zeros(len(bounds), dtype=np.int64)
    if not present.any():
        return keys
    inside = centres[present]
    if extent is None:
        extent = (inside[:, 0].min(), inside[:, 1].min(), inside[:, 0].max(), inside[:, 1].max())
    points = gpd.GeoSeries(shapely.points(inside))
    keys[present] = points.hilbert_distance(total_bounds=extent, level=_HILBERT_LEVEL).to_numpy()
    return keys


def rule_groups(rules: Sequence[ConflictRule]) -> list[list[ConflictRule]]:
    """Rules by their A layer (first-use order): one partitioning of A serves every rule on it."""
    groups: dict[str, list[ConflictRule]] = {}
    for rule in rules:
        groups.setdefault(rule.layer_a, []).append(rule)
    return list(groups.values())


def partition_tasks(
    group: list[ConflictRule], layers: Mapping[str, gpd.GeoDataFrame], partitions: int | None, threads: int
) -> Iterator[PartitionTask]:
    """One task per partition of the group's A layer, with the B features whose boxes meet its A boxes."""
    name_a = group[0].layer_a
    frame_a = layers[name_a]
    if not len(frame_a):
        return
    source = CRS.from_user_input(frame_a.crs).to_wkt()
    box_a = _metric_bounds(frame_a, source)
    count = partitions or max(threads, math.ceil(len(frame_a) / DEFAULT_PARTITION_ROWS))
    names_b = list(dict.fromkeys(rule.layer_b for rule in group))
    trees = {}
    for name in names_b:
        box_b = _metric_bounds(layers[name], source)
        trees[name] = shapely.STRtree(shapely.box(box_b[:, 0], box_b[:, 1], box_b[:, 2], box_b[:, 3]))
    for rows in partition_a(box_a, count):
        near = box_a[rows]
        near = near[np.isfinite(near).all(axis=1)]
        probes = shapely.box(
            near[:, 0] - BOX_MARGIN_M, near[:, 1] - BOX_MARGIN_M, near[:, 2] + BOX_MARGIN_M, near[:, 3] + BOX_MARGIN_M
        )
        subsets = {name: layers[name].iloc[np.unique(trees[name].query(probes)[1])] for name in names_b}
        yield PartitionTask(layers={name_a: frame_a.iloc[rows], **subsets}, rules=group)


def _metric_bounds(frame: gpd.GeoDataFrame, source: str) -> FloatArray:
    """Each feature's box in EPSG:4547 (NaN for an empty or missing geometry), with the engine's transform."""
    geoms = transform(np.asarray(frame.geometry.to_numpy(), dtype=object), source, METRIC_CRS)
    return np.asarray(shapely.bounds(geoms), dtype="float64")


# --------------------------------------------------------------------------------------------- the cluster


def partition_patches(
    task: PartitionTask, settings: OverlapSettings, towns: Any, villages: Any, catalog: Catalog
) -> gpd.GeoDataFrame:
    """On a worker: the engine on one partition (one thread; the cluster's workers are the parallelism)."""
    return find_conflicts(
        layers=task.layers,
        catalog=catalog,
        rules=task.rules,
        settings=settings,
        towns=towns,
        villages=villages,
        workers=1,
    )


def _run(
    client: Any,
    tasks: Iterator[PartitionTask],
    settings: OverlapSettings,
    admin: list[Any],
    catalog: Catalog,
    in_flight: int,
) -> list[gpd.GeoDataFrame]:
    """Submit tasks as earlier ones finish, never more than `in_flight` at once; each input is scattered just
    before its task and released with it, so the cluster holds only the partitions being worked on."""
    from distributed import as_completed

    results: list[gpd.GeoDataFrame] = []
    pending = as_completed()
    for task in tasks:
        if pending.count() >= in_flight:
            results.append(next(pending).result())
        data = client.scatter(task)
        pending.add(client.submit(partition_patches, data, settings, admin[0], admin[1], catalog, pure=False))
    for future in pending:
        results.append(future.result())
    return results


def cluster_threads(client: Any) -> int:
    threads = client.nthreads()
    return max(1, sum(threads.values())) if threads else 1


# --------------------------------------------------------------------------------------------- results


def _id_positions(frame: gpd.GeoDataFrame, name: str, catalog: Catalog) -> pd.Series:
    """Each id's row position in its whole layer; ids must be unique across the layer, not just a partition."""
    ids = frame[catalog.get(name).id_field]
    if ids.isna().any():
        raise InputError(f"layer '{name}': {int(ids.isna().sum())} feature(s) without an id")
    ids = ids.astype(str)
    if ids.duplicated().any():
        raise InputError(f"layer '{name}': duplicate ids in '{catalog.get(name).id_field}'")
    return pd.Series(np.arange(len(ids)), index=ids.to_numpy())


def _in_engine_order(
    patches: gpd.GeoDataFrame, rules: Sequence[ConflictRule], positions: Mapping[str, pd.Series]
) -> gpd.GeoDataFrame:
    """The in-memory engine's order: rules in their given order, then A's and B's positions in their layers."""
    rule_rank = {rule.code: i for i, rule in enumerate(rules)}
    rank = patches["rule"].map(rule_rank).to_numpy()
    pos_a = np.full(len(patches), -1, dtype=np.int64)
    pos_b = np.full(len(patches), -1, dtype=np.int64)
    for (layer_a, layer_b), rows in patches.groupby(["layer_a", "layer_b"]).indices.items():
        pos_a[rows] = positions[layer_a].reindex(patches["id_a"].to_numpy()[rows]).to_numpy()
        ids_b = patches["id_b"].to_numpy()[rows]
        has_b = pd.notna(ids_b)
        pos_b[rows[has_b]] = positions[layer_b].reindex(ids_b[has_b]).to_numpy()
    order = np.lexsort((pos_b, pos_a, rank))
    return patches.iloc[order].reset_index(drop=True)[PATCH_COLUMNS]
