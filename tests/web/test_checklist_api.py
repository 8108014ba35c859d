"""The village checklist over HTTP: the map per item and quarter as GeoJSON (with the shares per town), recording
states (audited under the caller), and clear 4xx answers for bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from tests.web.conftest import Tokens, bearer


def _state_by_hand(path: Path, item: str, quarter: str) -> dict[str, str]:
    """Each village's latest record of the item up to the quarter, read straight from the table."""
    with sqlite3.connect(path) as connection:
        records = pd.read_sql(
            "SELECT id, village_code, quarter, state FROM geoplan_village_checklist WHERE item = ? AND quarter <= ?",
            connection,
            params=(item, quarter),
        )
    latest = records.sort_values(["quarter", "id"]).groupby("village_code").tail(1)
    return dict(zip(latest["village_code"], latest["state"], strict=True))


def test_the_map_per_item_and_quarter(demo_client: TestClient, demo_copy: tuple[Path, Tokens]) -> None:
    staff = bearer(demo_copy[1].staff)
    assert demo_client.get("/api/checklist/toilets").status_code == 401
    items = demo_client.get("/api/checklist/items", headers=staff).json()["items"]
    assert [i["code"] for i in items][:2] == ["five_good", "toilets"]
    for quarter in ("2017Q4", "2019Q2", "2020Q4"):
        response = demo_client.get("/api/checklist/toilets", params={"quarter": quarter}, headers=staff)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/geo+json")
        body = response.json()
        assert body["quarter"] == quarter and body["synthetic"] is True
        by_hand = _state_by_hand(demo_copy[0], "toilets", quarter)
        features = body["features"]
        assert len(features) == len(by_hand) == 77  # 81 units less the 4 virtual ones
        for feature in features:
            props = feature["properties"]
            assert props["state"] == by_hand[props["village_code"]]
            assert props["achieved"] == (props["state"] == "已完成")
            assert feature["geometry"]["type"] == "MultiPolygon"
        district = body["towns"][-1]
        done = sum(state == "已完成" for state in by_hand.values())
        assert district == {"town": "全区", "villages": 77, "achieved": done, "share_pct": round(100 * done / 77, 2)}
        assert sum(t["achieved"] for t in body["towns"][:-1]) == done


def test_recording_is_audited_and_bad_input_is_a_clear_4xx(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens]
) -> None:
    staff = bearer(demo_copy[1].staff)
    code = "440608106202"  # 岗水村委会
    record = {"village_code": code, "item": "culture_centre", "state": "已建", "quarter": "2020Q4", "note": "验收"}
    response = demo_client.post("/api/checklist/records", json={"records": [record]}, headers=staff)
    assert response.status_code == 201, response.text
    assert response.json()["records"] == 1
    after = demo_client.get("/api/checklist/culture_centre", params={"quarter": "2020Q4"}, headers=staff).json()
    mine = next(f for f in after["features"] if f["properties"]["village_code"] == code)
    assert mine["properties"]["state"] == "已建" and mine["properties"]["since"] == "2020Q4"
    audit = demo_client.get("/api/audit", params={"layer": "village_checklist"}, headers=bearer(demo_copy[1].admin))
    assert audit.status_code == 200, audit.text
    mine_entry = next(e for e in audit.json() if e["action"] == "checklist:record")
    assert mine_entry["actor"] == "staff:staff-1" and mine_entry["layer_title"].startswith("村居检查记录")
    assert {c["field"]: c["after"] for c in mine_entry["changes"][0]["fields"]}["state"] == "已建"
    for bad, status, zh in (
        ({**record, "village_code": "440608999999"}, 400, "代码不存在"),
        ({**record, "village_code": "440608400498"}, 400, "虚拟单位"),
        ({**record, "item": "toilet"}, 400, "未知的检查项"),
        ({**record, "state": "完成"}, 400, "无效"),
        ({**record, "quarter": "2020-Q4"}, 400, "季度"),
        ({**record, "color": "red"}, 422, ""),
    ):
        answer = demo_client.post("/api/checklist/records", json={"records": [bad]}, headers=staff)
        assert answer.status_code == status, (bad, answer.text)
        assert answer.json()["detail"] and answer.json()["detail_zh"], answer.text
        assert zh in answer.json()["detail_zh"], answer.text
    assert demo_client.get("/api/checklist/nope", headers=staff).status_code == 400
    assert demo_client.get("/api/checklist/toilets", params={"quarter": "2020Q9"}, headers=staff).status_code == 400
