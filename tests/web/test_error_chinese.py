"""Every error a page's user can meet answers with `detail_zh`, a Chinese sentence, beside the English `detail`.

One request per inventoried error on the sample store: the token form (401/403), unknown layers and routes (404),
FastAPI's own 422 naming the parameter, 413, the site check's upload and GeoJSON failures, a catalogue check with
several problems (fields by their catalogue titles), the coverage and overlap parameters, a read-only replica.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from geoplan.errors import (
    READ_ONLY_SQLSTATE,
    CRSError,
    InputError,
    NotFoundError,
    Problem,
    StoreError,
    UnreadableFileError,
    ValidationFailed,
)
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer
from web.app import create_app
from web.error_chinese import zh_for_error, zh_for_problems
from web.errors import install_error_handlers
from web.settings import WebSettings

CJK = re.compile(r"[\u4e00-\u9fff]")
SQUARE = {"type": "Polygon", "coordinates": [[[112.88, 22.90], [112.89, 22.90], [112.89, 22.91], [112.88, 22.90]]]}


def chinese(response: Response, status: int) -> str:
    """The answer's `detail_zh` after checking the status, that it is Chinese and that `detail` is still there."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "detail" in body, body
    zh = body.get("detail_zh")
    assert isinstance(zh, str) and CJK.search(zh), body
    return zh


@pytest.fixture
def small_limit(web_store: GeoPackageStore, tokens: Tokens) -> Iterator[TestClient]:
    """An app that accepts uploads of at most 2 KiB."""
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, max_upload_bytes=2048)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_token_refusals(client: TestClient, tokens: Tokens) -> None:
    assert "需要令牌" in chinese(client.get("/api/coverage"), 401)
    revoked = client.get("/api/coverage", headers=bearer("not-a-token"))
    assert "令牌无效" in chinese(revoked, 401)
    assert revoked.headers["www-authenticate"] == "Bearer"  # the handler keeps the exception's headers
    assert "令牌格式" in chinese(client.get("/api/coverage", headers={"Authorization": "Basic x"}), 401)
    staff_mark = client.post("/api/overlaps/OV-1/mark", json={"status": "accepted"}, headers=bearer(tokens.staff))
    assert chinese(staff_mark, 403) == "此令牌的角色不足：需要规划（planner）或更高角色，当前为工作人员（staff）。"


def test_not_found(client: TestClient, tokens: Tokens) -> None:
    assert chinese(client.get("/layers/no_such_layer"), 404) == "未找到图层“no_such_layer”（或无权查看）。"
    assert chinese(client.get("/api/no/such/route"), 404) == "未找到请求的内容。"
    patch = client.get("/api/overlaps/nope", headers=bearer(tokens.planner))
    assert "冲突图斑" in chinese(patch, 404)


def test_fastapi_validation_names_the_parameter(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/api/coverage", params={"minutes": "61"}, headers=bearer(tokens.staff))
    zh = chinese(response, 422)
    assert response.json()["detail"][0]["loc"] == ["query", "minutes"]  # the English list stays for clients
    assert zh == "查询参数 minutes 无效：应不大于 60。"
    words = client.get("/api/coverage", params={"minutes": "abc"}, headers=bearer(tokens.staff))
    assert chinese(words, 422) == "查询参数 minutes 无效：应为数字。"
    mode = client.get("/api/coverage", params={"mode": "fly"}, headers=bearer(tokens.staff))
    assert chinese(mode, 422).startswith("查询参数 mode 无效：取值不在允许范围内（'network' 或 'euclidean'）")


def test_coverage_parameters_the_route_checks(client: TestClient, tokens: Tokens) -> None:
    kinds = client.get("/api/coverage", params={"kinds": " , "}, headers=bearer(tokens.staff))
    assert "至少选择一类设施" in chinese(kinds, 400)
    unknown = client.get("/api/coverage", params={"kinds": "spaceport"}, headers=bearer(tokens.staff))
    assert chinese(unknown, 400).startswith("未知的设施类别：spaceport。可选：")


def test_too_large_413(small_limit: TestClient, tokens: Tokens) -> None:
    files = {"file": ("site.geojson", b"{" + b" " * 8192 + b"}", "application/geo+json")}
    upload = small_limit.post("/api/compliance", files=files, headers=bearer(tokens.staff))
    assert chinese(upload, 413) == f"上传的文件或请求内容过大：上限为 {2048 / 1024 / 1024:g} MB。"
    body = small_limit.post(
        "/api/compliance",
        content=b"[" + b"0," * 2000 + b"0]",
        headers={**bearer(tokens.staff), "content-type": "application/json"},
    )
    assert "过大" in chinese(body, 413)


def _upload(client: TestClient, tokens: Tokens, name: str, content: bytes, **form: str) -> Response:
    files = {"file": (name, content, "application/octet-stream")}
    return client.post("/api/compliance", files=files, data=form, headers=bearer(tokens.staff))


def test_site_check_uploads(client: TestClient, tokens: Tokens) -> None:
    assert "不支持的文件类型“.txt”" in chinese(_upload(client, tokens, "site.txt", b"hello"), 400)
    assert "无法作为 GeoJSON 读取" in chinese(_upload(client, tokens, "site.geojson", b"{garbage"), 400)
    assert chinese(_upload(client, tokens, "site.geojson", b""), 400) == "文件是空的。"
    point = b'{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [112.88, 22.9]}}'
    assert "而文件中是点" in chinese(_upload(client, tokens, "site.geojson", point), 400)
    metres = {"type": "Polygon", "coordinates": [[[0, 0], [1000, 0], [1000, 1000], [0, 0]]]}
    unknown_crs = client.post("/api/compliance?crs=EPSG:99999999", json=metres, headers=bearer(tokens.staff))
    assert "无法识别所填的坐标系“EPSG:99999999”" in chinese(unknown_crs, 422)
    outside = client.post("/api/compliance", json=metres, headers=bearer(tokens.staff))
    assert "坐标" in chinese(outside, 422)


def test_site_check_bodies(client: TestClient, tokens: Tokens) -> None:
    headers = {**bearer(tokens.staff), "content-type": "application/json"}
    assert chinese(client.post("/api/compliance", content=b"{not json", headers=headers), 400) == (
        "请求内容不是有效的 JSON。"
    )
    empty = {"type": "FeatureCollection", "features": []}
    assert "没有任何要素" in chinese(client.post("/api/compliance", json=empty, headers=headers), 400)
    two = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": SQUARE}] * 2}
    assert "有 2 个要素" in chinese(client.post("/api/compliance", json=two, headers=headers), 400)


def test_catalogue_problems_name_the_fields_by_their_titles(client: TestClient, tokens: Tokens) -> None:
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    feature = {"type": "Feature", "properties": {"project_id": "GM-X-1", "progress_pct": 500}, "geometry": multi}
    response = client.post("/api/layers/projects/features", json=feature, headers=bearer(tokens.planner))
    zh = chinese(response, 422)
    problems = response.json()["problems"]
    assert zh.startswith(f"提交的数据有 {len(problems)} 处问题：")  # a body, not a file
    assert "字段“项目名称”" in zh  # `name` is required; its catalogue title, not its name


def test_problem_summary_counts_and_titles() -> None:
    problems = [Problem("required", "f1", "name"), Problem("too big", "f2", "progress_pct"), Problem("bad", None, None)]
    titles = {"name": "项目名称", "progress_pct": "形象进度（%）"}
    zh = zh_for_problems(ValidationFailed("projects.geojson", problems, titles=titles))
    assert (
        zh == "文件有 3 处问题：要素 f1 的字段“项目名称”、要素 f2 的字段“形象进度（%）”、几何或整体有误，请修改后重试。"
    )
    many = [Problem("x", f"f{i}", "name") for i in range(9)]
    assert zh_for_problems(ValidationFailed("record", many)).startswith("提交的数据有 9 处问题：")
    assert zh_for_problems(ValidationFailed("record", many)).count("要素") == 5


def test_overlap_rule_and_ledger(client: TestClient, tokens: Tokens) -> None:
    rule = client.get("/api/overlaps", params={"rule": "no_such_rule"}, headers=bearer(tokens.planner))
    assert chinese(rule, 400).startswith("未知的冲突规则“no_such_rule”。可选：")
    record = client.post("/api/ledger/GM-0000-000/progress", json={"quarter": "2021Q1"}, headers=bearer(tokens.staff))
    assert chinese(record, 422) == "请求内容 progress_pct 无效：缺少此项。"


class _ReadOnly(Exception):
    sqlstate = READ_ONLY_SQLSTATE


def test_read_only_replica_and_internal_errors() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/write")
    def write() -> Any:
        raise StoreError("the write failed") from _ReadOnly()

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        boom_answer = client.get("/boom")
        assert "secret" not in boom_answer.text
        assert "服务器内部错误" in chinese(boom_answer, 500)
        assert chinese(client.get("/write"), 503) == "只读副本，暂不能写入：请在主库上修改。"


def test_fallbacks_by_class_when_the_raise_site_gives_no_chinese() -> None:
    assert zh_for_error(InputError("x", zh="自己的说明")) == "自己的说明"
    assert zh_for_error(CRSError("a.shp: unknown coordinate system")).startswith("坐标系有问题")
    assert zh_for_error(UnreadableFileError("a.gpkg: not a readable GeoPackage: truncated")).startswith("文件无法读取")
    assert zh_for_error(NotFoundError("unknown layer 'roads_x'; the catalogue has: …")) == "未找到请求的内容“roads_x”。"
    assert zh_for_error(InputError("a.gpkg holds 2 layers (a, b); choose one with --layer")) == (
        "输入有误：文件含有多个图层，请指明要用哪一个。"
    )
    assert zh_for_error(InputError("something new")) == "输入有误：请检查输入的内容、参数或文件后重试。"


def test_a_method_the_path_does_not_serve(client: TestClient) -> None:
    assert chinese(client.delete("/api/coverage"), 405) == "不支持此请求方式。"
