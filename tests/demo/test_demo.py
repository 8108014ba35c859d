"""The Gaoming demo dataset: real where it claims to be, consistent where it is synthetic, and reproducible.

The dataset is built once per module (a few seconds). Where possible each property is checked by an
independent computation (brute-force zonal sums, a networkx graph, the catalogue read from layers/*.yaml)
rather than by re-reading the builder's own numbers.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from geoplan.catalog import Catalog, load_catalog
from geoplan.demo import DEFAULT_SEED, DemoData, build_demo
from tests.conftest import ROOT

LAYERS = ROOT / "layers"
NO_DEMO_DATA: set[str] = set()
"""Optional layers the demo leaves empty (none at present)."""
SOURCES = LAYERS / "sources"
METRIC = "EPSG:4547"
POPULATION_2020 = 469_038
DISTRICT_KM2 = 937.9


@pytest.fixture(scope="module")
def steps() -> list[str]:
    return []


@pytest.fixture(scope="module")
def demo(steps: list[str]) -> DemoData:
    return build_demo(SOURCES, progress=steps.append)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(LAYERS)


@pytest.fixture(scope="module")
def m(demo: DemoData) -> dict[str, gpd.GeoDataFrame]:
    """Every layer in the metric CRS."""
    return {name: frame.to_crs(METRIC) for name, frame in demo.layers.items()}


@pytest.fixture(scope="module")
def district_m(m: dict[str, gpd.GeoDataFrame]) -> shapely.Geometry:
    return m["district"].geometry.iloc[0]


def _cells(demo: DemoData) -> tuple[np.ndarray, np.ndarray]:
    """Every raster cell as a box (EPSG:4547) and its value, row-major."""
    r = demo.population
    rows, cols = r.array.shape
    t = r.transform
    col, row = np.meshgrid(np.arange(cols), np.arange(rows))
    x0 = t.c + col.ravel() * t.a
    y1 = t.f + row.ravel() * t.e
    return shapely.box(x0, y1 + t.e, x0 + t.a, y1), r.array.ravel()


# ------------------------------------------------------------------------------------------- real inputs


def test_district_is_the_real_outline(demo: DemoData, district_m: shapely.Geometry) -> None:
    d = demo.layers["district"]
    assert list(d["code"]) == ["440608"]
    assert list(d["name"]) == ["高明区"]
    assert int(d["population_2020"].iloc[0]) == POPULATION_2020
    assert district_m.area / 1e6 == pytest.approx(DISTRICT_KM2, rel=0.005)
    src = gpd.read_file(SOURCES / "gaoming_district_datav_wgs84.geojson")
    assert shapely.equals_exact(d.geometry.iloc[0], src.geometry.iloc[0], tolerance=0)  # the published numbers


def test_progress_is_reported(steps: list[str], demo: DemoData) -> None:
    assert len(steps) >= 5
    assert all(isinstance(s, str) and s for s in steps)


# --------------------------------------------------------------------------------------------- raster


def test_population_raster_grid(demo: DemoData, district_m: shapely.Geometry) -> None:
    r = demo.population
    assert r.crs == METRIC
    assert r.array.dtype == np.float32
    assert (r.transform.a, r.transform.e) == (100.0, -100.0)
    assert r.transform.c % 100 == 0 and r.transform.f % 100 == 0
    x0, y0, x1, y1 = r.bounds
    dx0, dy0, dx1, dy1 = district_m.bounds
    assert x0 <= dx0 and y0 <= dy0 and x1 >= dx1 and y1 >= dy1
    assert x0 > dx0 - 100 and y1 < dy1 + 100
    assert r.nodata == -1


def test_population_raster_sums_to_census(demo: DemoData) -> None:
    total = demo.population.valid_sum()
    assert total == pytest.approx(POPULATION_2020, rel=0.001)
    assert total == pytest.approx(POPULATION_2020, rel=1e-7)  # exact to float precision


def test_nodata_exactly_outside_the_district(demo: DemoData, district_m: shapely.Geometry) -> None:
    boxes, values = _cells(demo)
    shapely.prepare(district_m)
    touching = shapely.intersects(district_m, boxes)
    assert (values[~touching] == -1).all()
    assert (values[touching] >= 0).all()


def test_partial_cells_carry_only_their_inside_share(demo: DemoData, district_m: shapely.Geometry) -> None:
    """A cell half outside the district must not hold a full cell's worth of a dense neighbourhood."""
    boxes, values = _cells(demo)
    shapely.prepare(district_m)
    edge = shapely.intersects(district_m.boundary, boxes)
    frac = shapely.area(shapely.intersection(boxes[edge], district_m)) / 10_000.0
    tiny = frac < 0.02
    assert tiny.any()
    assert values[edge][tiny].max() < 0.1 * values[values > 0].max()
    assert (values[edge][frac == 0] == 0).all()


def test_population_near_zero_on_red_lines(demo: DemoData, m: dict[str, gpd.GeoDataFrame]) -> None:
    boxes, values = _cells(demo)
    hills = shapely.union_all(m["eco_redlines"].geometry.values)
    shapely.prepare(hills)
    in_hills = shapely.contains(hills, boxes)
    district_density = demo.population.valid_sum() / m["district"].area.iloc[0]
    hill_density = values[in_hills].astype(float).sum() / (in_hills.sum() * 10_000.0)
    assert hill_density < 0.05 * district_density


def test_densest_at_seats_and_communities(demo: DemoData, m: dict[str, gpd.GeoDataFrame]) -> None:
    v = m["villages"]
    density = v["population"] / v.area
    assert density[v["type"] == "community"].median() > 10 * density[v["type"] == "village"].median()
    share = v.loc[v["type"] == "community", "population"].sum() / v["population"].sum()
    assert 0.6 < share < 0.95


# ------------------------------------------------------------------------------------ towns and villages


def test_villages_are_all_81_real_units(demo: DemoData) -> None:
    v = demo.layers["villages"]
    real = pd.read_csv(SOURCES / "gaoming_villages_nbs2023.csv", dtype=str)
    assert len(v) == 81
    assert v["village_code"].is_unique
    assert list(v["village_code"]) == list(real["village_code"])
    assert list(v["village_name"]) == list(real["village_name"])
    assert list(v["town_code"]) == list(real["town_code"])
    assert list(v["town"]) == list(real["town_name"])
    assert list(v["type"]) == list(real["type"])


def test_towns_are_the_real_units(demo: DemoData) -> None:
    t = demo.layers["towns"]
    real = pd.read_csv(SOURCES / "gaoming_towns_nbs2023.csv", dtype=str)
    assert list(t["town_code"]) == list(real["town_code"])
    kinds = dict(zip(t["town_name"], t["kind"], strict=True))
    assert kinds["荷城街道"] == "subdistrict"
    assert {kinds[n] for n in ("杨和镇", "明城镇", "更合镇")} == {"town"}
    assert sum(k == "special" for k in kinds.values()) == 4
    seats = gpd.read_file(SOURCES / "gaoming_places_geonames_wgs84.geojson")
    for code, pt in zip(seats["town_code_nbs2023"], seats.geometry, strict=True):
        row = t[t["town_code"] == code].iloc[0]
        assert (row["seat_lon"], row["seat_lat"]) == (pt.x, pt.y)
    for _, row in t.iterrows():  # every seat, special units included, lies in its unit
        assert row.geometry.contains(shapely.Point(row["seat_lon"], row["seat_lat"]))


def test_town_sizes_are_plausible(m: dict[str, gpd.GeoDataFrame]) -> None:
    km2 = dict(zip(m["towns"]["town_name"], m["towns"].area / 1e6, strict=True))
    for name, rough in (("荷城街道", 160), ("杨和镇", 150), ("明城镇", 230), ("更合镇", 380)):
        assert km2[name] == pytest.approx(rough, rel=0.15)
    special = m["towns"][m["towns"]["kind"] == "special"]
    assert (special.area / 1e6).between(1, 30).all()
    assert (m["towns"].geometry.apply(lambda g: len(g.geoms)) == 1).all()  # one piece each


@pytest.mark.parametrize("layer", ["towns", "villages", "landuse_plan"])
def test_layer_partitions_the_district(
    layer: str, m: dict[str, gpd.GeoDataFrame], district_m: shapely.Geometry
) -> None:
    geoms = m[layer].geometry.values
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(district_m.area, rel=1e-6)
    assert shapely.area(geoms).sum() == pytest.approx(union.area, rel=1e-6)
    assert shapely.symmetric_difference(union, district_m).area < 1e-6 * district_m.area


def test_every_village_lies_in_its_real_town(demo: DemoData) -> None:
    towns = demo.layers["towns"].set_index("town_code").geometry
    for _, v in demo.layers["villages"].iterrows():
        assert v.geometry.within(towns[v["town_code"]].buffer(1e-7)), v["village_name"]


def test_communities_cluster_near_their_seat(m: dict[str, gpd.GeoDataFrame]) -> None:
    towns = m["towns"].set_index("town_code")
    seats = gpd.GeoSeries(
        gpd.points_from_xy(towns["seat_lon"], towns["seat_lat"]), index=towns.index, crs="EPSG:4490"
    ).to_crs(METRIC)
    v = m["villages"]
    dist = v.geometry.centroid.distance(seats.loc[v["town_code"]].reset_index(drop=True))
    assert dist[v["type"] == "community"].median() < 0.5 * dist[v["type"] == "village"].median()
    assert v.loc[v["type"] == "community"].area.max() < v.loc[v["type"] == "village"].area.median()


def test_village_population_sums_to_the_raster(demo: DemoData) -> None:
    v = demo.layers["villages"]["population"]
    assert v.sum() == pytest.approx(demo.population.valid_sum(), rel=1e-6)
    assert (v >= 0).all()


def _brute_force_zonal(demo: DemoData, poly: shapely.Geometry, district: shapely.Geometry) -> float:
    """Loop over the cells as boxes: value * (cell ∩ polygon) / (cell ∩ district)."""
    r = demo.population
    t = r.transform
    minx, miny, maxx, maxy = poly.bounds
    c0, c1 = int((minx - t.c) // t.a), int((maxx - t.c) // t.a) + 1
    r0, r1 = int((t.f - maxy) // -t.e), int((t.f - miny) // -t.e) + 1
    total = 0.0
    for row in range(max(r0, 0), min(r1, r.array.shape[0])):
        for col in range(max(c0, 0), min(c1, r.array.shape[1])):
            value = float(r.array[row, col])
            if value <= 0:
                continue
            x, y = t.c + col * t.a, t.f + row * t.e
            cell = shapely.box(x, y + t.e, x + t.a, y)
            part = cell.intersection(poly).area
            if part > 0:
                total += value * part / cell.intersection(district).area
    return total


def test_interior_village_population_is_an_exact_zonal_sum(
    demo: DemoData, m: dict[str, gpd.GeoDataFrame], district_m: shapely.Geometry
) -> None:
    """Away from the outline every cell lies wholly in the district: value * (cell ∩ village) / cell area."""
    v = m["villages"]
    interior = v[~v.intersects(district_m.boundary.buffer(200))]
    row = interior.loc[interior.area.idxmin()]
    poly = row.geometry
    r = demo.population
    t = r.transform
    minx, miny, maxx, maxy = poly.bounds
    expected = 0.0
    for rr in range(int((t.f - maxy) // 100), int((t.f - miny) // 100) + 1):
        for cc in range(int((minx - t.c) // 100), int((maxx - t.c) // 100) + 1):
            x, y = t.c + cc * 100.0, t.f - rr * 100.0
            cell = shapely.box(x, y - 100.0, x + 100.0, y)
            expected += float(r.array[rr, cc]) * cell.intersection(poly).area / cell.area
    assert row["population"] == pytest.approx(expected, rel=1e-6)


def test_edge_village_population_is_an_exact_zonal_sum(
    demo: DemoData, m: dict[str, gpd.GeoDataFrame], district_m: shapely.Geometry
) -> None:
    """On the outline a cell's value belongs to its in-district part, shared by area among the villages."""
    v = m["villages"]
    edge = v[v.intersects(district_m.boundary) & (v["type"] == "community")]
    row = edge.loc[edge.area.idxmin()]
    assert row["population"] == pytest.approx(_brute_force_zonal(demo, row.geometry, district_m), rel=1e-6)


# --------------------------------------------------------------------------------------------- schema


def test_every_catalogue_layer_is_built(demo: DemoData, catalog: Catalog) -> None:
    assert sorted(demo.layers) == sorted(
        layer.name for layer in catalog.vector_layers() if layer.name not in NO_DEMO_DATA
    )
    assert [r.name for r in catalog.raster_layers()] == ["population"]


@pytest.mark.parametrize(
    "name", [layer.name for layer in load_catalog(LAYERS).vector_layers() if layer.name not in NO_DEMO_DATA]
)
def test_layer_matches_the_catalogue(name: str, demo: DemoData, catalog: Catalog) -> None:
    layer = catalog.get(name)
    frame = demo.layers[name]
    assert list(frame.columns) == [*layer.field_names, "geometry"]
    assert frame.geometry.name == "geometry"
    assert frame.crs is not None and frame.crs.to_epsg() == 4490
    assert len(frame) > 0
    for f in layer.fields:
        col = frame[f.name]
        present = col[col.notna()]
        if f.required or f.type in ("integer", "boolean"):
            assert col.notna().all(), f.name
        if f.type == "string":
            assert pd.api.types.is_string_dtype(col), f.name
            assert all(isinstance(x, str) and x for x in present), f.name
            if f.max_length is not None:
                assert present.str.len().max() <= f.max_length, f.name
        elif f.type == "integer":
            assert col.dtype == np.int64, f.name
        elif f.type == "float":
            assert col.dtype == np.float64, f.name
            assert np.isfinite(present).all(), f.name
        elif f.type == "boolean":
            assert col.dtype == np.bool_, f.name
        if f.allowed is not None:
            assert set(present) <= set(f.allowed), f.name
        if f.minimum is not None:
            assert (present >= f.minimum).all(), f.name
        if f.maximum is not None:
            assert (present <= f.maximum).all(), f.name
    assert layer.id_field is not None
    ids = frame[layer.id_field]
    assert ids.is_unique and (ids.str.len() > 0).all()
    geoms = frame.geometry.values
    assert (
        shapely.get_type_id(geoms) == {"MultiPolygon": 6, "MultiLineString": 5, "Point": 0}[str(layer.geometry)]
    ).all()
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()


def test_synthetic_layers_lie_in_the_district(m: dict[str, gpd.GeoDataFrame], district_m: shapely.Geometry) -> None:
    grown = district_m.buffer(1.0)
    shapely.prepare(grown)
    for name, frame in m.items():
        if name == "district":
            continue
        assert shapely.within(frame.geometry.values, grown).all(), name


# ---------------------------------------------------------------------------------------------- roads


def test_road_network_is_connected(demo: DemoData) -> None:
    roads = demo.layers["roads"]
    assert 2_000 <= len(roads) <= 20_000
    g: nx.Graph = nx.Graph()
    walk: nx.Graph = nx.Graph()
    for geom, walkable in zip(roads.geometry.values, roads["walkable"], strict=True):
        for line in geom.geoms:
            a, b = line.coords[0], line.coords[-1]
            g.add_edge(a, b)
            if walkable:
                walk.add_edge(a, b)
    assert nx.number_connected_components(g) == 1
    assert nx.number_connected_components(walk) == 1
    assert roads["walkable"].mean() > 0.95
    assert set(roads["road_class"]) == {"主干路", "次干路", "支路", "村道"}


def test_every_village_has_a_road(m: dict[str, gpd.GeoDataFrame]) -> None:
    roads = m["roads"]
    hit = gpd.sjoin(m["villages"], roads[roads["walkable"]], predicate="intersects")
    assert hit["village_code"].nunique() == 81


# ------------------------------------------------------------------------------------------ facilities


def test_facilities_kinds_and_gaps(m: dict[str, gpd.GeoDataFrame], catalog: Catalog) -> None:
    f = m["culture_facilities"]
    assert 100 <= len(f) <= 200
    allowed = catalog.get("culture_facilities").field("kind").allowed
    assert allowed is not None and set(f["kind"]) == set(allowed)
    towns = m["towns"][m["towns"]["kind"] != "special"]
    libs = gpd.sjoin(f[f["kind"] == "自助图书馆"], towns, predicate="within")
    without = set(towns["town_name"]) - set(libs["town_name"])
    assert len(without) >= 1
    centres = gpd.sjoin(f[f["kind"] == "综合性文化服务中心"], towns, predicate="within")
    assert set(centres["town_name"]) == set(towns["town_name"])
    v = m["villages"]
    villages = set(v.loc[v["type"] == "village", "village_code"])
    with_books = set(f.loc[f["kind"] == "农家书屋", "village_code"]) & villages
    assert 0.6 <= len(with_books) / len(villages) <= 0.8


def test_facility_village_codes_match_their_location(m: dict[str, gpd.GeoDataFrame]) -> None:
    f = m["culture_facilities"]
    joined = gpd.sjoin(f, m["villages"][["village_code", "geometry"]], predicate="within")
    assert len(joined) == len(f)
    assert (joined["village_code_left"] == joined["village_code_right"]).all()


def test_facilities_sit_on_the_network(m: dict[str, gpd.GeoDataFrame]) -> None:
    ends = np.array(
        [c for g in m["roads"].geometry.values for line in g.geoms for c in (line.coords[0], line.coords[-1])]
    )
    pts = shapely.get_coordinates(m["culture_facilities"].geometry.values)
    dist, _ = cKDTree(ends).query(pts)
    assert dist.max() <= 50.0


# ------------------------------------------------------------------------------ projects and plan layers


def test_projects_ledger(demo: DemoData) -> None:
    p = demo.layers["projects"]
    assert 35 <= len(p) <= 50
    assert p["project_id"].str.fullmatch(r"GM-\d{4}-\d{3}").all()
    assert p["task_area"].nunique() == 8
    for name in ("现代有轨电车示范线", "荷杨大道", "西江新城学校", "高明港区", "三洲旧区改造", "区粮食储备库"):
        assert name in set(p["name"])
    assert (p["start_year"] <= p["end_year"]).all()
    assert p["start_year"].between(2018, 2021).all() and p["end_year"].between(2018, 2022).all()  # the 2018–2020 plan
    done = p["status"] == "已完工"
    assert (p.loc[done, "progress_pct"] == 100).all()
    assert (p.loc[~done, "progress_pct"] < 100).all()
    assert (p.loc[p["status"] == "前期", "progress_pct"] <= 10).all()


def test_some_projects_conflict_with_red_lines_and_farmland(m: dict[str, gpd.GeoDataFrame]) -> None:
    p = m["projects"]
    red = shapely.union_all(m["eco_redlines"].geometry.values)
    farm = shapely.union_all(m["basic_farmland"].geometry.values)
    on_red = shapely.area(shapely.intersection(p.geometry.values, red)) > 1.0
    on_farm = shapely.area(shapely.intersection(p.geometry.values, farm)) > 1.0
    assert on_red.sum() >= 1 and on_farm.sum() >= 1
    assert 3 <= (on_red | on_farm).sum() <= 8


def test_plans_disagree_in_real_patches(m: dict[str, gpd.GeoDataFrame]) -> None:
    lu, up = m["landuse_plan"], m["urban_plan"]
    lu_built = shapely.union_all(lu.geometry[lu["construction"]].values)
    lu_open = shapely.union_all(lu.geometry[~lu["construction"]].values)
    for built, other in ((True, lu_open), (False, lu_built)):
        parcels = up.geometry[up["construction"] == built].values
        pieces = shapely.area(shapely.intersection(parcels, other))
        real = pieces[pieces > 100.0]  # anything larger than noise
        assert len(real) >= 3
        assert (real >= 0.5e4).all() and (real <= 20e4).all()
    ok = {"居住用地", "商业服务业用地", "工业用地", "公共管理与公共服务用地", "道路与交通设施用地", "绿地与广场用地"}
    assert (up["construction"] == up["land_class"].isin(ok)).all()
    lu_ok = {"城镇建设用地", "村庄建设用地", "交通水利用地", "其他建设用地"}
    assert (lu["construction"] == lu["land_class"].isin(lu_ok)).all()


def test_boundary_farmland_and_urban_plan_overlap_a_little(m: dict[str, gpd.GeoDataFrame]) -> None:
    dev = shapely.union_all(m["dev_boundary"].geometry.values)
    up = m["urban_plan"]
    outside = shapely.difference(shapely.union_all(up.geometry[up["construction"]].values), dev).area
    assert outside > 1e4
    farm = m["basic_farmland"]
    poking = shapely.area(shapely.intersection(farm.geometry.values, dev)) > 100.0
    assert 1 <= poking.sum() <= 10
    lu = m["landuse_plan"]
    cropland = shapely.union_all(lu.geometry[lu["land_class"] == "耕地"].values)
    farm_all = shapely.union_all(farm.geometry.values)
    assert shapely.difference(farm_all, cropland).area < 1.0
    assert set(m["dev_boundary"]["town"]) == {"荷城街道", "杨和镇", "明城镇", "更合镇"}


def test_zones_are_where_their_names_say(m: dict[str, gpd.GeoDataFrame]) -> None:
    units = m["villages"].set_index("village_name").geometry
    z = m["renewal_zones"].set_index("name")
    assert z.loc["三洲旧区"].geometry.within(units["三洲社区居委会"].buffer(0.01))
    assert z.loc["新圩旧城镇"].geometry.within(units["新圩社区居委会"].buffer(0.01))
    assert z.loc["新圩旧城镇", "town"] == "更合镇"
    for name in ("沿江路以东旧区", "原区技工学校", "富湾旧城镇", "西安旧城镇", "杨梅旧城镇"):
        assert name in z.index
    s = m["sponge_areas"]
    assert "西江新城海绵城市试点区" in set(s["name"])
    assert 7 <= len(s) <= 11


def test_red_lines_cover_a_plausible_share(m: dict[str, gpd.GeoDataFrame], district_m: shapely.Geometry) -> None:
    share = shapely.union_all(m["eco_redlines"].geometry.values).area / district_m.area
    assert 0.15 <= share <= 0.25
    assert m["eco_redlines"].area.sum() == pytest.approx(share * district_m.area, rel=1e-6)  # no overlaps


# ------------------------------------------------------------------------------------------ reproducible


def _same(a: DemoData, b: DemoData) -> bool:
    if a.layers.keys() != b.layers.keys():
        return False
    for name in a.layers:
        fa, fb = a.layers[name], b.layers[name]
        if not fa.drop(columns="geometry").equals(fb.drop(columns="geometry")):
            return False
        if list(shapely.to_wkb(fa.geometry.values)) != list(shapely.to_wkb(fb.geometry.values)):
            return False
    return bool(np.array_equal(a.population.array, b.population.array))


def test_same_seed_same_data_other_seed_other_data(demo: DemoData) -> None:
    again = build_demo(SOURCES, seed=DEFAULT_SEED)
    assert _same(demo, again)
    other = build_demo(SOURCES, seed=DEFAULT_SEED + 1)
    assert not _same(demo, other)
    assert not demo.layers["villages"].geometry.equals(other.layers["villages"].geometry)
    assert other.population.valid_sum() == pytest.approx(POPULATION_2020, rel=1e-7)
