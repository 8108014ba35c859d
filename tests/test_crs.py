"""geoplan.crs: GCJ-02, CRS parsing, zone-prefix detection, the to_store_crs rules and areas."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from geoplan.crs import (
    GCJ02,
    METRIC_CRS,
    STORE_CRS,
    detect_zone_prefixed_crs,
    ellipsoidal_area_m2,
    gcj02_to_wgs84,
    geometries_gcj02_to_wgs84,
    geometries_wgs84_to_gcj02,
    parse_crs,
    planar_area_m2,
    to_store_crs,
    wgs84_to_gcj02,
)
from geoplan.errors import CRSError, InputError
from geoplan.io import read_file

SOURCES = Path(__file__).parents[1] / "layers" / "sources"
DISTRICT_WGS84 = SOURCES / "gaoming_district_datav_wgs84.geojson"
DISTRICT_GCJ02 = SOURCES / "gaoming_district_datav_gcj02.geojson"
GEOD = Geod(ellps="GRS80")
# A few points spread over Gaoming (lon, lat).
GAOMING_LON = np.array([112.45, 112.60, 112.70, 112.88, 112.95])
GAOMING_LAT = np.array([22.70, 22.75, 22.85, 22.89, 22.95])


def _points_frame(lon: np.ndarray, lat: np.ndarray, crs: str | None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"n": range(len(lon))}, geometry=shapely.points(lon, lat), crs=crs)


def _xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(frame.geometry.to_numpy())


# --------------------------------------------------------------------------------------------- GCJ-02


def test_gcj02_reference_pair() -> None:
    lon, lat = wgs84_to_gcj02(116.397428, 39.90923)
    assert float(lon) == pytest.approx(116.403672, abs=1e-5)
    assert float(lat) == pytest.approx(39.910634, abs=1e-5)
    back_lon, back_lat = gcj02_to_wgs84(116.403672, 39.910634)
    assert float(back_lon) == pytest.approx(116.397428, abs=1e-5)
    assert float(back_lat) == pytest.approx(39.90923, abs=1e-5)


def test_gcj02_round_trip_across_china_is_below_1e9_degrees() -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(75.0, 135.0, 5000)
    lat = rng.uniform(18.0, 53.0, 5000)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert g_lon.shape == lon.shape
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert np.abs(w_lon - lon).max() < 1e-9
    assert np.abs(w_lat - lat).max() < 1e-9
    # and the inverse really inverts the forward formula (not just a self-consistent pair)
    again_lon, again_lat = wgs84_to_gcj02(w_lon, w_lat)
    assert np.abs(again_lon - g_lon).max() < 1e-9
    assert np.abs(again_lat - g_lat).max() < 1e-9


def test_gcj02_offset_in_gaoming_is_a_few_hundred_metres() -> None:
    g_lon, g_lat = wgs84_to_gcj02(GAOMING_LON, GAOMING_LAT)
    _, _, metres = GEOD.inv(GAOMING_LON, GAOMING_LAT, g_lon, g_lat)
    assert np.all((metres > 450) & (metres < 750))  # the guide: about 610 m in Gaoming


def test_gcj02_leaves_points_outside_china_unchanged() -> None:
    lon = np.array([2.35, -74.0, 151.2])
    lat = np.array([48.85, 40.7, -33.9])
    for func in (wgs84_to_gcj02, gcj02_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)


def test_geometry_helpers_shift_every_vertex_and_keep_none_and_z() -> None:
    ring = [(112.8, 22.8), (112.9, 22.8), (112.9, 22.9), (112.8, 22.9), (112.8, 22.8)]
    hole = [(112.84, 22.84), (112.86, 22.84), (112.86, 22.86), (112.84, 22.84)]
    geoms = np.array([shapely.Polygon(ring, [hole]), None, shapely.Point(112.85, 22.85, 7.0)], dtype=object)
    shifted = geometries_wgs84_to_gcj02(geoms)
    assert shifted[1] is None
    coords = shapely.get_coordinates(geoms[0])
    expected = np.column_stack(wgs84_to_gcj02(coords[:, 0], coords[:, 1]))
    np.testing.assert_allclose(shapely.get_coordinates(shifted[0]), expected, rtol=0, atol=1e-12)
    assert len(shifted[0].interiors) == 1
    assert shifted[2].has_z and shifted[2].z == 7.0
    back = geometries_gcj02_to_wgs84(shifted)
    np.testing.assert_allclose(shapely.get_coordinates(back[0]), coords, rtol=0, atol=1e-9)
    assert geoms[0].exterior.coords[0] == (112.8, 22.8)  # input untouched


def test_gcj02_district_lands_within_2_m_of_the_wgs84_outline() -> None:
    converted = read_file(DISTRICT_GCJ02, crs="gcj02")
    reference = gpd.read_file(DISTRICT_WGS84)
    assert converted.crs == CRS.from_user_input(STORE_CRS)
    ours = _xy(converted.to_crs(METRIC_CRS))
    theirs = _xy(reference.to_crs(METRIC_CRS))
    assert ours.shape == theirs.shape
    assert np.hypot(*(ours - theirs).T).max() < 2.0
    hausdorff = (
        converted.to_crs(METRIC_CRS).geometry.iloc[0].hausdorff_distance(reference.to_crs(METRIC_CRS).geometry.iloc[0])
    )
    assert hausdorff < 2.0
    # and without the conversion it would be hundreds of metres off: the test can fail
    raw = _xy(gpd.read_file(DISTRICT_GCJ02).to_crs(METRIC_CRS))
    assert np.hypot(*(raw - theirs).T).min() > 300


# --------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text", ["EPSG:4547", "4547", " epsg:4547 ", "+proj=tmerc +lon_0=114 +x_0=500000 +ellps=GRS80"]
)
def test_parse_crs_accepts_codes_and_proj_strings(text: str) -> None:
    crs = parse_crs(text)
    assert isinstance(crs, CRS) and crs.coordinate_operation is not None
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == 114.0


def test_parse_crs_accepts_wkt() -> None:
    crs = parse_crs(CRS.from_epsg(4526).to_wkt())
    assert isinstance(crs, CRS) and crs.to_epsg() == 4526


@pytest.mark.parametrize("text", ["gcj02", "GCJ-02", "gcj", "GCJ02", " Gcj "])
def test_parse_crs_gcj02_aliases(text: str) -> None:
    assert parse_crs(text) == GCJ02


@pytest.mark.parametrize("text", ["EPSG:99999", "not a crs", "", "baidu"])
def test_parse_crs_refuses_unknown_text(text: str) -> None:
    with pytest.raises(CRSError) as info:
        parse_crs(text)
    assert "--crs" in str(info.value)
    assert isinstance(info.value, InputError)


# --------------------------------------------------------------------------------------------- zones


def _gk(zone_epsg: int, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = Transformer.from_crs(4490, zone_epsg, always_xy=True).transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def _bounds(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def test_detects_zone_38_and_37_prefixes() -> None:
    x, y = _gk(4526, GAOMING_LON, GAOMING_LAT)
    assert str(int(x[0]))[:2] == "38" and len(str(int(x[0]))) == 8  # what the fixture claims to be
    assert detect_zone_prefixed_crs(_bounds(x, y)) == CRS.from_epsg(4526)
    x37, y37 = _gk(4525, np.array([110.5, 111.2]), np.array([22.5, 22.9]))
    assert detect_zone_prefixed_crs(_bounds(x37, y37)) == CRS.from_epsg(4525)


@pytest.mark.parametrize(
    "bounds",
    [
        (112.4, 22.6, 113.0, 23.0),  # lon/lat
        (390_000.0, 2_510_000.0, 450_000.0, 2_550_000.0),  # EPSG:4547 metres, no prefix
        (37_900_000.0, 2_510_000.0, 38_100_000.0, 2_550_000.0),  # spans two zones
        (38_950_000.0, 2_510_000.0, 38_960_000.0, 2_550_000.0),  # remainder 950 km from nothing
        (38_400_000.0, 7_000_000.0, 38_450_000.0, 7_100_000.0),  # northing beyond China
        (46_400_000.0, 2_510_000.0, 46_450_000.0, 2_550_000.0),  # zone 46 does not exist in CGCS2000
        (math.nan, math.nan, math.nan, math.nan),
    ],
)
def test_zone_detection_rejects_other_numbers(bounds: tuple[float, float, float, float]) -> None:
    assert detect_zone_prefixed_crs(bounds) is None


# --------------------------------------------------------------------------------------------- to_store_crs


def test_zone_prefixed_without_crs_is_detected_and_lands_in_place() -> None:
    x, y = _gk(4526, GAOMING_LON, GAOMING_LAT)
    frame = _points_frame(x, y, None)
    out = to_store_crs(frame, declared=None, source="survey.csv")
    assert out.crs == CRS.from_epsg(4490)
    np.testing.assert_allclose(_xy(out), np.column_stack([GAOMING_LON, GAOMING_LAT]), rtol=0, atol=1e-8)
    assert frame.crs is None and _xy(frame)[0, 0] == x[0]  # input untouched


def test_declared_crs_is_used_when_the_file_has_none() -> None:
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    out = to_store_crs(_points_frame(np.asarray(x), np.asarray(y), None), declared="EPSG:4547", source="a.csv")
    np.testing.assert_allclose(_xy(out), np.column_stack([GAOMING_LON, GAOMING_LAT]), rtol=0, atol=1e-8)


def test_lonlat_without_crs_is_refused_with_a_crs_hint() -> None:
    with pytest.raises(CRSError) as info:
        to_store_crs(_points_frame(GAOMING_LON, GAOMING_LAT, None), declared=None, source="points.csv")
    message = str(info.value)
    assert message.startswith("points.csv: the file does not say its coordinate system")
    assert "--crs" in message and "gcj02" in message


def test_unknown_declared_crs_is_refused() -> None:
    with pytest.raises(CRSError) as info:
        to_store_crs(_points_frame(GAOMING_LON, GAOMING_LAT, None), declared="EPSG:123456", source="a.csv")
    assert str(info.value).startswith("a.csv: unknown coordinate system 'EPSG:123456'")
    assert "--crs" in str(info.value)


def test_wgs84_to_cgcs2000_keeps_the_numbers() -> None:
    frame = _points_frame(GAOMING_LON, GAOMING_LAT, "EPSG:4326")
    out = to_store_crs(frame, declared=None, source="a.geojson")
    assert out.crs == CRS.from_epsg(4490)
    np.testing.assert_array_equal(_xy(out), _xy(frame))
    assert frame.crs == CRS.from_epsg(4326)  # input untouched


def test_declared_cgcs2000_agrees_with_a_wgs84_file() -> None:
    out = to_store_crs(_points_frame(GAOMING_LON, GAOMING_LAT, "OGC:CRS84"), declared="EPSG:4490", source="a")
    np.testing.assert_array_equal(_xy(out)[:, 0], GAOMING_LON)


def test_projected_file_is_reprojected() -> None:
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    out = to_store_crs(_points_frame(np.asarray(x), np.asarray(y), "EPSG:4547"), declared=None, source="a.gpkg")
    np.testing.assert_allclose(_xy(out), np.column_stack([GAOMING_LON, GAOMING_LAT]), rtol=0, atol=1e-8)


def test_file_crs_and_declared_crs_disagreeing_is_refused() -> None:
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    frame = _points_frame(np.asarray(x), np.asarray(y), "EPSG:4547")
    with pytest.raises(CRSError) as info:
        to_store_crs(frame, declared="EPSG:4526", source="a.gpkg")
    assert "EPSG:4547" in str(info.value) and "EPSG:4526" in str(info.value)


def test_gcj02_declared_for_a_wgs84_claiming_file_converts() -> None:
    g_lon, g_lat = wgs84_to_gcj02(GAOMING_LON, GAOMING_LAT)
    out = to_store_crs(_points_frame(g_lon, g_lat, "EPSG:4326"), declared="GCJ-02", source="amap.geojson")
    assert out.crs == CRS.from_epsg(4490)
    np.testing.assert_allclose(_xy(out), np.column_stack([GAOMING_LON, GAOMING_LAT]), rtol=0, atol=1e-9)


def test_gcj02_declared_for_a_projected_file_is_refused() -> None:
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    frame = _points_frame(np.asarray(x), np.asarray(y), "EPSG:4547")
    with pytest.raises(CRSError, match=r"gcj02.*EPSG:4547"):
        to_store_crs(frame, declared="gcj02", source="a.gpkg")


def test_gcj02_declared_for_metre_numbers_is_refused() -> None:
    frame = _points_frame(np.array([400_000.0]), np.array([2_530_000.0]), None)
    with pytest.raises(CRSError, match="longitude/latitude"):
        to_store_crs(frame, declared="gcj02", source="a.csv")


def test_projected_crs_claimed_for_lonlat_numbers_is_refused() -> None:
    frame = _points_frame(GAOMING_LON, GAOMING_LAT, "EPSG:4547")
    with pytest.raises(CRSError) as info:
        to_store_crs(frame, declared=None, source="wrong.shp")
    assert "wrong.shp" in str(info.value) and "look like longitude/latitude" in str(info.value)


def test_declared_projected_crs_for_lonlat_numbers_is_refused() -> None:
    with pytest.raises(CRSError, match="look like longitude/latitude"):
        to_store_crs(_points_frame(GAOMING_LON, GAOMING_LAT, None), declared="EPSG:4547", source="a.csv")


def test_unprefixed_crs_claimed_for_prefixed_eastings_is_refused() -> None:
    x, y = _gk(4526, GAOMING_LON, GAOMING_LAT)
    with pytest.raises(CRSError) as info:
        to_store_crs(_points_frame(x, y, "EPSG:4547"), declared=None, source="a.shp")
    assert "zone prefix" in str(info.value) and "EPSG:4526" in str(info.value)


def test_prefixed_crs_claimed_for_unprefixed_eastings_is_refused() -> None:
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    with pytest.raises(CRSError, match="zone number 38"):
        to_store_crs(_points_frame(np.asarray(x), np.asarray(y), "EPSG:4526"), declared=None, source="a.shp")


def test_geographic_crs_claimed_for_metres_is_refused() -> None:
    x, y = _gk(4526, GAOMING_LON, GAOMING_LAT)
    with pytest.raises(CRSError) as info:
        to_store_crs(_points_frame(x, y, "EPSG:4490"), declared=None, source="a.geojson")
    assert "±180/±90" in str(info.value) and "EPSG:4526" in str(info.value)


def test_projected_numbers_far_outside_the_crs_area_are_refused() -> None:
    # EPSG:4547 metres read as Lambert-93 (France) land in West Africa, 30 degrees south of France.
    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(GAOMING_LON, GAOMING_LAT)
    frame = _points_frame(np.asarray(x), np.asarray(y), "EPSG:2154")
    with pytest.raises(CRSError, match="far outside"):
        to_store_crs(frame, declared=None, source="a.shp")


# --------------------------------------------------------------------------------------------- areas


def _district() -> np.ndarray:
    return gpd.read_file(DISTRICT_WGS84).geometry.to_numpy()


def test_district_area_planar_and_ellipsoidal() -> None:
    planar = planar_area_m2(_district())[0] / 1e6
    ellipsoidal = ellipsoidal_area_m2(_district())[0] / 1e6
    assert planar == pytest.approx(937.9, rel=0.005)
    assert ellipsoidal == pytest.approx(937.9, rel=0.005)
    assert abs(planar - ellipsoidal) / ellipsoidal < 0.005
    assert planar != ellipsoidal  # really two different computations


def _ellipsoidal_box_area(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Closed-form area of a lon/lat quadrangle on the GRS80/CGCS2000 ellipsoid (authalic formula)."""
    a, f = 6378137.0, 1 / 298.257222101
    e2 = f * (2 - f)
    e = math.sqrt(e2)

    def q(phi: float) -> float:
        s = math.sin(phi)
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    b2 = a * a * (1 - e2)
    return b2 / 2 * math.radians(lon1 - lon0) * (q(math.radians(lat1)) - q(math.radians(lat0)))


def test_ellipsoidal_area_matches_the_closed_form_and_handles_holes_and_parts() -> None:
    box = shapely.box(112.8, 22.8, 112.9, 22.9)
    expected = _ellipsoidal_box_area(112.8, 22.8, 112.9, 22.9)
    hole = shapely.box(112.82, 22.82, 112.84, 22.84)
    expected_hole = _ellipsoidal_box_area(112.82, 22.82, 112.84, 22.84)
    with_hole = shapely.Polygon(box.exterior.coords, [hole.exterior.coords])
    clockwise_hole = shapely.Polygon(box.exterior.coords, [list(hole.exterior.coords)[::-1]])
    multi = shapely.MultiPolygon([box, shapely.box(112.5, 22.8, 112.6, 22.9)])
    geoms = np.array([box, with_hole, clockwise_hole, multi, shapely.Point(112.8, 22.8), None], dtype=object)
    areas = ellipsoidal_area_m2(geoms)
    assert areas[0] == pytest.approx(expected, rel=1e-4)
    assert areas[1] == pytest.approx(expected - expected_hole, rel=1e-4)
    assert areas[2] == pytest.approx(areas[1], rel=1e-12)  # ring orientation does not matter
    assert areas[3] == pytest.approx(expected + _ellipsoidal_box_area(112.5, 22.8, 112.6, 22.9), rel=1e-4)
    assert areas[4] == 0.0
    assert math.isnan(areas[5])


def test_planar_area_is_measured_in_gauss_kruger_metres() -> None:
    # A 1 km square drawn in EPSG:4547, its corners taken to lon/lat: back in EPSG:4547 it is 1 km² again.
    to_lonlat = Transformer.from_crs(METRIC_CRS, STORE_CRS, always_xy=True)
    corners = [(420_000.0, 2_530_000.0), (421_000.0, 2_530_000.0), (421_000.0, 2_531_000.0), (420_000.0, 2_531_000.0)]
    square = shapely.Polygon([to_lonlat.transform(x, y) for x, y in corners])
    assert planar_area_m2(np.array([square], dtype=object))[0] == pytest.approx(1e6, rel=1e-9)
