"""The demo's public service facilities: every service in every real town, plausible counts, importable."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from geoplan.catalog import Catalog, load_catalog
from geoplan.demo import DemoData, build_demo
from geoplan.validation import validate
from tests.conftest import ROOT

LAYERS = ROOT / "layers"
METRIC = "EPSG:4547"


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return build_demo(LAYERS / "sources")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(LAYERS)


@pytest.fixture(scope="module")
def facilities(demo: DemoData) -> gpd.GeoDataFrame:
    return demo.layers["public_facilities"].to_crs(METRIC)


@pytest.fixture(scope="module")
def real_towns(demo: DemoData) -> gpd.GeoDataFrame:
    t = demo.layers["towns"].to_crs(METRIC)
    return t[t["kind"] != "special"]


def test_every_service_in_every_real_town(
    facilities: gpd.GeoDataFrame, real_towns: gpd.GeoDataFrame, catalog: Catalog
) -> None:
    services = catalog.get("public_facilities").field("service").allowed
    assert services is not None and len(services) == 8
    joined = gpd.sjoin(facilities, real_towns[["town_name", "geometry"]], predicate="within")
    assert len(joined) == len(facilities)  # none outside the real towns
    assert (joined["town"] == joined["town_name"]).all()  # the `town` field says where it lies
    for town in real_towns["town_name"]:
        assert set(joined.loc[joined["town_name"] == town, "service"]) == set(services), town


def test_counts_are_plausible(facilities: gpd.GeoDataFrame, demo: DemoData) -> None:
    assert 250 <= len(facilities) <= 700
    per_town = facilities.groupby("town").size()
    assert per_town.idxmax() == "荷城街道"  # the urban district holds the most
    v = demo.layers["villages"]
    villages = v.loc[v["type"] == "village", "village_code"]
    communities = v.loc[v["type"] == "community", "village_code"]
    clinics = facilities[facilities["kind"] == "村卫生站"]
    assert 0.7 <= clinics["village_code"].isin(villages).sum() / len(villages) <= 0.98  # most, not all
    kg = facilities[facilities["service"] == "kindergarten"]
    assert set(communities) <= set(kg["village_code"])  # every community has a kindergarten
    middle = facilities[facilities["service"] == "middle_school"]
    assert len(middle) == 5 + 3 * 2
    assert (middle["town"] == "荷城街道").sum() == 5


def test_parks_carry_their_area_and_only_parks(facilities: gpd.GeoDataFrame) -> None:
    park = facilities["service"] == "park"
    assert facilities.loc[park, "area_ha"].notna().all()
    assert facilities.loc[~park, "area_ha"].isna().all()
    assert (facilities.loc[park, "area_ha"] > 0).all()
    big = facilities.loc[park & (facilities["kind"] == "综合公园"), "area_ha"]
    small = facilities.loc[park & (facilities["kind"] == "游园"), "area_ha"]
    assert big.min() >= 10 and small.max() < 1
    assert park.sum() >= 40


def test_village_codes_match_their_location(facilities: gpd.GeoDataFrame, demo: DemoData) -> None:
    villages = demo.layers["villages"].to_crs(METRIC)[["village_code", "geometry"]]
    joined = gpd.sjoin(facilities, villages, predicate="within")
    assert len(joined) == len(facilities)
    assert (joined["village_code_left"] == joined["village_code_right"]).all()


def test_on_the_network(facilities: gpd.GeoDataFrame, demo: DemoData) -> None:
    roads = demo.layers["roads"].to_crs(METRIC)
    ends = np.array([c for g in roads.geometry.values for line in g.geoms for c in (line.coords[0], line.coords[-1])])
    dist, _ = cKDTree(ends).query(shapely.get_coordinates(facilities.geometry.values))
    assert dist.max() <= 50.0
    assert not facilities.geometry.duplicated().any()


def test_importable(demo: DemoData, catalog: Catalog) -> None:
    frame = demo.layers["public_facilities"]
    district = demo.layers["district"].geometry.iloc[0]
    result = validate(frame, catalog.get("public_facilities"), source="demo", district=district, strict=True)
    assert len(result.frame) == len(frame)
    assert set(result.frame["facility_id"]) == set(frame["facility_id"])


def test_reproducible(demo: DemoData) -> None:
    again = build_demo(LAYERS / "sources")
    a, b = demo.layers["public_facilities"], again.layers["public_facilities"]
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
