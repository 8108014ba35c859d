"""The basemap settings, the tile package route, the reference document and the page's CSP for each basemap.

What the pages draw with them in a browser is in test_browser_basemap.py.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from pydantic import ValidationError

from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.tile_packages import solid_png, tile_of, write_mbtiles, write_pmtiles
from web.app import create_app
from web.basemap_setting import parse_basemap, parse_tile_url
from web.settings import WebSettings

GAOMING = (112.7, 22.84)
TOWNS = {"荷城街道", "杨和镇", "明城镇", "更合镇"}
MAGENTA = (200, 30, 150)
TEAL = (20, 160, 150)


# --------------------------------------------------------------------------------------------- settings


def test_basemap_values_are_parsed_into_kinds(tmp_path: Path) -> None:
    package = write_mbtiles(tmp_path / "a.mbtiles", {(10, 831, 444): solid_png(MAGENTA)})
    assert WebSettings().basemap_choice.kind == "reference"  # the default draws the store's own layers
    for kind in ("reference", "none", "osm", "tianditu", "amap"):
        assert parse_basemap(kind).kind == kind and parse_basemap(kind).path is None
    choice = WebSettings(basemap=f"mbtiles:{package}").basemap_choice
    assert (choice.kind, choice.path) == ("mbtiles", package.resolve())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("google", "is not one of reference, none"),
        ("mbtiles:", "give the package file"),
        ("mbtiles:/nowhere/tiles.mbtiles", "does not exist"),
        ("pmtiles", "is not one of"),
    ],
)
def test_a_bad_basemap_stops_the_start_with_a_clear_message(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebSettings(basemap=value)


def test_a_file_that_is_no_package_is_refused_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ValidationError, match="not an MBTiles file"):
        WebSettings(basemap=f"mbtiles:{junk}")
    with pytest.raises(ValidationError, match="not a PMTiles v3 file"):
        WebSettings(basemap=f"pmtiles:{junk}")


def test_tile_urls_xyz_and_wmts() -> None:
    xyz = parse_tile_url("https://tiles.intranet.gov.cn:8443/gm/{z}/{x}/{y}.png")
    assert (xyz.origin, xyz.vector) == ("https://tiles.intranet.gov.cn:8443", False)
    wmts = parse_tile_url(
        "http://10.1.2.3/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=gm&TILEMATRIX={TileMatrix}&TILEROW={TileRow}&TILECOL={TileCol}"
    )
    assert wmts.template.endswith("TILEMATRIX={z}&TILEROW={y}&TILECOL={x}") and wmts.origin == "http://10.1.2.3"
    assert parse_tile_url("https://vt.intranet/{z}/{x}/{y}.pbf").vector
    for bad, message in [
        ("ftp://x/{z}/{x}/{y}", "http:// or https://"),
        ("https://x/{z}/{x}.png", r"lacks \{y\}"),
        ("https://{s}.x/{z}/{x}/{y}.png", "no {s} subdomains"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_tile_url(bad)
    with pytest.raises(ValidationError, match="cannot be combined"):
        WebSettings(basemap="osm", basemap_url="https://x/{z}/{x}/{y}.png")


# --------------------------------------------------------------------------------------------- tile route


@pytest.fixture
def package_client(web_store: GeoPackageStore, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app with a package of two tiles at Gaoming (z 10: magenta, z 11: teal), MBTiles or PMTiles."""
    x10, y10 = tile_of(*GAOMING, 10)
    x11, y11 = tile_of(*GAOMING, 11)
    tiles = {(10, x10, y10): solid_png(MAGENTA), (11, x11, y11): solid_png(TEAL)}
    kind = request.param
    path = (write_mbtiles if kind == "mbtiles" else write_pmtiles)(tmp_path / f"gm.{kind}", tiles)
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, basemap=f"{kind}:{path}")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("package_client", ["mbtiles", "pmtiles"], indirect=True)
def test_the_package_serves_its_tiles_by_xyz(package_client: TestClient) -> None:
    # Gaoming at zoom 10, by hand: x = (112.7 + 180) / 360 · 1024 = 832.6; y = (1 − asinh(tan 22.84°) / π) / 2 ·
    # 1024 = (1 − 0.41035 / π) / 2 · 1024 = 445.1. Numbers worked out apart from the helper pin the rows.
    x, y = 832, 445
    assert tile_of(*GAOMING, 10) == (x, y)
    response = package_client.get(f"/basemap/tiles/10/{x}/{y}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == solid_png(MAGENTA)
    etag = response.headers["etag"]
    assert package_client.get(f"/basemap/tiles/10/{x}/{y}", headers={"If-None-Match": etag}).status_code == 304
    # The TMS row of the same tile is another tile: only a flip at the right place serves the XYZ one.
    assert package_client.get(f"/basemap/tiles/10/{x}/{(1 << 10) - 1 - y}").status_code == 404
    for outside in ("/basemap/tiles/10/0/0", "/basemap/tiles/9/415/222", "/basemap/tiles/12/1/1"):
        answer = package_client.get(outside)
        assert answer.status_code == 404 and "not in the basemap package" in answer.json()["detail"]
    assert package_client.get("/basemap/tiles/99/0/0").status_code == 422
    assert package_client.get("/basemap/tiles/10/-1/3").status_code == 422


@pytest.mark.parametrize("package_client", ["mbtiles"], indirect=True)
def test_a_package_page_uses_its_own_tiles_and_no_outside_host(package_client: TestClient) -> None:
    response = package_client.get("/")
    assert '"/basemap/tiles/{z}/{x}/{y}"' in response.text
    assert '"maxNativeZoom": 11' in response.text and '"minZoom": 10' in response.text
    assert '"reference": "outlines"' in response.text  # names and outlines over the package, no roads twice
    csp = response.headers["content-security-policy"]
    assert "img-src 'self' data:;" in csp and "connect-src 'self';" in csp
    assert "本地瓦片包（测试瓦片包）" in response.text


def test_a_gzipped_vector_package_is_served_with_its_encoding(web_store: GeoPackageStore, tmp_path: Path) -> None:
    tile = gzip.compress(b"\x1a\x00")  # the bytes do not matter to the server: it passes them on
    path = write_mbtiles(tmp_path / "v.mbtiles", {(12, 3331, 1779): tile}, fmt="pbf")
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, basemap=f"mbtiles:{path}")
    with TestClient(create_app(settings)) as client:
        response = client.get("/basemap/tiles/12/3331/1779")
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert response.content == b"\x1a\x00"  # the client unpacked it
        page = client.get("/").text
        assert "Leaflet.VectorGrid.bundled.min.js" in page
        assert re.search(r'"vectorTiles": \{[^}]*"url": "/basemap/tiles/\{z\}/\{x\}/\{y\}"', page)


def test_no_package_no_tiles(client: TestClient) -> None:
    assert client.get("/basemap/tiles/10/831/444").status_code == 404


def test_an_intranet_url_is_the_one_outside_origin_of_the_csp(web_store: GeoPackageStore) -> None:
    url = "https://tiles.intranet.gov.cn:8443/gm/{z}/{x}/{y}.png"
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, basemap_url=url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/layers/district")
        csp = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
        assert csp["img-src"] == "'self' data: https://tiles.intranet.gov.cn:8443"
        assert csp["connect-src"] == "'self'"
        assert url in response.text
    vector = "https://vt.intranet.gov.cn/gm/{z}/{x}/{y}.pbf"
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, basemap_url=vector)
    with TestClient(create_app(settings)) as client:
        csp = dict(d.split(" ", 1) for d in client.get("/").headers["content-security-policy"].split("; "))
        assert csp["connect-src"] == "'self' https://vt.intranet.gov.cn" and csp["img-src"] == "'self'"


def test_every_map_has_a_metric_scale_only(client: TestClient) -> None:
    page = client.get("/").text
    assert "control_scale" not in page and "L.control.scale" not in page  # folium's (with miles) is gone
    assert "GeoplanMap.basemap(" in page and "/static/geoplan-basemap.js" in page


# --------------------------------------------------------------------------------------------- reference


@pytest.fixture
def demo_client(demo_store_copy: Path) -> Iterator[TestClient]:
    settings = WebSettings(store=str(demo_store_copy), layers_dir=LAYERS_DIR)
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_reference_document_places_every_name_inside_its_area(
    demo_client: TestClient, demo_store_copy: Path
) -> None:
    response = demo_client.get("/basemap/reference.json")
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    document = response.json()
    plain = demo_client.get("/basemap/reference.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == document
    store = demo_client.app.state.store  # type: ignore[attr-defined]
    towns = store.read("towns")
    villages = store.read("villages")
    labels = document["labels"]
    ranks = [label["rank"] for label in labels]
    assert ranks == sorted(ranks)
    by_name = {label["name"]: label for label in labels}
    assert {n for n, label in by_name.items() if label["rank"] == 1} == TOWNS
    assert sum(label["layer"] == "villages" for label in labels) == len(villages) == 81
    for frame, field in ((towns, "town_name"), (villages, "village_name")):
        for name, geometry in zip(frame[field], frame.geometry, strict=True):
            label = by_name[name]
            assert geometry.contains(shapely.Point(label["lon"], label["lat"])), name
    # Outlines are simplified, not changed: the district's area within 0.5 % of the stored one.
    district = shapely.geometry.shape(document["district"]["features"][0]["geometry"])
    stored = store.read("district").geometry.iloc[0]
    assert district.area == pytest.approx(stored.area, rel=0.005)
    assert len(shapely.get_coordinates(district)) < len(shapely.get_coordinates(stored))
    assert document["credits"] == {"roads": "synthetic", "water": "synthetic", "waterways": "synthetic"}
    assert set(document["towns"]["features"][0]["properties"]) == {"name"}  # no other field leaves the store


def test_the_reference_etag_follows_the_layers_and_an_osm_import_is_credited(demo_client: TestClient) -> None:
    first = demo_client.get("/basemap/reference.json")
    etag = first.headers["etag"]
    assert demo_client.get("/basemap/reference.json", headers={"If-None-Match": etag}).status_code == 304
    store = demo_client.app.state.store  # type: ignore[attr-defined]
    roads = store.read("roads").head(50)
    roads["road_id"] = [f"osm-w{1000 + i}-0" for i in range(len(roads))]  # as geoplan/io/osm.py names them
    store.write("roads", roads, actor="import")
    second = demo_client.get("/basemap/reference.json", headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    assert second.json()["credits"]["roads"] == "osm"
    assert second.json()["credits"]["water"] == "synthetic"


def test_the_mbtiles_file_is_opened_read_only(web_store: GeoPackageStore, tmp_path: Path) -> None:
    path = write_mbtiles(tmp_path / "ro.mbtiles", {(10, 831, 444): solid_png(MAGENTA)})
    before = path.read_bytes()
    settings = WebSettings(store=web_store.url, layers_dir=LAYERS_DIR, basemap=f"mbtiles:{path}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/basemap/tiles/10/831/444").status_code == 200
    assert path.read_bytes() == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM tiles").fetchone() == (1,)
