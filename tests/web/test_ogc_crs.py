"""OGC API Part 2: items in another CRS, in that CRS's own axis order, and bbox-crs; checked against pyproj
with always_xy (an independent path that never uses the authority order)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from geoplan.storage.gpkg import GeoPackageStore

ITEMS = "/ogc/collections/culture_facilities/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _points(body: dict) -> dict[str, tuple[float, float]]:
    return {f["id"]: tuple(f["geometry"]["coordinates"]) for f in body["features"]}


def test_items_in_each_crs_follow_its_axis_order(client: TestClient, web_store: GeoPackageStore) -> None:
    frame = web_store.read("culture_facilities")
    stored = {fid: (g.x, g.y) for fid, g in zip(frame["facility_id"], frame.geometry, strict=True)}
    plain = client.get(ITEMS, params={"limit": 1000})
    assert plain.headers["content-crs"] == f"<{CRS84}>"
    assert _points(plain.json()) == stored
    for code in ("4490", "4326"):  # lat, lon when named by URI
        response = client.get(ITEMS, params={"crs": f"{EPSG}{code}", "limit": 1000})
        assert response.headers["content-crs"] == f"<{EPSG}{code}>"
        got = _points(response.json())
        for fid, (lon, lat) in stored.items():
            assert got[fid] == pytest.approx((lat, lon), abs=1e-7)
    # EPSG:4547 is X north, Y east: (northing, easting); pyproj's always_xy gives (easting, northing).
    gk = Transformer.from_crs("EPSG:4490", "EPSG:4547", always_xy=True)
    got = _points(client.get(ITEMS, params={"crs": f"{EPSG}4547", "limit": 1000}).json())
    for fid, (lon, lat) in stored.items():
        easting, northing = gk.transform(lon, lat)
        assert got[fid] == pytest.approx((northing, easting), abs=0.01)
        assert 2.5e6 < got[fid][0] < 2.6e6 and 3.3e5 < got[fid][1] < 4.2e5  # Gaoming: ~22.9°N, west of 114°E
    one = client.get(f"{ITEMS}/{frame['facility_id'].iloc[0]}", params={"crs": f"{EPSG}4490"})
    assert one.headers["content-crs"] == f"<{EPSG}4490>"
    assert one.json()["geometry"]["coordinates"] == pytest.approx(list(stored[frame["facility_id"].iloc[0]][::-1]))


def test_polygons_transform_every_vertex(client: TestClient, web_store: GeoPackageStore) -> None:
    frame = web_store.read("projects").set_index("project_id")
    body = client.get("/ogc/collections/projects/items", params={"crs": f"{EPSG}4490", "limit": 5}).json()
    for feature in body["features"]:
        ring = np.asarray(feature["geometry"]["coordinates"][0][0])
        expected = shapely.get_coordinates(frame.geometry[feature["id"]])[:, ::-1]
        assert np.allclose(ring, expected)


def test_bbox_crs(client: TestClient, web_store: GeoPackageStore) -> None:
    lon_lat = (112.862, 22.889, 112.875, 22.895)
    want = sorted(f["id"] for f in client.get(ITEMS, params={"bbox": ",".join(map(str, lon_lat))}).json()["features"])
    assert 0 < len(want) < 30
    lat_lon = f"{lon_lat[1]},{lon_lat[0]},{lon_lat[3]},{lon_lat[2]}"
    got = client.get(ITEMS, params={"bbox": lat_lon, "bbox-crs": f"{EPSG}4490"}).json()["features"]
    assert sorted(f["id"] for f in got) == want


def test_unsupported_crs_is_400(client: TestClient) -> None:
    for params in ({"crs": f"{EPSG}3857"}, {"bbox": "1,2,3,4", "bbox-crs": "EPSG:4490"}, {"crs": "nonsense"}):
        response = client.get(ITEMS, params=params)
        assert response.status_code == 400
        assert "not supported" in response.json()["detail"]


def test_a_crs_is_serialised_once_per_layer_version(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.layer_cache

    calls: list[int] = []
    original = web.layer_cache.feature_strings

    def counting(frame, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(frame))
        return original(frame, **kwargs)

    monkeypatch.setattr(web.layer_cache, "feature_strings", counting)
    client.get(ITEMS, params={"limit": 5})  # fills the cache: one serialisation in CRS84
    for offset in (0, 5, 10):
        client.get(ITEMS, params={"crs": f"{EPSG}4547", "limit": 5, "offset": offset})
    assert calls == [30, 30]  # CRS84 once, EPSG:4547 once; later pages come from memory
