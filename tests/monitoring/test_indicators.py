"""The indicators against answers computed independently in this file: on small hand-made layers with known
answers, and on the Gaoming demo store, where every indicator row is recomputed from the layers with shapely,
networkx, pyproj.Geod and pandas (never with geoplan.monitoring's own functions).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from geoplan.analysis.rules import ConflictRule
from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError
from geoplan.monitoring.asof import AsOf
from geoplan.monitoring.indicator_defs import IndicatorSet, load_indicator_defs, parse_indicator_defs
from geoplan.monitoring.indicator_kinds import KINDS
from geoplan.monitoring.indicators import Inputs
from geoplan.monitoring.indicators_table import RESULT_COLUMNS, evaluate
from geoplan.monitoring.plan_period import load_plan
from geoplan.services.indicators import IndicatorRun, compute_indicators
from geoplan.services.overlap_marks import MarkRegistry
from geoplan.services.rule_files import default_rules_path, load_rules
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR
from tests.edge_linking_reference import SplitNetwork, walkable_lines
from tests.monitoring.ledger_reference import independent_ledger

METRIC = "EPSG:4547"
X0, Y0 = 370_000.0, 2_525_000.0  # inside Gaoming, in EPSG:4547
GEOD = pyproj.Geod(ellps="GRS80")  # the CGCS2000 ellipsoid's shape (same a and f)
TO_LONLAT = pyproj.Transformer.from_crs(METRIC, "EPSG:4490", always_xy=True)
NOW = AsOf(at=datetime(2026, 11, 20, 4, 0, tzinfo=UTC), current=True)


# --------------------------------------------------------------------------------------------- helpers


def _frame(rows: list[dict[str, Any]], geoms: list[shapely.Geometry], crs: str = METRIC) -> gpd.GeoDataFrame:
    """A frame made in metres, handed over in the store CRS like a store would."""
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=crs).to_crs("EPSG:4490")


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)])


def _point(x: float, y: float) -> shapely.Point:
    return shapely.Point(X0 + x, Y0 + y)


def _towns() -> gpd.GeoDataFrame:
    """Two towns side by side (2 km × 1 km each) and a special unit east of them."""
    return _frame(
        [
            {"town_code": "1", "town_name": "甲镇", "kind": "town"},
            {"town_code": "2", "town_name": "乙镇", "kind": "town"},
            {"town_code": "3", "town_name": "林场", "kind": "special"},
        ],
        [_box(0, 0, 2000, 1000), _box(2000, 0, 4000, 1000), _box(4000, 0, 5000, 1000)],
    )


def _definitions(catalog: Catalog, items: list[dict[str, Any]]) -> IndicatorSet:
    return parse_indicator_defs({"indicators": items}, catalog=catalog, source="test")


def _indicator(ident: str, kind: str, unit: str, scopes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "title_zh": ident,
        "title_en": ident,
        "unit": unit,
        "scopes": scopes,
        "kind": kind,
        "good_direction": extra.pop("good_direction", "up"),
        **extra,
    }


def _values(table: pd.DataFrame, indicator: str) -> dict[tuple[str, str], float]:
    rows = table[table["indicator"] == indicator]
    return {(s, k): float(v) for s, k, v in zip(rows["scope"], rows["scope_key"], rows["value"], strict=True)}


def _geod_area(geom_4490: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom_4490)[0]) if not geom_4490.is_empty else 0.0


def _to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


# --------------------------------------------------------------------------------------------- definitions


def test_the_bundled_definitions_load_and_cover_the_issue(catalog: Catalog) -> None:
    definitions = load_indicator_defs(LAYERS_DIR / "indicators.yaml", catalog=catalog)
    kinds = {d.kind for d in definitions}
    assert kinds == set(KINDS)  # every kind is used by at least one indicator
    sponge = definitions.get("sponge_share")
    # the plan's targets only (layers/plan.yaml): the 2030 ones lie beyond it
    assert [(t.value, t.comparison, t.year) for t in sponge.targets] == [(20.0, ">=", 2020)]
    assert sponge.target_for(2018).value == 20.0  # the first target due that year or later
    assert sponge.target_for(2020).value == 20.0
    assert sponge.target_for(2031).value == 20.0  # past all: the last one still holds
    assert definitions.get("renewal_area").unit_factor == pytest.approx(1e-4)  # m² -> ha
    assert len(definitions.sha256) == 64
    with pytest.raises(NotFoundError, match="culture_coverage"):
        definitions.get("no_such_indicator")


def test_bad_definitions_are_refused_with_every_problem(catalog: Catalog) -> None:
    items = [
        _indicator("ok_one", "facility_count", "个", ["town"], params={"kinds": ["自助图书馆"]}),
        _indicator("ok_one", "facility_count", "个", ["town"], params={"kinds": ["自助图书馆"]}),  # duplicate id
        _indicator("Bad-Id", "no_such_kind", "%", ["district"]),
        _indicator("area_pct", "area_by_field", "%", ["district", "status"], params={"layer": "renewal_zones"}),
        _indicator("wrong_scope", "sponge_share", "%", ["rule"], params={"built_up": {"layer": "roads"}}),
        _indicator(
            "bad_target",
            "conflict_area",
            "ha",
            ["district"],
            params={"marks": ["fixed"]},
            targets=[{"value": "20", "comparison": "="}, {"value": 1, "comparison": ">=", "year": 1900}],
            good_direction="sideways",
            colour="red",
        ),
    ]
    with pytest.raises(InputError) as caught:
        _definitions(catalog, items)
    message = str(caught.value)
    for expected in (
        "indicator #2 (ok_one): the id 'ok_one' is used twice",
        "id 'Bad-Id' must be lower-case",
        "unknown kind 'no_such_kind'",
        "kind area_by_field measures an area",
        "parameter 'field' is missing",
        "scope 'rule' is not offered by kind sponge_share",
        "'roads' is not a polygon layer",
        "parameter 'compliant' is missing",
        "marks: 'fixed' is not one of",
        "value must be a number",
        "comparison must be >= or <=",
        "year must be a year 2000–2100",
        "good_direction must be one of up, down, none",
        "unknown key(s) colour",
    ):
        assert expected in message, expected
    with pytest.raises(InputError, match="non-empty list 'indicators'"):
        parse_indicator_defs({"indicators": []}, catalog=catalog)


def test_a_definitions_file_that_is_not_yaml_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "indicators.yaml"
    path.write_text("indicators: [unclosed", encoding="utf-8")
    with pytest.raises(InputError, match="not a readable YAML file"):
        load_indicator_defs(path, catalog=catalog)
    with pytest.raises(InputError, match="not found"):
        load_indicator_defs(tmp_path / "missing.yaml", catalog=catalog)


# --------------------------------------------------------------------------------------------- hand-made layers


def test_sponge_share_on_known_boxes(catalog: Catalog) -> None:
    # Built-up: 1 km² in 甲镇 (500–1500 m) and 0.5 km² in 乙镇 (2500–3000 m), two overlapping parcels in 甲镇.
    # Compliant: 0.2 km² inside 甲镇's built-up area; a 达标 area outside every built-up area and a 在建 one
    # inside 乙镇's built-up area count for nothing.
    urban = _frame(
        [
            {"parcel_id": "U1", "land_class": "居住用地", "construction": True},
            {"parcel_id": "U2", "land_class": "工业用地", "construction": True},
            {"parcel_id": "U3", "land_class": "商业服务业用地", "construction": True},
            {"parcel_id": "U4", "land_class": "农林用地", "construction": False},
        ],
        [_box(500, 0, 1200, 1000), _box(1000, 0, 1500, 1000), _box(2500, 0, 3000, 1000), _box(0, 0, 500, 1000)],
    )
    sponge = _frame(
        [
            {"area_id": "S1", "name": "a", "status": "达标", "town": "甲镇"},
            {"area_id": "S2", "name": "b", "status": "达标", "town": "乙镇"},
            {"area_id": "S3", "name": "c", "status": "在建", "town": "乙镇"},
        ],
        [_box(0, 0, 700, 1000), _box(3000, 0, 3500, 1000), _box(2500, 0, 3000, 1000)],
    )
    definitions = _definitions(
        catalog,
        [
            _indicator(
                "sponge",
                "sponge_share",
                "%",
                ["district", "town"],
                params={
                    "built_up": {"layer": "urban_plan", "where": {"construction": True}},
                    "compliant": {"layer": "sponge_areas", "where": {"status": ["达标"]}},
                },
                targets=[
                    {"value": 20, "comparison": ">=", "year": 2020},
                    {"value": 80, "comparison": ">=", "year": 2030},
                ],
            )
        ],
    )
    inputs = Inputs(layers={"urban_plan": urban, "sponge_areas": sponge, "towns": _towns()}, as_of=NOW, catalog=catalog)
    table = evaluate(definitions=list(definitions), inputs=inputs)
    assert list(table.columns) == RESULT_COLUMNS
    values = _values(table, "sponge")
    assert values[("district", "")] == pytest.approx(100 * 0.2 / 1.5, rel=1e-7)
    assert values[("town", "甲镇")] == pytest.approx(20.0, rel=1e-7)
    assert values[("town", "乙镇")] == pytest.approx(0.0, abs=1e-9)
    assert ("town", "林场") not in values  # a special unit (prison, farm) is no town: no row, no town target
    # with virtual_units: in_towns it is held to the town targets like a town
    params = {
        "built_up": {"layer": "urban_plan", "where": {"construction": True}},
        "compliant": {"layer": "sponge_areas", "where": {"status": ["达标"]}},
        "virtual_units": "in_towns",
    }
    both = evaluate(
        definitions=list(
            _definitions(catalog, [_indicator("sponge", "sponge_share", "%", ["district", "town"], params=params)])
        ),
        inputs=inputs,
    )
    assert math.isnan(_values(both, "sponge")[("town", "林场")])
    special = both[both["scope_key"] == "林场"].iloc[0]
    assert special["note"] == "no built-up area" and special["target_met"] is None
    # 2026: the 80 % (2030) target applies, so 20 % misses it
    first = table[table["scope_key"] == "甲镇"].iloc[0]
    assert (first["target"], first["target_op"], first["target_year"], first["target_met"]) == (80.0, ">=", 2030, False)
    assert urban.geometry.equals(inputs.layers["urban_plan"].geometry)  # inputs untouched


def test_area_by_field_dissolves_overlaps_and_lists_every_status(catalog: Catalog) -> None:
    zones = _frame(
        [
            {"zone_id": "Z1", "name": "a", "kind": "旧城镇", "status": "规划"},
            {"zone_id": "Z2", "name": "b", "kind": "旧厂房", "status": "规划"},
            {"zone_id": "Z3", "name": "c", "kind": "旧村居", "status": "已完成"},
        ],
        # Z1 and Z2 overlap by 100 m × 100 m: 规划 covers 200 000 + 100 000 − 10 000 m²
        [_box(0, 0, 200, 1000), _box(100, 900, 1100, 1000), _box(3000, 0, 3100, 100)],
    )
    definitions = _definitions(
        catalog,
        [
            _indicator(
                "renewal",
                "area_by_field",
                "ha",
                ["district", "status"],
                params={"layer": "renewal_zones", "field": "status"},
            )
        ],
    )
    table = evaluate(
        definitions=list(definitions), inputs=Inputs(layers={"renewal_zones": zones}, as_of=NOW, catalog=catalog)
    )
    values = _values(table, "renewal")
    assert values[("status", "规划")] == pytest.approx(29.0, rel=1e-7)  # ha
    assert values[("status", "已完成")] == pytest.approx(1.0, rel=1e-7)
    assert values[("status", "启动")] == 0.0 and values[("status", "实施中")] == 0.0
    assert values[("district", "")] == pytest.approx(30.0, rel=1e-7)
    planning = table[table["scope_key"] == "规划"].iloc[0]
    expected = _geod_area(_to_lonlat(shapely.union_all([_box(0, 0, 200, 1000), _box(100, 900, 1100, 1000)]))) / 1e4
    assert planning["value_ellipsoid"] == pytest.approx(expected, rel=1e-6)
    assert planning["value_ellipsoid"] != planning["value"]  # the two measures really differ


def test_facility_count_counts_a_border_point_once(catalog: Catalog) -> None:
    # made in the store CRS, so the border point lies exactly on both towns' shared edge
    lon, lat = 112.70, 22.85
    towns = gpd.GeoDataFrame(
        {"town_code": ["1", "2", "3"], "town_name": ["甲镇", "乙镇", "林场"], "kind": ["town", "town", "special"]},
        geometry=[
            shapely.MultiPolygon([shapely.box(lon + i * 0.02, lat, lon + (i + 1) * 0.02, lat + 0.01)]) for i in range(3)
        ],
        crs="EPSG:4490",
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["F1", "F2", "F3", "F4"],
            "name": ["a", "b", "c", "d"],
            "kind": ["自助图书馆", "自助图书馆", "文化广场", "自助图书馆"],  # F2 on the border, F4 in the farm
        },
        geometry=[
            shapely.Point(lon + 0.001, lat + 0.001),
            shapely.Point(lon + 0.02, lat + 0.005),
            shapely.Point(lon + 0.021, lat + 0.001),
            shapely.Point(lon + 0.05, lat + 0.005),
        ],
        crs="EPSG:4490",
    )
    assert towns.geometry.iloc[0].covers(facilities.geometry.iloc[1]) and towns.geometry.iloc[1].covers(
        facilities.geometry.iloc[1]
    )
    definitions = _definitions(
        catalog,
        [
            _indicator(
                "libraries",
                "facility_count",
                "个",
                ["district", "town"],
                params={"kinds": ["自助图书馆"], "town_kinds": ["town"]},
                targets=[{"value": 1, "comparison": ">="}],
            )
        ],
    )
    inputs = Inputs(layers={"culture_facilities": facilities, "towns": towns}, as_of=NOW, catalog=catalog)
    table = evaluate(definitions=list(definitions), inputs=inputs)
    values = _values(table, "libraries")
    assert values == {("district", ""): 3.0, ("town", "甲镇"): 2.0, ("town", "乙镇"): 0.0}
    met = dict(zip(table["scope_key"], table["target_met"], strict=True))
    assert met == {"": True, "甲镇": True, "乙镇": False}


def _projects() -> gpd.GeoDataFrame:
    rows = [
        ("P1", "规划建设科学化", "甲镇", 2024, 2025, "在建", 50.0),
        ("P2", "规划建设科学化", "甲镇、乙镇", 2024, 2026, "已完工", 100.0),
        ("P3", "公共服务优质化", "乙镇", 2025, 2027, "前期", 0.0),
        ("P4", "公共服务优质化", "乙镇", 2023, 2026, "暂缓", 30.0),
    ]
    frame = [
        {
            "project_id": pid,
            "name": pid,
            "task_area": area,
            "category": "规划编制",
            "town": town,
            "responsible_unit": "u",
            "start_year": start,
            "end_year": end,
            "status": status,
            "progress_pct": progress,
        }
        for pid, area, town, start, end, status, progress in rows
    ]
    return _frame(frame, [_box(i * 100, 0, i * 100 + 50, 50) for i in range(len(rows))])


def test_projects_by_status_task_area_and_town(catalog: Catalog) -> None:
    definitions = _definitions(
        catalog,
        [
            _indicator(
                "projects", "project_count", "项", ["district", "status", "task_area_status", "town_status", "town"]
            ),
            _indicator("completed", "project_count", "项", ["task_area"], params={"statuses": ["已完工"]}),
            _indicator(
                "overdue",
                "project_overdue",
                "项",
                ["district", "town"],
                good_direction="down",
                targets=[{"value": 0, "comparison": "<="}],
            ),
        ],
    )
    inputs = Inputs(layers={"projects": _projects(), "towns": _towns()}, as_of=NOW, catalog=catalog)
    table = evaluate(definitions=list(definitions), inputs=inputs)
    projects = _values(table, "projects")
    assert projects[("district", "")] == 4
    assert projects[("status", "在建")] == 1 and projects[("status", "已开工")] == 0
    assert projects[("task_area_status", "规划建设科学化|已完工")] == 1
    assert projects[("task_area_status", "公共服务优质化|前期")] == 1
    assert projects[("town", "甲镇")] == 2 and projects[("town", "乙镇")] == 3  # P2 spans both towns
    assert ("town", "林场") not in projects  # a special unit holding no project has no town row
    assert projects[("town_status", "乙镇|已完工")] == 1
    assert len([k for k in projects if k[0] == "task_area_status"]) == 8 * 5  # every task area × status
    completed = _values(table, "completed")
    assert completed[("task_area", "规划建设科学化")] == 1 and completed[("task_area", "城市发展国际化")] == 0
    # 2026Q4: P1 (2025, 50 %) and P4 (2026, 30 %) are overdue; P2 is complete, P3 ends in 2027
    overdue = _values(table, "overdue")
    assert overdue == {("district", ""): 2, ("town", "甲镇"): 1, ("town", "乙镇"): 1}


def test_layers_in_different_crss_are_refused(catalog: Catalog) -> None:
    with pytest.raises(InputError, match="share one CRS"):
        Inputs(layers={"towns": _towns(), "villages": _towns().to_crs(METRIC)}, as_of=NOW, catalog=catalog)


# --------------------------------------------------------------------------------------------- the demo store


@pytest.fixture(scope="module")
def demo_run(demo_store_path: Path, catalog: Catalog) -> Iterator[IndicatorRun]:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        yield compute_indicators(store, layers_dir=LAYERS_DIR)
    finally:
        store.close()


@dataclass(frozen=True)
class DemoLayers:
    layers: dict[str, gpd.GeoDataFrame]
    raster: Any


@pytest.fixture(scope="module")
def demo_layers(demo_store_path: Path, catalog: Catalog) -> DemoLayers:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        names = [layer.name for layer in catalog.vector_layers()]
        return DemoLayers({name: store.read(name) for name in names}, store.read_raster("population"))
    finally:
        store.close()


def test_the_demo_table_has_every_indicator_and_one_moment(demo_run: IndicatorRun) -> None:
    table = demo_run.table
    assert list(table.columns) == RESULT_COLUMNS
    assert set(table["indicator"]) == {d.id for d in demo_run.definitions}
    assert table["as_of"].nunique() == 1 and demo_run.as_of.current
    assert not table.duplicated(["indicator", "scope", "scope_key"]).any()


def _coverage_reference(demo: DemoLayers, kinds: list[str] | None) -> tuple[dict[str, float], float]:
    """Coverage % per town and for the district: cells split between villages by exact box intersections,
    walking distances by networkx Dijkstra from every facility (cells and facilities linked to the nearest
    street within 200 m, the streets cut there), covered within 750 m."""
    raster = demo.raster
    villages = demo.layers["villages"].to_crs(METRIC)
    facilities = demo.layers["culture_facilities"]
    if kinds is not None:
        facilities = facilities[facilities["kind"].isin(kinds)]
    facilities = facilities.to_crs(METRIC)
    array = raster.array.astype(np.float64)
    rows, cols = np.nonzero((array != raster.nodata) & (array > 0))
    t = raster.transform
    x0, y1 = t.c + cols * t.a, t.f + rows * t.e
    boxes = shapely.box(x0, y1 + t.e, x0 + t.a, y1)
    centres = np.column_stack([x0 + t.a / 2, y1 + t.e / 2])
    values = array[rows, cols]
    tree = shapely.STRtree(boxes)
    held = np.zeros(len(boxes))
    parts = []
    for village in villages.geometry:
        near = tree.query(village)
        cut = shapely.area(shapely.intersection(boxes[near], village))
        keep = cut > 0
        parts.append((near[keep], cut[keep]))
        np.add.at(held, near[keep], cut[keep])
    # walking distances on the streets cut at every link (tests/edge_linking_reference.py)
    roads = demo.layers["roads"]
    fac_xy = shapely.get_coordinates(facilities.geometry.values).reshape(-1, 2)
    net = SplitNetwork(walkable_lines(roads.to_crs(METRIC)), np.vstack([centres, fac_xy]), 200.0)
    m = len(centres)
    walk = net.nearest_source(range(m, m + len(fac_xy)), range(m), cutoff=800.0)
    covered = walk <= 750.0 + 1e-6
    population: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    for (near, cut), town in zip(parts, villages["town"], strict=True):
        people = values[near] * cut / held[near]
        population[town] += float(people.sum())
        reached[town] += float((people * covered[near]).sum())
    per_town = {town: 100.0 * reached[town] / population[town] for town in population}
    return per_town, 100.0 * sum(reached.values()) / sum(population.values())


@pytest.mark.parametrize(("indicator", "kinds"), [("culture_coverage", None), ("library_coverage", ["自助图书馆"])])
def test_demo_coverage_equals_networkx_and_shapely(
    demo_run: IndicatorRun, demo_layers: DemoLayers, indicator: str, kinds: list[str] | None
) -> None:
    per_town, district = _coverage_reference(demo_layers, kinds)
    values = _values(demo_run.table, indicator)
    assert values[("district", "")] == pytest.approx(district, abs=1e-6)
    # the virtual units (prisons, farms) are in the district value, but no town row (virtual_units: separate)
    villages = demo_layers.layers["villages"]
    virtual = set(villages.loc[villages["type"] == "virtual", "town"])
    assert len(virtual) == 4
    assert {k for s, k in values if s == "town"} == set(per_town) - virtual
    for town in virtual:
        del per_town[town]
    for town, expected in per_town.items():
        assert values[("town", town)] == pytest.approx(expected, abs=1e-6), town
    assert 0 < district < 100


def test_demo_library_towns_equal_a_point_in_polygon_loop(demo_run: IndicatorRun, demo_layers: DemoLayers) -> None:
    towns = demo_layers.layers["towns"]
    libraries = demo_layers.layers["culture_facilities"]
    libraries = libraries[libraries["kind"] == "自助图书馆"]
    counts = Counter()
    for point in libraries.geometry:
        for name, polygon in zip(towns["town_name"], towns.geometry, strict=True):
            if polygon.covers(point):
                counts[name] += 1
                break
    expected = {
        ("town", n): float(counts[n]) for n, k in zip(towns["town_name"], towns["kind"], strict=True) if k != "special"
    }
    assert _values(demo_run.table, "library_towns") == expected
    rows = demo_run.table[demo_run.table["indicator"] == "library_towns"]
    assert list(rows["target_met"]) == [counts[k] >= 1 for k in rows["scope_key"]]
    assert False in list(rows["target_met"])  # the demo leaves a town without a library on purpose


def test_demo_sponge_share_equals_shapely(demo_run: IndicatorRun, demo_layers: DemoLayers) -> None:
    urban = demo_layers.layers["urban_plan"]
    sponge = demo_layers.layers["sponge_areas"]
    built = shapely.union_all(urban[urban["construction"].astype(bool)].to_crs(METRIC).geometry.values)
    good = shapely.union_all(sponge[sponge["status"] == "达标"].to_crs(METRIC).geometry.values)
    values = _values(demo_run.table, "sponge_share")
    assert values[("district", "")] == pytest.approx(100 * good.intersection(built).area / built.area, rel=1e-9)
    towns = demo_layers.layers["towns"].to_crs(METRIC)
    assert {k for s, k in values if s == "town"} == set(towns.loc[towns["kind"] != "special", "town_name"])
    for name, town in zip(towns["town_name"], towns.geometry, strict=True):
        if (towns.loc[towns["town_name"] == name, "kind"] == "special").any():
            continue  # prisons and farms: no town row
        whole = built.intersection(town).area
        if whole == 0:
            assert math.isnan(values[("town", name)])
        else:
            part = good.intersection(built).intersection(town).area
            assert values[("town", name)] == pytest.approx(100 * part / whole, rel=1e-9, abs=1e-9), name


def test_demo_renewal_area_equals_shapely_and_geod(demo_run: IndicatorRun, demo_layers: DemoLayers) -> None:
    zones = demo_layers.layers["renewal_zones"]
    rows = demo_run.table[demo_run.table["indicator"] == "renewal_area"].set_index("scope_key")
    statuses = ["规划", "启动", "实施中", "已完成"]
    assert list(rows.index) == ["", *statuses]
    for status in ["", *statuses]:
        chosen = zones if status == "" else zones[zones["status"] == status]
        planar = shapely.union_all(chosen.to_crs(METRIC).geometry.values).area / 1e4
        ellipsoid = _geod_area(_to_lonlat(shapely.union_all(chosen.to_crs(METRIC).geometry.values))) / 1e4
        assert rows.loc[status, "value"] == pytest.approx(planar, rel=1e-9), status
        assert rows.loc[status, "value_ellipsoid"] == pytest.approx(ellipsoid, rel=1e-6), status
        assert rows.loc[status, "unit"] == "ha"


def _patch_id(rule: ConflictRule, id_a: str, id_b: str | None) -> str:
    key = f"{rule.code}|{rule.layer_a}|{rule.layer_b}|{len(id_a)}:{id_a}|" + (
        "-" if id_b is None else f"{len(id_b)}:{id_b}"
    )
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def _kept_parts(geom: shapely.Geometry) -> list[shapely.Polygon]:
    """The sliver rule: polygon parts of at least 10 m² that are somewhere wider than 2 m."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > 0]
    return [p for p in parts if p.area >= 10.0 and not p.buffer(-1.0).is_empty]


def _brute_force_patches(
    layers: dict[str, gpd.GeoDataFrame], rules: list[ConflictRule], catalog: Catalog
) -> pd.DataFrame:
    """Every rule's patches by a double loop in EPSG:4547 (patch id, rule, planar m², ellipsoidal m², whether an
    exemption of the rule spares its A feature)."""

    def spared(rule: ConflictRule, row: pd.Series) -> bool:
        return any(all(row[field] in values for field, values in e.filter_a) for e in rule.exempt)

    def chosen(name: str, rule_filter: tuple[tuple[str, tuple[Any, ...]], ...]) -> gpd.GeoDataFrame:
        frame = layers[name]
        for field, allowed in rule_filter:
            frame = frame[frame[field].isin(list(allowed))]
        return frame.to_crs(METRIC)

    out = []
    for rule in rules:
        a_frame, b_frame = chosen(rule.layer_a, rule.filter_a), chosen(rule.layer_b, rule.filter_b)
        id_a_field, id_b_field = catalog.get(rule.layer_a).id_field, catalog.get(rule.layer_b).id_field
        b_geoms = b_frame.geometry.values
        b_ids = [str(v) for v in b_frame[id_b_field]]
        tree = shapely.STRtree(b_geoms)
        exempt = [spared(rule, row) for _, row in a_frame.iterrows()]
        for id_a, a, is_exempt in zip(a_frame[id_a_field].astype(str), a_frame.geometry.values, exempt, strict=True):
            near = [int(i) for i in tree.query(a) if a.intersects(b_geoms[i])]
            if rule.relation == "intersection":
                pieces = [(b_ids[i], _kept_parts(a.intersection(b_geoms[i]))) for i in near]
            else:
                rest = a.difference(shapely.union_all(b_geoms[near])) if near else a
                pieces = [(None, _kept_parts(rest))]
            for id_b, parts in pieces:
                if parts:
                    merged = shapely.MultiPolygon(parts)
                    area = _geod_area(_to_lonlat(merged))
                    out.append((_patch_id(rule, id_a, id_b), rule.code, merged.area, area, is_exempt))
    return pd.DataFrame(out, columns=["patch_id", "rule", "area_m2", "area_ellipsoid_m2", "exempt"])


def test_demo_conflict_areas_by_mark_equal_a_brute_force_overlay(
    demo_store_copy: Path, demo_layers: DemoLayers, catalog: Catalog
) -> None:
    rules = load_rules(default_rules_path(LAYERS_DIR), catalog)
    everything = _brute_force_patches(demo_layers.layers, rules, catalog)
    assert everything["exempt"].any()  # the roads, villages… outside the boundary: listed, never counted
    patches = everything[~everything["exempt"]]
    # marks on a copy: one resolved, one accepted, one to_adjust, and one to_adjust then resolved (latest wins);
    # and an exempt patch resolved, which stays out of both indicators
    ids = list(patches.sort_values("area_m2", ascending=False)["patch_id"])
    exempt_id, exempt_rule = everything.loc[everything["exempt"], ["patch_id", "rule"]].iloc[0]
    registry = MarkRegistry(side_table_engine(str(demo_store_copy)))
    try:
        for patch, status in [(ids[0], "resolved"), (ids[1], "accepted"), (ids[2], "to_adjust"), (ids[3], "to_adjust")]:
            rule = patches.loc[patches["patch_id"] == patch, "rule"].iloc[0]
            registry.mark(patch, rule=rule, status=status, note="", actor="tester")
        rule = patches.loc[patches["patch_id"] == ids[3], "rule"].iloc[0]
        registry.mark(ids[3], rule=rule, status="resolved", note="done", actor="tester")
        registry.mark(exempt_id, rule=exempt_rule, status="resolved", note="豁免", actor="tester")
    finally:
        registry.close()
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        table = compute_indicators(
            store, layers_dir=LAYERS_DIR, only=["conflict_area_open", "conflict_area_resolved"]
        ).table
    finally:
        store.close()
    settled = patches["patch_id"].isin([ids[0], ids[1], ids[3]])
    for indicator, chosen in (("conflict_area_open", patches[~settled]), ("conflict_area_resolved", patches[settled])):
        rows = table[table["indicator"] == indicator].set_index("scope_key")
        assert list(rows.index) == ["", *[r.code for r in rules]]
        for code in [r.code for r in rules]:
            mine = chosen[chosen["rule"] == code]
            assert rows.loc[code, "value"] == pytest.approx(mine["area_m2"].sum() / 1e4, rel=1e-9, abs=1e-9), code
            assert rows.loc[code, "value_ellipsoid"] == pytest.approx(
                mine["area_ellipsoid_m2"].sum() / 1e4, rel=1e-6, abs=1e-9
            ), code
        assert rows.loc["", "value"] == pytest.approx(chosen["area_m2"].sum() / 1e4, rel=1e-9)
    assert table[table["indicator"] == "conflict_area_resolved"]["value"].max() > 0


def test_demo_project_indicators_equal_a_pandas_recomputation(
    demo_run: IndicatorRun, demo_layers: DemoLayers, demo_store_path: Path
) -> None:
    projects = demo_layers.layers["projects"]
    # overdue is judged at the as-of quarter, but never after the plan's last monitored one (layers/plan.yaml)
    judged = min(demo_run.as_of.quarter, load_plan(LAYERS_DIR / "plan.yaml").monitored_until)
    ledger = independent_ledger(demo_store_path, str(judged)).set_index("project_id")
    rows = []
    for p in projects.itertuples():
        status, overdue = ledger.loc[p.project_id, "status"], bool(ledger.loc[p.project_id, "overdue"])
        for town in str(p.town or "").split("、"):
            rows.append((p.project_id, p.task_area, town, status, overdue))
    exploded = pd.DataFrame(rows, columns=["project_id", "task_area", "town", "status", "overdue"])
    once = exploded.drop_duplicates("project_id")
    by_status = _values(demo_run.table, "projects_by_status")
    assert by_status[("district", "")] == len(projects)
    for status, count in once["status"].value_counts().items():
        assert by_status[("status", status)] == count
    for (area, status), count in once.groupby(["task_area", "status"]).size().items():
        assert by_status[("task_area_status", f"{area}|{status}")] == count
    for (town, status), count in exploded.groupby(["town", "status"]).size().items():
        assert by_status[("town_status", f"{town}|{status}")] == count
    assert sum(v for (s, _), v in by_status.items() if s == "task_area_status") == len(projects)
    completed = _values(demo_run.table, "projects_completed")
    assert completed[("district", "")] == (once["status"] == "已完工").sum()
    overdue = _values(demo_run.table, "projects_overdue")
    assert overdue[("district", "")] == once["overdue"].sum()
    for area, count in once[once["overdue"]]["task_area"].value_counts().items():
        assert overdue[("task_area", area)] == count
    for town, count in exploded[exploded["overdue"]]["town"].value_counts().items():
        assert overdue[("town", town)] == count
    assert sum(v for (s, _), v in overdue.items() if s == "task_area") == once["overdue"].sum()
