"""OGC API – Tiles on the Gaoming demo, on both stores: a tile decodes (mapbox-vector-tile) to exactly the ids of
the items query with the tile's bounds as bbox, with the caller's visible fields only, and geometry that maps
back onto the features within a tile unit.

Tile indexes and bounds are computed here independently of the server: the XYZ formula for the index of a
point, and pyproj for the lon/lat of the tile's Web Mercator corners.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from geoplan.catalog import Catalog
from geoplan.services.provenance import DEMO_ACTOR
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from tests.conftest import LAYERS_DIR, fresh_database
from tests.web.conftest import Tokens, bearer, demo_store_with_tokens, tokens_in
from web.app import create_app
from web.settings import WebSettings

COPIED = ("roads", "landuse_plan", "projects", "basic_farmland")
MVT = "application/vnd.mapbox-vector-tile"
WORLD = 2 * 20037508.342789244
TO_LONLAT = Transformer.from_crs("EPSG:3857", "OGC:CRS84", always_xy=True)
TO_MERCATOR = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def postgis_demo_url(postgis_server: str, demo_store_path: Path, catalog: Catalog) -> Iterator[str]:
    """A database holding the demo's tiled layers, for this module (a copy, written as the demo writes)."""
    with fresh_database(postgis_server) as url:
        source = GeoPackageStore(demo_store_path, catalog)
        target = PostGISStore(url, catalog)
        try:
            target.init()
            for layer in COPIED:
                target.write(layer, source.read(layer), actor=DEMO_ACTOR)
            yield url
        finally:
            source.close()
            target.close()


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def app(
    request: pytest.FixtureRequest, demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Tokens]]:
    if request.param == "gpkg":
        path = tmp_path_factory.mktemp("tiles") / "demo.gpkg"
        tokens = demo_store_with_tokens(path, source=demo_store_path)
        url = str(path)
    else:
        url = request.getfixturevalue("postgis_demo_url")
        tokens = tokens_in(url)
    with TestClient(create_app(WebSettings(store=url, layers_dir=LAYERS_DIR))) as client:
        yield client, tokens


# --------------------------------------------------------------------------------------------- helpers


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ column and row of the tile holding a point (the slippy-map formula)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def mercator_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = WORLD / 2**z
    west, north = -WORLD / 2 + x * size, WORLD / 2 - y * size
    return west, north - size, west + size, north


def lonlat_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    west, south, east, north = mercator_box(z, x, y)
    lon0, lat0 = TO_LONLAT.transform(west, south)
    lon1, lat1 = TO_LONLAT.transform(east, north)
    return lon0, lat0, lon1, lat1


def tile_url(layer: str, z: int, x: int, y: int) -> str:
    return f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"  # OGC order: matrix, row, column


def decoded(response: Any, layer: str) -> list[dict[str, Any]]:
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    tile = mapbox_vector_tile.decode(response.content, default_options={"y_coord_down": True})
    assert set(tile) == {layer}
    assert tile[layer]["extent"] == 4096
    features: list[dict[str, Any]] = tile[layer]["features"]
    return features


def items(
    client: TestClient, layer: str, box: tuple[float, ...], headers: dict[str, str], cql: str | None = None
) -> list[dict[str, Any]]:
    params = {"bbox": ",".join(repr(v) for v in box), "limit": "10000"}
    if cql is not None:
        params["filter"] = cql
    body = client.get(f"/ogc/collections/{layer}/items", params=params, headers=headers).json()
    assert body["numberMatched"] == body["numberReturned"]
    found: list[dict[str, Any]] = body["features"]
    return found


def sample_tiles(client: TestClient, layer: str, headers: dict[str, str] | None = None) -> list[tuple[int, int, int]]:
    """Tiles at zoom 12 to 15 around a few of the layer's features (spread through the layer)."""
    url = f"/ogc/collections/{layer}/items"
    features = client.get(url, params={"limit": "10000"}, headers=headers or {}).json()["features"]
    picks = [features[i] for i in (0, len(features) // 3, 2 * len(features) // 3)]
    tiles = []
    for z, feature in zip((12, 13, 14, 15), [*picks, picks[0]], strict=True):
        point = shapely.geometry.shape(feature["geometry"]).representative_point()
        tiles.append((z, *tile_of(point.x, point.y, z)))
    return tiles


def to_mercator(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda c: list(zip(*TO_MERCATOR.transform(c[:, 0], c[:, 1]), strict=True)))


def from_tile_units(geometry: dict[str, Any], z: int, x: int, y: int) -> shapely.Geometry:
    west, _, _, north = mercator_box(z, x, y)
    unit = WORLD / 2**z / 4096
    shape = shapely.geometry.shape(geometry)
    return shapely.transform(shape, lambda c: [(west + u * unit, north - v * unit) for u, v in c])


def outline(shape: shapely.Geometry) -> shapely.Geometry:
    """A polygon's rings, a line itself: clipping these to the tile adds no edge of its own."""
    return shape.boundary if shape.area else shape


def farthest(line: shapely.Geometry, other: shapely.Geometry) -> float:
    """How far the farthest point of `line` (densified) is from `other`."""
    points = shapely.points(shapely.get_coordinates(shapely.segmentize(line, max(line.length / 500, 1e-3))))
    return float(shapely.distance(points, other).max(initial=0.0))


# --------------------------------------------------------------------------------------------- tiles = items


@pytest.mark.parametrize(("layer", "role"), [("roads", "public"), ("projects", "public"), ("landuse_plan", "staff")])
def test_a_tile_holds_the_items_of_its_bbox(
    app: tuple[TestClient, Tokens], catalog: Catalog, layer: str, role: str
) -> None:
    client, tokens = app
    headers = bearer(tokens.staff) if role == "staff" else {}
    definition = catalog.get(layer)
    fields = definition.field_names if role == "staff" else definition.public_fields
    id_field = definition.id_field
    assert id_field is not None
    for z, x, y in sample_tiles(client, layer, headers):
        features = decoded(client.get(tile_url(layer, z, x, y), headers=headers), layer)
        expected = items(client, layer, lonlat_box(z, x, y), headers)
        assert features, (layer, z, x, y)
        assert sorted(f["properties"][id_field] for f in features) == sorted(f["id"] for f in expected)
        by_id = {f["id"]: f for f in expected}
        unit = WORLD / 2**z / 4096
        tile_box = shapely.box(*mercator_box(z, x, y))
        for feature in features:
            props = feature["properties"]
            item = by_id[props[id_field]]
            # The role's fields only, and every value the items query gives (MVT has no null: those are left out).
            assert set(props) <= set(fields)
            assert props == {k: v for k, v in item["properties"].items() if v is not None}
            drawn = from_tile_units(feature["geometry"], z, x, y)
            truth = to_mercator(shapely.geometry.shape(item["geometry"]))
            if drawn.geom_type == "Point" and definition.geometry != "Point":  # collapsed below a tile unit
                assert drawn.distance(truth) <= unit
                continue
            # Within the tile, the drawn outline is the feature's, up to snapping to the tile grid (both ways): a
            # vertex moves up to half a diagonal, and snap rounding of nearly touching edges a little more.
            drawn_line, true_line, tolerance = outline(drawn), outline(truth), 1.5 * unit
            assert farthest(drawn_line.intersection(tile_box), true_line) <= tolerance, (layer, z, props[id_field])
            assert farthest(true_line.intersection(tile_box), drawn_line) <= tolerance, (layer, z, props[id_field])


def test_a_token_sees_its_fields_in_the_tile(app: tuple[TestClient, Tokens], catalog: Catalog) -> None:
    client, tokens = app
    layer = catalog.get("projects")
    private = set(layer.field_names) - set(layer.public_fields)
    assert private  # investment_wan
    z, x, y = sample_tiles(client, "projects")[0]
    public = decoded(client.get(tile_url("projects", z, x, y)), "projects")
    staff = decoded(client.get(tile_url("projects", z, x, y), headers=bearer(tokens.staff)), "projects")
    expected = items(client, "projects", lonlat_box(z, x, y), bearer(tokens.staff))
    assert not any(private & set(f["properties"]) for f in public)
    by_id = {f["id"]: f for f in expected}
    assert {f["properties"]["project_id"] for f in staff} == set(by_id)
    for feature in staff:
        item = by_id[feature["properties"]["project_id"]]
        assert feature["properties"] == {k: v for k, v in item["properties"].items() if v is not None}
    assert any(private & set(f["properties"]) for f in staff)


def test_private_layers_and_bad_tiles_are_404(app: tuple[TestClient, Tokens]) -> None:
    client, tokens = app
    z, x, y = sample_tiles(client, "roads")[0]
    for url in (
        tile_url("basic_farmland", z, x, y),
        tile_url("landuse_plan", z, x, y),
        "/ogc/collections/basic_farmland/tiles",
        "/ogc/collections/basic_farmland/tiles/WebMercatorQuad",
        tile_url("no_such_layer", z, x, y),
        tile_url("population", z, x, y),  # a raster layer: no vector tiles
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "no collection" in answer.json()["detail"]
    farmland = client.get(tile_url("basic_farmland", z, x, y), headers=bearer(tokens.staff))
    assert farmland.status_code in (200, 204)
    for url, words in (
        ("/ogc/collections/roads/tiles/WebMercatorQuad/23/0/0", "0 to 22"),
        ("/ogc/collections/roads/tiles/WebMercatorQuad/2/0/4", "run from 0 to 3"),
        ("/ogc/collections/roads/tiles/WebMercatorQuad/2/4/0", "run from 0 to 3"),
        ("/ogc/collections/roads/tiles/WebMercatorQuad/-1/0/0", "0 to 22"),
        ("/ogc/collections/roads/tiles/WebMercatorQuad/3/-1/0", "run from 0 to 7"),
        ("/ogc/collections/roads/tiles/WorldCRS84Quad/2/0/0", "WebMercatorQuad"),
        ("/ogc/tileMatrixSets/WorldCRS84Quad", "WebMercatorQuad"),
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert words in answer.json()["detail"], url
    assert client.get("/ogc/collections/roads/tiles/WebMercatorQuad/2/0/x").status_code == 422
    assert client.get("/ogc/collections/roads/tiles/WebMercatorQuad/2/0/99999999999999999999999").status_code == 404


def test_etags_and_empty_tiles(app: tuple[TestClient, Tokens]) -> None:
    client, tokens = app
    z, x, y = sample_tiles(client, "projects")[0]
    first = client.get(tile_url("projects", z, x, y))
    assert first.status_code == 200 and first.headers["etag"]
    assert "Authorization" in first.headers["vary"]
    again = client.get(tile_url("projects", z, x, y), headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    staff = client.get(tile_url("projects", z, x, y), headers=bearer(tokens.staff))
    assert staff.headers["etag"] != first.headers["etag"]  # other fields, another tag
    other = client.get(tile_url("projects", z, x + 1, y))
    assert other.headers["etag"] != first.headers["etag"]
    # Far from the district (the Atlantic at zoom 12): no feature, no content.
    empty = client.get(tile_url("roads", 12, 2000, 2000))
    assert empty.status_code == 204 and empty.content == b""
    assert items(client, "roads", lonlat_box(12, 2000, 2000), {}) == []


# --------------------------------------------------------------------------------------------- filter

ROAD_FILTERS = (
    "road_class IN ('高速公路','主干路')",
    "road_class IN ('高速公路','主干路','次干路')",
    "NOT (road_class IN ('高速公路','主干路')) AND walkable = true",
    "road_class = '支路' OR name LIKE '%路'",
    "walkable = true AND S_INTERSECTS(geometry, POLYGON((112.6 22.8, 112.9 22.8, 112.9 22.9, 112.6 22.9, 112.6 22.8)))",
)


def test_a_filtered_tile_holds_the_filtered_items_of_its_bbox(app: tuple[TestClient, Tokens]) -> None:
    client, _ = app
    tiles = sample_tiles(client, "roads")
    narrowed = 0
    for cql in ROAD_FILTERS:
        for z, x, y in [(11, *tile_of(112.85, 22.88, 11)), *tiles]:
            every = decoded(client.get(tile_url("roads", z, x, y)), "roads")
            answer = client.get(tile_url("roads", z, x, y), params={"filter": cql})
            features = decoded(answer, "roads")
            expected = items(client, "roads", lonlat_box(z, x, y), {}, cql)
            assert sorted(f["properties"]["road_id"] for f in features) == sorted(f["id"] for f in expected), cql
            assert {f["properties"]["road_id"] for f in features} <= {f["properties"]["road_id"] for f in every}
            narrowed += 0 < len(features) < len(every)
    assert narrowed >= 4  # the filters select some of a tile's roads, not all or none


def test_a_filtered_tile_has_its_own_etag_and_bad_filters_are_400(app: tuple[TestClient, Tokens]) -> None:
    client, _ = app
    z, x, y = sample_tiles(client, "roads")[0]
    url = tile_url("roads", z, x, y)
    plain = client.get(url)
    major = client.get(url, params={"filter": ROAD_FILTERS[0]})
    assert major.headers["etag"] != plain.headers["etag"]
    again = client.get(url, params={"filter": ROAD_FILTERS[0]}, headers={"If-None-Match": major.headers["etag"]})
    assert again.status_code == 304
    for params, words in (
        ({"filter": "road_class IN ("}, "cannot parse"),
        ({"filter": "no_such_field = 1"}, "no_such_field"),
        ({"filter": "road_class > 3"}, "type mismatch"),
        ({"filter": "road_class = 'x'", "filter-lang": "ecql"}, "filter-lang"),
        ({"filter": "S_INTERSECTS(geometry, POINT(1 2))", "filter-crs": "EPSG:0"}, "filter-crs"),
    ):
        answer = client.get(url, params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert words in answer.json()["detail"], (params, answer.json())


# --------------------------------------------------------------------------------------------- metadata


def test_tile_matrix_set_and_tileset_documents(app: tuple[TestClient, Tokens], catalog: Catalog) -> None:
    client, _ = app
    sets = client.get("/ogc/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    tms = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["crs"].endswith("/EPSG/0/3857")
    matrices = {m["id"]: m for m in tms["tileMatrices"]}
    assert sorted(int(k) for k in matrices) == list(range(23))
    for z in (0, 12, 22):
        matrix = matrices[str(z)]
        assert matrix["matrixWidth"] == matrix["matrixHeight"] == 2**z
        assert matrix["cellSize"] == pytest.approx(156543.03392804097 / 2**z)  # metres per pixel at zoom z
        assert matrix["scaleDenominator"] == pytest.approx(559082264.0287178 / 2**z)
    tileset = client.get("/ogc/collections/roads/tiles/WebMercatorQuad").json()
    [template] = [link for link in tileset["links"] if link["rel"] == "item"]
    assert template["type"] == MVT and template["templated"] is True
    assert template["href"].endswith("/ogc/collections/roads/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    assert tileset["tiles"][0].endswith("/WebMercatorQuad/{z}/{y}/{x}")
    assert tileset["vector_layers"][0]["id"] == "roads"
    assert list(tileset["vector_layers"][0]["fields"]) == catalog.get("roads").public_fields
    listing = client.get("/ogc/collections/roads/tiles").json()
    assert listing["tilesets"][0]["dataType"] == "vector"
    collection = client.get("/ogc/collections/roads").json()
    assert any(
        link["rel"].endswith("/tilesets-vector") and link["href"].endswith("/collections/roads/tiles")
        for link in collection["links"]
    )
    landing = client.get("/ogc").json()
    assert any(link["rel"].endswith("/tiling-schemes") for link in landing["links"])
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conformance
