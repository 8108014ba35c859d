"""Writing the demo into a store as it lived through the plan: dated writes, the records, the quarterly snapshots.

Every layer is validated against the catalogue as it stands at the end (as `load_layers` does), then written
through the store's own history mechanism: each write of `timeline.demo_timeline` is made "as of" its date
(`LayerStore.write(..., at=...)`), so the audit log dates it then and marks it back-dated, and the as-of
replay answers any moment of 2017Q3–2020Q4. The population raster is written as of the plan's start. Then
the projects' progress records are loaded and the quarterly snapshots 2017Q4–2020Q4 recorded, each dated on
its report day. Everything is SYNTHETIC and labelled so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd

from geoplan.demo.build import DEFAULT_SEED, DemoData
from geoplan.demo.geometry import step_rng
from geoplan.demo.timeline import HISTORY_LAST, PLAN_START, demo_timeline, report_day
from geoplan.errors import InputError
from geoplan.monitoring.ledger import load_records
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.village_checklist import load_checklist_records
from geoplan.services.indicators import record_snapshot
from geoplan.services.ingest import prepare_frame
from geoplan.services.store_setup import init_store
from geoplan.storage import LayerStore

__all__ = ["SNAPSHOT_FIRST", "write_demo"]

SNAPSHOT_FIRST = Quarter(2017, 4)
POPULATION = "population"


def write_demo(
    store: LayerStore,
    data: DemoData,
    *,
    layers_dir: Path,
    actor: str,
    seed: int = DEFAULT_SEED,
    snapshots: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> int:
    """Write the demo with its history into an empty (or to be replaced) store; returns the dated writes made."""

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)

    init_store(store)
    if store.audit_log(limit=1):
        raise InputError(
            f"the store already holds data: the demo writes its history from {PLAN_START.date()} on and needs a new "
            "store (another path, or an empty database)",
            zh=f"库中已有数据：演示数据从 {PLAN_START.date()} 起按时间写入历史，需要新库（换路径或空数据库）。",
        )
    step("district")
    store.write("district", _checked(store, "district", data.layers["district"]), actor=actor, at=PLAN_START)
    final: dict[str, gpd.GeoDataFrame] = {}
    for name in sorted((n for n in data.layers if n != "district"), key=store.catalog.names.index):
        final[name] = _checked(store, name, data.layers[name])
    step("population")
    store.write_raster(POPULATION, data.population, actor=actor, at=PLAN_START)
    events = demo_timeline(final, data.progress, rng=step_rng(seed, "timeline"))
    step(f"history: {len(events)} dated writes")
    for event in events:
        if event.action == "update":
            store.update_features(event.layer, event.frame, actor=actor, at=event.at)
        else:
            store.write(event.layer, event.frame, mode=event.action, actor=actor, at=event.at)
    load_records(store, data.progress, actor=actor)  # the projects' quarterly records, dated by `recorded_at`
    if data.checklist is not None:  # the village checklist's quarterly records (before the snapshots read them)
        load_checklist_records(store, data.checklist, actor=actor)
    if snapshots:
        quarter = SNAPSHOT_FIRST
        while quarter <= HISTORY_LAST:
            step(f"snapshot {quarter}")
            record_snapshot(
                store, layers_dir=layers_dir, quarter=str(quarter), actor=actor, taken_at=report_day(quarter)
            )
            quarter = quarter.next()
    return len(events) + 2


def _checked(store: LayerStore, name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The frame as the catalogue accepts it (strict: the demo must need no repair)."""
    return prepare_frame(store, name, frame, source=f"{name} (demo)", strict=True).frame
