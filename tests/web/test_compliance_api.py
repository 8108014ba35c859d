"""POST /api/compliance on the demo store: roles, JSON and HTML answers, uploads, limits, an untouched store.

The report is user-facing HTML built from user text (the site's name), so it is checked for escaping, for any
script and for any reference to another host.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from geoplan.access import Role
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, wgs84_to_gcj02
from geoplan.services.tokens import TokenRegistry
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR
from web.app import create_app
from web.settings import WebSettings

HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Demo:
    path: Path
    staff: str
    planner: str
    revoked: str


@pytest.fixture(scope="module")
def demo(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A module copy of the demo store (tokens are writes) with a staff, a planner and a revoked token."""
    path = tmp_path_factory.mktemp("compliance-api") / "gaoming.gpkg"
    shutil.copy(demo_store_path, path)
    registry = TokenRegistry(side_table_engine(str(path)))
    try:
        made = Demo(
            path=path,
            staff=registry.create(name="staff-1", role=Role.STAFF),
            planner=registry.create(name="planner-1", role=Role.PLANNER),
            revoked=registry.create(name="gone", role=Role.ADMIN),
        )
        registry.revoke("gone")
    finally:
        registry.close()
    return made


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    with TestClient(create_app(WebSettings(store=str(demo.path), layers_dir=LAYERS_DIR))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def site(demo: Demo) -> dict[str, Any]:
    """The demo project overlapping the red lines most (our own overlay), as a Feature with a hostile name."""
    projects = gpd.read_file(demo.path, layer="projects")
    redlines = gpd.read_file(demo.path, layer="eco_redlines").to_crs(METRIC_CRS).union_all()
    overlap = shapely.area(shapely.intersection(projects.to_crs(METRIC_CRS).geometry.to_numpy(), redlines))
    geometry = projects.geometry.iloc[int(np.argmax(overlap))]
    return {"type": "Feature", "properties": {"name": HOSTILE}, "geometry": json.loads(shapely.to_geojson(geometry))}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _versions(path: Path, catalog: Catalog) -> dict[str, int]:
    store = GeoPackageStore(path, catalog)
    try:
        return {layer.name: store.layer_version(layer.name) for layer in catalog.vector_layers()}
    finally:
        store.close()


def test_needs_a_staff_token(client: TestClient, demo: Demo, site: dict[str, Any]) -> None:
    anonymous = client.post("/api/compliance", json=site)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/compliance", json=site, headers=bearer(demo.revoked)).status_code == 401
    assert client.post("/api/compliance", json=site, headers={"Authorization": "Basic x"}).status_code == 401
    # The role check runs before the body is read: a garbage body without a token is still a 401.
    assert client.post("/api/compliance", content=b"not json").status_code == 401
    for token in (demo.staff, demo.planner):
        assert client.post("/api/compliance", json=site, headers=bearer(token)).status_code == 200


def test_json_report(client: TestClient, demo: Demo, site: dict[str, Any], catalog: Catalog) -> None:
    before = _versions(demo.path, catalog)
    response = client.post("/api/compliance", json=site, headers=bearer(demo.staff))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    report = response.json()
    assert report["pass"] is False and report["verdict"] == "fail"
    eco = next(h for h in report["hits"] if h["rule"] == "ECO_PROJECT")
    assert eco["severity"] == "high" and eco["overlap_m2"] > 0 and eco["feature_ids"]
    assert report["site"]["name"] == HOSTILE  # JSON carries the text as it is; escaping is the renderer's job
    assert report["site"]["source"] == "request body" and report["site"]["source_label"].startswith("网页提交")
    assert {r["rule"] for r in report["checked_rules"]} == {
        "ECO_PROJECT",
        "FARMLAND_PROJECT",
        "PROJECT_OUTSIDE_BOUNDARY",
    }
    assert report["synthetic_data"] is True and report["data"]["store"] == "GeoPackage gaoming.gpkg"
    assert str(demo.path.parent) not in response.text  # no server paths
    assert _versions(demo.path, catalog) == before


def test_html_report_is_escaped_self_contained_and_printable(
    client: TestClient, demo: Demo, site: dict[str, Any]
) -> None:
    response = client.post("/api/compliance?format=html", json=site, headers=bearer(demo.staff))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in html and "<script" not in html.lower()
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#|data:)""", html, re.IGNORECASE)
    assert "建设项目选址合规性审查报告" in html and "不通过" in html and "ECO_PROJECT" in html
    assert "SYNTHETIC" in html and "@page" in html and "<svg" in html
    assert "request body" not in html and "网页提交的选址范围" in html  # the source as a reader names it
    assert 'class="town-label"' in html and "位置示意" in html  # the place around the site
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "content-disposition" not in response.headers
    download = client.post("/api/compliance?format=html&download=1", json=site, headers=bearer(demo.staff))
    assert download.headers["content-disposition"].startswith("attachment")


def test_multipart_upload_with_crs_gcj02(client: TestClient, demo: Demo, site: dict[str, Any]) -> None:
    truth = client.post("/api/compliance", json=site, headers=bearer(demo.staff)).json()
    geometry = shapely.geometry.shape(site["geometry"])
    shifted = shapely.transform(geometry, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    document = {"type": "Feature", "properties": {"name": "amap"}, "geometry": json.loads(shapely.to_geojson(shifted))}
    response = client.post(
        "/api/compliance",
        files={"file": ("../../amap site.geojson", json.dumps(document).encode())},
        data={"crs": "gcj02"},
        headers=bearer(demo.staff),
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["site"]["source"] == "amap_site.geojson"
    assert report["site_area_m2"] == pytest.approx(truth["site_area_m2"], rel=1e-3)
    assert {h["rule"]: h["overlap_m2"] for h in report["hits"]} == pytest.approx(
        {h["rule"]: h["overlap_m2"] for h in truth["hits"]}, rel=1e-3
    )
    as_query = client.post(
        "/api/compliance?crs=gcj02", files={"file": ("s.geojson", json.dumps(document))}, headers=bearer(demo.staff)
    )
    assert as_query.json()["site_area_m2"] == report["site_area_m2"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"type": "Point", "coordinates": [112.86, 22.89]}, 400, "it is a Point"),
        ({"type": "LineString", "coordinates": [[112.86, 22.89], [112.87, 22.9]]}, 400, "LineString"),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(shapely.box(*b)))}
                    for b in ((112.86, 22.89, 112.862, 22.892), (112.87, 22.89, 112.872, 22.892))
                ],
            },
            400,
            "one site per check; got 2 features",
        ),
        (json.loads(shapely.to_geojson(shapely.box(113.5, 23.5, 113.502, 23.502))), 400, "outside the district"),
        (json.loads(shapely.to_geojson(shapely.box(370000, 2528000, 370100, 2528100))), 422, "coordinate system"),
    ],
)
def test_bad_sites_are_refused_with_a_reason(
    client: TestClient, demo: Demo, catalog: Catalog, body: Any, status: int, reason: str
) -> None:
    before = _versions(demo.path, catalog)
    response = client.post("/api/compliance", json=body, headers=bearer(demo.staff))
    assert response.status_code == status and reason in response.json()["detail"]
    assert _versions(demo.path, catalog) == before


def test_bad_requests(client: TestClient, demo: Demo, site: dict[str, Any]) -> None:
    staff = bearer(demo.staff)
    assert client.post("/api/compliance", content=b"{not json", headers=staff).status_code == 400
    assert client.post("/api/compliance?format=xml", json=site, headers=staff).status_code == 422
    unsupported = client.post("/api/compliance", files={"file": ("site.exe", b"MZ")}, headers=staff)
    assert unsupported.status_code == 400 and "unsupported file type" in unsupported.json()["detail"]
    garbage = client.post("/api/compliance", files={"file": ("site.geojson", b"\x00\x01garbage")}, headers=staff)
    assert garbage.status_code == 400 and "site.geojson" in garbage.json()["detail"]
    no_file = client.post("/api/compliance", data={"crs": "gcj02"}, files={"other": ("a", b"b")}, headers=staff)
    assert no_file.status_code == 400 and "'file'" in no_file.json()["detail"]


def test_oversize_bodies_and_uploads_are_refused(demo: Demo, site: dict[str, Any], catalog: Catalog) -> None:
    before = _versions(demo.path, catalog)
    settings = WebSettings(store=str(demo.path), layers_dir=LAYERS_DIR, max_upload_bytes=2_000)
    with TestClient(create_app(settings)) as small:
        body = small.post("/api/compliance", content=b"{" + b" " * 3_000 + b"}", headers=bearer(demo.staff))
        assert body.status_code == 413
        big = json.dumps(site).encode()
        assert len(big) > 2_000
        upload = small.post("/api/compliance", files={"file": ("s.geojson", big)}, headers=bearer(demo.staff))
        assert upload.status_code == 413 and "limit" in upload.json()["detail"]
    assert _versions(demo.path, catalog) == before
