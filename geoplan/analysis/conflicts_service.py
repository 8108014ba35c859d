"""Conflict patches of a store in one call: read the layers, run the rules, attach the planners' marks.

The CLI (`geoplan overlaps`, `geoplan mark`) and the web API call these, so both see the same patches, ids and
marks. The engine itself stays a pure function of frames (`overlap.find_conflicts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from geoplan.analysis.marks import Mark, MarkRegistry, attach_marks
from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.rules import ConflictRule, default_rules_path, layers_of, load_rules
from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError
from geoplan.storage import LayerStore

ADMIN_LAYERS = ("towns", "villages")
LOOKUP_SETTINGS = OverlapSettings(min_area_m2=0.0, min_width_m=0.0)
"""Settings used to find a patch to mark: every pair with any area, whatever thresholds a run used."""


def rules_for(catalog: Catalog, layers_dir: Path, rules_file: Path | None = None) -> list[ConflictRule]:
    """The user's rules file, or the default table in layers/rules/conflicts.yaml."""
    return load_rules(rules_file if rules_file is not None else default_rules_path(layers_dir), catalog)


def mark_registry(store: LayerStore) -> MarkRegistry:
    """The marks table in the store's own database (created on first use)."""
    from geoplan.tokens import registry_engine

    require_initialised(store)
    return MarkRegistry(registry_engine(store.url))


def run_overlaps(
    store: LayerStore,
    *,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass
    workers: int = 2,
    with_marks: bool = True,
) -> gpd.GeoDataFrame:
    """Every rule's conflict patches in the store (EPSG:4490), with their current marks when `with_marks`."""
    inputs = overlap_inputs(store, rules)
    patches = find_conflicts(
        layers=inputs.layers,
        catalog=store.catalog,
        rules=rules,
        settings=settings,
        towns=inputs.towns,
        villages=inputs.villages,
        workers=workers,
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


def with_current_marks(store: LayerStore, patches: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The patches with the planners' current mark on each (marks survive re-runs: they follow the patch id)."""
    registry = mark_registry(store)
    try:
        return attach_marks(patches, registry.current())
    finally:
        registry.close()


def mark_patch(
    store: LayerStore, patch_id: str, *, rules: Sequence[ConflictRule], status: str, note: str, actor: str
) -> Mark:
    """Mark a patch the rules produce in this store; an id no rule produces is refused (a typo, a stale id)."""
    patches = run_overlaps(store, rules=rules, settings=LOOKUP_SETTINGS, with_marks=False)
    found = patches.loc[patches["patch_id"] == patch_id, "rule"]
    if found.empty:
        raise NotFoundError(f"no conflict patch {patch_id!r} in {store.url} under these rules")
    registry = mark_registry(store)
    try:
        return registry.mark(patch_id, rule=str(found.iloc[0]), status=status, note=note, actor=actor)
    finally:
        registry.close()


def require_initialised(store: LayerStore) -> None:
    if not store.is_initialised():
        raise InputError(f"the store {store.url} is not initialised; run `geoplan db init` or `geoplan demo`")
