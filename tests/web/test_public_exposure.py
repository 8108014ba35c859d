"""A sweep over every anonymous GET the app offers: no private layer or field ever comes back, and nothing of a
scenario (a draft: its name, its features' ids and values) reaches the public, nor staff through the audit log."""

from __future__ import annotations

import math
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.services.scenarios import add_features, create_scenario, remove_features
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame
from tests.web.conftest import Tokens, bearer
from web.app import create_app
from web.settings import WebSettings

PAGES = ["/", "/layers", "/planner", "/coverage", "/lifecircle", "/audit", "/planner/report"]
# A scenario in the store during the sweep, with a new feature of a PUBLIC layer: its name, id and values must
# stay with planners (the scenario view is never what the public layers, items or tiles serve).
SCENARIO = "泄漏探针方案QX7"
SCENARIO_FEATURE = "CF-LEAK-7731"
SCENARIO_VALUE = "泄漏探针设施ZZ9"
SCENARIO_MARKERS = [SCENARIO, SCENARIO_FEATURE, SCENARIO_VALUE]


def _draft_scenario(store: GeoPackageStore) -> shapely.Point:
    """A scenario of planner-1 adding a cultural facility (public layer) next to a live one; where it is."""
    live = store.read("culture_facilities")
    where = live.geometry.iloc[0]
    point = shapely.Point(where.x + 0.0004, where.y + 0.0003)
    feature = gpd.GeoDataFrame(
        {"facility_id": [SCENARIO_FEATURE], "name": [SCENARIO_VALUE], "kind": ["文化站"], "capacity": [987_654]},
        geometry=[point],
        crs=live.crs,
    )
    create_scenario(store, SCENARIO, author="planner:planner-1", token="planner-1")
    add_features(store, SCENARIO, "culture_facilities", feature, actor="planner:planner-1")
    remove_features(
        store, SCENARIO, "culture_facilities", [str(live["facility_id"].iloc[1])], actor="planner:planner-1"
    )
    return point


def _tile_urls(point: shapely.Point, layer: str) -> list[str]:
    """The WebMercatorQuad tiles holding `point` at a few zooms (OGC order: matrix, row, column)."""
    urls = []
    for z in (8, 12, 15):
        n = 2**z
        col = int((point.x + 180.0) / 360.0 * n)
        lat = math.radians(point.y)
        row = int((1.0 - math.asinh(math.tan(lat)) / math.pi) / 2.0 * n)
        urls.append(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{row}/{col}")
    return urls


def _private_markers(catalog: Catalog, store: GeoPackageStore) -> list[str]:
    """Strings that may only reach token holders: private field names and private layers' feature ids."""
    markers = []
    for layer in catalog.vector_layers():
        if layer.public:
            markers += [f'"{name}"' for name in layer.field_names if name not in layer.public_fields]
        elif layer.id_field and store.count(layer.name):
            markers += [str(v) for v in store.read(layer.name)[layer.id_field].head(5)]
    return markers


def _anonymous_get_urls(client: TestClient, catalog: Catalog, store: GeoPackageStore) -> list[str]:
    urls = list(PAGES)
    for layer in catalog:
        urls.append(f"/layers/{layer.name}")
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", path)
        if not names:
            urls.append(path)
            continue
        for layer in catalog:
            concrete = path.replace("{collection_id}", layer.name).replace("{layer_name}", layer.name)
            concrete = concrete.replace("{scenario}", SCENARIO)
            if "{feature_id}" in concrete and layer.kind == "vector" and layer.id_field and store.count(layer.name):
                concrete = concrete.replace("{feature_id}", str(store.read(layer.name)[layer.id_field].iloc[0]))
            urls.append(concrete)
    return sorted(set(urls))


def test_no_anonymous_get_reveals_private_layers_or_fields(
    client: TestClient, catalog: Catalog, web_store: GeoPackageStore, tokens: Tokens
) -> None:
    point = _draft_scenario(web_store)
    markers = _private_markers(catalog, web_store) + SCENARIO_MARKERS
    assert '"investment_wan"' in markers and any(m.startswith("parc-") for m in markers)
    urls = _anonymous_get_urls(client, catalog, web_store) + _tile_urls(point, "culture_facilities")
    assert any("/items/" in url for url in urls) and "/ogc/collections/landuse_plan/items" in urls
    assert f"/api/scenarios/{SCENARIO}/layers/culture_facilities" in urls and f"/api/scenarios/{SCENARIO}" in urls
    tiles = 0
    for url in urls:
        response = client.get(url)
        body = response.content  # bytes: vector tiles hold their strings as raw UTF-8
        leaked = [m for m in markers if m.encode() in body]
        assert not leaked, (url, leaked[:3])
        tiles += "/tiles/WebMercatorQuad/" in url and response.status_code == 200
    assert tiles >= 3  # the tiles around the drafted feature were served (with the live facility in them)
    # Nor does staff learn of the scenario from the audit log (its entries are for planners), nor from the items.
    for url in ["/api/audit?limit=500", "/api/audit/layers", "/ogc/collections/culture_facilities/items?limit=1000"]:
        response = client.get(url, headers=bearer(tokens.staff))
        assert response.status_code == 200, (url, response.text[:200])
        leaked = [m for m in SCENARIO_MARKERS if m.encode() in response.content]
        assert not leaked, (url, leaked)
    # The same sweep with a token does see them: the markers are real, so the checks above can fail.
    staff = client.get("/ogc/collections/landuse_plan/items", headers=bearer(tokens.staff)).text
    assert any(m in staff for m in markers if m.startswith("parc-"))
    planner = bearer(tokens.planner)
    drafted = client.get(f"/api/scenarios/{SCENARIO}/layers/culture_facilities", headers=planner).content
    assert all(m.encode() in drafted for m in SCENARIO_MARKERS)
    audit = client.get("/api/audit?limit=500", headers=planner).content
    assert SCENARIO.encode() in audit


def test_oversize_upload_is_refused_and_changes_nothing(
    web_store: GeoPackageStore, tokens: Tokens, catalog: Catalog, tmp_path: Path
) -> None:
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, max_upload_bytes=2_000)
    big = sample_frame(catalog.get("landuse_plan"), 60, start=700).to_json().encode()
    assert len(big) > 2_000
    version = web_store.layer_version("landuse_plan")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/layers/landuse_plan/upload", files={"file": ("plan.geojson", big)}, headers=bearer(tokens.planner)
        )
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        body = client.post(
            "/api/layers/projects/features", content=b"{" + b" " * 3_000 + b"}", headers=bearer(tokens.staff)
        )
        assert body.status_code == 413
    assert web_store.layer_version("landuse_plan") == version


@pytest.mark.parametrize("path", ["/layers/landuse_plan", "/layers/basic_farmland", "/layers/population"])
def test_private_layer_pages_are_not_found(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
