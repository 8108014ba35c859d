"""Every write is in the audit log (全过程留痕), in both stores: a conflict-patch mark and an indicator snapshot
made through the API, a progress record through the API, a token created and revoked on the command line.

`/api/audit` lists each with who, what, when (Beijing time, +08:00) and which object; the token itself and its
hash appear nowhere in the whole answer; marks and snapshots name the rule files (with an SHA-256 computed here
from the file) that produced them. Filters by kind of action, actor and time narrow the list, and bad values are
refused with a Chinese message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from geoplan.cli import main
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens, tokens_in
from web.app import create_app
from web.settings import WebSettings

BEIJING_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
PROJECT = "GM-2024-001"


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def audited_store(request: pytest.FixtureRequest, demo_store_path: Path, tmp_path: Path) -> tuple[str, Tokens]:
    """The demo in each backend (a copy of the session's GeoPackage, or built into a fresh PostGIS database),
    with a token of each role."""
    if request.param == "gpkg":
        path = tmp_path / "demo.gpkg"
        return str(path), demo_store_with_tokens(path, source=demo_store_path)
    url = request.getfixturevalue("postgis_url")
    assert main(["demo", "--store", url, "--no-snapshots"]) == 0  # the test records its own snapshot
    return url, tokens_in(url)


@pytest.fixture
def client(audited_store: tuple[str, Tokens]) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=audited_store[0], layers_dir=LAYERS_DIR))) as test_client:
        yield test_client


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli_token(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_api_audit_lists_a_mark_a_snapshot_a_ledger_record_and_token_creation_and_revocation(
    audited_store: tuple[str, Tokens], client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    url, tokens = audited_store
    staff, planner, admin = bearer(tokens.staff), bearer(tokens.planner), bearer(tokens.admin)
    newest_before = client.get("/api/audit", params={"limit": 1}, headers=admin).json()[0]["id"]

    # a token made and revoked on the command line
    secret = _cli_token(["token", "create", "--role", "staff", "--name", "外包巡查-1", "--store", url], capsys)
    assert secret.startswith("gp_")
    assert client.get("/api/audit", headers=bearer(secret)).status_code == 200  # it works, so it was made
    assert main(["token", "revoke", "外包巡查-1", "--store", url]) == 0
    assert client.get("/api/audit", headers=bearer(secret)).status_code == 401

    # a planner's mark on a conflict patch
    patches = client.get("/api/overlaps", headers=planner).json()["features"]
    patch_id = patches[0]["id"]
    marked = client.post(
        f"/api/overlaps/{patch_id}/mark", json={"status": "to_adjust", "note": "需避让"}, headers=planner
    )
    assert marked.status_code == 201, marked.text

    # a snapshot of the current quarter, and a progress record, by staff
    shot = client.post("/api/snapshots", headers=staff)
    assert shot.status_code == 201, shot.text
    records = client.get(f"/api/ledger/{PROJECT}/progress", headers=staff).json()["records"]
    last = records[-1]
    # a correction of the latest quarter (a new record that supersedes it): valid whatever the demo's dates
    body = {"quarter": last["quarter"], "progress_pct": last["progress_pct"], "status": last["status"], "note": "复核"}
    recorded = client.post(f"/api/ledger/{PROJECT}/progress", json=body, headers=staff)
    assert recorded.status_code == 201, recorded.text

    answer = client.get("/api/audit", params={"limit": 50}, headers=admin)
    assert answer.status_code == 200
    new = [e for e in answer.json() if e["id"] > newest_before]
    by_action = {e["action"]: e for e in new}
    assert {"token:create", "token:revoke", "mark:record", "snapshot:record", "progress:record"} <= set(by_action)

    # the token: who, what, which object; never the token or its hash, anywhere in the answer
    with side_table_engine(url).connect() as connection:
        token_id, token_hash = connection.execute(
            text("SELECT id, token_hash FROM geoplan_tokens WHERE name = :n"), {"n": "外包巡查-1"}
        ).one()
    for action in ("token:create", "token:revoke"):
        entry = by_action[action]
        assert entry["layer"] == "tokens" and entry["actor"].startswith("cli:")
        assert entry["detail"]["token_id"] == token_id and entry["detail"]["role"] == "staff"
        assert entry["detail"]["name"] == "外包巡查-1"
    assert by_action["token:create"]["action_title"] == "创建令牌"
    assert by_action["token:revoke"]["action_title"] == "撤销令牌"
    assert secret not in answer.text and secret[3:] not in answer.text and token_hash not in answer.text

    # the mark: who, the patch, its rule, status and note, and the rule file it was made under
    mark = by_action["mark:record"]
    assert (mark["layer"], mark["actor"], mark["feature_count"]) == ("conflict_marks", "planner:planner-1", 1)
    assert mark["detail"]["patch_id"] == patch_id and mark["detail"]["ids"] == [patch_id]
    assert (mark["detail"]["status"], mark["detail"]["note"]) == ("to_adjust", "需避让")
    assert mark["detail"]["rule"] == marked.json()["rule"]
    conflicts = LAYERS_DIR / "rules" / "conflicts.yaml"
    assert mark["detail"]["rule_files"] == [{"name": "conflicts.yaml", "sha256": _sha256(conflicts)}]

    # the snapshot: its id and quarter, the definitions and rule files it was computed with
    snapshot = shot.json()["snapshot"]
    entry = by_action["snapshot:record"]
    assert (entry["layer"], entry["actor"]) == ("indicator_snapshots", "staff:staff-1")
    assert entry["detail"]["snapshot_id"] == snapshot["id"] and entry["detail"]["quarter"] == snapshot["quarter"]
    files = {f["name"]: f["sha256"] for f in entry["detail"]["rule_files"]}
    assert files["indicators.yaml"] == _sha256(LAYERS_DIR / "indicators.yaml") == snapshot["definitions_sha256"]
    assert files["conflicts.yaml"] == _sha256(conflicts)
    assert files["coverage.yaml"] == _sha256(LAYERS_DIR / "rules" / "coverage.yaml")

    # the progress record, as before
    progress = by_action["progress:record"]
    assert progress["detail"]["ids"] == [PROJECT] and progress["detail"]["quarter"] == body["quarter"]
    flow = {"name": "project_status.yaml", "sha256": _sha256(LAYERS_DIR / "rules" / "project_status.yaml")}
    assert progress["detail"]["rule_files"] == [flow]

    # times: Beijing time with the offset, the same instants as the rows they describe
    assert all(BEIJING_ISO.match(e["at"]) for e in new), [e["at"] for e in new]
    assert mark["at"] == marked.json()["at"] and entry["at"] == snapshot["taken_at"]
    assert BEIJING_ISO.match(snapshot["taken_at"]) and BEIJING_ISO.match(marked.json()["at"])

    # filters: kind of action, one action, actor, time; bad values are 4xx with a Chinese detail
    tokens_only = client.get("/api/audit", params={"action": "token", "limit": 1000}, headers=admin).json()
    ours = [e["action"] for e in tokens_only if e["detail"].get("name") == "外包巡查-1"]
    assert ours == ["token:revoke", "token:create"] and {e["layer"] for e in tokens_only} == {"tokens"}
    revokes = client.get("/api/audit", params={"action": "token:revoke"}, headers=admin).json()
    assert [e["id"] for e in revokes] == [by_action["token:revoke"]["id"]]
    marks = client.get("/api/audit", params={"action": "mark", "actor": "planner:planner-1"}, headers=admin).json()
    assert [e["id"] for e in marks] == [mark["id"]]
    since = client.get("/api/audit", params={"since": mark["at"], "limit": 1000}, headers=admin).json()
    assert {e["id"] for e in since} == {e["id"] for e in new if e["at"] >= mark["at"]}
    for params in ({"action": "drop table"}, {"since": "昨天"}, {"until": "2024-13-01"}):
        refused = client.get("/api/audit", params=params, headers=admin)
        assert refused.status_code in (400, 422), params
        assert refused.json()["detail"] and re.search(r"[\u4e00-\u9fff]", refused.json()["detail_zh"]), params

    # a role sees in the log only what it may read: staff gets snapshots and records, not marks or tokens
    seen_by_staff = client.get("/api/audit", params={"limit": 50}, headers=staff).json()
    staff_actions = {e["action"] for e in seen_by_staff if e["id"] > newest_before}
    assert {"snapshot:record", "progress:record"} <= staff_actions
    assert not staff_actions & {"mark:record", "token:create", "token:revoke"}
    seen_by_planner = {e["action"] for e in client.get("/api/audit", headers=planner).json()}
    assert "mark:record" in seen_by_planner and not seen_by_planner & {"token:create", "token:revoke"}
    assert json.dumps(seen_by_staff, ensure_ascii=False).count(patch_id) == 0
    # the role filter is part of the query: a page of 3 holds 3 entries staff may see, though a mark and two
    # token entries are among the newest 5
    page = client.get("/api/audit", params={"limit": 3}, headers=staff).json()
    assert [e["id"] for e in page] == [e["id"] for e in seen_by_staff[:3]] and len(page) == 3
    second = client.get("/api/audit", params={"limit": 3, "offset": 3}, headers=staff).json()
    assert [e["id"] for e in second] == [e["id"] for e in seen_by_staff[3:6]]


def test_times_in_api_answers_carry_the_beijing_offset_and_the_audit_page_says_beijing_time(
    demo_client: TestClient, demo_copy: tuple[Path, Tokens]
) -> None:
    """Every time the API sends is ISO 8601 with +08:00 and names the same instant as the stored UTC text."""
    from datetime import datetime

    path, tokens = demo_copy
    staff, planner = bearer(tokens.staff), bearer(tokens.planner)
    shot = demo_client.post("/api/snapshots", headers=staff).json()["snapshot"]
    patch_id = demo_client.get("/api/overlaps", headers=planner).json()["features"][0]["id"]
    demo_client.post(f"/api/overlaps/{patch_id}/mark", json={"status": "resolved", "note": ""}, headers=planner)

    with side_table_engine(str(path)).connect() as connection:
        stored_taken = connection.execute(
            text("SELECT taken_at FROM geoplan_indicator_snapshots WHERE id = :i"), {"i": shot["id"]}
        ).scalar_one()
        stored_mark = connection.execute(
            text("SELECT at FROM geoplan_patch_marks WHERE patch_id = :p ORDER BY id DESC LIMIT 1"), {"p": patch_id}
        ).scalar_one()
        stored_record = connection.execute(
            text("SELECT recorded_at FROM geoplan_project_progress WHERE project_id = :p ORDER BY id DESC LIMIT 1"),
            {"p": PROJECT},
        ).scalar_one()
    assert stored_taken.endswith("+00:00")  # the store keeps UTC; only what leaves it is Beijing time

    def same(sent: str, stored: str) -> bool:
        return bool(BEIJING_ISO.match(sent)) and datetime.fromisoformat(sent) == datetime.fromisoformat(stored)

    snapshots = demo_client.get("/api/snapshots", headers=staff).json()["snapshots"]
    listed = next(s for s in snapshots if s["id"] == shot["id"])
    assert same(listed["taken_at"], stored_taken) and same(shot["taken_at"], stored_taken)
    assert all(BEIJING_ISO.match(s["as_of"]) for s in snapshots)
    indicators = demo_client.get("/api/indicators", params={"only": "culture_coverage"}, headers=staff).json()
    assert BEIJING_ISO.match(indicators["as_of"])
    assert all(BEIJING_ISO.match(r["as_of"]) for i in indicators["indicators"] for r in i["rows"] if "as_of" in r)
    history = demo_client.get("/api/indicators/culture_coverage/history", headers=staff).json()["history"]
    assert history and all(BEIJING_ISO.match(h["taken_at"]) and BEIJING_ISO.match(h["as_of"]) for h in history)
    dashboard = demo_client.get("/api/dashboard", headers=staff).json()
    assert BEIJING_ISO.match(dashboard["as_of"])
    assert dashboard["as_of_local"] == datetime.fromisoformat(dashboard["as_of"]).strftime("%Y-%m-%d %H:%M")
    records = demo_client.get(f"/api/ledger/{PROJECT}/progress", headers=staff).json()["records"]
    assert same(records[-1]["recorded_at"], stored_record)
    patch = demo_client.get(f"/api/overlaps/{patch_id}", headers=planner).json()
    assert same(patch["mark"]["at"], stored_mark) and same(patch["patch"]["properties"]["mark_at"], stored_mark)

    page = demo_client.get("/audit").text
    assert "时间（北京时间）" in page and "起始日期（北京时间）" in page
    for kind, title in (("mark", "冲突图斑标记"), ("snapshot", "指标快照"), ("token", "令牌创建与撤销")):
        assert f'<option value="{kind}">{title}</option>' in page
