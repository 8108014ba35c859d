"""Layers as of an earlier moment, rebuilt from the audit log, on both store backends.

The writes are real store writes; only their audit times are moved into the past afterwards (an UPDATE of
`geoplan_audit.at`), so the history spans months without the test waiting. Every reconstruction is compared with
the frames the test itself wrote at each step.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf, as_of_quarter, layer_as_of, parse_as_of, raster_as_of
from geoplan.rasterdata import RasterData
from geoplan.services.overlap_marks import MarkRegistry, marks_as_of
from geoplan.storage import LayerStore, gpkg_blob
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.factories import sample_frame

LAYER = "culture_facilities"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _set_audit_times(store: LayerStore, times: list[str]) -> None:
    """Move the audit entries, oldest first, to these times."""
    engine = side_table_engine(store.url)
    try:
        with engine.begin() as connection:
            ids = connection.execute(text("SELECT id FROM geoplan_audit ORDER BY id")).scalars().all()
            assert len(ids) == len(times)
            for entry, at in zip(ids, times, strict=True):
                connection.execute(text("UPDATE geoplan_audit SET at = :at WHERE id = :id"), {"at": at, "id": entry})
    finally:
        engine.dispose()


def _edit_behind_the_audit(store: LayerStore, sql: str, feature_id: str) -> None:
    """A direct SQL edit, as another tool would make it (GeoPackage: with the functions its R-tree triggers use)."""
    if isinstance(store, GeoPackageStore):
        connection = sqlite3.connect(store.path)
        try:
            gpkg_blob.register_functions(connection)
            connection.execute(sql.replace(":id", "?"), (feature_id,))
            connection.commit()
        finally:
            connection.close()
        return
    engine = side_table_engine(store.url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), {"id": feature_id})
    finally:
        engine.dispose()


def _at(text_: str) -> AsOf:
    return AsOf(at=datetime.fromisoformat(text_))


def _same(actual: gpd.GeoDataFrame, expected: gpd.GeoDataFrame, catalog: Catalog) -> None:
    layer = catalog.get(LAYER)
    a = actual.sort_values("facility_id").reset_index(drop=True)
    e = expected.sort_values("facility_id").reset_index(drop=True)
    assert list(a["facility_id"]) == list(e["facility_id"])
    for name in layer.field_names:
        assert [None if pd.isna(v) else v for v in a[name]] == [None if pd.isna(v) else v for v in e[name]], name
    assert shapely.equals_exact(a.geometry.values, e.geometry.values, tolerance=0).all()


def _history(store: LayerStore, catalog: Catalog) -> dict[str, gpd.GeoDataFrame]:
    """Four audited changes; returns the layer as it stood after each."""
    layer = catalog.get(LAYER)
    first = sample_frame(layer, 5)
    store.write(LAYER, first, mode="replace")
    added = sample_frame(layer, 2, start=5)
    store.write(LAYER, added, mode="append")
    changed = first[first["facility_id"] == first["facility_id"].iloc[1]].copy()
    changed["name"] = "改名后的文化站"
    changed["geometry"] = [shapely.Point(112.80, 22.85)]
    store.update_features(LAYER, changed)
    gone = str(first["facility_id"].iloc[2])
    store.delete_features(LAYER, [gone])
    step1 = first
    step2 = pd.concat([first, added], ignore_index=True)
    step3 = pd.concat([step2[step2["facility_id"] != changed["facility_id"].iloc[0]], changed], ignore_index=True)
    step4 = step3[step3["facility_id"] != gone]
    return {
        "2026-01-01T00:00:00+00:00": gpd.GeoDataFrame(step1, crs="EPSG:4490"),
        "2026-02-01T00:00:00+00:00": gpd.GeoDataFrame(step2, crs="EPSG:4490"),
        "2026-03-01T00:00:00+00:00": gpd.GeoDataFrame(step3, crs="EPSG:4490"),
        "2026-04-01T00:00:00+00:00": gpd.GeoDataFrame(step4, crs="EPSG:4490"),
    }


def test_a_layer_is_rebuilt_at_every_step_of_its_history(store: LayerStore, catalog: Catalog) -> None:
    states = _history(store, catalog)
    _set_audit_times(store, list(states))
    assert len(layer_as_of(store, LAYER, _at("2025-12-31T23:59:59+00:00"))) == 0  # before the first write
    for when, expected in states.items():
        _same(layer_as_of(store, LAYER, _at(when)), expected, catalog)  # at the very second of the change
        moment = datetime.fromisoformat(when).replace(day=15)
        _same(layer_as_of(store, LAYER, AsOf(at=moment)), expected, catalog)  # and between changes
    _same(layer_as_of(store, LAYER, AsOf(at=NOW, current=True)), store.read(LAYER), catalog)


def test_forward_replay_takes_over_where_undoing_is_impossible(store: LayerStore, catalog: Catalog) -> None:
    states = _history(store, catalog)
    layer = catalog.get(LAYER)
    store.write(LAYER, sample_frame(layer, 60, start=100), mode="append")  # bulk: the audit keeps no features
    _set_audit_times(store, [*states, "2026-05-01T00:00:00+00:00"])
    # the bulk append cannot be undone, but the first replace kept its five features: replay forwards from it
    _same(layer_as_of(store, LAYER, _at("2026-04-15T00:00:00+00:00")), states["2026-04-01T00:00:00+00:00"], catalog)
    _same(layer_as_of(store, LAYER, _at("2026-02-15T00:00:00+00:00")), states["2026-02-01T00:00:00+00:00"], catalog)
    store.write(LAYER, sample_frame(layer, 3, start=500), mode="replace")
    _set_audit_times(store, [*states, "2026-05-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"])
    # before the new replace: forwards runs into the bulk append, backwards into the replace -> refused
    with pytest.raises(InputError, match="cannot be reconstructed as of 2026-05-15") as caught:
        layer_as_of(store, LAYER, _at("2026-05-15T00:00:00+00:00"))
    assert "replaced the whole layer" in str(caught.value) and "keeps no features" in str(caught.value)
    # after it, the replace's own features are the answer (it kept them: three features)
    assert sorted(layer_as_of(store, LAYER, _at("2026-06-15T00:00:00+00:00"))["facility_id"]) == sorted(
        sample_frame(layer, 3, start=500)["facility_id"]
    )


def test_a_change_behind_the_audit_is_refused_not_reconstructed(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get(LAYER)
    bulk = sample_frame(layer, 60)  # more than the audit keeps: no forward replay from it
    store.write(LAYER, bulk, mode="replace")
    one = bulk.iloc[[3]].copy()
    one["name"] = "审计记录的名称"
    store.update_features(LAYER, one)
    _set_audit_times(store, ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"])
    before = layer_as_of(store, LAYER, _at("2026-01-15T00:00:00+00:00"))
    assert before.loc[before["facility_id"] == one["facility_id"].iloc[0], "name"].iloc[0] == bulk["name"].iloc[3]
    _edit_behind_the_audit(
        store, f"UPDATE {LAYER} SET name = 'not audited' WHERE facility_id = :id", one["facility_id"].iloc[0]
    )
    with pytest.raises(InputError, match="changed outside geoplan's audited writes"):
        layer_as_of(store, LAYER, _at("2026-01-15T00:00:00+00:00"))


def test_rasters_as_of_are_the_version_written_then(store: LayerStore) -> None:
    import numpy as np
    from affine import Affine

    def raster(value: float) -> RasterData:
        return RasterData(
            array=np.full((2, 2), value, dtype=np.float32),
            transform=Affine(100.0, 0.0, 370_000.0, 0.0, -100.0, 2_525_200.0),
            crs="EPSG:4547",
            nodata=-1.0,
        )

    store.write_raster("population", raster(1.0))
    _set_audit_times(store, ["2026-03-01T00:00:00+00:00"])
    with pytest.raises(InputError, match="did not exist yet"):
        raster_as_of(store, "population", _at("2026-02-01T00:00:00+00:00"))
    assert raster_as_of(store, "population", _at("2026-04-01T00:00:00+00:00")).valid_sum() == 4
    store.write_raster("population", raster(2.0))
    _set_audit_times(store, ["2026-03-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00"])
    assert raster_as_of(store, "population", _at("2026-04-01T00:00:00+00:00")).valid_sum() == 4
    assert raster_as_of(store, "population", _at("2026-05-01T00:00:00+00:00")).valid_sum() == 8
    assert raster_as_of(store, "population", AsOf(at=NOW, current=True)).valid_sum() == 8


def test_marks_as_of_take_the_latest_mark_then(store: LayerStore) -> None:
    engine = side_table_engine(store.url)
    registry = MarkRegistry(engine)
    try:
        registry.mark("00000000000000aa", rule="ECO_PROJECT", status="to_adjust", note="", actor="a")
        registry.mark("00000000000000aa", rule="ECO_PROJECT", status="resolved", note="", actor="a")
        registry.mark("00000000000000bb", rule="ECO_PROJECT", status="accepted", note="", actor="a")
        with engine.begin() as connection:
            for number, at in enumerate(["2026-01-01", "2026-03-01", "2026-02-01"], start=1):
                connection.execute(
                    text("UPDATE geoplan_patch_marks SET at = :at WHERE id = :id"),
                    {"at": f"{at}T00:00:00+00:00", "id": number},
                )
    finally:
        registry.close()
    assert marks_as_of(store, _at("2025-12-01T00:00:00+00:00")) == {}
    assert marks_as_of(store, _at("2026-01-15T00:00:00+00:00")) == {"00000000000000aa": "to_adjust"}
    assert marks_as_of(store, _at("2026-02-15T00:00:00+00:00")) == {
        "00000000000000aa": "to_adjust",
        "00000000000000bb": "accepted",
    }
    assert marks_as_of(store, AsOf(at=NOW, current=True))["00000000000000aa"] == "resolved"


def test_dates_and_quarters_are_local_and_never_in_the_future() -> None:
    assert parse_as_of("2026-06-30", now=NOW).iso == "2026-06-30T15:59:59+00:00"  # midnight in China, minus 1 µs
    assert as_of_quarter("2026Q2", now=NOW).at == parse_as_of("2026-06-30", now=NOW).at
    assert as_of_quarter("2025q4", now=NOW).iso == "2025-12-31T15:59:59+00:00"
    assert parse_as_of("2026-06-30T08:00", now=NOW).iso == "2026-06-30T00:00:00+00:00"  # naive = China time
    assert parse_as_of("2026-06-30T08:00+00:00", now=NOW).iso == "2026-06-30T08:00:00+00:00"
    current = as_of_quarter("2026Q4", now=NOW)  # not over yet: now
    assert current.current and current.at == NOW and str(current.quarter) == "2026Q4"
    assert parse_as_of("2026-11-25", now=NOW).current  # the end of today is now
    assert parse_as_of("now", now=NOW).current
    for bad, reason in (
        ("2026-11-26", "in the future"),
        ("2026-02-30", "invalid date"),
        ("yesterday", "invalid date"),
    ):
        with pytest.raises(InputError, match=reason):
            parse_as_of(bad, now=NOW)
    with pytest.raises(InputError, match="has not begun"):
        as_of_quarter("2027Q1", now=NOW)
    with pytest.raises(InputError, match="invalid quarter"):
        as_of_quarter("2026Q5", now=NOW)
