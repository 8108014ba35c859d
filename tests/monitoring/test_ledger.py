"""The project ledger: quarters, the status flow, recording progress (both backends), the ledger table against
an independent pandas recomputation on the demo store, and the demo's synthetic history."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError, StoreError, ValidationFailed
from geoplan.monitoring.ledger import (
    ASSURANCES,
    filter_ledger,
    ledger_table,
    progress_records,
    record_progress,
)
from geoplan.monitoring.ledger_quarters import Quarter, quarter_range
from geoplan.monitoring.ledger_status import (
    StatusFlow,
    default_status_flow_path,
    load_status_flow,
    status_flow_from_dict,
)
from geoplan.monitoring.ledger_store import PROGRESS_LAYER
from geoplan.services.store_setup import init_store
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.monitoring.ledger_reference import independent_ledger

TODAY = date(2021, 5, 1)  # "now" for the tests: 2021Q2 is the current quarter


@pytest.fixture(scope="module")
def flow(catalog: Catalog) -> StatusFlow:
    return load_status_flow(default_status_flow_path(LAYERS_DIR), catalog)


def _projects(catalog: Catalog) -> gpd.GeoDataFrame:
    frame = sample_frame(catalog.get("projects"), 3)
    frame["project_id"] = ["GM-A", "GM-B", "GM-C"]
    frame["status"] = ["前期", "在建", "已完工"]
    frame["progress_pct"] = [0.0, 40.0, 100.0]
    frame["start_year"] = [2019, 2018, 2018]
    frame["end_year"] = [2020, 2020, 2019]
    return frame


@pytest.fixture
def ledger_store(store: LayerStore, catalog: Catalog) -> LayerStore:
    """A store of each backend with every geoplan table and three projects."""
    init_store(store)
    store.write("projects", _projects(catalog), actor="setup")
    return store


def _record(store: LayerStore, flow: StatusFlow, project_id: str = "GM-A", **values: Any) -> Any:
    values.setdefault("actor", "staff:wang")
    return record_progress(store, project_id=project_id, flow=flow, today=TODAY, **values)


def _project(store: LayerStore, project_id: str) -> dict[str, Any]:
    frame = store.read("projects", where={"project_id": project_id})
    return dict(frame.drop(columns="geometry").iloc[0])


def _fingerprint(store: LayerStore) -> tuple[Any, ...]:
    """Everything a refused record must leave as it was: the file's bytes (GeoPackage), the versions of the
    projects layer and of the progress audit, the records and the projects."""
    digest = hashlib.sha256(Path(store.url).read_bytes()).hexdigest() if isinstance(store, GeoPackageStore) else ""
    records = progress_records(store)
    projects = store.read("projects").drop(columns="geometry").to_dict("records")
    return (
        digest,
        store.layer_version("projects"),
        store.layer_version(PROGRESS_LAYER),
        records.to_dict("records"),
        projects,
    )


# --------------------------------------------------------------------------------------------- quarters


def test_quarters_parse_order_and_count() -> None:
    assert Quarter.parse("2019Q2") == Quarter(2019, 2) and str(Quarter.parse(" 2019q2 ")) == "2019Q2"
    assert Quarter(2019, 4) < Quarter(2020, 1) < Quarter(2020, 2)
    assert Quarter(2019, 4).next() == Quarter(2020, 1)
    assert Quarter.of(date(2020, 12, 31)) == Quarter(2020, 4) and Quarter.of(date(2020, 4, 1)) == Quarter(2020, 2)
    span = quarter_range(Quarter(2018, 1), Quarter(2020, 4))
    assert len(span) == 12 and [str(q) for q in span[3:5]] == ["2018Q4", "2019Q1"]
    for bad in ("2019Q5", "2019-Q2", "19Q2", "2019Q0", "", "1999Q1", "2019Q2 extra"):
        with pytest.raises(InputError, match="invalid quarter"):
            Quarter.parse(bad)


# --------------------------------------------------------------------------------------------- status flow


def test_status_flow_matches_the_catalogue(flow: StatusFlow, catalog: Catalog) -> None:
    assert set(flow.statuses) == set(catalog.get("projects").field("status").allowed or ())
    assert len(flow.statuses) == 5
    assert (flow.initial, flow.completed, flow.suspended) == ("前期", "已完工", "暂缓")
    assert flow.transitions[flow.completed] == frozenset()


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("前期", "已开工", True),
        ("已开工", "在建", True),
        ("在建", "已完工", True),
        ("在建", "暂缓", True),
        ("暂缓", "在建", True),  # a suspended project resumes
        ("暂缓", "前期", True),
        ("在建", "在建", True),  # staying put
        ("前期", "已完工", False),
        ("在建", "前期", False),
        ("已完工", "在建", False),  # completed is final
        ("已完工", "暂缓", False),
    ],
)
def test_status_transitions(flow: StatusFlow, before: str, after: str, allowed: bool) -> None:
    assert flow.allows(before, after) is allowed


def test_a_flow_that_disagrees_with_the_catalogue_is_refused(tmp_path: Path, catalog: Catalog) -> None:
    text = default_status_flow_path(LAYERS_DIR).read_text(encoding="utf-8")
    broken = tmp_path / "flow.yaml"
    broken.write_text(
        text.replace("- {code: 暂缓, title_en: suspended}", "- {code: 停工, title_en: halted}")
        .replace("暂缓:", "停工:")
        .replace("暂缓]", "停工]")
        .replace("suspended: 暂缓", "suspended: 停工"),
        encoding="utf-8",
    )
    with pytest.raises(StoreError, match="differ from the projects layer"):
        load_status_flow(broken, catalog)
    with pytest.raises(StoreError, match="final"):
        status_flow_from_dict(
            {
                "statuses": ["a", "b"],
                "transitions": {"a": ["b"], "b": ["a"]},
                "initial": "a",
                "completed": "b",
                "suspended": "a",
            }
        )


# --------------------------------------------------------------------------------------------- recording


def test_a_record_updates_the_layer_and_both_are_audited(ledger_store: LayerStore, flow: StatusFlow) -> None:
    store = ledger_store
    saved = _record(
        store,
        flow,
        quarter="2019Q1",
        progress_pct=8,
        status="已开工",
        investment_to_date_wan=120.5,
        problems="征地尚未完成",
        actor="staff:wang",
    )
    assert (saved.status, saved.progress_pct, saved.previous_status, saved.previous_progress_pct) == (
        "已开工",
        8.0,
        "前期",
        0.0,
    )
    assert saved.layer_updated
    project = _project(store, "GM-A")
    assert (project["status"], project["progress_pct"]) == ("已开工", 8.0)
    records = progress_records(store)
    assert records[
        ["project_id", "quarter", "progress_pct", "investment_to_date_wan", "problems", "recorded_by"]
    ].values.tolist() == [["GM-A", "2019Q1", 8.0, 120.5, "征地尚未完成", "staff:wang"]]
    assert records["responsible_unit"].tolist() == [project["responsible_unit"]]  # the project's by default
    layer_entry = store.audit_log(layer="projects", limit=1)[0]
    assert (layer_entry.action, layer_entry.actor) == ("update", "staff:wang")
    before, after = layer_entry.detail["before"][0]["properties"], layer_entry.detail["after"][0]["properties"]
    assert (before["status"], before["progress_pct"]) == ("前期", 0.0)
    assert (after["status"], after["progress_pct"]) == ("已开工", 8.0)
    record_entry = store.audit_log(layer=PROGRESS_LAYER, limit=1)[0]
    assert (record_entry.action, record_entry.actor, record_entry.detail["ids"]) == (
        "progress:record",
        "staff:wang",
        ["GM-A"],
    )
    assert record_entry.detail["after"][0]["properties"]["progress_pct"] == 8.0
    assert [e.layer for e in store.audit_log(feature_id="GM-A", limit=2)] == ["projects", PROGRESS_LAYER]


def test_a_project_walks_the_flow_to_completion_and_stops_there(ledger_store: LayerStore, flow: StatusFlow) -> None:
    store = ledger_store
    steps = [
        ("2019Q1", 5, "已开工"),
        ("2019Q2", 30, "在建"),
        ("2019Q3", 30, "暂缓"),
        ("2019Q4", 55, "在建"),
        ("2020Q1", 100, "已完工"),
    ]
    for quarter, progress, status in steps:
        _record(store, flow, quarter=quarter, progress_pct=progress, status=status)
    records = progress_records(store, project_id="GM-A")
    assert list(zip(records["quarter"], records["status"], strict=True)) == [(q, s) for q, _, s in steps]
    assert list(records["previous_status"]) == ["前期", "已开工", "在建", "暂缓", "在建"]
    assert (_project(store, "GM-A")["status"], _project(store, "GM-A")["progress_pct"]) == ("已完工", 100.0)
    with pytest.raises(ValidationFailed, match="cannot change to 在建"):
        _record(store, flow, quarter="2020Q2", progress_pct=100, status="在建")


def test_an_unchanged_quarter_is_recorded_without_touching_the_layer(
    ledger_store: LayerStore, flow: StatusFlow
) -> None:
    version = ledger_store.layer_version("projects")
    saved = _record(ledger_store, flow, "GM-B", quarter="2019Q3", progress_pct=40, problems="资金未到位")
    assert not saved.layer_updated and ledger_store.layer_version("projects") == version
    assert len(progress_records(ledger_store)) == 1


def _refusals() -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("GM-A", {"quarter": "2019-2", "progress_pct": 5}, "invalid quarter"),
        ("GM-A", {"quarter": "2018Q4", "progress_pct": 5}, "before the project's start year 2019"),
        ("GM-A", {"quarter": "2021Q3", "progress_pct": 5}, "lies in the future"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 101}, "0–100"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": -1}, "0–100"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": "half"}, "must be a number"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": float("nan")}, "finite"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": True}, "must be a number"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": None}, "is required"),
        ("GM-B", {"quarter": "2019Q1", "progress_pct": 30}, "progress falls from 40 % to 30 %"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 50, "status": "已完工"}, "cannot change to 已完工"),
        ("GM-B", {"quarter": "2019Q1", "progress_pct": 90, "status": "已完工"}, "needs 100 % progress"),
        ("GM-B", {"quarter": "2019Q1", "progress_pct": 45, "status": "完成"}, "unknown status"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 5, "investment_to_date_wan": -1}, "must not be negative"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 5, "problems": "问" * 2001}, "at most 2000"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 5, "responsible_unit": "区住建局\x1b[31m"}, "control"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 5, "responsible_unit": "甲\n乙"}, "control"),
        ("GM-A", {"quarter": "2019Q1", "progress_pct": 5, "actor": "  "}, "must not be empty"),
        ("GM-C", {"quarter": "2020Q1", "progress_pct": 100, "status": "在建"}, "cannot change to 在建"),
    ]


@pytest.mark.parametrize(("project_id", "values", "message"), _refusals())
def test_refused_records_leave_the_store_unchanged(
    ledger_store: LayerStore, flow: StatusFlow, project_id: str, values: dict[str, Any], message: str
) -> None:
    before = _fingerprint(ledger_store)
    with pytest.raises(ValidationFailed, match=message) as caught:
        _record(ledger_store, flow, project_id, **values)
    assert all(p.feature == project_id and p.field for p in caught.value.problems)
    assert _fingerprint(ledger_store) == before


def test_every_problem_is_reported_at_once(ledger_store: LayerStore, flow: StatusFlow) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _record(ledger_store, flow, "GM-B", quarter="2030Q1", progress_pct=20, investment_to_date_wan=-5, status="前期")
    assert sorted(p.field for p in caught.value.problems) == ["investment_to_date_wan", "note", "quarter", "status"]


def test_unknown_project_and_records_before_the_latest_are_refused(ledger_store: LayerStore, flow: StatusFlow) -> None:
    before = _fingerprint(ledger_store)
    with pytest.raises(NotFoundError, match="GM-Z"):
        _record(ledger_store, flow, "GM-Z", quarter="2019Q1", progress_pct=5)
    with pytest.raises(InputError, match="invalid project id"):
        _record(ledger_store, flow, "x" * 33, quarter="2019Q1", progress_pct=5)
    assert _fingerprint(ledger_store) == before
    _record(ledger_store, flow, "GM-B", quarter="2019Q3", progress_pct=50)
    with pytest.raises(ValidationFailed, match="before the project's latest record"):
        _record(ledger_store, flow, "GM-B", quarter="2019Q2", progress_pct=60)


def test_a_fall_with_a_note_and_a_correction_of_the_same_quarter(ledger_store: LayerStore, flow: StatusFlow) -> None:
    store = ledger_store
    _record(store, flow, "GM-B", quarter="2019Q3", progress_pct=35, note="复核后按实际工程量下调")
    _record(store, flow, "GM-B", quarter="2019Q4", progress_pct=60)
    # a correction of 2019Q4 is judged against the state before 2019Q4 (35 %), not against the 60 % it corrects
    saved = _record(store, flow, "GM-B", quarter="2019Q4", progress_pct=50)
    assert (saved.previous_progress_pct, saved.progress_pct) == (35.0, 50.0)
    records = progress_records(store, project_id="GM-B")
    assert list(zip(records["quarter"], records["progress_pct"], records["superseded"], strict=True)) == [
        ("2019Q3", 35.0, False),
        ("2019Q4", 60.0, True),
        ("2019Q4", 50.0, False),
    ]
    assert _project(store, "GM-B")["progress_pct"] == 50.0
    assert progress_records(store, until_quarter="2019Q3")["quarter"].tolist() == ["2019Q3"]


class _FailingUpdates:
    """The real store, except that layer updates fail (a full disk, a lost connection)."""

    def __init__(self, inner: LayerStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_features(self, layer: str, frame: gpd.GeoDataFrame, *, actor: str = "system") -> int:
        raise StoreError("the disk is full")


def test_a_failed_layer_update_withdraws_the_record(ledger_store: LayerStore, flow: StatusFlow) -> None:
    store = ledger_store
    version = store.layer_version("projects")
    project = _project(store, "GM-A")
    with pytest.raises(StoreError, match="disk is full"):
        record_progress(
            _FailingUpdates(store),
            project_id="GM-A",
            quarter="2019Q1",
            progress_pct=10,  # type: ignore[arg-type]
            status="已开工",
            actor="staff:wang",
            flow=flow,
            today=TODAY,
        )
    assert len(progress_records(store)) == 0
    assert store.layer_version("projects") == version and _project(store, "GM-A") == project
    trail = store.audit_log(layer=PROGRESS_LAYER)
    assert [e.action for e in trail] == ["progress:withdraw", "progress:record"]
    assert trail[0].detail["record_id"] == trail[1].detail["record_id"]
    # the next attempt starts from a clean slate
    _record(store, flow, quarter="2019Q1", progress_pct=10, status="已开工")
    assert progress_records(store)["progress_pct"].tolist() == [10.0]


def test_recording_needs_the_progress_table(store: LayerStore, catalog: Catalog, flow: StatusFlow) -> None:
    store.write("projects", _projects(catalog))  # store.init() only: no geoplan tables beside the layers
    with pytest.raises(StoreError, match="geoplan db init"):
        _record(store, flow, quarter="2019Q1", progress_pct=5)


# --------------------------------------------------------------------------------------------- the ledger table


def _frame_projects(**columns: list[Any]) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, Any] = {
        "project_id": [f"P{i}" for i in range(n)],
        "name": [f"n{i}" for i in range(n)],
        "task_area": ["公共服务优质化"] * n,
        "town": ["荷城街道"] * n,
        "responsible_unit": ["区住建局"] * n,
        "start_year": [2018] * n,
        "end_year": [2019] * n,
        "status": ["在建"] * n,
        "progress_pct": [50.0] * n,
        **{field: [True] * n for field in ASSURANCES},
    }
    base.update(columns)
    return gpd.GeoDataFrame(base, geometry=[None] * n)


def _records(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": list(range(1, len(rows) + 1)),
            "project_id": [r[0] for r in rows],
            "quarter": [r[1] for r in rows],
            "progress_pct": [r[2] for r in rows],
            "status": [r[3] for r in rows],
            "investment_to_date_wan": [None] * len(rows),
            "problems": [""] * len(rows),
            "responsible_unit": ["区住建局"] * len(rows),
            "superseded": [False] * len(rows),
        }
    )


def test_overdue_starts_in_the_last_quarter_of_the_end_year() -> None:
    projects = _frame_projects(
        end_year=[2019, 2019, 2019, 2020],
        status=["在建", "已完工", "暂缓", "在建"],
        progress_pct=[99.0, 100.0, 20.0, 10.0],
    )
    records = _records([])
    by_quarter = {
        q: ledger_table(projects=projects, records=records, as_of_quarter=q)["overdue"].tolist()
        for q in ("2019Q3", "2019Q4", "2020Q1")
    }
    assert by_quarter == {
        "2019Q3": [False, False, False, False],
        "2019Q4": [True, False, True, False],  # suspended projects are overdue as well
        "2020Q1": [True, False, True, False],
    }


def test_status_and_progress_come_from_the_records_as_of_the_quarter() -> None:
    projects = _frame_projects(
        start_year=[2018, 2018, 2020, 2018],
        status=["在建", "在建", "在建", "已开工"],
        progress_pct=[70.0, 60.0, 30.0, 5.0],
    )
    records = _records(
        [("P0", "2018Q2", 10.0, "已开工"), ("P0", "2018Q4", 40.0, "在建"), ("P1", "2019Q2", 20.0, "已开工")]
    )
    table = ledger_table(projects=projects, records=records, as_of_quarter="2019Q1").set_index("project_id")
    assert table.loc["P0", ["status", "progress_pct", "quarter", "source"]].tolist() == [
        "在建",
        40.0,
        "2018Q4",
        "record",
    ]
    assert table.loc["P1", ["status", "progress_pct", "source"]].tolist() == ["前期", 0.0, "before_records"]
    assert table.loc["P2", ["status", "progress_pct", "source"]].tolist() == ["前期", 0.0, "not_started"]
    assert table.loc["P3", ["status", "progress_pct", "source"]].tolist() == ["已开工", 5.0, "layer"]
    missing = _frame_projects(assured_land=[False, None, True, True], assured_unit=[True, True, False, True])
    gaps = ledger_table(projects=missing, records=records, as_of_quarter="2019Q1")
    assert gaps["missing_assurances"].tolist() == [["用地保障"], ["用地保障"], ["责任单位保障"], []]
    assert gaps["missing_count"].tolist() == [1, 1, 1, 0]
    with pytest.raises(InputError, match="assured_funds"):
        ledger_table(projects=missing.drop(columns="assured_funds"), records=records, as_of_quarter="2019Q1")


@pytest.mark.parametrize("as_of", ["2018Q2", "2018Q4", "2019Q3", "2019Q4", "2020Q4"])
def test_the_demo_ledger_equals_an_independent_recomputation(
    demo_store_path: Path, catalog: Catalog, flow: StatusFlow, as_of: str
) -> None:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        table = ledger_table(
            projects=store.read("projects"), records=progress_records(store), as_of_quarter=as_of, flow=flow
        )
    finally:
        store.close()
    expected = independent_ledger(demo_store_path, as_of)
    got = table[["project_id", "status", "progress_pct", "overdue", "missing_assurances"]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    if as_of == "2020Q4":  # the end of the plan: some of everything
        assert 3 <= int(table["overdue"].sum()) < len(table) / 2
        assert int((table["missing_count"] > 0).sum()) >= 3
        assert {"前期", "在建", "已完工", "暂缓"} <= set(table["status"])


def test_filters_pick_task_area_town_and_overdue() -> None:
    projects = _frame_projects(
        task_area=["公共服务优质化", "基础设施一体化", "基础设施一体化"],
        town=["荷城街道", "荷城街道、杨和镇", None],
        end_year=[2019, 2019, 2030],
    )
    table = ledger_table(projects=projects, records=_records([]), as_of_quarter="2020Q1")
    assert filter_ledger(table, task_area="基础设施一体化")["project_id"].tolist() == ["P1", "P2"]
    assert filter_ledger(table, town="杨和镇")["project_id"].tolist() == ["P1"]
    assert filter_ledger(table, town="荷城")["project_id"].tolist() == []  # whole town names only
    assert filter_ledger(table, overdue=True)["project_id"].tolist() == ["P0", "P1"]


# --------------------------------------------------------------------------------------------- the demo history


def test_demo_records_follow_the_flow_and_agree_with_the_layer(
    demo_store_path: Path, catalog: Catalog, flow: StatusFlow
) -> None:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        records = progress_records(store)
        projects = store.read("projects").set_index("project_id")
        trail = store.audit_log(layer=PROGRESS_LAYER)
    finally:
        store.close()
    assert len(records) >= 150 and records["synthetic"].all() and not records["superseded"].any()
    assert records["quarter"].between("2018Q1", "2020Q4").all()
    assert [(e.action, e.feature_count) for e in trail] == [("progress:load", len(records))]
    for pid, history in records.groupby("project_id"):
        project = projects.loc[pid]
        years = history["quarter"].str[:4].astype(int)
        assert (years >= project["start_year"]).all(), pid
        assert history["quarter"].is_unique and history["quarter"].is_monotonic_increasing, pid
        assert np.all(np.diff(history["progress_pct"]) >= 0), pid
        assert np.all(np.diff(history["investment_to_date_wan"]) >= 0), pid
        statuses = [flow.initial, *history["status"]]
        assert all(flow.allows(a, b) for a, b in itertools.pairwise(statuses)), (pid, statuses)
        assert list(history["previous_status"]) == statuses[:-1], pid
        done = history["status"] == flow.completed
        assert (history.loc[done, "progress_pct"] == 100).all() and done.sum() <= 1, pid
        last = history.iloc[-1]
        assert (project["status"], project["progress_pct"]) == (last["status"], last["progress_pct"]), pid
    without = projects.index.difference(records["project_id"].unique())
    assert (projects.loc[without, "start_year"] > 2020).all() and (projects.loc[without, "status"] == "前期").all()


def test_the_demo_history_is_reproducible() -> None:
    from geoplan.demo.geometry import step_rng
    from geoplan.demo.progress import simulate

    def run(seed: int) -> list[dict[str, Any]]:
        rng = step_rng(seed, "project_progress")
        out = []
        for i in range(12):
            out += simulate(
                project_id=f"P{i}", unit="u", invest=1000.0, held_up=i % 5 == 0, held_up_note="x", rng=rng
            ).records
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)
