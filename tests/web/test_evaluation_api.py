"""The plan-end evaluation over HTTP (`GET /api/evaluation`) on a copy of the Gaoming demo store, and the quarterly
report's default quarter: staff get each format, anonymous callers 401, a bad format 422 and a store without data
for the plan 400, each with `detail_zh`; the report without a quarter describes the plan's last monitored quarter
(today is past it) and says which in a header."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, tokens_in
from tests.web.module_demo import demo, tokens
from web.app import create_app
from web.settings import WebSettings

__all__ = ["demo", "tokens"]

PLAN = yaml.safe_load((LAYERS_DIR / "plan.yaml").read_text(encoding="utf-8"))["plan"]


@pytest.fixture(scope="module")
def client(demo: tuple[Path, Tokens]) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=str(demo[0]), layers_dir=LAYERS_DIR))) as test_client:
        yield test_client


def test_the_evaluation_downloads_in_each_format_for_staff(client: TestClient, tokens: Tokens) -> None:
    staff = bearer(tokens.staff)
    xlsx = client.get("/api/evaluation?format=xlsx", headers=staff)
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert xlsx.headers["content-disposition"] == 'attachment; filename="geoplan-evaluation.xlsx"'
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book["概要"]["A1"].value == f"{PLAN['title_zh']}实施评估"
    totals = next(row for row in book["任务领域"].iter_rows(values_only=True) if row[0] == "合计")
    html = client.get("/api/evaluation?format=html", headers=staff)
    assert html.status_code == 200 and html.headers["content-security-policy"].startswith("default-src 'none'")
    row = re.search(r'<tr data-area="合计">(.*?)</tr>', html.text)
    assert row is not None
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))[1:] == [str(v) for v in totals[1:8]]
    pdf = client.get("/api/evaluation", headers=staff)  # PDF by default
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    # the three formats share one gathering; the same state again is answered from memory, the same file
    assert client.app.state.evaluation_data.builds == 1
    files = client.app.state.evaluation_files
    builds = files.builds
    again = client.get("/api/evaluation?format=xlsx", headers=bearer(tokens.planner))
    assert again.content == xlsx.content and files.builds == builds


def test_the_evaluation_needs_a_token_and_a_known_format(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/api/evaluation?format=html").status_code == 401
    assert client.get("/api/evaluation", headers=bearer("gp_not-a-token")).status_code == 401
    bad = client.get("/api/evaluation?format=docx", headers=bearer(tokens.staff))
    assert bad.status_code == 422 and bad.json()["detail_zh"]


def test_a_store_without_the_plan_period_is_refused_with_the_reason(web_store: GeoPackageStore) -> None:
    """The small sample store's features were all written today, long after the plan."""
    staff = tokens_in(web_store.url).staff
    with TestClient(create_app(WebSettings(store=web_store.url, layers_dir=LAYERS_DIR))) as sample:
        response = sample.get("/api/evaluation?format=xlsx", headers=bearer(staff))
    assert response.status_code == 400
    body = response.json()
    assert "no data for the plan period" in body["detail"]
    assert body["detail_zh"].startswith("数据库中没有行动计划期") and PLAN["start"] in body["detail_zh"]


def test_the_report_defaults_to_the_plans_last_quarter(client: TestClient, tokens: Tokens) -> None:
    """Today is past the plan's monitoring: the report without a quarter describes its last quarter."""
    staff = bearer(tokens.staff)
    response = client.get("/api/report?format=html", headers=staff)
    assert response.status_code == 200
    assert response.headers["x-geoplan-quarter"] == PLAN["monitored_until"]
    assert f"{PLAN['monitored_until']} 季度监测报告" in response.text
    explicit = client.get("/api/report?format=html&quarter=2019Q2", headers=staff)
    assert explicit.status_code == 200 and explicit.headers["x-geoplan-quarter"] == "2019Q2"
