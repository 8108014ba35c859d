"""The 多规合一 overlap over layers bigger than memory: staged, partitioned in space, and run on a dask cluster
with every patch written to disk as it is found.

Nothing here holds a whole layer or the whole result. Each rule layer is staged from the store in batches and
sorted into Hilbert partitions of a dask-geopandas frame (`overlap_staging`). Each task then reads one partition
of a rule's A layer and the B partitions whose EPSG:4547 hulls meet its hull, and runs the engine unchanged: it
calls `overlap_partitioned.partition_tasks` and `partition_patches`, the same path as the in-memory partitioned
run, so there is no second implementation of the rules. The patches go to one GeoParquet file per task. What
comes back to the client is small: counts, areas, the by-rule and by-town summary, and an id digest.

The argument for "nothing lost, nothing doubled" is the partitioned engine's. Every A feature lies in exactly
one partition. A B feature that could touch it lies in a B partition whose convex hull meets the A partition's
hull widened by `BOX_MARGIN_M` (hulls in EPSG:4547, where the engine intersects). A patch is keyed by (rule, A,
B), so it is computed once, whole, by its A feature's task.

Patches come in task order (rule group, then Hilbert partition), not the in-memory engine's row order; the patch
ids are the same.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.overlap_partitioned import (
    BOX_MARGIN_M,
    DEFAULT_PARTITION_ROWS,
    partition_patches,
    partition_tasks,
    rule_groups,
)
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.analysis.summary import OverlapSummary, combine, summarise
from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.peak_memory import peak_rss_mb
from geoplan.services.overlap import ADMIN_LAYERS
from geoplan.services.overlap_marks import MARK_COLUMNS, Mark, attach_marks, mark_registry
from geoplan.services.overlap_staging import StagedLayer, read_partition, stage_layer
from geoplan.storage import LayerStore, require_initialised
from geoplan.storage.base import empty_frame, vector_layer

__all__ = ["OutOfCoreResult", "id_digest", "run_overlaps_out_of_core", "write_patches_gpkg"]

log = logging.getLogger(__name__)

_DIGEST_MOD = 2**64


@dataclass(frozen=True)
class _Job:
    """One task: a partition of A, the B partitions near it, and where its patches go."""

    rules: list[ConflictRule]
    layer_a: str
    file_a: Path
    files_b: dict[str, list[Path]]
    empty_b: dict[str, Path]
    out: Path


@dataclass(frozen=True)
class _Shared:
    """What every task needs whole, sent to each worker once: the units patches are placed in, and the marks."""

    towns: gpd.GeoDataFrame | None
    villages: gpd.GeoDataFrame | None
    marks: dict[str, Mark] | None


@dataclass(frozen=True)
class _PartResult:
    """What a task sends back: never its patches, only their count, area, summary and id digest."""

    out: Path | None
    patches: int
    area_m2: float
    summary: OverlapSummary
    digest: tuple[int, int]
    rows_read: int


@dataclass(frozen=True)
class OutOfCoreResult:
    """A finished run: the patch files (task order) and what was counted on the way. `input_rows` is the
    features of every rule layer; `largest_task_rows` the most any one task read (its A partition and the B
    partitions near it): what bounds a worker's memory."""

    files: tuple[Path, ...]
    patches: int
    area_m2: float
    summary: OverlapSummary
    id_digest: str
    input_rows: int
    largest_task_rows: int
    worker_peak_mb: dict[str, float] = field(default_factory=dict)
    text_columns: tuple[str, ...] = ()

    def frames(self) -> Iterator[gpd.GeoDataFrame]:
        """The patches one task's file at a time (the whole result need never be in memory)."""
        for path in self.files:
            frame = gpd.read_parquet(path)
            for column in self.text_columns:  # Parquet's string dtype back to the engine's Python strings
                if column in frame.columns:
                    frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
            yield frame

    def read(self) -> gpd.GeoDataFrame:
        """Every patch in one frame: only for results known to fit in memory (tests, small runs)."""
        frames = list(self.frames())
        if not frames:
            raise InputError("the run found no patches")
        return pd.concat(frames, ignore_index=True)


def run_overlaps_out_of_core(
    store: LayerStore,
    *,
    rules: Sequence[ConflictRule],
    client: Any,
    work_dir: Path,
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    with_marks: bool = True,
) -> OutOfCoreResult:
    """Every rule's conflict patches in the store, computed on the `client`'s cluster without any process
    holding a whole layer; patches are written under `work_dir`/patches (replaced on each run)."""
    require_initialised(store)
    catalog = store.catalog
    work_dir = Path(work_dir).resolve()  # workers run in other directories: they need the absolute path
    typed_empty = _check_rules(catalog, rules, settings)
    admin = {name: store.read(name) if name in catalog else None for name in ADMIN_LAYERS}
    marks = _current_marks(store) if with_marks else None
    staged = {
        name: stage_layer(store, name, work_dir / "staged", client=client, partition_rows=partition_rows)
        for name in layers_of(rules)
    }
    out_dir = work_dir / "patches"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shared = client.scatter(_Shared(admin["towns"], admin["villages"], marks), broadcast=True)
    futures = [
        client.submit(_run_job, job, settings, shared, catalog, pure=False) for job in _jobs(rules, staged, out_dir)
    ]
    parts: list[_PartResult] = client.gather(futures)
    peaks = {str(worker): float(peak) for worker, peak in client.run(peak_rss_mb).items()}
    return OutOfCoreResult(
        files=tuple(part.out for part in parts if part.out is not None),
        patches=sum(part.patches for part in parts),
        area_m2=float(sum(part.area_m2 for part in parts)),
        summary=combine([part.summary for part in parts], rules=rules),
        id_digest=_digest_text(parts),
        input_rows=sum(layer.rows for layer in staged.values()),
        largest_task_rows=max((part.rows_read for part in parts), default=0),
        worker_peak_mb=peaks,
        text_columns=(*_object_columns(typed_empty), *MARK_COLUMNS),
    )


def id_digest(patch_ids: Sequence[str] | pd.Series) -> str:
    """An order-free digest of a set of patch ids (16 hex digits each): the sum and the xor of their values.
    Parts of a run digest separately and add up to the digest of the whole."""
    return _format_digest(_digest_of(patch_ids))


def write_patches_gpkg(result: OutOfCoreResult, path: Path, *, layer_name: str = "conflict_patches") -> int:
    """Append the run's patch files to a new GeoPackage, one file at a time; replaces `path` atomically."""
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputError(f"{path.name}: a run that does not hold its patches writes .gpkg only")
    if not path.parent.is_dir():
        raise InputError(f"{path.name}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp.gpkg")
    written = 0
    try:
        for frame in result.frames():
            pyogrio.write_dataframe(frame, tmp, layer=layer_name, driver="GPKG", append=written > 0)
            written += len(frame)
        if written:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return written


# --------------------------------------------------------------------------------------------- jobs


def _check_rules(catalog: Catalog, rules: Sequence[ConflictRule], settings: OverlapSettings) -> gpd.GeoDataFrame:
    """The engine's own checks of rules and layers, on empty frames, before any data is staged; its typed
    empty answer."""
    return find_conflicts(
        layers={name: empty_frame(vector_layer(catalog, name)) for name in layers_of(rules)},
        catalog=catalog,
        rules=rules,
        settings=settings,
        workers=1,
    )


def _object_columns(frame: gpd.GeoDataFrame) -> list[str]:
    return [str(column) for column, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]


def _current_marks(store: LayerStore) -> dict[str, Mark]:
    registry = mark_registry(store)
    try:
        return registry.current()
    finally:
        registry.close()


def _jobs(rules: Sequence[ConflictRule], staged: Mapping[str, StagedLayer], out_dir: Path) -> Iterator[_Job]:
    """One job per partition of each rule group's A layer, with the B partitions whose hulls meet its hull."""
    trees = {name: shapely.STRtree(layer.hulls) for name, layer in staged.items()}
    for number, group in enumerate(rule_groups(rules)):
        layer_a = staged[group[0].layer_a]
        names_b = list(dict.fromkeys(rule.layer_b for rule in group))
        for index, (file_a, hull) in enumerate(zip(layer_a.files, layer_a.hulls, strict=True)):
            near: dict[str, list[Path]] = {name: [] for name in names_b}  # no geometry in A: no B can matter
            if not shapely.is_empty(hull):
                reach = shapely.buffer(hull, BOX_MARGIN_M)
                for name in names_b:
                    hits = np.sort(trees[name].query(reach, predicate="intersects"))
                    near[name] = [staged[name].files[i] for i in hits]
            yield _Job(
                rules=group,
                layer_a=layer_a.name,
                file_a=file_a,
                files_b=near,
                empty_b={name: staged[name].empty for name in names_b},
                out=out_dir / f"{number:03d}-{index:06d}.parquet",
            )


def _run_job(
    job: _Job,
    settings: OverlapSettings,
    shared: _Shared,
    catalog: Catalog,
) -> _PartResult:
    """On a worker: read the job's partitions, run the engine on them, write the patches, report the totals."""
    layers = {job.layer_a: read_partition(job.file_a, vector_layer(catalog, job.layer_a))}
    for name, files in job.files_b.items():
        layer_b = vector_layer(catalog, name)
        frames = [read_partition(path, layer_b) for path in files] or [read_partition(job.empty_b[name], layer_b)]
        layers[name] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    tasks = list(partition_tasks(job.rules, layers, 1, 1))
    if tasks:
        patches = partition_patches(tasks[0], settings, shared.towns, shared.villages, catalog)
    else:  # an empty partition (the sort may leave some): the engine's typed empty answer
        patches = find_conflicts(layers=layers, catalog=catalog, rules=job.rules, settings=settings, workers=1)
    if shared.marks is not None:
        patches = attach_marks(patches, shared.marks)
    if len(patches):
        patches.to_parquet(job.out)
    return _PartResult(
        out=job.out if len(patches) else None,
        patches=len(patches),
        area_m2=float(patches["area_m2"].sum()),
        summary=summarise(patches, rules=job.rules),
        digest=_digest_of(patches["patch_id"]),
        rows_read=sum(len(frame) for frame in layers.values()),
    )


# --------------------------------------------------------------------------------------------- digests


def _digest_of(patch_ids: Sequence[str] | pd.Series) -> tuple[int, int]:
    values = [int(str(pid), 16) for pid in patch_ids]
    xor = 0
    for value in values:
        xor ^= value
    return sum(values) % _DIGEST_MOD, xor


def _digest_text(parts: Sequence[_PartResult]) -> str:
    total, xor = 0, 0
    for part in parts:
        total = (total + part.digest[0]) % _DIGEST_MOD
        xor ^= part.digest[1]
    return _format_digest((total, xor))


def _format_digest(digest: tuple[int, int]) -> str:
    return f"{digest[0]:016x}{digest[1]:016x}"
