"""Scenarios on both backends: kept in side tables, seen as a store, adopted in one write or refused when stale."""

from __future__ import annotations

import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import pytest

from geoplan.catalog import Catalog
from geoplan.cql2 import parse_filter
from geoplan.errors import ConflictError, InputError, NotFoundError, ValidationFailed
from geoplan.services import scenarios as sc
from geoplan.storage import LayerStore
from geoplan.storage.base import FilterPushdown
from geoplan.storage.tile_matrix import TileKey
from tests.factories import sample_frame

FAC = "culture_facilities"
PRJ = "projects"
WHO = "planner:li"


@pytest.fixture
def seeded(store: LayerStore, catalog: Catalog) -> LayerStore:
    store.write(FAC, sample_frame(catalog.get(FAC), 6))
    store.write(PRJ, sample_frame(catalog.get(PRJ), 3))
    return store


def _ids(frame: gpd.GeoDataFrame, field: str = "facility_id") -> list[str]:
    return sorted(frame[field].astype(str))


def _moved(frame: gpd.GeoDataFrame, dx: float) -> gpd.GeoDataFrame:
    return frame.set_geometry(frame.geometry.translate(dx, 0.0), crs=frame.crs)


def test_scenarios_are_named_owned_and_listed(seeded: LayerStore) -> None:
    made = sc.create_scenario(seeded, "新馆", author=WHO, token="li-token")
    sc.create_scenario(seeded, "other", author="planner:wang")
    with pytest.raises(InputError, match="exists already") as refused:
        sc.create_scenario(seeded, "新馆", author=WHO)
    assert "新馆" in refused.value.zh
    with pytest.raises(NotFoundError, match="no scenario named 'nope'") as missing:
        sc.get_scenario(seeded, "nope")
    assert "nope" in missing.value.zh
    with pytest.raises(InputError):
        sc.create_scenario(seeded, "two\nlines", author=WHO)
    assert [s.name for s in sc.list_scenarios(seeded)] == ["新馆", "other"]
    mine = sc.list_scenarios(seeded, author=WHO)
    assert [(s.name, s.author, s.token, s.created_at) for s in mine] == [("新馆", WHO, "li-token", made.created_at)]
    assert [e.action for e in seeded.audit_log(layer="scenarios")] == ["scenario:create", "scenario:create"]


def test_the_view_is_live_plus_edits_and_live_is_untouched(seeded: LayerStore, catalog: Catalog) -> None:
    live = seeded.read(FAC)
    version = seeded.layer_version(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    new = sample_frame(catalog.get(FAC), 2, start=100)
    replaced = _moved(live.iloc[[1]].copy(), 0.01)
    replaced["name"] = "新名字"
    sc.add_features(seeded, "s", FAC, new, actor=WHO)
    sc.add_features(seeded, "s", FAC, replaced, actor=WHO, replace=True)
    sc.remove_features(seeded, "s", FAC, [str(live.iloc[0]["facility_id"])], actor=WHO)

    view = sc.open_view(seeded, "s")
    assert isinstance(view, LayerStore)
    assert not isinstance(view, FilterPushdown)  # a pushed-down filter would read live rows, not the scenario's
    seen = view.read(FAC)
    expected = (set(live["facility_id"]) - {live.iloc[0]["facility_id"]}) | set(new["facility_id"])
    assert set(seen["facility_id"]) == expected and len(seen) == len(expected)
    row = seen.set_index("facility_id").loc[replaced["facility_id"].iloc[0]]
    assert row["name"] == "新名字" and row["geometry"].equals(replaced.geometry.iloc[0])
    assert list(seen.columns) == list(live.columns)
    assert view.count(FAC) == len(expected)
    assert view.bounds(FAC) == pytest.approx(tuple(seen.total_bounds))
    batches = list(view.read_batches(FAC, rows=3))
    assert [len(b) for b in batches] == [3, 3, 1] and _ids(pd.concat(batches)) == _ids(seen)
    one = view.read(FAC, where={"facility_id": str(new["facility_id"].iloc[0])})
    assert _ids(one) == [str(new["facility_id"].iloc[0])]
    box = replaced.geometry.iloc[0].buffer(1e-4).bounds
    assert str(replaced["facility_id"].iloc[0]) in _ids(view.read(FAC, bbox=box))
    # untouched layers and the live layer itself
    assert view.layer_version(PRJ) == seeded.layer_version(PRJ)
    assert _ids(view.read(PRJ), "project_id") == _ids(seeded.read(PRJ), "project_id")
    assert view.layer_version(FAC) < 0
    assert seeded.layer_version(FAC) == version and _ids(seeded.read(FAC)) == _ids(live)
    with pytest.raises(InputError, match="read as a store"):
        view.write(FAC, new)
    # a further edit moves the scenario's version
    before = view.layer_version(FAC)
    sc.remove_features(seeded, "s", FAC, [str(live.iloc[2]["facility_id"])], actor=WHO)
    assert sc.open_view(seeded, "s").layer_version(FAC) not in (before, version)


def test_edits_of_one_feature_net_out(seeded: LayerStore, catalog: Catalog) -> None:
    live = seeded.read(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    new = sample_frame(catalog.get(FAC), 1, start=100)
    new_id = str(new["facility_id"].iloc[0])
    sc.add_features(seeded, "s", FAC, new, actor=WHO)
    again = new.copy()
    again["name"] = "又改"
    sc.add_features(seeded, "s", FAC, again, actor=WHO, replace=True)  # still a creation, with the new content
    gone = str(live.iloc[0]["facility_id"])
    sc.remove_features(seeded, "s", FAC, [gone], actor=WHO)
    back = live.iloc[[0]].copy()
    back["name"] = "重建"
    sc.add_features(seeded, "s", FAC, back, actor=WHO)  # a deleted live feature created again: a replacement
    _, edits = sc.scenario_edits(seeded, "s")
    assert sorted((e.feature_id, e.op) for e in edits) == sorted([(new_id, "create"), (gone, "replace")])
    assert next(e for e in edits if e.feature_id == new_id).feature["properties"]["name"] == "又改"  # type: ignore[index]
    report = sc.remove_features(seeded, "s", FAC, [new_id], actor=WHO)
    assert report.ops["dropped"] == 1
    _, edits = sc.scenario_edits(seeded, "s")
    assert [(e.feature_id, e.op) for e in edits] == [(gone, "replace")]


def test_edits_are_validated_as_an_import_is(seeded: LayerStore, catalog: Catalog) -> None:
    live = seeded.read(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    with pytest.raises(ValidationFailed):  # an id the layer has already
        sc.add_features(seeded, "s", FAC, live.iloc[[0]].copy(), actor=WHO)
    bad = sample_frame(catalog.get(FAC), 1, start=100)
    bad["capacity"] = -5
    with pytest.raises(ValidationFailed):
        sc.add_features(seeded, "s", FAC, bad, actor=WHO)
    with pytest.raises(NotFoundError, match="no feature") as missing:
        sc.add_features(seeded, "s", FAC, sample_frame(catalog.get(FAC), 1, start=100), actor=WHO, replace=True)
    assert missing.value.zh
    with pytest.raises(NotFoundError, match="no layer 'nope'"):
        sc.remove_features(seeded, "s", "nope", ["x"], actor=WHO)
    with pytest.raises(InputError, match="cannot be edited in a scenario"):
        sc.remove_features(seeded, "s", "population", ["x"], actor=WHO)
    _, edits = sc.scenario_edits(seeded, "s")
    assert edits == []


def test_adoption_applies_every_edit_and_drops_the_scenario(seeded: LayerStore, catalog: Catalog) -> None:
    live = seeded.read(FAC)
    projects = seeded.read(PRJ)
    sc.create_scenario(seeded, "s", author=WHO)
    new = sample_frame(catalog.get(FAC), 2, start=100)
    sc.add_features(seeded, "s", FAC, new, actor=WHO)
    sc.remove_features(seeded, "s", PRJ, [str(projects.iloc[0]["project_id"])], actor=WHO)
    expected_fac = _ids(sc.open_view(seeded, "s").read(FAC))
    # another feature of the same layer changes live meanwhile: that does not stop the adoption
    other = live.iloc[[3]].copy()
    other["name"] = "别人改的"
    seeded.update_features(FAC, other)
    report = sc.adopt_scenario(seeded, "s", actor=WHO)
    assert report.written == {FAC: 2, PRJ: 1} and report.moved_layers == [FAC]
    assert _ids(seeded.read(FAC)) == expected_fac
    assert _ids(seeded.read(PRJ), "project_id") == _ids(projects.iloc[1:], "project_id")
    assert sc.list_scenarios(seeded) == []
    actions = [(e.layer, e.action) for e in seeded.audit_log(limit=3)]
    assert actions == [("scenarios", "scenario:adopt"), (FAC, "write:append"), (PRJ, "delete")]  # catalogue order
    with pytest.raises(NotFoundError):
        sc.adopt_scenario(seeded, "s", actor=WHO)


@pytest.mark.parametrize("live_change", ["changed", "deleted", "created"])
def test_a_stale_scenario_is_refused_with_the_features_named(
    seeded: LayerStore, catalog: Catalog, live_change: str
) -> None:
    live = seeded.read(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    edited = live.iloc[[1]].copy()
    edited["name"] = "方案里的名字"
    sc.add_features(seeded, "s", FAC, edited, actor=WHO, replace=True)
    sc.remove_features(seeded, "s", FAC, [str(live.iloc[2]["facility_id"])], actor=WHO)
    new = sample_frame(catalog.get(FAC), 1, start=100)
    sc.add_features(seeded, "s", FAC, new, actor=WHO)
    sc.remove_features(seeded, "s", PRJ, [str(seeded.read(PRJ).iloc[0]["project_id"])], actor=WHO)
    assert sc.stale_features(seeded, "s") == []
    if live_change == "changed":
        conflict = str(live.iloc[1]["facility_id"])
        theirs = live.iloc[[1]].copy()
        theirs["capacity"] = int(theirs["capacity"].iloc[0]) + 500
        seeded.update_features(FAC, theirs)
    elif live_change == "deleted":
        conflict = str(live.iloc[2]["facility_id"])
        seeded.delete_features(FAC, [conflict])
    else:
        conflict = str(new["facility_id"].iloc[0])
        seeded.write(FAC, new, mode="append")
    state = {name: (seeded.layer_version(name), seeded.read(name).to_wkt().to_dict()) for name in (FAC, PRJ)}
    assert sc.stale_features(seeded, "s") == [sc.StaleFeature(FAC, conflict, live_change)]
    with pytest.raises(ConflictError) as refused:
        sc.adopt_scenario(seeded, "s", actor=WHO)
    assert f"{FAC} {conflict}" in str(refused.value) and conflict in refused.value.zh
    assert refused.value.features == [(FAC, conflict, live_change)]
    assert {name: (seeded.layer_version(name), seeded.read(name).to_wkt().to_dict()) for name in (FAC, PRJ)} == state
    assert [s.name for s in sc.list_scenarios(seeded)] == ["s"]


def test_discard_drops_the_scenario_and_leaves_live_alone(seeded: LayerStore) -> None:
    live = seeded.read(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    sc.add_features(seeded, "s", FAC, _moved(live.iloc[[0]].copy(), 0.01), actor=WHO, replace=True)
    version = seeded.layer_version(FAC)
    sc.discard_scenario(seeded, "s", actor=WHO)
    assert sc.list_scenarios(seeded) == [] and seeded.layer_version(FAC) == version
    assert seeded.read(FAC).geometry.geom_equals(live.geometry).all()
    assert [e.action for e in seeded.audit_log(layer="scenarios", limit=2)] == ["scenario:discard", "scenario:edit"]
    with pytest.raises(NotFoundError):
        sc.discard_scenario(seeded, "s", actor=WHO)


def test_an_empty_scenario_is_not_adopted(seeded: LayerStore) -> None:
    sc.create_scenario(seeded, "s", author=WHO)
    with pytest.raises(InputError, match="no edits") as refused:
        sc.adopt_scenario(seeded, "s", actor=WHO)
    assert refused.value.zh


def test_the_view_serves_vector_tiles_of_the_scenario(seeded: LayerStore, catalog: Catalog) -> None:
    live = seeded.read(FAC)
    sc.create_scenario(seeded, "s", author=WHO)
    new = sample_frame(catalog.get(FAC), 2, start=100)
    sc.add_features(seeded, "s", FAC, new, actor=WHO)
    sc.remove_features(seeded, "s", FAC, [str(live.iloc[0]["facility_id"])], actor=WHO)
    view = sc.open_view(seeded, "s")
    tile = TileKey(8, 208, 111)  # holds all of Gaoming
    decoded = mapbox_vector_tile.decode(view.vector_tile(FAC, tile, ["facility_id"]))
    shown = {f["properties"]["facility_id"] for f in decoded[FAC]["features"]}
    assert shown == set(_ids(view.read(FAC))) and str(live.iloc[0]["facility_id"]) not in shown
    queryables = {"facility_id": "string"}
    node = parse_filter(f"facility_id = '{new['facility_id'].iloc[0]}'", lang="cql2-text", queryables=queryables)
    decoded = mapbox_vector_tile.decode(view.vector_tile(FAC, tile, ["facility_id"], node))
    assert [f["properties"]["facility_id"] for f in decoded[FAC]["features"]] == [new["facility_id"].iloc[0]]
    # untouched layers come from the live store
    assert view.vector_tile(PRJ, tile, ["project_id"]) == seeded.vector_tile(PRJ, tile, ["project_id"])
