"""The LayerStore contract: every test here runs against the GeoPackage store and a real PostGIS."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore
from tests.factories import sample_frame


def assert_same_features(actual: gpd.GeoDataFrame, expected: gpd.GeoDataFrame, id_field: str) -> None:
    actual = actual.sort_values(id_field).reset_index(drop=True)
    expected = expected.sort_values(id_field).reset_index(drop=True)
    assert list(actual.columns[:-1]) == list(expected.columns[:-1])
    assert len(actual) == len(expected)
    for column in expected.columns.drop("geometry"):
        assert [None if v is None or v is np.nan else v for v in actual[column].astype(object)] == list(
            expected[column]
        ), column
    assert shapely.equals_exact(actual.geometry.values, expected.geometry.values, tolerance=1e-12).all()


@pytest.mark.parametrize("layer_name", ["projects", "roads", "culture_facilities"])
def test_round_trip_keeps_attributes_and_geometry(store: LayerStore, catalog: Catalog, layer_name: str) -> None:
    layer = catalog.get(layer_name)
    frame = sample_frame(layer, 25)
    assert store.write(layer_name, frame) == 25
    back = store.read(layer_name)
    assert back.crs.to_epsg() == 4490
    assert list(back.columns) == [*layer.field_names, "geometry"]
    assert_same_features(back, frame, layer.id_field or "")


def test_every_catalogue_layer_has_a_table(store: LayerStore, catalog: Catalog) -> None:
    assert store.is_initialised()
    for layer in catalog.vector_layers():
        assert store.count(layer.name) == 0
        assert store.bounds(layer.name) is None
        assert len(store.read(layer.name)) == 0


def test_init_is_idempotent_and_keeps_data(store: LayerStore, catalog: Catalog) -> None:
    store.write("projects", sample_frame(catalog.get("projects"), 3))
    store.init()
    assert store.count("projects") == 3


def test_replace_and_append(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("villages")
    store.write("villages", sample_frame(layer, 5))
    store.write("villages", sample_frame(layer, 3, start=100), mode="replace")
    assert store.count("villages") == 3
    store.write("villages", sample_frame(layer, 4, start=200), mode="append")
    assert sorted(store.read("villages")["village_code"]) == sorted(
        [f"vill-{i:06d}" for i in [100, 101, 102, 200, 201, 202, 203]]
    )


def test_failed_write_leaves_the_layer_exactly_as_it_was(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    original = sample_frame(layer, 10)
    store.write("projects", original)
    # A replace whose last row repeats an id: the unique constraint fails after the delete and some inserts.
    broken = sample_frame(layer, 6, start=50)
    broken.loc[5, "project_id"] = broken.loc[0, "project_id"]
    with pytest.raises(InputError, match="nothing was written"):
        store.write("projects", broken, mode="replace")
    assert_same_features(store.read("projects"), original, "project_id")
    # An append that collides with a stored id is refused whole as well.
    with pytest.raises(InputError):
        store.write("projects", sample_frame(layer, 3, start=8), mode="append")
    assert store.count("projects") == 10
    assert len(store.audit_log(layer="projects")) == 1


def test_refuses_frames_in_another_crs(store: LayerStore, catalog: Catalog) -> None:
    frame = sample_frame(catalog.get("projects"), 2).to_crs("EPSG:4547")
    with pytest.raises(InputError, match="EPSG:4490"):
        store.write("projects", frame)
    assert store.count("projects") == 0


def test_refuses_missing_columns_and_empty_geometries(store: LayerStore, catalog: Catalog) -> None:
    frame = sample_frame(catalog.get("projects"), 2)
    with pytest.raises(InputError, match="task_area"):
        store.write("projects", frame.drop(columns=["task_area"]))
    frame.loc[1, "geometry"] = shapely.MultiPolygon()
    with pytest.raises(InputError, match="non-empty geometry"):
        store.write("projects", frame)
    assert store.count("projects") == 0


def test_bbox_read_returns_exactly_the_intersecting_features(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("culture_facilities")
    frame = sample_frame(layer, 60)
    store.write("culture_facilities", frame)
    bbox = (112.862, 22.889, 112.875, 22.895)
    expected = frame[frame.intersects(shapely.box(*bbox))]
    assert 0 < len(expected) < len(frame)
    got = store.read("culture_facilities", bbox=bbox)
    assert sorted(got["facility_id"]) == sorted(expected["facility_id"])


@pytest.mark.parametrize("rows", [1, 7, 60, 1000])
def test_read_batches_give_the_whole_layer_in_bounded_batches(store: LayerStore, catalog: Catalog, rows: int) -> None:
    layer = catalog.get("culture_facilities")
    frame = sample_frame(layer, 60)
    store.write("culture_facilities", frame)
    store.delete_features("culture_facilities", list(frame["facility_id"].iloc[10:20]))  # a gap in the keys
    batches = list(store.read_batches("culture_facilities", rows=rows))
    assert all(len(batch) <= rows for batch in batches) and all(len(batch) for batch in batches)
    assert len(batches) == -(-50 // rows)
    whole = store.read("culture_facilities")
    joined = gpd.GeoDataFrame(pd.concat(batches, ignore_index=True), crs=whole.crs)
    assert list(joined.columns) == list(whole.columns) and joined.crs == whole.crs
    assert joined["facility_id"].tolist() == whole["facility_id"].tolist()  # store order, nothing twice
    assert_same_features(joined, whole, "facility_id")


def test_read_batches_of_an_empty_layer_and_bad_sizes(store: LayerStore) -> None:
    assert list(store.read_batches("culture_facilities", rows=10)) == []
    for rows in (0, -1, True, 2.5):
        with pytest.raises(InputError, match="batch rows"):
            list(store.read_batches("culture_facilities", rows=rows))  # type: ignore[arg-type]


def test_bounds_and_count(store: LayerStore, catalog: Catalog) -> None:
    frame = sample_frame(catalog.get("roads"), 30)
    store.write("roads", frame)
    assert store.count("roads") == 30
    assert np.allclose(store.bounds("roads"), frame.total_bounds, atol=1e-6)


def test_where_filters_by_value_and_treats_hostile_text_as_data(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    frame = sample_frame(layer, 16)
    hostile = "x'); DROP TABLE projects; --"
    frame.loc[3, "name"] = hostile
    store.write("projects", frame)
    assert len(store.read("projects", where={"task_area": "人居环境绿色化"})) == 2
    assert list(store.read("projects", where={"name": hostile})["name"]) == [hostile]
    assert store.count("projects") == 16
    with pytest.raises(NotFoundError):
        store.read("projects", where={"1=1; --": "x"})


def test_unknown_layer_is_a_clear_error(store: LayerStore) -> None:
    with pytest.raises(NotFoundError, match="unknown layer 'nope'"):
        store.read("nope")
    with pytest.raises(InputError, match="raster layer"):
        store.read("population")


def test_raster_round_trip(store: LayerStore) -> None:
    rng = np.random.default_rng(1)
    array = rng.random((40, 30)).astype("float32")
    array[0, 0] = -1
    raster = RasterData(array, Affine(100, 0, 560000, 0, -100, 2540000), "EPSG:4547", -1.0)
    assert not store.has_raster("population")
    store.write_raster("population", raster)
    back = store.read_raster("population")
    assert store.has_raster("population")
    assert np.array_equal(back.array, array)
    assert back.transform == raster.transform and back.crs == "EPSG:4547" and back.nodata == -1.0
    assert back.valid_sum() == pytest.approx(float(array[array != -1].astype("float64").sum()))


def test_missing_raster_is_not_found(store: LayerStore) -> None:
    with pytest.raises(NotFoundError):
        store.read_raster("population")


def test_every_write_is_audited(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    store.write("projects", sample_frame(layer, 2), actor="planner:li")
    store.write("projects", sample_frame(layer, 1, start=9), mode="append", actor="staff:wang")
    log = store.audit_log(layer="projects")
    assert [(e.actor, e.action, e.feature_count) for e in log] == [
        ("staff:wang", "write:append", 1),
        ("planner:li", "write:replace", 2),
    ]
    assert log[0].detail["ids"] == ["proj-000009"]


def test_layer_version_changes_with_every_write_to_that_layer(store: LayerStore, catalog: Catalog) -> None:
    assert store.layer_version("projects") == 0
    store.write("projects", sample_frame(catalog.get("projects"), 2))
    first = store.layer_version("projects")
    store.write("roads", sample_frame(catalog.get("roads"), 2))
    assert store.layer_version("projects") == first
    store.write("projects", sample_frame(catalog.get("projects"), 1, start=5), mode="append")
    assert store.layer_version("projects") > first


def test_update_features_replaces_by_id_and_audits_before_and_after(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    store.write("projects", sample_frame(layer, 5))
    changed = store.read("projects", where={"project_id": "proj-000002"})
    changed.loc[0, "name"] = "荷杨大道（调整）"
    changed.loc[0, "geometry"] = shapely.MultiPolygon([shapely.box(112.90, 22.90, 112.91, 22.91)])
    assert store.update_features("projects", changed, actor="staff:wang") == 1
    after = store.read("projects").set_index("project_id")
    assert len(after) == 5 and after.loc["proj-000002", "name"] == "荷杨大道（调整）"
    assert after.loc["proj-000001", "name"] == "name-000001"
    entry = store.audit_log(layer="projects", limit=1)[0]
    assert (entry.action, entry.actor) == ("update", "staff:wang")
    assert entry.detail["before"][0]["properties"]["name"] == "name-000002"
    assert entry.detail["after"][0]["properties"]["name"] == "荷杨大道（调整）"


def test_update_of_a_missing_id_changes_nothing(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    store.write("projects", sample_frame(layer, 3))
    edit = sample_frame(layer, 2, start=1)  # ids 1 (exists) and 2 (exists) ...
    edit.loc[1, "project_id"] = "proj-999999"  # ... and one that does not
    version = store.layer_version("projects")
    with pytest.raises(NotFoundError, match="proj-999999"):
        store.update_features("projects", edit)
    assert store.layer_version("projects") == version
    assert sorted(store.read("projects")["project_id"]) == ["proj-000000", "proj-000001", "proj-000002"]


def test_delete_features_by_id(store: LayerStore, catalog: Catalog) -> None:
    store.write("culture_facilities", sample_frame(catalog.get("culture_facilities"), 4))
    with pytest.raises(NotFoundError):
        store.delete_features("culture_facilities", ["faci-000001", "nope"])
    assert store.count("culture_facilities") == 4
    assert store.delete_features("culture_facilities", ["faci-000001", "faci-000003"], actor="admin:x") == 2
    assert sorted(store.read("culture_facilities")["facility_id"]) == ["faci-000000", "faci-000002"]
    entry = store.audit_log(layer="culture_facilities", limit=1)[0]
    assert entry.action == "delete" and {f["id"] for f in entry.detail["before"]} == {"faci-000001", "faci-000003"}


# ------------------------------------------------------------------------------ audit filters (the audit viewer)


def _audited_history(store: LayerStore, catalog: Catalog) -> None:
    """Five writes by three actors on two layers; ids chosen so that a substring match would be wrong."""
    projects = sample_frame(catalog.get("projects"), 3)
    projects["project_id"] = ["P-1", "P-10", 'P-"%_1']
    store.write("projects", projects, actor="staff:wang")
    changed = store.read("projects", where={"project_id": "P-10"})
    changed.loc[0, "name"] = "荷杨大道（调整）"
    store.update_features("projects", changed, actor="planner:li")
    store.write("roads", sample_frame(catalog.get("roads"), 2), actor="staff:wang")
    store.delete_features("projects", ['P-"%_1'], actor="admin:zhao")
    store.delete_features("projects", ["P-1"], actor="planner:li")


def test_audit_filters_by_layer_actor_and_feature_id(store: LayerStore, catalog: Catalog) -> None:
    _audited_history(store, catalog)
    everything = store.audit_log(limit=1000)
    assert [(e.layer, e.action, e.actor) for e in everything] == [
        ("projects", "delete", "planner:li"),
        ("projects", "delete", "admin:zhao"),
        ("roads", "write:replace", "staff:wang"),
        ("projects", "update", "planner:li"),
        ("projects", "write:replace", "staff:wang"),
    ]
    ids = [e.id for e in everything]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    by_actor = store.audit_log(actor="planner:li")
    assert [e.action for e in by_actor] == ["delete", "update"]
    assert store.audit_log(actor="planner") == []  # exact, not a prefix
    assert [e.action for e in store.audit_log(layer="projects", actor="staff:wang")] == ["write:replace"]
    # P-1 is in the first write and its own delete, not in P-10's update (no substring match)
    assert [e.action for e in store.audit_log(feature_id="P-1")] == ["delete", "write:replace"]
    assert [e.action for e in store.audit_log(feature_id="P-10")] == ["update", "write:replace"]
    # quotes, % and _ in an id are data, not JSON or LIKE syntax
    assert [e.action for e in store.audit_log(feature_id='P-"%_1')] == ["delete", "write:replace"]
    assert store.audit_log(feature_id="P-%") == []
    assert store.audit_log(layer="roads", feature_id="P-1") == []


def test_audit_pages_with_limit_and_offset(store: LayerStore, catalog: Catalog) -> None:
    _audited_history(store, catalog)
    everything = store.audit_log(limit=1000)
    pages = [store.audit_log(limit=2, offset=start) for start in (0, 2, 4, 6)]
    assert [[e.id for e in page] for page in pages] == [
        [e.id for e in everything[0:2]],
        [e.id for e in everything[2:4]],
        [e.id for e in everything[4:5]],
        [],
    ]
    with pytest.raises(InputError):
        store.audit_log(limit=-1)


def test_audit_filters_by_time_window_in_any_time_zone(store: LayerStore, catalog: Catalog) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    _audited_history(store, catalog)
    after = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    beijing = timezone(timedelta(hours=8))
    assert all(before.isoformat() <= e.at <= after.isoformat() for e in store.audit_log())
    assert len(store.audit_log(since=before.isoformat(), until=after.isoformat())) == 5
    # the same instants written in Beijing time select the same entries
    assert len(store.audit_log(since=before.astimezone(beijing).isoformat())) == 5
    assert store.audit_log(since=after.astimezone(beijing).isoformat()) == []
    assert store.audit_log(until=before.astimezone(beijing).isoformat()) == []
    # a date-only `until` takes in the whole day, a Beijing day; a time without an offset is Beijing time
    day_before, day_after = before.astimezone(beijing).date(), after.astimezone(beijing).date()
    assert len(store.audit_log(until=day_after.isoformat(), since=day_before.isoformat())) == 5
    assert store.audit_log(until=(day_before - timedelta(days=1)).isoformat()) == []
    assert store.audit_log(since=(day_after + timedelta(days=1)).isoformat()) == []
    assert store.audit_log(since=after.astimezone(beijing).replace(tzinfo=None).isoformat()) == []
    assert len(store.audit_log(since=before.astimezone(beijing).replace(tzinfo=None).isoformat())) == 5
    # UTC wall-clock text without its offset is read as Beijing time, eight hours earlier: it ends too soon
    assert store.audit_log(until=after.replace(tzinfo=None).isoformat()) == []
    for bad in ("yesterday", "2024-13-01", "2024-05-01T25:00"):
        with pytest.raises(InputError, match="invalid time"):
            store.audit_log(since=bad)
