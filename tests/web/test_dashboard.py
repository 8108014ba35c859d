"""The monitoring dashboard and the report download over HTTP (FastAPI's TestClient) on a copy of the Gaoming demo
store: who may see what, that every indicator is shown with the numbers and targets of the indicator API and
layers/indicators.yaml, that the charts are SVG trees within the allowed lists and carry the indicator rows'
numbers, and the must-show: a snapshot, an edit adding a cultural facility, a second snapshot -> the history
and the trend chart show the coverage rise.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from geoplan.monitoring.asof import as_of_now
from geoplan.reporting.svg import ATTRIBUTES, ELEMENTS
from tests.conftest import LAYERS_DIR
from tests.monitoring.uncovered import facility_feature, uncovered_site
from tests.web.conftest import Tokens, bearer
from tests.web.module_demo import demo, tokens
from tests.web.script_checks import assert_builds_no_html_from_strings, script_code
from web.app import create_app
from web.settings import WebSettings

DEFINITIONS = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
INDICATOR_IDS = [d["id"] for d in DEFINITIONS]
LIFE_CIRCLE_IDS = [d["id"] for d in DEFINITIONS if d["kind"].startswith("life_circle_")]
SCRIPT = "geoplan-dashboard.js"

__all__ = ["demo", "tokens"]  # the module's copy of the demo store (the snapshots and an edit go to it)


@pytest.fixture(scope="module")
def client(demo: tuple[Path, Tokens]) -> Iterator[TestClient]:
    settings = WebSettings(store=str(demo[0]), layers_dir=LAYERS_DIR)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def dashboard(client: TestClient, tokens: Tokens) -> dict[str, Any]:
    response = client.get("/api/dashboard", headers=bearer(tokens.staff))
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def indicators(client: TestClient, tokens: Tokens, dashboard: dict[str, Any]) -> dict[str, Any]:
    """The indicator API for the quarter the dashboard opens on (the plan's last, once today is past it)."""
    response = client.get(f"/api/indicators?quarter={dashboard['quarter']}", headers=bearer(tokens.staff))
    assert response.status_code == 200, response.text
    return {i["id"]: i for i in response.json()["indicators"]}


def _walk(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield tree
    for child in tree.get("children", []):
        yield from _walk(child)


# --------------------------------------------------------------------------------------------- the page, access


def test_the_page_is_public_empty_and_links_to_the_maps(client: TestClient, dashboard: dict[str, Any]) -> None:
    response = client.get("/dashboard")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy and "cdn" not in policy
    html = response.text
    assert 'id="gp-login"' in html and '<script src="/static/geoplan-dashboard.js"></script>' in html
    # No figure is in the page: they come from the API, with a token.
    assert not any(ident in html for ident in INDICATOR_IDS)
    assert dashboard["indicators"][0]["value_text"] not in html
    links = re.findall(r'<a href="([^"]+)">', html.split('class="gp-dash-links"')[1].split("</nav>")[0])
    assert {"/", "/coverage", "/planner", "/layers/projects", "/layers/sponge_areas", "/audit"} <= set(links)
    for link in links:
        assert client.get(link).status_code == 200, link
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_the_data_needs_a_staff_token(client: TestClient, tokens: Tokens) -> None:
    for path in ("/api/dashboard", "/api/report?format=html"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer("gp_not-a-token")).status_code == 401
    for token in (tokens.planner, tokens.admin):  # every role with a token is at least staff
        assert client.get("/api/dashboard", headers=bearer(token)).status_code == 200


def test_a_quarter_that_cannot_be_shown_is_refused_with_the_reason(client: TestClient, tokens: Tokens) -> None:
    """Refused with the reason, in English (`detail`) and in Chinese for the page (`detail_zh`)."""
    future = client.get("/api/dashboard?quarter=2099Q1", headers=bearer(tokens.staff))
    current = as_of_now().quarter
    assert future.status_code == 400
    assert future.json() == {
        "detail": f"quarter 2099Q1 has not begun yet; the current quarter is {current}",
        "detail_zh": f"2099Q1 尚未开始（当前为 {current}）：指标只能反映过去和现在。",
    }
    garbled = client.get("/api/dashboard?quarter=Q3-2026", headers=bearer(tokens.staff))
    assert garbled.status_code == 400
    assert garbled.json()["detail_zh"] == "季度“Q3-2026”的写法不对：请写成 YYYYQn，如 2019Q2。"
    response = client.get("/api/dashboard?quarter=2017Q2", headers=bearer(tokens.staff))  # before the plan began
    assert response.status_code == 400 and "did not exist yet" in response.json()["detail"]
    zh = response.json()["detail_zh"]
    assert zh == "所选时点（2017-06-30）数据尚未录入：栅格图层“人口栅格”最早于 2017-07-01 写入，请选择此后的时点。"


def test_it_opens_on_the_plans_last_quarter_and_offers_the_quarters_with_data(
    client: TestClient, tokens: Tokens, dashboard: dict[str, Any]
) -> None:
    """Today (2026) is past the plan (layers/plan.yaml: 2017Q3–2019Q4, monitored to 2020Q4)."""
    plan = yaml.safe_load((LAYERS_DIR / "plan.yaml").read_text())["plan"]
    assert dashboard["plan"]["monitored_until"] == plan["monitored_until"] == "2020Q4"
    assert dashboard["quarter"] == "2020Q4" and dashboard["current"] is False
    assert dashboard["as_of"] == "2020-12-31T23:59:59+08:00"  # the quarter's end, in Beijing time
    expected = [f"{y}Q{q}" for y in range(2017, 2021) for q in range(1, 5)][2:]
    assert dashboard["quarters"] == expected  # the demo's data begin on 2017-07-01
    assert [s["quarter"] for s in dashboard["snapshots"]] == expected[1:]  # the demo's snapshots 2017Q4–2020Q4
    now = client.get("/api/dashboard?quarter=now", headers=bearer(tokens.staff)).json()
    assert now["current"] is True and now["quarter"] == str(as_of_now().quarter)
    asked = client.get("/api/dashboard?quarter=2018Q3", headers=bearer(tokens.staff)).json()
    assert asked["quarter"] == "2018Q3" and asked["as_of"] == "2018-09-30T23:59:59+08:00"


# --------------------------------------------------------------------------------------------- the figures


def test_every_indicator_is_shown_with_its_target_and_the_api_numbers(
    dashboard: dict[str, Any], indicators: dict[str, Any]
) -> None:
    assert [i["id"] for i in dashboard["indicators"]] == INDICATOR_IDS
    for shown, definition in zip(dashboard["indicators"], DEFINITIONS, strict=True):
        ident = shown["id"]
        assert shown["title_zh"] == definition["title_zh"] and shown["unit"] == definition["unit"]
        assert [(t["value"], t["comparison"], t["year"]) for t in shown["targets"]] == [
            (float(t["value"]), t["comparison"], t.get("year")) for t in definition.get("targets") or []
        ]
        api = indicators[ident]
        assert [(r["scope"], r["scope_key"], r["value"], r["target_met"]) for r in shown["rows"]] == [
            (r["scope"], r["scope_key"], r["value"], r["target_met"]) for r in api["rows"]
        ], ident
        district = [r for r in api["rows"] if r["scope"] == "district"]
        assert shown["value"] == (district[0]["value"] if district else None), ident
        if district and district[0]["target_met"] is not None:
            assert shown["state"] == ("met" if district[0]["target_met"] else "missed"), ident
        if definition.get("targets"):
            assert shown["target_text"] != "—", ident  # a target is shown whenever one is defined
    coverage = next(i for i in dashboard["indicators"] if i["id"] == "culture_coverage")
    assert coverage["value_text"] == f"{coverage['value']:.1f}%"
    assert coverage["target_text"] == "≥ 90%（2019）"  # the plan's target (its end year), not a later one
    assert {link["href"] for link in coverage["links"]} >= {"/coverage"}


def test_the_charts_are_allowed_svg_trees_carrying_the_rows(
    dashboard: dict[str, Any], indicators: dict[str, Any]
) -> None:
    charts = {c["id"]: c for c in dashboard["charts"]}
    assert set(charts) == {"progress", "coverage", "sponge"}
    # one trend per indicator outside the life-circle group, and the group's two (services; completeness)
    assert len(dashboard["trends"]) == len(INDICATOR_IDS) - len(LIFE_CIRCLE_IDS) + 2
    for chart in [*dashboard["charts"], *dashboard["trends"]]:
        for node in _walk(chart["svg"]):
            assert node["tag"] in ELEMENTS, node["tag"]
            for name, value in node["attrs"].items():
                assert name in ATTRIBUTES or re.fullmatch(r"data-[a-z0-9-]+", name), name
                assert "javascript:" not in value.lower()

    def bars(chart_id: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for node in _walk(charts[chart_id]["svg"]):
            if node["attrs"].get("class") == "gp-bar":
                key = node["attrs"]["data-category"]
                out[key] = out.get(key, 0.0) + float(node["attrs"]["data-value"])
        return out

    towns = {r["scope_key"]: r["value"] for r in indicators["culture_coverage"]["rows"] if r["scope"] == "town"}
    assert bars("coverage") == pytest.approx({k: v for k, v in towns.items() if v})  # zero-length bars are left out
    sponge = [n for n in _walk(charts["sponge"]["svg"]) if n["attrs"].get("class") == "gp-target"]
    assert sorted(float(n["attrs"]["data-value"]) for n in sponge) == [20.0]  # the plan's 2020 target
    progress = bars("progress")
    by_area = {
        r["scope_key"]: r["value"] for r in indicators["projects_completed"]["rows"] if r["scope"] == "task_area"
    }
    totals = {
        r["scope_key"]: r["value"] for r in indicators["projects_by_status"]["rows"] if r["scope"] == "task_area_status"
    }
    assert set(progress) == set(by_area)
    for area, total in progress.items():
        assert total == sum(v for k, v in totals.items() if k.startswith(f"{area}|"))


def test_the_town_table_has_every_town_and_every_town_indicator(
    dashboard: dict[str, Any], indicators: dict[str, Any]
) -> None:
    columns = [c["id"] for c in dashboard["towns"]["indicators"]]
    assert columns == [d["id"] for d in DEFINITIONS if "town" in d["scopes"] and d["id"] in columns]
    assert {"culture_coverage", "sponge_share", "library_towns"} <= set(columns)
    towns = [r["town"] for r in dashboard["towns"]["rows"]]
    assert towns[:4] == ["荷城街道", "杨和镇", "明城镇", "更合镇"]
    for row in dashboard["towns"]["rows"]:
        for cell in row["cells"]:
            api = {r["scope_key"]: r for r in indicators[cell["indicator"]]["rows"] if r["scope"] == "town"}
            if row["town"] in api:
                assert cell["value"] == api[row["town"]]["value"] and cell["met"] == api[row["town"]]["target_met"]


def test_the_life_circle_group_has_a_row_per_service_with_the_api_numbers(
    dashboard: dict[str, Any], indicators: dict[str, Any]
) -> None:
    group = dashboard["life_circles"]
    assert group["title"] == "公共服务生活圈"
    assert group["columns"] == ["全区", "荷城街道", "杨和镇", "明城镇", "更合镇"]  # virtual units are never towns
    assert [r["id"] for r in group["rows"]] == LIFE_CIRCLE_IDS
    assert len(LIFE_CIRCLE_IDS) == 12  # nine services, three circles
    shown = {i["id"]: i for i in dashboard["indicators"]}
    for row in group["rows"]:
        assert shown[row["id"]]["group"] == "公共服务生活圈"
        api = {("" if r["scope"] == "district" else r["scope_key"]): r for r in indicators[row["id"]]["rows"]}
        for column, cell in zip(group["columns"], row["cells"], strict=True):
            want = api["" if column == "全区" else column]
            assert cell["value"] == want["value"] and cell["met"] == want["target_met"], (row["id"], column)
            assert cell["text"] == f"{want['value']:.1f}"
    assert {i["group"] for i in dashboard["indicators"] if i["id"] not in LIFE_CIRCLE_IDS} == {""}
    park = next(r for r in group["rows"] if r["id"] == "lc_park")
    assert park["target_text"] == "≥ 80%"
    assert {link["href"] for link in shown["lc_park"]["links"]} >= {"/lifecircle"}


# --------------------------------------------------------------------------------------------- the script


def test_the_script_builds_no_html_from_strings_and_knows_the_same_svg_lists() -> None:
    assert_builds_no_html_from_strings(SCRIPT)
    code = script_code(SCRIPT)
    assert "DOMParser" not in code and "createElementNS" in code  # the charts are built node by node

    def listed(name: str) -> set[str]:
        block = re.search(name + r" = \[(.*?)\];", code, re.DOTALL)
        assert block is not None, name
        return set(re.findall(r"'([^']+)'", block.group(1)))

    assert listed("SVG_ELEMENTS") == set(ELEMENTS)
    assert listed("SVG_ATTRIBUTES") == set(ATTRIBUTES)


# --------------------------------------------------------------------------------------------- the report


def test_the_report_downloads_in_each_format(client: TestClient, tokens: Tokens) -> None:
    staff = bearer(tokens.staff)
    xlsx = client.get("/api/report?format=xlsx", headers=staff)
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'attachment; filename="geoplan-report-' in xlsx.headers["content-disposition"]
    book = load_workbook(io.BytesIO(xlsx.content))
    assert {row[0] for row in book["明细"].iter_rows(min_row=2, values_only=True)} == set(INDICATOR_IDS)
    html = client.get("/api/report?format=html", headers=staff)
    assert html.status_code == 200 and html.headers["content-security-policy"].startswith("default-src 'none'")
    assert all(f'data-indicator="{ident}"' in html.text for ident in INDICATOR_IDS)
    pdf = client.get("/api/report?format=pdf", headers=staff)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert client.get("/api/report?format=docx", headers=staff).status_code == 422
    assert client.get("/api/report?quarter=2099Q1", headers=staff).status_code == 400


# --------------------------------------------------------------------------------------------- the must-show


def test_a_snapshot_an_edit_and_a_snapshot_show_the_coverage_rise(
    client: TestClient, tokens: Tokens, demo: tuple[Path, Tokens]
) -> None:
    staff = bearer(tokens.staff)
    first = client.post("/api/snapshots", headers=staff)
    assert first.status_code == 201, first.text

    from geoplan.catalog import load_catalog
    from geoplan.storage.gpkg import GeoPackageStore

    store = GeoPackageStore(demo[0], load_catalog(LAYERS_DIR))
    try:
        lon, lat, _ = uncovered_site(store)
    finally:
        store.close()
    added = client.post("/api/layers/culture_facilities/features", json=facility_feature(lon, lat), headers=staff)
    assert added.status_code == 201, added.text
    second = client.post("/api/snapshots", headers=staff)
    assert second.status_code == 201, second.text
    ids = [first.json()["snapshot"]["id"], second.json()["snapshot"]["id"]]

    data = client.get("/api/dashboard?quarter=now", headers=staff).json()
    assert data["history"]["snapshots"][-2:] == ids  # after the demo's own 2017Q4–2020Q4
    row = next(r for r in data["history"]["rows"] if r["indicator"] == "culture_coverage")
    api = client.get("/api/indicators/culture_coverage/history?scope_key=", headers=staff).json()["history"]
    assert row["values"] == [h["value"] for h in api]
    before, after = row["values"][-2:]
    assert after > before  # the new facility reaches people nobody reached
    trend = next(t for t in data["trends"] if t["indicator"] == "culture_coverage")
    points = [n["attrs"] for n in _walk(trend["svg"]) if n["attrs"].get("class") == "gp-point"]
    assert [float(p["data-value"]) for p in points][-2:] == [before, after]
    coverage = next(i for i in data["indicators"] if i["id"] == "culture_coverage")
    # The second snapshot recorded the very state shown (the same cached run, the same moment): it is this view's
    # own record, so the change is against the snapshot before it.
    assert data["previous_snapshot"]["id"] == ids[0]
    assert coverage["value"] == after and coverage["change"] == pytest.approx(after - before, rel=1e-12)
    # the life-circle group: the same facility raises culture through the general engine, and its trend reads it
    culture = next(r for r in data["life_circles"]["rows"] if r["id"] == "lc_culture")
    history = next(r for r in data["history"]["rows"] if r["indicator"] == "lc_culture" and r["scope_key"] == "")
    assert culture["trend"] == history["texts"] and history["values"][1] > history["values"][0]
    assert [c["id"] for c in data["life_circles"]["charts"]] == [
        "trend-life-circle-coverage",
        "trend-life-circle-completeness",
    ]
    lines = [n for n in _walk(data["life_circles"]["charts"][0]["svg"]) if n["attrs"].get("class") == "gp-point"]
    assert {float(p["attrs"]["data-value"]) for p in lines} >= set(history["values"])
    warnings = client.get("/api/warnings", headers=staff).json()
    assert len(data["warnings"]["items"]) == len(warnings["warnings"]) and data["warnings"]["snapshot"]["id"] == ids[1]
