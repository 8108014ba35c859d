"""The ledger and audit APIs on a copy of the demo store: staff+ only, numbers equal to an independent
recomputation, records that update the layer and show up in the audit log with their field diffs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.monitoring.ledger_store import PROGRESS_LAYER
from geoplan.storage import AuditEntry
from geoplan.storage.gpkg import GeoPackageStore
from tests.monitoring.ledger_reference import independent_ledger
from tests.web.conftest import Tokens, bearer
from tests.web.script_checks import assert_builds_no_html_from_strings
from web.routers.audit import entry_json, feature_changes


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_nan(document: object) -> None:
    text = json.dumps(document, allow_nan=False)  # raises on NaN / Infinity
    assert "NaN" not in text


def test_everything_needs_a_staff_token(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    tokens = demo_copy[1]
    for path in ("/api/ledger", "/api/ledger/GM-2024-001/progress", "/api/audit", "/api/audit/layers"):
        assert demo_client.get(path).status_code == 401, path
        assert demo_client.get(path, headers=bearer("gp_not-a-token")).status_code == 401, path
        for token in (tokens.staff, tokens.planner, tokens.admin):
            assert demo_client.get(path, headers=bearer(token)).status_code == 200, path
    digest = _sha256(demo_copy[0])
    body = {"quarter": "2021Q1", "progress_pct": 99}
    assert demo_client.post("/api/ledger/GM-2024-001/progress", json=body).status_code == 401
    assert _sha256(demo_copy[0]) == digest
    # the public map's data never carries the ledger's private fields
    public = demo_client.get("/ogc/collections/projects/items", params={"limit": 100}).json()["features"]
    assert public and not any(
        k.startswith("assured_") or k == "investment_wan" for f in public for k in f["properties"]
    )


@pytest.mark.parametrize("quarter", [None, "2019Q2", "2020Q4"])
def test_the_ledger_equals_an_independent_recomputation(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens], quarter: str | None
) -> None:
    params = {"quarter": quarter} if quarter else {}
    answer = demo_client.get("/api/ledger", params=params, headers=bearer(demo_copy[1].staff)).json()
    _no_nan(answer)
    as_of = quarter or "2020Q4"  # the latest recorded quarter by default
    assert answer["as_of_quarter"] == as_of and answer["synthetic"] is True
    expected = independent_ledger(demo_copy[0], as_of)
    got = [
        (p["project_id"], p["status"], p["progress_pct"], p["overdue"], p["missing_assurances"])
        for p in answer["projects"]
    ]
    assert got == list(expected.itertuples(index=False, name=None))
    assert answer["totals"] == {
        "projects": len(expected),
        "overdue": int(expected["overdue"].sum()),
        "missing_assurances": int(expected["missing_assurances"].map(len).gt(0).sum()),
    }


def test_ledger_filters(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    headers = bearer(demo_copy[1].staff)
    full = demo_client.get("/api/ledger", headers=headers).json()["projects"]
    overdue = demo_client.get("/api/ledger", params={"overdue": "true"}, headers=headers).json()["projects"]
    assert [p["project_id"] for p in overdue] == [p["project_id"] for p in full if p["overdue"]] and overdue
    town = demo_client.get("/api/ledger", params={"town": "杨和镇"}, headers=headers).json()["projects"]
    assert [p["project_id"] for p in town] == [
        p["project_id"] for p in full if "杨和镇" in (p["town"] or "").split("、")
    ]
    area = demo_client.get("/api/ledger", params={"task_area": "公共服务优质化"}, headers=headers).json()["projects"]
    assert {p["task_area"] for p in area} == {"公共服务优质化"} and len(area) >= 3
    assert demo_client.get("/api/ledger", params={"quarter": "2019-Q2"}, headers=headers).status_code == 400


def test_a_record_through_the_api_updates_the_layer_and_the_audit(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens], catalog: Catalog
) -> None:
    tokens = demo_copy[1]
    before = demo_client.get("/api/ledger/GM-2024-001/progress", headers=bearer(tokens.staff)).json()["records"]
    assert before and all(r["synthetic"] for r in before)
    last = before[-1]
    body = {
        "quarter": "2021Q1",
        "progress_pct": last["progress_pct"] + 4,
        "investment_to_date_wan": 5000,
        "problems": "<script>alert(1)</script>",
        "status": last["status"],
    }
    response = demo_client.post("/api/ledger/GM-2024-001/progress", json=body, headers=bearer(tokens.staff))
    assert response.status_code == 201, response.text
    saved = response.json()
    assert (saved["recorded_by"], saved["quarter"], saved["layer_updated"]) == ("staff:staff-1", "2021Q1", True)
    after = demo_client.get("/api/ledger/GM-2024-001/progress", headers=bearer(tokens.staff)).json()["records"]
    assert len(after) == len(before) + 1 and after[-1]["problems"] == "<script>alert(1)</script>"

    store = GeoPackageStore(demo_copy[0], catalog)
    try:
        project = store.read("projects", where={"project_id": "GM-2024-001"}).iloc[0]
    finally:
        store.close()
    assert float(project["progress_pct"]) == body["progress_pct"]

    trail = demo_client.get("/api/audit", params={"id": "GM-2024-001", "limit": 2}, headers=bearer(tokens.staff)).json()
    assert [(e["layer"], e["action"], e["actor"]) for e in trail] == [
        ("projects", "update", "staff:staff-1"),
        (PROGRESS_LAYER, "progress:record", "staff:staff-1"),
    ]
    update = trail[0]["changes"]
    assert [c["kind"] for c in update] == ["changed"] and update[0]["geometry_changed"] is False
    assert {d["field"]: (d["before"], d["after"]) for d in update[0]["fields"]} == {
        "progress_pct": (last["progress_pct"], body["progress_pct"])
    }
    record = trail[1]["changes"][0]
    assert record["kind"] == "added"
    assert {d["field"]: d["after"] for d in record["fields"]}["investment_to_date_wan"] == 5000
    assert trail[1]["layer_title"] == "项目季度进度记录"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"quarter": "2021Q1", "progress_pct": 1}, 422, "add a note"),
        ({"quarter": "2021Q1", "progress_pct": 50, "status": "前期"}, 422, "cannot change to 前期"),
        ({"quarter": "2099Q1", "progress_pct": 99}, 422, "future"),
        ({"quarter": "2021Q1", "progress_pct": 99, "colour": "red"}, 422, "extra"),
        ({"quarter": "2021Q1", "progress_pct": "NaN"}, 422, "finite"),
        ({"quarter": "2021Q1"}, 422, "progress_pct"),
        ({"quarter": "2021Q1", "progress_pct": 99, "problems": "x" * 2001}, 422, "2000"),
    ],
)
def test_refused_records_change_nothing(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens], body: dict[str, object], status: int, message: str
) -> None:
    digest = _sha256(demo_copy[0])
    response = demo_client.post("/api/ledger/GM-2024-001/progress", json=body, headers=bearer(demo_copy[1].staff))
    assert response.status_code == status, response.text
    assert message in response.text
    assert _sha256(demo_copy[0]) == digest


def test_unknown_project_oversize_and_bad_json(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    headers = bearer(demo_copy[1].staff)
    digest = _sha256(demo_copy[0])
    assert (
        demo_client.post(
            "/api/ledger/GM-0000-000/progress", json={"quarter": "2021Q1", "progress_pct": 5}, headers=headers
        ).status_code
        == 404
    )
    assert demo_client.get("/api/ledger/GM-0000-000/progress", headers=headers).status_code == 404
    big = {"quarter": "2021Q1", "progress_pct": 5, "note": "x" * 40_000}
    assert demo_client.post("/api/ledger/GM-2024-001/progress", json=big, headers=headers).status_code == 413
    assert (
        demo_client.post("/api/ledger/GM-2024-001/progress", content=b"{not json", headers=headers).status_code == 400
    )
    assert _sha256(demo_copy[0]) == digest


def test_audit_filters_over_http(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    tokens = demo_copy[1]
    headers = bearer(tokens.admin)
    body = {"quarter": "2021Q1", "progress_pct": 100, "status": "已完工"}
    started = demo_client.get("/api/ledger", headers=headers).json()["projects"]
    pid = next(p["project_id"] for p in started if p["status"] == "在建")
    assert demo_client.post(f"/api/ledger/{pid}/progress", json=body, headers=bearer(tokens.planner)).status_code == 201
    everything = demo_client.get("/api/audit", params={"limit": 1000}, headers=headers).json()
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    by_actor = demo_client.get("/api/audit", params={"actor": "planner:planner-1"}, headers=headers).json()
    assert [(e["layer"], e["action"]) for e in by_actor] == [
        ("projects", "update"),
        (PROGRESS_LAYER, "progress:record"),
    ]
    progress = demo_client.get("/api/audit", params={"layer": PROGRESS_LAYER}, headers=headers).json()
    assert [e["action"] for e in progress] == ["progress:record", "progress:load"]
    assert progress[1]["changes"] == [] and progress[1]["detail"]["records"] >= 150
    page = demo_client.get("/api/audit", params={"limit": 2, "offset": 1}, headers=headers).json()
    assert [e["id"] for e in page] == [e["id"] for e in everything[1:3]]
    today = everything[0]["at"][:10]
    recent = demo_client.get("/api/audit", params={"since": today, "limit": 1000}, headers=headers).json()
    assert [e["id"] for e in recent] == [e["id"] for e in everything if e["at"] >= today]
    assert {e["layer"] for e in recent} >= {"projects", PROGRESS_LAYER}  # the demo's history is dated 2017–2021
    start = demo_client.get("/api/audit", params={"until": "2017-07-01", "limit": 1000}, headers=headers).json()
    assert start and all(e["at"].startswith("2017-07-01") and e["actor"] == "geoplan demo" for e in start)
    assert demo_client.get("/api/audit", params={"until": "2000-01-01"}, headers=headers).json() == []
    assert demo_client.get("/api/audit", params={"since": "last week"}, headers=headers).status_code == 400
    assert demo_client.get("/api/audit", params={"limit": 5000}, headers=headers).status_code == 422
    layers = demo_client.get("/api/audit/layers", headers=headers).json()
    assert {"projects", PROGRESS_LAYER} <= {layer["name"] for layer in layers}


def test_audit_entries_show_only_the_fields_a_role_may_read(catalog: Catalog) -> None:
    def feature(status: str, funds: bool) -> dict[str, object]:
        return {
            "type": "Feature",
            "id": "GM-1",
            "geometry": {"type": "Point", "coordinates": [112.8, 22.9]},
            "properties": {"project_id": "GM-1", "status": status, "assured_funds": funds},
        }

    entry = AuditEntry(
        "2024-05-01T00:00:00+00:00",
        "staff:x",
        "projects",
        "update",
        1,
        {"ids": ["GM-1"], "before": [feature("在建", False)], "after": [feature("已完工", True)]},
        7,
    )
    staff = entry_json(entry, catalog, Role.STAFF)
    assert staff is not None
    assert {d["field"] for d in staff["changes"][0]["fields"]} == {"status", "assured_funds"}
    public = entry_json(entry, catalog, Role.PUBLIC)  # the public may read the layer, not its private fields
    assert public is not None
    assert [d["field"] for d in public["changes"][0]["fields"]] == ["status"]
    assert "assured_funds" not in json.dumps(public)
    private = AuditEntry("2024-05-01T00:00:00+00:00", "planner:x", "landuse_plan", "update", 1, {"ids": ["LU-1"]}, 8)
    assert entry_json(private, catalog, Role.PUBLIC) is None  # nor entries of private layers


def test_feature_changes_kinds() -> None:
    a = {"id": "1", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"x": 1, "y": "a"}}
    b = {"id": "1", "geometry": {"type": "Point", "coordinates": [1, 3]}, "properties": {"x": 1, "y": "b"}}
    c = {"id": "2", "geometry": None, "properties": {"x": 5}}
    changes = feature_changes([a, c], [b], fields=["x", "y"])
    assert changes == [
        {
            "id": "1",
            "kind": "changed",
            "fields": [{"field": "y", "before": "a", "after": "b"}],
            "geometry_changed": True,
        },
        {
            "id": "2",
            "kind": "removed",
            "fields": [{"field": "x", "before": 5, "after": None}],
            "geometry_changed": False,
        },
    ]
    assert feature_changes(None, None, fields=["x"]) == []
    assert feature_changes(None, [c], fields=["x"])[0]["kind"] == "added"


def test_audit_script_builds_no_html_from_strings() -> None:
    assert_builds_no_html_from_strings("geoplan-audit.js")
