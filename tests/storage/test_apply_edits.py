"""`apply_edits`: edits of several layers as one write on both backends, all or nothing, audited per layer."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.storage import LayerStore
from geoplan.storage.base import EditBatches, FeatureReader, LayerEdits
from tests.factories import sample_frame

FAC = "culture_facilities"
PRJ = "projects"


def _state(store: LayerStore) -> dict[str, object]:
    return {
        name: (store.layer_version(name), sorted(map(str, store.read(name)[store.catalog.get(name).id_field or ""])))
        for name in (FAC, PRJ)
    }


@pytest.fixture
def seeded(store: LayerStore, catalog: Catalog) -> LayerStore:
    store.write(FAC, sample_frame(catalog.get(FAC), 5))
    store.write(PRJ, sample_frame(catalog.get(PRJ), 3))
    return store


def test_edits_of_two_layers_land_together_and_are_audited(seeded: LayerStore, catalog: Catalog) -> None:
    assert isinstance(seeded, EditBatches)
    facilities = seeded.read(FAC)
    new = sample_frame(catalog.get(FAC), 2, start=100)
    changed = facilities.iloc[[1]].copy()
    changed["name"] = "改过的名字"
    changed = changed.set_geometry([shapely.Point(112.8, 22.9)], crs=changed.crs)
    project_ids = list(seeded.read(PRJ)["project_id"].astype(str))
    written = seeded.apply_edits(
        [
            LayerEdits(FAC, creates=new, replaces=changed, deletes=(str(facilities.iloc[0]["facility_id"]),)),
            LayerEdits(PRJ, deletes=(project_ids[2],)),
        ],
        actor="tester",
    )
    assert written == {FAC: 4, PRJ: 1}
    after = seeded.read(FAC).set_index("facility_id")
    expected = (set(facilities["facility_id"]) - {facilities.iloc[0]["facility_id"]}) | set(new["facility_id"])
    assert set(after.index) == expected
    assert after.loc[changed["facility_id"].iloc[0], "name"] == "改过的名字"
    assert after.loc[changed["facility_id"].iloc[0], "geometry"].equals(shapely.Point(112.8, 22.9))
    assert sorted(seeded.read(PRJ)["project_id"]) == sorted(project_ids[:2])
    entries = seeded.audit_log(limit=4)
    assert [(e.layer, e.action, e.feature_count, e.actor) for e in entries] == [
        (PRJ, "delete", 1, "tester"),
        (FAC, "delete", 1, "tester"),
        (FAC, "update", 1, "tester"),
        (FAC, "write:append", 2, "tester"),
    ]
    update = entries[2].detail
    assert update["before"][0]["properties"]["name"] == facilities.iloc[1]["name"]
    assert update["after"][0]["properties"]["name"] == "改过的名字"


def test_a_guard_that_refuses_rolls_every_layer_back(seeded: LayerStore, catalog: Catalog) -> None:
    assert isinstance(seeded, EditBatches)
    before = _state(seeded)
    seen: list[list[str]] = []

    def guard(reader: FeatureReader) -> None:
        found = reader(PRJ, [before[PRJ][1][0], "nope"])  # type: ignore[index]
        seen.append(sorted(found["project_id"]))
        raise InputError("refused by the guard")

    with pytest.raises(InputError, match="refused by the guard"):
        seeded.apply_edits(
            [LayerEdits(FAC, creates=sample_frame(catalog.get(FAC), 3, start=50)), LayerEdits(PRJ, deletes=("x",))],
            actor="tester",
            guard=guard,
        )
    assert seen == [[before[PRJ][1][0]]]  # type: ignore[index]
    assert _state(seeded) == before


def test_a_failing_second_layer_undoes_the_first(seeded: LayerStore, catalog: Catalog) -> None:
    assert isinstance(seeded, EditBatches)
    before = _state(seeded)
    taken = sample_frame(catalog.get(PRJ), 1)  # its id is in the layer already: the unique index refuses it
    with pytest.raises(InputError, match="nothing was written"):
        seeded.apply_edits(
            [LayerEdits(FAC, creates=sample_frame(catalog.get(FAC), 3, start=50)), LayerEdits(PRJ, creates=taken)],
            actor="tester",
        )
    assert _state(seeded) == before
    with pytest.raises(InputError, match="no feature"):
        seeded.apply_edits(
            [LayerEdits(FAC, creates=sample_frame(catalog.get(FAC), 3, start=50)), LayerEdits(PRJ, deletes=("x",))],
            actor="tester",
        )
    assert _state(seeded) == before


def test_side_statements_commit_with_the_edits_or_not_at_all(seeded: LayerStore, catalog: Catalog) -> None:
    assert isinstance(seeded, EditBatches)
    insert = (
        "INSERT INTO geoplan_audit (at, actor, layer, action, feature_count, detail) "
        "VALUES (:at, :actor, :layer, 'scenario:adopt', 0, '{}')"
    )
    values = {"at": "2026-01-01T00:00:00+00:00", "actor": "side", "layer": "scenarios"}
    with pytest.raises(InputError):
        seeded.apply_edits([LayerEdits(PRJ, deletes=("x",))], actor="tester", after=[(insert, values)])
    assert seeded.audit_log(actor="side") == []
    seeded.apply_edits(
        [LayerEdits(FAC, creates=sample_frame(catalog.get(FAC), 1, start=70))], actor="tester", after=[(insert, values)]
    )
    assert [e.action for e in seeded.audit_log(actor="side")] == ["scenario:adopt"]


def test_one_feature_edited_twice_in_a_batch_is_refused(seeded: LayerStore) -> None:
    assert isinstance(seeded, EditBatches)
    first = seeded.read(FAC).iloc[[0]]
    fid = str(first["facility_id"].iloc[0])
    with pytest.raises(InputError, match="edited twice"):
        seeded.apply_edits([LayerEdits(FAC, replaces=gpd.GeoDataFrame(first), deletes=(fid,))], actor="tester")
