"""The monitoring API (/api/indicators, history, warnings, snapshots) on a copy of the Gaoming demo store.

The API's numbers are compared with what geoplan.monitoring computes directly on the same store (the indicator
values themselves are checked against independent recomputations in tests/monitoring/test_indicators.py), and
the issue's story runs through it: a snapshot, a new cultural facility, a second snapshot, and the coverage
change in the history.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.services.indicators import compute_indicators
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer


def _rows(body: dict[str, Any], indicator: str) -> dict[str, Any]:
    found = next(i for i in body["indicators"] if i["id"] == indicator)
    return {row["scope_key"]: row for row in found["rows"]}


def test_every_route_needs_a_staff_token(demo_client: TestClient) -> None:
    for method, url in (
        ("GET", "/api/indicators"),
        ("GET", "/api/indicators/culture_coverage/history"),
        ("GET", "/api/warnings"),
        ("GET", "/api/snapshots"),
        ("POST", "/api/snapshots"),
    ):
        assert demo_client.request(method, url).status_code == 401, url
        assert demo_client.request(method, url, headers=bearer("not-a-token")).status_code == 401, url


def test_indicators_match_the_library_and_carry_their_targets(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens], catalog: Catalog
) -> None:
    response = demo_client.get("/api/indicators", headers=bearer(demo_copy[1].staff))
    assert response.status_code == 200
    body = response.json()
    store = GeoPackageStore(demo_copy[0], catalog)
    try:
        direct = compute_indicators(store, layers_dir=LAYERS_DIR).table
        cases_layer = store.read("illegal_construction")
    finally:
        store.close()
    assert body["current"] is True and re.fullmatch(r"\d{4}Q[1-4]", body["quarter"])
    assert len(body["definitions_sha256"]) == 64
    assert {"villages", "culture_facilities", "population"} <= set(body["synthetic_layers"])
    assert [i["id"] for i in body["indicators"]] == list(dict.fromkeys(direct["indicator"]))
    for indicator in body["indicators"]:
        assert {"title_zh", "title_en", "unit", "targets", "good_direction", "scopes", "rows"} <= set(indicator)
        expected = direct[direct["indicator"] == indicator["id"]]
        assert len(indicator["rows"]) == len(expected)
        for row, want in zip(indicator["rows"], expected.to_dict("records"), strict=True):
            assert (row["scope"], row["scope_key"]) == (want["scope"], want["scope_key"])
            if math.isnan(want["value"]):
                assert row["value"] is None and row["note"]
            else:
                assert row["value"] == pytest.approx(want["value"], rel=1e-12)
            assert row["target_met"] == want["target_met"]
    sponge = next(i for i in body["indicators"] if i["id"] == "sponge_share")
    assert sponge["targets"] == [{"value": 20.0, "comparison": ">=", "year": 2020}]  # the plan's (layers/plan.yaml)
    cases = _rows(body, "illegal_cases_open")[""]
    unclosed = (cases_layer["demolished_on"].fillna("") == "") & (cases_layer["legalised_on"].fillna("") == "")
    assert cases["value"] == int(unclosed.sum()) > 0 and not cases["note"]
    only = demo_client.get("/api/indicators?only=sponge_share,library_towns", headers=bearer(demo_copy[1].staff)).json()
    assert [i["id"] for i in only["indicators"]] == ["library_towns", "sponge_share"]  # file order
    assert demo_client.app.state.indicator_cache.computations == 1  # the second request was served from memory


def test_snapshot_edit_snapshot_shows_the_coverage_change(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens]
) -> None:
    staff = bearer(demo_copy[1].staff)
    first = demo_client.post("/api/snapshots", headers=staff)
    assert first.status_code == 201, first.text
    assert first.json()["snapshot"]["actor"] == "staff:staff-1" and first.json()["warnings"] > 0
    # a new 综合性文化服务中心 in 更合镇, on a street node `geoplan suggest-sites` picks there (people it newly covers;
    # the town seat itself is already within reach once people link to the nearest street)
    feature = {
        "type": "Feature",
        "properties": {"facility_id": "NEW-001", "name": "更合镇综合文化服务中心", "kind": "综合性文化服务中心"},
        "geometry": {"type": "Point", "coordinates": [112.57313, 22.79169]},
    }
    added = demo_client.post("/api/layers/culture_facilities/features", json=feature, headers=staff)
    assert added.status_code == 201, added.text
    second = demo_client.post("/api/snapshots", json={"quarter": first.json()["snapshot"]["quarter"]}, headers=staff)
    assert second.status_code == 201, second.text
    assert demo_client.app.state.indicator_cache.computations == 2  # the edit changed the key
    town = demo_client.get("/api/indicators/culture_coverage/history?scope_key=更合镇", headers=staff).json()
    values = [row["value"] for row in town["history"]][-2:]  # after the demo's own 2017Q4–2020Q4
    assert len(town["history"]) == 15 and values[1] > values[0]
    assert [row["snapshot_id"] for row in town["history"]][-2:] == [
        first.json()["snapshot"]["id"],
        second.json()["snapshot"]["id"],
    ]
    assert town["indicator"]["title_zh"] == "十分钟文化圈人口覆盖率"
    district = demo_client.get("/api/indicators/culture_coverage/history?scope_key=", headers=staff).json()["history"]
    assert district[-1]["value"] > district[-2]["value"]
    assert (
        demo_client.get("/api/snapshots", headers=staff).json()["snapshots"][-1]["id"]
        == second.json()["snapshot"]["id"]
    )
    found = demo_client.get("/api/warnings", headers=staff).json()
    assert found["snapshot"]["id"] == second.json()["snapshot"]["id"]
    assert found["previous_snapshot_id"] == first.json()["snapshot"]["id"]
    kinds = {(w["indicator"], w["scope_key"], w["warning"]) for w in found["warnings"]}
    assert ("culture_coverage", "更合镇", "target_missed") in kinds
    assert ("library_towns", "更合镇", "target_missed") in kinds  # the demo leaves 更合镇 without a library
    assert not any(
        w["warning"] == "wrong_direction" and w["indicator"] == "culture_coverage" for w in found["warnings"]
    )
    assert all(w["title_zh"] for w in found["warnings"])
    earlier = demo_client.get(f"/api/warnings?snapshot_id={first.json()['snapshot']['id']}", headers=staff).json()
    assert earlier["previous_snapshot_id"] == district[-3]["snapshot_id"]  # the demo's 2020Q4
    assert not any(
        w["warning"] == "wrong_direction" and w["indicator"] == "culture_coverage" for w in earlier["warnings"]
    )


def test_bad_requests_answer_4xx_with_a_reason(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    staff = bearer(demo_copy[1].staff)
    for url, status, reason in (
        ("/api/indicators?quarter=2026Q5", 400, "invalid quarter"),
        ("/api/indicators?as_of=2026-01-01&quarter=2026Q1", 400, "not both"),
        ("/api/indicators?as_of=2999-01-01", 400, "in the future"),
        ("/api/indicators?as_of=2000-01-01", 400, "did not exist yet"),  # the demo's history begins in 2017
        ("/api/indicators?only=nope", 404, "culture_coverage"),
        ("/api/indicators/nope/history", 404, "unknown indicator"),
        ("/api/warnings?snapshot_id=42", 404, "no indicator snapshot 42"),
    ):
        response = demo_client.get(url, headers=staff)
        assert response.status_code == status, url
        assert reason in response.json()["detail"], url
    for body, reason in (
        ({"quarter": "2099Q1"}, "has not begun"),
        ({"quarter": 2026}, "quarter must be text"),
        ({"when": "now"}, "the body must be"),
    ):
        response = demo_client.post("/api/snapshots", json=body, headers=staff)
        assert response.status_code == 400 and reason in response.json()["detail"], body
    garbage = demo_client.post("/api/snapshots", content=b"{not json", headers=staff)
    assert garbage.status_code == 400
    big = demo_client.post("/api/snapshots", content=b" " * 5000 + b"{}", headers=staff)
    assert big.status_code == 413
    shots = demo_client.get("/api/snapshots", headers=staff).json()["snapshots"]
    assert {s["actor"] for s in shots} == {"geoplan demo"} and len(shots) == 13  # the demo's own: nothing recorded
    latest = demo_client.get("/api/warnings", headers=staff).json()
    assert latest["snapshot"]["id"] == shots[-1]["id"] and latest["previous_snapshot_id"] == shots[-2]["id"]
