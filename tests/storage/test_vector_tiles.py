"""`LayerStore.vector_tile` on both stores: the same features, fields and geometry rules in SQL (PostGIS) and in
process (GeoPackage). Tile numbers and corners are worked out here by hand from the Web Mercator formulas."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.cql2 import parse_filter
from geoplan.errors import NotFoundError
from geoplan.storage import LayerStore
from geoplan.storage.tile_matrix import TileKey
from tests.factories import sample_frame

R = 6378137.0  # the WGS84 semi-major axis: Web Mercator's sphere


def mercator(lon: float, lat: float) -> tuple[float, float]:
    return R * math.radians(lon), R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def tile_for(lon: float, lat: float, z: int) -> TileKey:
    x, y = mercator(lon, lat)
    size = 2 * math.pi * R / 2**z
    return TileKey(z, int((x + math.pi * R) // size), int((math.pi * R - y) // size))


def decode(data: bytes, name: str) -> list[dict]:  # type: ignore[type-arg]
    assert data, "an empty tile"
    tile = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    assert list(tile) == [name]
    return list(tile[name]["features"])


def test_tile_bounds_match_the_mercator_formula() -> None:
    tile = TileKey(14, 13457, 7119)
    size = 2 * math.pi * R / 2**14
    west, south, east, north = tile.mercator_bounds
    assert west == pytest.approx(-math.pi * R + 13457 * size, abs=1e-6)
    assert north == pytest.approx(math.pi * R - 7119 * size, abs=1e-6)
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds
    assert mercator(lon0, lat0) == pytest.approx((west, south), abs=1e-6)
    assert mercator(lon1, lat1) == pytest.approx((east, north), abs=1e-6)
    for z, x, y in ((23, 0, 0), (-1, 0, 0), (2, 4, 0), (2, 0, -1)):
        with pytest.raises(NotFoundError):
            TileKey(z, x, y)


def test_features_fields_and_clipping(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    frame = sample_frame(layer, 12)
    store.write("projects", frame)
    first = frame.geometry.iloc[0]
    tile = tile_for(first.centroid.x, first.centroid.y, 15)
    box = shapely.box(*tile.lonlat_bounds)
    expected = set(frame.loc[frame.intersects(box), "project_id"])
    features = decode(store.vector_tile("projects", tile, ["project_id", "name"]), "projects")
    assert {f["properties"]["project_id"] for f in features} == expected
    assert all(set(f["properties"]) == {"project_id", "name"} for f in features)
    names = dict(zip(frame["project_id"], frame["name"], strict=True))
    assert all(f["properties"]["name"] == names[f["properties"]["project_id"]] for f in features)
    for feature in features:  # clipped to the tile plus its 64-unit buffer
        coords = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))
        assert coords.min() >= -64 and coords.max() <= 4096 + 64
        assert (coords == coords.round()).all()
    with pytest.raises(NotFoundError):
        store.vector_tile("projects", tile, ["project_id", "no_such_field"])
    far = TileKey(15, 0, 0)
    assert store.vector_tile("projects", far, ["project_id"]) == b""


def test_a_feature_smaller_than_a_tile_unit_stays_as_a_point(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get("projects")
    frame = sample_frame(layer, 1)
    lon, lat = 112.7, 22.9
    frame.loc[0, "geometry"] = shapely.MultiPolygon([shapely.box(lon, lat, lon + 1e-5, lat + 1e-5)])  # about 1 m
    store.write("projects", frame)
    coarse = tile_for(lon, lat, 8)  # a tile unit is about 150 m here
    [feature] = decode(store.vector_tile("projects", coarse, ["project_id"]), "projects")
    assert feature["geometry"]["type"] == "Point"
    west, _, _, north = coarse.mercator_bounds
    x, y = mercator(lon, lat)
    unit = coarse.unit_m
    px, py = feature["geometry"]["coordinates"]
    assert abs(px - (x - west) / unit) <= 1 and abs(py - (north - y) / unit) <= 1
    fine = tile_for(lon, lat, 20)  # about 4 cm a unit: the square is drawn as a square
    [square] = decode(store.vector_tile("projects", fine, ["project_id"]), "projects")
    assert square["geometry"]["type"] == "Polygon"
    drawn = shapely.geometry.shape(square["geometry"])
    side = R * math.radians(1e-5)  # Web Mercator stretches north-south by 1/cos(lat) here
    assert drawn.area == pytest.approx(side * side / math.cos(math.radians(lat)) / fine.unit_m**2, rel=0.02)


def test_a_filter_keeps_the_features_it_selects(store: LayerStore, catalog: Catalog) -> None:
    """The filter may name fields the tile does not carry (here the private investment); the tile holds the
    features of the tile the filter selects, as pandas selects them on the written frame."""
    layer = catalog.get("projects")
    frame = sample_frame(layer, 40)
    store.write("projects", frame)
    tile = TileKey(8, 208, 111)  # holds all of Gaoming (lon 112.5-113.9, lat 22.6-23.9)
    box = shapely.box(*tile.lonlat_bounds)
    assert frame.intersects(box).all()
    cutoff = float(frame["investment_wan"].median())
    queryables = {"start_year": "integer", "investment_wan": "float", "geometry": "geometry"}
    node = parse_filter(f"investment_wan > {cutoff} OR start_year = 2020", lang="cql2-text", queryables=queryables)
    selected = (frame["investment_wan"] > cutoff) | (frame["start_year"] == 2020)
    expected = set(frame.loc[selected, "project_id"])
    assert 0 < len(expected) < len(frame)
    features = decode(store.vector_tile("projects", tile, ["project_id"], node), "projects")
    assert {f["properties"]["project_id"] for f in features} == expected
    assert all(set(f["properties"]) == {"project_id"} for f in features)
    nothing = parse_filter("start_year < 1900", lang="cql2-text", queryables=queryables)
    assert store.vector_tile("projects", tile, ["project_id"], nothing) == b""
