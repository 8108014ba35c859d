"""The planners' overlap API (/api/overlaps…) and the /planner page skeleton, on the Gaoming demo store.

The session's demo store is copied once for this module (with a token of each role) and that copy is never
changed by a test: read-only tests share one app on it; a test that marks or edits works on its own copy. Every
answer is compared with what geoplan.analysis computes directly on the same store, so the API cannot drift from
the engine.
"""

from __future__ import annotations

import math
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule
from geoplan.analysis.summary import by_severity
from geoplan.catalog import Catalog
from geoplan.services.overlap import run_overlaps
from geoplan.services.overlap_marks import mark_registry
from geoplan.services.rule_files import rules_for
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens
from tests.web.script_checks import assert_builds_no_html_from_strings
from web.app import create_app
from web.overlap_cache import OverlapCache
from web.settings import WebSettings

ECO_PROJECT = "ECO_PROJECT"
PROJECT_OUTSIDE = "PROJECT_OUTSIDE_BOUNDARY"


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokens]:
    """The pristine demo store with a token of each role. Tests that write copy it first (`fresh`)."""
    path = tmp_path_factory.mktemp("overlaps") / "demo.gpkg"
    tokens = demo_store_with_tokens(path, source=demo_store_path)
    return path, tokens


@pytest.fixture(scope="module")
def tokens(demo: tuple[Path, Tokens]) -> Tokens:
    return demo[1]


@contextmanager
def app_on(path: Path) -> Iterator[TestClient]:
    settings = WebSettings(store=str(path), layers_dir=LAYERS_DIR)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def client(demo: tuple[Path, Tokens]) -> Iterator[TestClient]:
    """One app on the pristine store, shared by the read-only tests (its patch cache stays warm)."""
    with app_on(demo[0]) as shared:
        yield shared


@pytest.fixture
def fresh(demo: tuple[Path, Tokens], tmp_path: Path) -> Path:
    """A private copy of the demo store (tokens included) for a test that marks or edits."""
    copy = tmp_path / "demo.gpkg"
    shutil.copy(demo[0], copy)
    return copy


@pytest.fixture(scope="module")
def rules(catalog: Catalog) -> list[ConflictRule]:
    return rules_for(catalog, LAYERS_DIR)


@pytest.fixture(scope="module")
def direct(demo: tuple[Path, Tokens], catalog: Catalog, rules: list[ConflictRule]) -> gpd.GeoDataFrame:
    """The patches as geoplan.analysis computes them on the same store, without the web layer."""
    store = GeoPackageStore(demo[0], catalog)
    try:
        return run_overlaps(store, rules=rules)
    finally:
        store.close()


def planner(tokens: Tokens) -> dict[str, str]:
    return bearer(tokens.planner)


def features_by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in body["features"]}


def a_patch(frame: gpd.GeoDataFrame, rule: str) -> Any:
    return frame[frame["rule"] == rule].iloc[0]


# --------------------------------------------------------------------------------------------- access


def test_every_overlap_endpoint_needs_a_planner_token(
    client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame
) -> None:
    patch_id = direct["patch_id"].iloc[0]
    reads = [
        "/api/overlaps",
        "/api/overlaps/summary",
        "/api/overlaps/config",
        f"/api/overlaps/{patch_id}",
        "/api/overlaps.csv",
        "/api/overlaps?f=geojson",
    ]
    for url in reads:
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers=bearer("gp_not-a-token")).status_code == 401, url
        assert client.get(url, headers=bearer(tokens.staff)).status_code == 403, url
        assert client.get(url, headers=planner(tokens)).status_code == 200, url
        assert client.get(url, headers=bearer(tokens.admin)).status_code == 200, url
    mark = f"/api/overlaps/{patch_id}/mark"
    assert client.post(mark).status_code == 401  # before any body is read
    assert client.post(mark, json={"status": "accepted"}).status_code == 401
    assert client.post(mark, json={"status": "accepted"}, headers=bearer(tokens.staff)).status_code == 403


def test_openapi_tags_the_routes_planning(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    ours = {p: ops for p, ops in paths.items() if p.startswith("/api/overlaps")}
    assert set(ours) == {
        "/api/overlaps",
        "/api/overlaps/summary",
        "/api/overlaps/config",
        "/api/overlaps.{fmt}",
        "/api/overlaps/{patch_id}",
        "/api/overlaps/{patch_id}/mark",
        "/api/overlaps/tiles/{z}/{x}/{y}",
    }
    for operations in ours.values():
        for operation in operations.values():
            assert operation["tags"] == ["planning"]
    body = ours["/api/overlaps/{patch_id}/mark"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["status"]["enum"] == ["accepted", "to_adjust", "resolved"]


# --------------------------------------------------------------------------------------------- patches


def test_patches_equal_the_engine(client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame) -> None:
    response = client.get("/api/overlaps", headers=planner(tokens))
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == len(direct) > 50
    # High first, then medium, then low; within one severity the largest first.
    ranks = [{"high": 0, "medium": 1, "low": 2}[f["properties"]["severity"]] for f in body["features"]]
    areas = [f["properties"]["area_m2"] for f in body["features"]]
    assert all((r0, -a0) <= (r1, -a1) for r0, a0, r1, a1 in zip(ranks, areas, ranks[1:], areas[1:], strict=False))
    ordered = by_severity(direct)
    assert [f["id"] for f in body["features"]] == list(ordered["patch_id"])
    assert sum(f["properties"]["exempt"] for f in body["features"]) == int(direct["exempt"].sum()) > 0
    for feature, (_, row) in zip(body["features"], ordered.iterrows(), strict=True):
        props = feature["properties"]
        assert props["patch_id"] == feature["id"]
        columns = ("rule", "severity", "exempt", "exempt_basis", "layer_a", "id_a", "layer_b", "id_b", "town")
        for column in (*columns, "village_code"):
            assert props[column] == row[column], (feature["id"], column)
        assert props["area_m2"] == pytest.approx(row["area_m2"], rel=1e-12)
        assert props["area_ellipsoid_m2"] == pytest.approx(row["area_ellipsoid_m2"], rel=1e-12)
        assert props["mark_status"] is None and props["rule_title"]
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.equals_exact(row.geometry, tolerance=1e-9)
    eco = next(f for f in body["features"] if f["properties"]["rule"] == ECO_PROJECT)["properties"]
    assert eco["rule_title"] == "建设项目占用生态保护红线" and eco["severity"] == "high"


def test_filters_by_rule_town_and_thresholds(
    client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame, demo: tuple[Path, Tokens], catalog: Catalog
) -> None:
    by_rule = client.get("/api/overlaps", params={"rule": ECO_PROJECT}, headers=planner(tokens)).json()
    assert sorted(features_by_id(by_rule)) == sorted(direct.loc[direct["rule"] == ECO_PROJECT, "patch_id"])
    town = str(direct["town"].dropna().iloc[0])
    by_town = client.get("/api/overlaps", params={"town": town}, headers=planner(tokens)).json()
    assert sorted(features_by_id(by_town)) == sorted(direct.loc[direct["town"] == town, "patch_id"])
    unknown = client.get("/api/overlaps", params={"rule": "ECO_PROJCT"}, headers=planner(tokens))
    assert unknown.status_code == 400 and "ECO_PROJECT" in unknown.json()["detail"]
    for bad in ({"min_area_m2": "-1"}, {"min_width_m": "nan"}, {"min_area_m2": "inf"}, {"min_area_m2": "x"}):
        assert client.get("/api/overlaps", params=bad, headers=planner(tokens)).status_code == 422, bad
    # Other thresholds are another computation, equal to the engine's with the same settings.
    settings = OverlapSettings(min_area_m2=5000.0, min_width_m=10.0)
    params = {"min_area_m2": "5000", "min_width_m": "10"}
    strict = client.get("/api/overlaps", params=params, headers=planner(tokens)).json()
    store = GeoPackageStore(demo[0], catalog)
    try:
        expected = run_overlaps(store, rules=rules_for(catalog, LAYERS_DIR), settings=settings, with_marks=False)
    finally:
        store.close()
    assert [f["id"] for f in strict["features"]] == list(by_severity(expected)["patch_id"])
    assert 0 < len(expected) < len(direct)
    assert strict["thresholds"] == {"min_area_m2": 5000.0, "min_width_m": 10.0}


def test_summary_totals_equal_the_patch_table(client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame) -> None:
    summary = client.get("/api/overlaps/summary", headers=planner(tokens)).json()
    by_rule = {row["rule"]: row for row in summary["by_rule"]}
    assert len(summary["by_rule"]) == 7  # every rule, patches or not
    exempt = direct[direct["exempt"].astype(bool)]
    assert summary["exempt"]["patches"] == len(exempt) > 0  # listed, counted apart
    assert summary["exempt"]["area_m2"] == pytest.approx(exempt["area_m2"].sum())
    assert [r["rule"] for r in summary["exempt"]["by_rule"]] == sorted(set(exempt["rule"]))
    direct = direct[~direct["exempt"].astype(bool)]
    for code, group in direct.groupby("rule"):
        row = by_rule[str(code)]
        assert row["patches"] == len(group)
        assert row["area_m2"] == pytest.approx(group["area_m2"].sum())
        assert row["area_ellipsoid_m2"] == pytest.approx(group["area_ellipsoid_m2"].sum())
        assert row["severity"] == group["severity"].iloc[0] and row["title"]
    assert sum(r["patches"] for r in summary["by_rule"]) == len(direct)
    assert sum(r["patches"] for r in summary["by_town"]) == len(direct)
    assert sum(r["area_m2"] for r in summary["by_town"]) == pytest.approx(direct["area_m2"].sum())
    for row in summary["by_town"]:
        assert row["high"] + row["medium"] + row["low"] == row["patches"]
    # Filtered totals follow the filter.
    eco = client.get("/api/overlaps/summary", params={"rule": ECO_PROJECT}, headers=planner(tokens)).json()
    assert sum(r["patches"] for r in eco["by_town"]) == int((direct["rule"] == ECO_PROJECT).sum())


def test_config_lists_rules_and_plan_layers(client: TestClient, tokens: Tokens, rules: list[ConflictRule]) -> None:
    config = client.get("/api/overlaps/config", headers=planner(tokens)).json()
    assert [r["code"] for r in config["rules"]] == [r.code for r in rules]
    assert len({r["color"] for r in config["rules"]}) == len(rules)
    assert all(r["synthetic"] for r in config["rules"])  # the demo's plan layers are all synthetic
    assert config["order"] == [
        "landuse_plan",
        "urban_plan",
        "basic_farmland",
        "eco_redlines",
        "dev_boundary",
        "projects",
    ]
    projects = config["layers"]["projects"]
    assert "investment_wan" in [f["name"] for f in projects["fields"]]  # planners see private fields
    assert config["layers"]["landuse_plan"]["featureCount"] > 1000 and not config["layers"]["landuse_plan"]["shown"]
    assert config["thresholds"] == {"min_area_m2": 10.0, "min_width_m": 2.0}


def test_patch_detail_lists_its_source_features(
    client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame, catalog: Catalog
) -> None:
    patch = a_patch(direct, ECO_PROJECT)
    detail = client.get(f"/api/overlaps/{patch['patch_id']}", headers=planner(tokens)).json()
    assert detail["patch"]["id"] == patch["patch_id"] and detail["rule"]["code"] == ECO_PROJECT
    assert "生态保护红线" in detail["rule"]["basis"]
    sources = {s["side"]: s for s in detail["sources"]}
    assert (sources["a"]["layer"], sources["a"]["id"]) == ("projects", patch["id_a"])
    assert (sources["b"]["layer"], sources["b"]["id"]) == ("eco_redlines", patch["id_b"])
    assert sources["a"]["feature"]["id"] == patch["id_a"] and sources["b"]["feature"]["id"] == patch["id_b"]
    assert "investment_wan" in sources["a"]["feature"]["properties"]  # private fields, for planners
    assert sources["b"]["feature"]["properties"]["redline_id"] == patch["id_b"]
    # The source geometries are the store's, and the patch lies in both.
    patch_geometry = shapely.geometry.shape(detail["patch"]["geometry"])
    for side in ("a", "b"):
        source_geometry = shapely.geometry.shape(sources[side]["feature"]["geometry"])
        assert patch_geometry.difference(source_geometry.buffer(1e-7)).area < 1e-12
    store: GeoPackageStore = client.app.state.store  # type: ignore[attr-defined]
    villages = store.read("villages")
    name = villages.loc[villages["village_code"] == patch["village_code"], "village_name"].iloc[0]
    assert detail["village_name"] == name
    assert detail["mark"] is None and detail["history"] == []
    # A difference rule's patch has one source: A outside all of B.
    outside = a_patch(direct, PROJECT_OUTSIDE)
    one = client.get(f"/api/overlaps/{outside['patch_id']}", headers=planner(tokens)).json()
    assert [(s["side"], s["id"]) for s in one["sources"]] == [("a", outside["id_a"])]
    # Unknown and malformed ids.
    assert client.get("/api/overlaps/0123456789abcdef", headers=planner(tokens)).status_code == 404
    assert client.get("/api/overlaps/not-a-patch", headers=planner(tokens)).status_code == 404


def test_etags_and_the_cache(client: TestClient, tokens: Tokens) -> None:
    cache: OverlapCache = client.app.state.overlaps  # type: ignore[attr-defined]
    first = client.get("/api/overlaps", headers=planner(tokens))
    runs = cache.overlay_runs
    etag = first.headers["etag"]
    assert first.headers["vary"] == "Authorization" and first.headers["cache-control"] == "no-cache"
    again = client.get("/api/overlaps", headers={**planner(tokens), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/api/overlaps", params={"rule": ECO_PROJECT}, headers=planner(tokens))
    assert other.headers["etag"] != etag
    summary = client.get("/api/overlaps/summary", headers=planner(tokens))
    assert (
        client.get(
            "/api/overlaps/summary", headers={**planner(tokens), "If-None-Match": summary.headers["etag"]}
        ).status_code
        == 304
    )
    assert cache.overlay_runs == runs  # filters and repeats are served from memory


def test_concurrent_requests_compute_once(demo: tuple[Path, Tokens], catalog: Catalog) -> None:
    store = GeoPackageStore(demo[0], catalog)
    cache = OverlapCache(store, LAYERS_DIR)
    results: list[Any] = []
    try:
        threads = [threading.Thread(target=lambda: results.append(cache.table())) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert cache.overlay_runs == 1
        assert len(results) == 6 and all(r is results[0] for r in results)
        assert cache.table() is results[0] and cache.overlay_runs == 1
    finally:
        cache.close()
        store.close()


@pytest.mark.parametrize("fmt", ["gpkg", "csv", "geojson"])
def test_downloads(client: TestClient, tokens: Tokens, direct: gpd.GeoDataFrame, fmt: str, tmp_path: Path) -> None:
    response = client.get(f"/api/overlaps.{fmt}", params={"rule": ECO_PROJECT}, headers=planner(tokens))
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="conflict_patches.{fmt}"'
    expected = sorted(direct.loc[direct["rule"] == ECO_PROJECT, "patch_id"])
    if fmt == "csv":
        text = response.content.decode("utf-8-sig")
        rows = [line.split(",")[0] for line in text.splitlines()[1:]]
        assert sorted(rows) == expected and "rule_title" in text.splitlines()[0]
    else:
        path = tmp_path / f"patches.{fmt}"
        path.write_bytes(response.content)
        frame = gpd.read_file(path)
        assert sorted(frame["patch_id"]) == expected
    same = client.get("/api/overlaps", params={"f": fmt, "rule": ECO_PROJECT}, headers=planner(tokens))
    assert same.status_code == 200 and same.headers["content-disposition"] == response.headers["content-disposition"]
    assert client.get("/api/overlaps.shp", headers=planner(tokens)).status_code == 422


# --------------------------------------------------------------------------------------------- marks


def test_mark_then_read(fresh: Path, tokens: Tokens, catalog: Catalog) -> None:
    with app_on(fresh) as client:
        features = client.get("/api/overlaps", headers=planner(tokens))
        patch_id = next(f["id"] for f in features.json()["features"] if f["properties"]["rule"] == ECO_PROJECT)
        url = f"/api/overlaps/{patch_id}/mark"
        first = client.post(url, json={"status": "to_adjust", "note": "项目选址需避让红线"}, headers=planner(tokens))
        assert first.status_code == 201, first.text
        mark = first.json()
        assert mark["patch_id"] == patch_id and mark["rule"] == ECO_PROJECT and mark["status"] == "to_adjust"
        assert mark["note"] == "项目选址需避让红线" and mark["actor"] == "planner:planner-1"
        assert mark["status_title"] == "需调整"
        second = client.post(url, json={"status": "resolved", "note": "已调整"}, headers=bearer(tokens.admin))
        assert second.status_code == 201
        detail = client.get(f"/api/overlaps/{patch_id}", headers=planner(tokens)).json()
        assert [m["status"] for m in detail["history"]] == ["to_adjust", "resolved"]
        assert detail["mark"]["status"] == "resolved" and detail["mark"]["actor"] == "admin:admin-1"
        # The patch list shows the current mark, and its ETag moved on.
        after = client.get("/api/overlaps", headers={**planner(tokens), "If-None-Match": features.headers["etag"]})
        assert after.status_code == 200
        props = features_by_id(after.json())[patch_id]["properties"]
        assert (props["mark_status"], props["mark_note"]) == ("resolved", "已调整")
        marked = sum(1 for f in after.json()["features"] if f["properties"]["mark_status"])
        assert marked == 1
    store = GeoPackageStore(fresh, catalog)
    registry = mark_registry(store)
    try:
        assert [(m.status, m.actor) for m in registry.history(patch_id)] == [
            ("to_adjust", "planner:planner-1"),
            ("resolved", "admin:admin-1"),
        ]
    finally:
        registry.close()
        store.close()


def test_bad_marks_are_refused_and_write_nothing(fresh: Path, tokens: Tokens, catalog: Catalog) -> None:
    with app_on(fresh) as client:
        patch_id = client.get("/api/overlaps", headers=planner(tokens)).json()["features"][0]["id"]
        url = f"/api/overlaps/{patch_id}/mark"
        cases = [
            ({"status": "approved"}, 422),
            ({"note": "no status"}, 422),
            ({"status": "accepted", "note": "x" * 2001}, 422),
            ({"status": "accepted", "extra": 1}, 422),
            ({"status": "accepted", "note": "bell\x07"}, 400),
        ]
        for body, status in cases:
            response = client.post(url, json=body, headers=planner(tokens))
            assert response.status_code == status, (body, response.text)
        not_json = client.post(url, content=b"{status", headers=planner(tokens))
        assert not_json.status_code == 400
        huge = client.post(url, content=b"x" * 20_000, headers=planner(tokens))
        assert huge.status_code == 413
        for unknown in ("0123456789abcdef", "nope", "0123456789ABCDEF"):
            response = client.post(
                f"/api/overlaps/{unknown}/mark", json={"status": "accepted"}, headers=planner(tokens)
            )
            assert response.status_code == 404, unknown
    store = GeoPackageStore(fresh, catalog)
    registry = mark_registry(store)
    try:
        assert registry.current() == {}
    finally:
        registry.close()
        store.close()


def test_moving_a_project_changes_only_its_patches_and_keeps_every_mark(
    fresh: Path, tokens: Tokens, catalog: Catalog
) -> None:
    with app_on(fresh) as client:
        cache: OverlapCache = client.app.state.overlaps  # type: ignore[attr-defined]
        before = features_by_id(client.get("/api/overlaps", headers=planner(tokens)).json())
        eco = next(f["properties"] for f in before.values() if f["properties"]["rule"] == ECO_PROJECT)
        moved = eco["id_a"]
        ours = {
            pid
            for pid, f in before.items()
            if f["properties"]["layer_a"] == "projects" and f["properties"]["id_a"] == moved
        }
        others = set(before) - ours
        # Marks on one of the moved project's patches and on three others.
        marked = [eco["patch_id"], *sorted(others)[:3]]
        for i, patch_id in enumerate(marked):
            response = client.post(
                f"/api/overlaps/{patch_id}/mark", json={"status": "accepted", "note": f"n{i}"}, headers=planner(tokens)
            )
            assert response.status_code == 201
        runs = cache.overlay_runs

        store: GeoPackageStore = client.app.state.store  # type: ignore[attr-defined]
        projects = store.read("projects")
        row = projects[projects["project_id"] == moved].copy()
        row["geometry"] = row.geometry.translate(xoff=0.004, yoff=0.002)  # ~400 m east, ~200 m north
        store.update_features("projects", gpd.GeoDataFrame(row, geometry="geometry", crs=projects.crs))

        after = features_by_id(client.get("/api/overlaps", headers=planner(tokens)).json())
        assert cache.overlay_runs == runs + 1  # the edit made the next request recompute, once
        # Every patch of another feature is unchanged: same id, same area, same mark.
        assert others <= set(after)
        for patch_id in others:
            old, new = before[patch_id]["properties"], after[patch_id]["properties"]
            assert new["area_m2"] == pytest.approx(old["area_m2"], rel=1e-9), patch_id
        # The moved project's patches changed (areas, or which patches exist) and nothing else is new.
        mine = {pid for pid, f in after.items() if f["properties"]["id_a"] == moved}
        assert set(after) - set(before) <= mine
        changed = {
            pid for pid in ours & mine if after[pid]["properties"]["area_m2"] != before[pid]["properties"]["area_m2"]
        }
        assert changed == ours & mine and ours <= mine  # ~400 m moves every overlap of this project
        # Every mark survives: on the list where the patch still exists, and in the history in any case.
        for i, patch_id in enumerate(marked):
            if patch_id in after:
                assert after[patch_id]["properties"]["mark_note"] == f"n{i}", patch_id
        if eco["patch_id"] in after:
            detail = client.get(f"/api/overlaps/{eco['patch_id']}", headers=planner(tokens)).json()
            assert detail["mark"]["note"] == "n0"
    store = GeoPackageStore(fresh, catalog)
    registry = mark_registry(store)
    try:
        assert {pid: m.note for pid, m in registry.current().items()} == {pid: f"n{i}" for i, pid in enumerate(marked)}
    finally:
        registry.close()
        store.close()


# --------------------------------------------------------------------------------------------- the page skeleton


def test_planner_page_is_public_and_holds_no_data(
    client: TestClient, tokens: Tokens, rules: list[ConflictRule], catalog: Catalog
) -> None:
    response = client.get("/planner")
    assert response.status_code == 200 and "多规合一冲突图斑" in response.text
    html = response.text
    for src in ("/static/vendor/leaflet/leaflet.js", "/static/geoplan-map.js", "/static/geoplan-planner.js"):
        assert src in html
    # The planner's other tabs are loaded before the script that calls them.
    scripts = re.findall(r'<script src="([^"]+)"', html)
    for part in ("/static/geoplan-patch-detail.js", "/static/geoplan-site-check.js", "/static/geoplan-scenario.js"):
        assert scripts.index(part) < scripts.index("/static/geoplan-planner.js"), part
    assert 'id="gp-token"' in html and 'type="password"' in html
    # No data and nothing about private layers: no rule, layer name, field or id until a token is given.
    for rule in rules:
        assert rule.code not in html and rule.title_zh not in html
    for layer in catalog.vector_layers():
        if not layer.public:
            assert layer.name not in html and layer.title_zh not in html
    assert '"investment_wan"' not in html
    assert "GeoplanMap.plannerMap(" in html
    csp = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce and f"script-src 'self' 'nonce-{nonce.group(1)}';" in csp and "unsafe" not in csp
    assert "connect-src 'self'" in csp
    # A token changes nothing: the page is the same skeleton.
    with_token = client.get("/planner", headers=planner(tokens)).text
    assert not any(rule.title_zh in with_token for rule in rules)


def test_report_viewer_runs_only_its_own_script(client: TestClient) -> None:
    response = client.get("/planner/report")
    csp = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp["script-src"])
    assert nonce and csp["script-src"] == f"'nonce-{nonce.group(1)}'"  # not even 'self'
    assert csp["default-src"] == "'none'" and csp["style-src"] == "'unsafe-inline'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.text.count(f'nonce="{nonce.group(1)}"') == 2
    assert re.findall(r'<script src="([^"]+)"', response.text) == ["/static/geoplan-report-viewer.js"]


def test_planner_script_builds_no_html_from_strings() -> None:
    for name in ("planner", "patch-detail", "report-viewer", "scenario"):
        assert_builds_no_html_from_strings(f"geoplan-{name}.js", leaflet=True)
    assert_builds_no_html_from_strings("geoplan-site-check.js", leaflet=True, text=False)


# --------------------------------------------------------------------------------------------- vector tiles


def test_patch_tiles_hold_the_patches_of_their_bounds(client: TestClient, tokens: Tokens) -> None:
    body = client.get("/api/overlaps", headers=planner(tokens)).json()
    patch = body["features"][0]
    point = shapely.geometry.shape(patch["geometry"]).representative_point()
    z = 13
    x = int((point.x + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(point.y))) / math.pi) / 2 * 2**z)
    size, half = 40075016.68557849 / 2**z, 20037508.342789244
    to_lonlat = Transformer.from_crs("EPSG:3857", "OGC:CRS84", always_xy=True)
    west, south = to_lonlat.transform(-half + x * size, half - (y + 1) * size)
    east, north = to_lonlat.transform(-half + (x + 1) * size, half - y * size)
    box = shapely.box(west, south, east, north)
    url = f"/api/overlaps/tiles/{z}/{x}/{y}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(tokens.staff)).status_code == 403
    answer = client.get(url, headers=planner(tokens))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = mapbox_vector_tile.decode(answer.content)["patches"]["features"]
    expected = {f["id"] for f in body["features"] if shapely.geometry.shape(f["geometry"]).intersects(box)}
    assert {f["properties"]["patch_id"] for f in features} == expected
    by_id = {f["id"]: f["properties"] for f in body["features"]}
    for feature in features:
        props = feature["properties"]
        assert props["rule_title"] == by_id[props["patch_id"]]["rule_title"]
        assert props["area_m2"] == pytest.approx(by_id[props["patch_id"]]["area_m2"])
        assert props["exempt"] == by_id[props["patch_id"]]["exempt"]
    again = client.get(url, headers={**planner(tokens), "If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    other_rule = next(
        f["properties"]["rule"] for f in body["features"] if f["properties"]["rule"] != patch["properties"]["rule"]
    )
    only = client.get(url, params={"rule": other_rule}, headers=planner(tokens))
    kept = {f["id"] for f in body["features"] if f["id"] in expected and f["properties"]["rule"] == other_rule}
    if only.status_code == 204:
        assert kept == set()
    else:
        assert {
            f["properties"]["patch_id"] for f in mapbox_vector_tile.decode(only.content)["patches"]["features"]
        } == kept
    assert client.get("/api/overlaps/tiles/23/0/0", headers=planner(tokens)).status_code == 404
    assert client.get("/api/overlaps/tiles/13/0/0", params={"rule": "NOPE"}, headers=planner(tokens)).status_code == 400
