"""Conflict patches of a store in one call: read the layers, run the rules, attach the planners' marks.

The CLI (`geoplan overlaps`, `geoplan mark`) and the web API call these, so both see the same patches, ids and
marks. The engine itself stays a pure function of frames (`overlap.find_conflicts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import geopandas as gpd

from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.overlap_partitioned import find_conflicts_partitioned
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.errors import NotFoundError
from geoplan.monitoring.asof import AsOf, layer_as_of
from geoplan.services.overlap_marks import Mark, attach_marks, mark_registry
from geoplan.storage import LayerStore, require_initialised

ADMIN_LAYERS = ("towns", "villages")
LOOKUP_SETTINGS = OverlapSettings(min_area_m2=0.0, min_width_m=0.0)
"""Settings used to find a patch to mark: every pair with any area, whatever thresholds a run used."""


def run_overlaps(
    store: LayerStore,
    *,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass
    workers: int = 2,
    with_marks: bool = True,
    client: Any = None,
    partitions: int | None = None,
) -> gpd.GeoDataFrame:
    """Every rule's conflict patches in the store (EPSG:4490), with their current marks when `with_marks`.

    In memory on `workers` threads; or, given a dask `client`, partitioned in space on its cluster
    (`partitions` of each rule's A layer, default from its size): the same patches, ids and marks either way.
    """
    inputs = overlap_inputs(store, rules)
    engine = (
        partial(find_conflicts, workers=workers)
        if client is None
        else partial(find_conflicts_partitioned, client=client, partitions=partitions)
    )
    patches = engine(
        layers=inputs.layers,
        catalog=store.catalog,
        rules=rules,
        settings=settings,
        towns=inputs.towns,
        villages=inputs.villages,
    )
    return with_current_marks(store, patches) if with_marks else patches


@dataclass(frozen=True)
class OverlapInputs:
    """What a run reads from a store: the layers the rules compare, and the units patches are placed in."""

    layers: dict[str, gpd.GeoDataFrame]
    towns: gpd.GeoDataFrame | None
    villages: gpd.GeoDataFrame | None


def overlap_inputs(store: LayerStore, rules: Sequence[ConflictRule]) -> OverlapInputs:
    """The frames every way of running the overlap (in memory, partitioned) starts from."""
    require_initialised(store)
    admin = {name: store.read(name) if name in store.catalog else None for name in ADMIN_LAYERS}
    return OverlapInputs(
        layers={name: store.read(name) for name in layers_of(rules)},
        towns=admin["towns"],
        villages=admin["villages"],
    )


def conflicts_as_of(
    store: LayerStore,
    *,
    rules: Sequence[ConflictRule],
    as_of: AsOf,
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass
) -> gpd.GeoDataFrame:
    """Every rule's conflict patches among the layers as they stood at `as_of` (the audit replayed), placed in
    the towns and villages of then; no marks (a caller attaches those of the moment it wants)."""
    require_initialised(store)
    admin = {name: layer_as_of(store, name, as_of) if name in store.catalog else None for name in ADMIN_LAYERS}
    return find_conflicts(
        layers={name: layer_as_of(store, name, as_of) for name in layers_of(rules)},
        catalog=store.catalog,
        rules=rules,
        settings=settings,
        towns=admin["towns"],
        villages=admin["villages"],
    )


def with_current_marks(store: LayerStore, patches: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The patches with the planners' current mark on each (marks survive re-runs: they follow the patch id)."""
    registry = mark_registry(store)
    try:
        return attach_marks(patches, registry.current())
    finally:
        registry.close()


def mark_patch(
    store: LayerStore,
    patch_id: str,
    *,
    rules: Sequence[ConflictRule],
    status: str,
    note: str,
    actor: str,
    rule_files: Sequence[Mapping[str, str]] = (),
) -> Mark:
    """Mark a patch the rules produce in this store; an id no rule produces is refused (a typo, a stale id).
    `rule_files` (name and SHA-256 of each file the rules came from) go into the mark's audit entry."""
    patches = run_overlaps(store, rules=rules, settings=LOOKUP_SETTINGS, with_marks=False)
    found = patches.loc[patches["patch_id"] == patch_id, "rule"]
    if found.empty:
        raise NotFoundError(f"no conflict patch {patch_id!r} in {store.url} under these rules")
    registry = mark_registry(store)
    try:
        return registry.mark(
            patch_id, rule=str(found.iloc[0]), status=status, note=note, actor=actor, rule_files=rule_files
        )
    finally:
        registry.close()
