"""The demo's timeline (geoplan/demo/timeline.py) on small hand-made layers: replaying its writes in order ends
exactly at the layers given; every later write keeps its features in the audit (at most 50); the past differs
from the end where it should (facilities open later, sponge areas start smaller and planned, projects start in
planning, land-use parcels start as non-construction land)."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.catalog import Catalog
from geoplan.demo.timeline import BATCH, PLAN_START, demo_timeline
from tests.factories import sample_frame


def _layers(catalog: Catalog) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    culture = sample_frame(catalog.get("culture_facilities"), 80)
    public = sample_frame(catalog.get("public_facilities"), 120)
    sponge = sample_frame(catalog.get("sponge_areas"), 6)
    sponge["status"] = ["达标", "在建", "规划", "达标", "在建", "规划"]
    renewal = sample_frame(catalog.get("renewal_zones"), 4)
    renewal["status"] = ["规划", "启动", "实施中", "已完成"]
    urban = sample_frame(catalog.get("urban_plan"), 10)
    urban["construction"] = True
    landuse = sample_frame(catalog.get("landuse_plan"), 10)
    landuse["geometry"] = urban.geometry.values  # every parcel lies under the urban plan's construction land
    landuse["construction"] = [True] * 6 + [False] * 4
    projects = sample_frame(catalog.get("projects"), 5)
    projects["status"] = ["已完工", "在建", "前期", "暂缓", "前期"]
    projects["progress_pct"] = [100.0, 60.0, 5.0, 30.0, 2.0]
    records = pd.DataFrame(
        {
            "project_id": [projects["project_id"][i] for i in (0, 0, 1, 3)],
            "quarter": ["2018Q2", "2019Q1", "2019Q3", "2020Q2"],
            "status": ["在建", "已完工", "在建", "暂缓"],
            "progress_pct": [40.0, 100.0, 60.0, 30.0],
            "recorded_at": [
                "2018-07-10T02:00:00+00:00",
                "2019-04-10T02:00:00+00:00",
                "2019-10-10T02:00:00+00:00",
                "2020-07-10T02:00:00+00:00",
            ],
        }
    )
    layers = {
        "culture_facilities": culture,
        "public_facilities": public,
        "sponge_areas": sponge,
        "renewal_zones": renewal,
        "urban_plan": urban,
        "landuse_plan": landuse,
        "projects": projects,
    }
    return layers, records


def _replay(events: list, layer: str, id_field: str, until: datetime | None = None) -> pd.DataFrame:
    state: dict[str, dict] = {}
    for event in events:
        if event.layer != layer or (until is not None and event.at > until):
            continue
        rows = {str(r[id_field]): r for r in event.frame.to_dict("records")}
        if event.action == "replace":
            state = rows
        elif event.action == "append":
            assert not set(rows) & set(state)
            state.update(rows)
        else:
            assert set(rows) <= set(state)
            state.update(rows)
    return pd.DataFrame(list(state.values()))


def test_replaying_the_timeline_ends_at_the_layers_given(catalog: Catalog) -> None:
    layers, records = _layers(catalog)
    kept = {name: frame.copy() for name, frame in layers.items()}
    events = demo_timeline(layers, records, rng=np.random.default_rng(7))
    for name, frame in layers.items():  # pure: nothing was changed
        pd.testing.assert_frame_equal(pd.DataFrame(frame), pd.DataFrame(kept[name]))
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(e.at >= PLAN_START and e.at < datetime(2021, 2, 1, tzinfo=UTC) for e in events)
    for event in events:
        if event.at > PLAN_START:
            assert 0 < len(event.frame) <= BATCH, (event.layer, event.note)
    for name, frame in layers.items():
        id_field = catalog.get(name).id_field
        assert id_field is not None
        end = _replay(events, name, id_field).sort_values(id_field).reset_index(drop=True)
        want = frame.sort_values(id_field).reset_index(drop=True)
        assert list(end[id_field]) == list(want[id_field]), name
        for column in catalog.get(name).field_names:
            assert end[column].tolist() == want[column].tolist(), (name, column)
        assert shapely.equals(np.asarray(end["geometry"]), np.asarray(want.geometry.values)).all(), name


def test_the_past_differs_from_the_end_where_it_should(catalog: Catalog) -> None:
    layers, records = _layers(catalog)
    events = demo_timeline(layers, records, rng=np.random.default_rng(7))
    start = {name: _replay(events, name, catalog.get(name).id_field or "", until=PLAN_START) for name in layers}
    assert len(start["culture_facilities"]) < len(layers["culture_facilities"])
    assert len(start["public_facilities"]) < len(layers["public_facilities"])
    assert set(start["sponge_areas"]["status"]) == {"规划"} and set(start["renewal_zones"]["status"]) == {"规划"}
    first_areas = shapely.area(np.asarray(start["sponge_areas"]["geometry"]))
    assert (first_areas < shapely.area(np.asarray(layers["sponge_areas"].geometry.values)) - 1e-12).all()
    # land-use parcels under the urban plan's construction land start as non-construction land (a conflict)
    changed = start["landuse_plan"]["construction"] != layers["landuse_plan"]["construction"]
    assert changed.sum() == 6 and set(start["landuse_plan"].loc[changed, "land_class"]) == {"其他农用地"}
    # projects with records start in planning at 0 %; the others as they are
    projects = start["projects"].set_index("project_id")
    with_records = set(records["project_id"])
    for pid, row in projects.iterrows():
        if pid in with_records:
            assert (row["status"], row["progress_pct"]) == ("前期", 0.0)
    mid = _replay(events, "projects", "project_id", until=datetime(2019, 6, 30, tzinfo=UTC)).set_index("project_id")
    assert mid.loc[records["project_id"][0], "status"] == "已完工"  # its 2019Q1 report came on 2019-04-10
    assert mid.loc[records["project_id"][2], "status"] == "前期"  # its first report comes later
