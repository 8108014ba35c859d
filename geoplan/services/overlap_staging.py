"""A store layer as GeoParquet partitions in Hilbert order: the form in which layers bigger than memory reach a
dask cluster.

The store is read in batches (one in memory at a time) into raw Parquet files, geometry as WKB, each feature
keyed by the Hilbert distance of its box centre (geopandas' `hilbert_distance`, the key of dask-geopandas'
`spatial_shuffle`). dask sorts the features by that key with its p2p shuffle, which buffers on the workers'
disks; each sorted partition becomes a dask-geopandas partition again and is written as GeoParquet, one file
per partition. dask-geopandas then gives each partition's convex hull (its spatial partitions); in EPSG:4547,
the CRS the overlap engine intersects in, the hulls are what the out-of-core overlap pairs partitions by. (The
sort cannot go through `spatial_shuffle` itself: p2p hands geometry objects back as WKB it cannot rebuild.)
The files must be on storage every worker can read: a local folder for a LocalCluster, a shared one for a
real cluster.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from geoplan.analysis.areas import transform
from geoplan.analysis.overlap_partitioned import hilbert_keys
from geoplan.catalog import LayerDef
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.storage import LayerStore
from geoplan.storage.base import Bounds, empty_frame, frame_from_records, vector_layer

__all__ = ["StagedLayer", "read_partition", "stage_layer"]

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 50_000
"""Features read from the store at a time while staging: tens of MB, whatever the layer's size."""
_PART_NUMBER = re.compile(r"(\d+)")
_HILBERT = "hilbert_distance"
_GEOMETRY = "geometry_wkb"
_ARROW_TYPES = {"string": pa.string(), "integer": pa.int64(), "float": pa.float64(), "boolean": pa.bool_()}
_DENSIFY_DEG = 0.001
_STORE_WKT = CRS.from_user_input(STORE_CRS).to_wkt()


@dataclass(frozen=True)
class StagedLayer:
    """A layer's partitions: `files` in Hilbert order, `hulls` their convex hulls in EPSG:4547 (empty where a
    partition has no geometry), `rows` the features in all of them, `empty` a file of the layer's columns and no
    rows."""

    name: str
    files: tuple[Path, ...]
    hulls: NDArray[np.object_]
    rows: int
    empty: Path


def stage_layer(
    store: LayerStore,
    name: str,
    directory: Path,
    *,
    client: Any,
    partition_rows: int,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> StagedLayer:
    """Copy the store's layer `name` into `directory`/`name`, sorted in space into partitions of about
    `partition_rows` features. The client holds one batch of `batch_rows` at a time, never the layer."""
    import dask.dataframe as dd
    import dask_geopandas

    for what, value in (("partition rows", partition_rows), ("batch rows", batch_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{what} must be a positive integer, not {value!r}")
    home = Path(directory) / name
    if home.exists():
        shutil.rmtree(home)
    raw, ordered = home / "raw", home / "sorted"
    raw.mkdir(parents=True)
    empty = home / "empty.parquet"
    extent = store.bounds(name)
    rows = 0
    if extent is not None:
        for number, batch in enumerate(store.read_batches(name, rows=batch_rows)):
            _encoded(batch, extent).to_parquet(raw / f"part.{number}.parquet")
            rows += len(batch)
    _decoded(_encoded(empty_frame(vector_layer(store.catalog, name)), extent)).to_parquet(empty)
    if rows == 0:
        return StagedLayer(name=name, files=(), hulls=np.empty(0, dtype=object), rows=0, empty=empty)
    partitions = max(1, math.ceil(rows / partition_rows))
    # A plain frame (geometry as WKB) through dask's p2p shuffle, which buffers on disk: the sort never needs
    # the layer in memory.
    frame = dd.read_parquet(raw)
    sorted_frame = frame.set_index(_HILBERT, npartitions=partitions, shuffle_method="p2p")
    # Back to geometry, partition by partition: a dask-geopandas frame, written as GeoParquet.
    geo = sorted_frame.map_partitions(_decoded, meta=_decoded(sorted_frame._meta))
    schema = _schema(vector_layer(store.catalog, name))
    client.compute(geo.to_parquet(ordered, compute=False, write_index=False, schema=schema)).result()
    shutil.rmtree(raw)
    files = tuple(sorted(ordered.glob("*.parquet"), key=_part_number))
    # dask-geopandas' spatial partitions (each partition's convex hull), read in the same file order.
    staged = dask_geopandas.read_parquet(files)
    staged.calculate_spatial_partitions()
    hulls = _metric_hulls(staged.spatial_partitions)
    log.info("staged %s: %d features in %d partitions under %s", name, rows, len(files), ordered)
    return StagedLayer(name=name, files=files, hulls=hulls, rows=rows, empty=empty)


def read_partition(path: Path, layer: LayerDef) -> gpd.GeoDataFrame:
    """One staged partition exactly as `LayerStore.read` gives features: the catalogue's columns, typed as the
    store types them, in EPSG:4490."""
    frame = gpd.read_parquet(path).reset_index(drop=True)
    return frame_from_records(layer, frame, frame.geometry.to_numpy())


def _decoded(data: pd.DataFrame) -> gpd.GeoDataFrame:
    """A sorted partition with its geometry rebuilt from WKB (the sort key, now the index, is dropped)."""
    geometry = gpd.GeoSeries.from_wkb(data[_GEOMETRY].to_numpy(), crs=STORE_CRS, index=data.index)
    return gpd.GeoDataFrame(data.drop(columns=_GEOMETRY), geometry=geometry.rename("geometry"))


def _metric_hulls(hulls: gpd.GeoSeries) -> NDArray[np.object_]:
    """The partitions' hulls in EPSG:4547 by the engine's transform, edges densified first (a straight edge in
    degrees bends in metres; 0.001° ≈ 100 m between vertices keeps the bend far below the pairing margin)."""
    dense = shapely.segmentize(np.asarray(hulls.to_numpy(), dtype=object), _DENSIFY_DEG)
    return np.asarray(transform(dense, _STORE_WKT, METRIC_CRS), dtype=object)


def _encoded(batch: gpd.GeoDataFrame, extent: Bounds | None) -> pd.DataFrame:
    """A batch as a plain frame: attributes, geometry as WKB, and the Hilbert distance of its box centre within
    the layer's extent (the key the partitions are sorted by; level 16, as dask-geopandas uses)."""
    data = pd.DataFrame(batch.drop(columns=batch.geometry.name))
    geoms = batch.geometry.to_numpy()
    data[_GEOMETRY] = shapely.to_wkb(geoms)
    bounds = np.asarray(shapely.bounds(geoms), dtype="float64").reshape(-1, 4)
    data[_HILBERT] = hilbert_keys(bounds, extent) if extent is not None else np.zeros(len(batch), dtype=np.int64)
    return data


def _schema(layer: LayerDef) -> pa.Schema:
    """The staged files' columns, typed from the catalogue: dask cannot infer a binary column, nor a text column
    whose first values are all missing."""
    fields = [pa.field(field.name, _ARROW_TYPES[field.type]) for field in layer.fields]
    return pa.schema([*fields, pa.field("geometry", pa.binary())])


def _part_number(path: Path) -> int:
    found = _PART_NUMBER.findall(path.stem)
    return int(found[-1]) if found else -1
