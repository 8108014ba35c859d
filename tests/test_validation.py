"""geoplan.validation: typing, every problem kind (named by feature and field), repairs, the district check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from geoplan.catalog import LayerDef, load_catalog
from geoplan.crs import wgs84_to_gcj02
from geoplan.errors import CRSError, InputError, Problem, ValidationFailed
from geoplan.validation import ValidationResult, validate

ROOT = Path(__file__).parents[1]
CATALOG = load_catalog(ROOT / "layers")
PROJECTS = CATALOG.get("projects")
FACILITIES = CATALOG.get("culture_facilities")
ROADS = CATALOG.get("roads")
DISTRICT = shapely.union_all(
    gpd.read_file(ROOT / "layers" / "sources" / "gaoming_district_datav_wgs84.geojson").geometry.to_numpy()
)
X0, Y0 = 112.86, 22.89  # 荷城, inside the district


def _project_row(i: int) -> dict[str, object]:
    return {
        "project_id": f"P-{i:05d}",
        "name": f"项目{i}",
        "task_area": "规划建设科学化",
        "category": "道路交通",
        "town": "荷城街道",
        "responsible_unit": "区住建局",
        "investment_wan": 1500.5,
        "start_year": 2024,
        "end_year": 2026,
        "status": "在建",
        "progress_pct": 40.0,
        "assured_planning": True,
        "assured_land": False,
        "assured_funds": None,
        "assured_schedule": True,
        "assured_unit": True,
        "internal_note": "备注",
    }


def _box(i: int = 0, size: float = 0.002) -> shapely.Polygon:
    x, y = X0 + 0.003 * (i % 10), Y0 + 0.003 * (i // 10)
    return shapely.box(x, y, x + size, y + size)


def projects(n: int = 3, **overrides: Sequence[object]) -> gpd.GeoDataFrame:
    """`n` valid projects inside the district; keyword arguments replace whole columns (or the geometry)."""
    data = pd.DataFrame([_project_row(i) for i in range(n)], dtype=object)
    geometry = list(overrides.pop("geometry", [_box(i) for i in range(n)]))
    for column, values in overrides.items():
        data[column] = pd.Series(list(values), dtype=object)
    return gpd.GeoDataFrame(data, geometry=geometry, crs="EPSG:4490")


def problems_of(frame: gpd.GeoDataFrame, layer: LayerDef = PROJECTS, **kwargs: object) -> list[Problem]:
    with pytest.raises(ValidationFailed) as info:
        validate(frame, layer, source="upload.csv", **kwargs)  # type: ignore[arg-type]
    assert info.value.source == "upload.csv"
    assert str(info.value).startswith(f"upload.csv: {len(info.value.problems)} problem(s)")
    return info.value.problems


def where(problems: list[Problem]) -> list[tuple[str | None, str | None]]:
    return [(p.feature, p.field) for p in problems]


# --------------------------------------------------------------------------------------------- happy paths


def test_valid_frame_is_shaped_for_the_store() -> None:
    frame = projects(3)
    frame["extra_col"] = 1
    frame = frame[["extra_col", *reversed(PROJECTS.field_names), "geometry"]]  # any column order
    before = frame.copy()
    result = validate(frame, PROJECTS, source="a.gpkg", district=DISTRICT)
    assert isinstance(result, ValidationResult)
    out = result.frame
    assert list(out.columns) == [*PROJECTS.field_names, "geometry"]
    assert out.crs == CRS.from_epsg(4490)
    assert set(out.geom_type) == {"MultiPolygon"}
    assert str(out["start_year"].dtype) == "Int64" and str(out["assured_land"].dtype) == "boolean"
    assert out["investment_wan"].dtype == np.float64 and out["project_id"].dtype == object
    assert out["assured_funds"].isna().all()
    assert result.repairs == []
    assert result.warnings == [Problem("ignored column(s) not in the catalogue: extra_col")]
    pd.testing.assert_frame_equal(pd.DataFrame(frame), pd.DataFrame(before))  # input untouched
    assert out is not frame


@pytest.mark.parametrize("layer_name", [layer.name for layer in CATALOG.vector_layers()])
def test_every_vector_layer_accepts_a_minimal_valid_feature(layer_name: str) -> None:
    layer = CATALOG.get(layer_name)
    values: dict[str, object] = {}
    for fdef in layer.fields:
        if fdef.allowed:
            values[fdef.name] = fdef.allowed[0]
        elif fdef.type == "boolean":
            values[fdef.name] = "是"
        elif fdef.type in ("integer", "float"):
            values[fdef.name] = str(int(fdef.minimum or 0))
        else:
            values[fdef.name] = "X1"
    geom = {"Point": shapely.Point(X0, Y0), "MultiLineString": shapely.LineString([(X0, Y0), (X0 + 0.01, Y0)])}
    frame = gpd.GeoDataFrame([values], geometry=[geom.get(str(layer.geometry), _box())], crs="EPSG:4326")
    out = validate(frame, layer, source="x", district=DISTRICT).frame
    assert list(out.columns) == [*layer.field_names, "geometry"]
    assert out.geom_type.iloc[0] == layer.geometry


def test_values_are_coerced_to_catalogue_types() -> None:
    frame = projects(
        8,
        project_id=[" P-1 ", 440608.0, 12, "P-4", "P-5", "P-6", "P-7", "P-8"],
        start_year=["2024", 2025.0, " 2026 ", "2027.0", 2028, "2029", "2030", "2031"],
        progress_pct=["12.5", 3, " 7 ", 0.25, "1e1", "100", "0", "99.9"],
        assured_planning=[True, "false", "1", "0", "是", "否", "YES", "no"],
        assured_land=["True", "FALSE", 1, 0, 1.0, "", None, " yes "],
        town=["", "  ", None, "荷城", "杨和", "明城", "更合", "荷城"],
    )
    out = validate(frame, PROJECTS, source="x").frame
    assert list(out["project_id"]) == ["P-1", "440608", "12", "P-4", "P-5", "P-6", "P-7", "P-8"]
    assert list(out["start_year"]) == [2024, 2025, 2026, 2027, 2028, 2029, 2030, 2031]
    assert list(out["progress_pct"]) == [12.5, 3.0, 7.0, 0.25, 10.0, 100.0, 0.0, 99.9]
    assert list(out["assured_planning"]) == [True, False, True, False, True, False, True, False]
    assert [None if pd.isna(v) else v for v in out["assured_land"]] == [
        True,
        False,
        True,
        False,
        True,
        None,
        None,
        True,
    ]
    assert list(out["town"][:3]) == [None, None, None]


def test_columns_match_ignoring_case_and_spaces() -> None:
    frame = projects(2).rename(columns={"project_id": "Project_ID", "name": " NAME "})
    out = validate(frame, PROJECTS, source="x").frame
    assert list(out["project_id"]) == ["P-00000", "P-00001"] and list(out["name"]) == ["项目0", "项目1"]


def test_geometries_are_promoted_to_the_layer_type() -> None:
    polygons = projects(
        3,
        geometry=[
            _box(0),
            shapely.MultiPolygon([_box(1), _box(2)]),
            shapely.GeometryCollection([_box(3), shapely.MultiPolygon([_box(4)])]),
        ],
    )
    out = validate(polygons, PROJECTS, source="x").frame
    assert list(out.geom_type) == ["MultiPolygon"] * 3
    assert [len(g.geoms) for g in out.geometry] == [1, 2, 2]
    assert out.geometry.iloc[0].geoms[0].equals(_box(0))

    lines = gpd.GeoDataFrame(
        {"road_id": ["R1", "R2"], "road_class": ["支路", "村道"], "walkable": ["是", "否"]},
        geometry=[shapely.LineString([(X0, Y0), (X0 + 0.01, Y0)]), shapely.LinearRing(_box(5).exterior.coords)],
        crs="EPSG:4490",
    )
    out = validate(lines, ROADS, source="x").frame
    assert list(out.geom_type) == ["MultiLineString"] * 2
    assert out.geometry.iloc[1].geoms[0].coords[:] == _box(5).exterior.coords[:]

    points = gpd.GeoDataFrame(
        {"facility_id": ["F1"], "name": ["馆"], "kind": ["图书馆"]},
        geometry=[shapely.MultiPoint([(X0, Y0)])],
        crs="EPSG:4490",
    )
    out = validate(points, FACILITIES, source="x").frame
    assert out.geometry.iloc[0].equals(shapely.Point(X0, Y0)) and out.geom_type.iloc[0] == "Point"


def test_z_coordinates_are_dropped() -> None:
    frame = gpd.GeoDataFrame(
        {"facility_id": ["F1"], "name": ["馆"], "kind": ["图书馆"]}, geometry=[shapely.Point(X0, Y0, 12.0)], crs=4490
    )
    assert not validate(frame, FACILITIES, source="x").frame.geometry.iloc[0].has_z


def test_projected_frames_are_converted_and_crs_less_ones_refused() -> None:
    frame = projects(1)
    out = validate(frame.to_crs("EPSG:4547"), PROJECTS, source="x").frame
    assert out.crs == CRS.from_epsg(4490)
    np.testing.assert_allclose(out.geometry.iloc[0].bounds, _box(0).bounds, atol=1e-9)
    with pytest.raises(CRSError):
        validate(frame.set_crs(None, allow_override=True), PROJECTS, source="x")


def test_raster_layers_are_refused() -> None:
    with pytest.raises(InputError, match="raster layer"):
        validate(projects(1), CATALOG.get("population"), source="x")


# --------------------------------------------------------------------------------------------- attribute problems


def test_missing_required_column_is_one_problem() -> None:
    problems = problems_of(projects(4).drop(columns=["status"]))
    assert problems == [Problem("required column is missing", None, "status")]


def test_missing_optional_column_is_fine() -> None:
    out = validate(projects(2).drop(columns=["town"]), PROJECTS, source="x").frame
    assert out["town"].isna().all()


def test_null_and_blank_required_values() -> None:
    problems = problems_of(projects(3, name=["ok", "   ", None], project_id=["P-1", "P-2", ""]))
    assert where(problems) == [("P-2", "name"), ("#3", "project_id"), ("#3", "name")]
    assert all(p.message == "required value is missing" for p in problems)


def test_values_not_coercible_are_quoted_and_truncated() -> None:
    long_text = "x" * 100
    problems = problems_of(
        projects(
            4,
            start_year=["二〇二四", "2024.5", True, "2024"],
            progress_pct=["12", "abc", "nan", long_text],
            assured_land=["maybe", True, False, True],
        )
    )
    assert where(problems) == [
        ("P-00000", "start_year"),
        ("P-00000", "assured_land"),
        ("P-00001", "start_year"),
        ("P-00001", "progress_pct"),
        ("P-00002", "start_year"),
        ("P-00002", "progress_pct"),
        ("P-00003", "progress_pct"),
    ]
    messages = [p.message for p in problems]
    assert messages[0] == "'二〇二四' is not a whole number"
    assert messages[1] == "'maybe' is not true/false (是/否)"
    assert messages[2] == "'2024.5' is not a whole number"
    assert messages[4] == "'True' is not a whole number"
    assert messages[6] == f"'{'x' * 39}…' is not a number"


def test_values_outside_allowed_list_name_the_choices() -> None:
    problems = problems_of(projects(2, status=["在建", "完成"]))
    assert where(problems) == [("P-00001", "status")]
    assert problems[0].message == "'完成' is not allowed; allowed: 前期, 已开工, 在建, 已完工, 暂缓"


def test_minimum_and_maximum() -> None:
    problems = problems_of(projects(3, progress_pct=[-1, 100, 100.5], start_year=[1999, 2000, 2101]))
    assert where(problems) == [  # file order, then catalogue order
        ("P-00000", "start_year"),
        ("P-00000", "progress_pct"),
        ("P-00002", "start_year"),
        ("P-00002", "progress_pct"),
    ]
    assert problems[1].message == "-1.0 is below the minimum 0"
    assert problems[2].message == "2101 is above the maximum 2100"


def test_string_longer_than_max_length() -> None:
    problems = problems_of(projects(2, project_id=["P" * 32, "Q" * 33]))
    assert where(problems) == [("Q" * 33, "project_id")]
    assert problems[0].message == "33 characters, longer than the maximum 32"


def test_control_characters_but_not_tab_or_newline() -> None:
    notes = ["a\tb\nc\r\nd", "bell\x07", "lone\rcr", "nul\x00", "c1\x9b"]
    problems = problems_of(projects(5, internal_note=notes))
    assert where(problems) == [(f"P-0000{i}", "internal_note") for i in (1, 2, 3, 4)]
    assert "control character" in problems[0].message and "'bell\\x07'" in problems[0].message


def test_duplicate_ids_within_the_file() -> None:
    problems = problems_of(projects(4, project_id=["A", "B", "A", "A"]))
    assert where(problems) == [("A (#3)", "project_id"), ("A (#4)", "project_id")]
    assert problems[0].message == "duplicate id 'A' (first used by #1)"


def test_ids_already_in_the_layer() -> None:
    problems = problems_of(projects(3), existing_ids={"P-00001", "other"})
    assert where(problems) == [("P-00001", "project_id")]
    assert problems[0].message == "id 'P-00001' already exists in the layer"


def test_every_problem_is_listed_not_just_the_first() -> None:
    frame = projects(5, status=["x"] * 5, progress_pct=[-5] * 5, name=[None] * 5)
    problems = problems_of(frame)
    assert len(problems) == 15
    assert {p.feature for p in problems} == {f"P-0000{i}" for i in range(5)}
    assert "(and 10 more)" in str(ValidationFailed("upload.csv", problems))


# --------------------------------------------------------------------------------------------- geometry problems


def test_wrong_geometry_types() -> None:
    problems = problems_of(
        projects(3, geometry=[shapely.Point(X0, Y0), shapely.LineString([(X0, Y0), (X0, 23)]), _box()])
    )
    assert where(problems) == [("P-00000", "geometry"), ("P-00001", "geometry")]
    assert problems[0].message == "wrong geometry type: Point, expected MultiPolygon"

    points = gpd.GeoDataFrame(
        {"facility_id": ["F1", "F2"], "name": ["a", "b"], "kind": ["图书馆", "文化站"]},
        geometry=[shapely.MultiPoint([(X0, Y0), (X0 + 0.01, Y0)]), _box()],
        crs=4490,
    )
    problems = problems_of(points, FACILITIES)
    assert [p.message for p in problems] == [
        "wrong geometry type: MultiPoint of 2 points, expected a single Point",
        "wrong geometry type: Polygon, expected a single Point",
    ]
    mixed = shapely.GeometryCollection([_box(), shapely.Point(X0, Y0)])
    assert where(problems_of(projects(1, geometry=[mixed]))) == [("P-00000", "geometry")]


def test_null_empty_and_non_finite_geometries() -> None:
    geometry = [None, shapely.Polygon(), shapely.Polygon([(X0, Y0), (np.inf, Y0), (X0, 23), (X0, Y0)]), _box()]
    problems = problems_of(projects(4, geometry=geometry))
    assert where(problems) == [("P-00000", "geometry"), ("P-00001", "geometry"), ("P-00002", "geometry")]
    assert [p.message for p in problems] == [
        "geometry is null or empty",
        "geometry is null or empty",
        "coordinates are not finite numbers",
    ]


BOWTIE = shapely.Polygon([(X0, Y0), (X0 + 0.01, Y0 + 0.01), (X0 + 0.01, Y0), (X0, Y0 + 0.01), (X0, Y0)])


def test_invalid_geometry_is_repaired_and_reported() -> None:
    frame = projects(2, geometry=[BOWTIE, _box()])
    assert not BOWTIE.is_valid
    result = validate(frame, PROJECTS, source="x")
    repaired = result.frame.geometry.iloc[0]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon" and len(repaired.geoms) == 2
    # the two triangles of the bow-tie: half the box
    assert repaired.area == pytest.approx(0.5 * 0.01 * 0.01, rel=1e-9)
    assert where(result.repairs) == [("P-00000", "geometry")]
    assert result.repairs[0].message.startswith("invalid geometry (Self-intersection")
    assert "2 part(s)" in result.repairs[0].message
    assert frame.geometry.iloc[0].equals(BOWTIE)  # input untouched


def test_invalid_geometry_is_a_problem_when_strict() -> None:
    problems = problems_of(projects(2, geometry=[_box(), BOWTIE]), strict=True)
    assert where(problems) == [("P-00001", "geometry")]
    assert problems[0].message.startswith("invalid geometry: Self-intersection")


def test_repair_that_leaves_nothing_is_a_problem() -> None:
    flat = shapely.Polygon([(X0, Y0), (X0 + 0.01, Y0), (X0 + 0.02, Y0), (X0, Y0)])  # no area at all
    problems = problems_of(projects(1, geometry=[flat]))
    assert where(problems) == [("P-00000", "geometry")]
    assert problems[0].message.endswith("repair left no polygon parts")


def test_overlapping_collection_parts_are_repaired_into_one_valid_multipolygon() -> None:
    overlapping = shapely.GeometryCollection([_box(0, 0.004), _box(0, 0.002)])
    result = validate(projects(1, geometry=[overlapping]), PROJECTS, source="x")
    assert result.frame.geometry.iloc[0].is_valid
    assert result.frame.geometry.iloc[0].area == pytest.approx(0.004 * 0.004, rel=1e-9)
    assert len(result.repairs) == 1


# --------------------------------------------------------------------------------------------- the district


def test_features_outside_the_district() -> None:
    far = shapely.box(113.5, 23.5, 113.51, 23.51)  # Guangzhou-ish
    problems = problems_of(projects(3, geometry=[_box(), far, _box(1)]), district=DISTRICT)
    assert where(problems) == [("P-00001", "geometry")]
    assert problems[0].message == "lies outside the district"


def test_district_check_skipped_for_layers_that_may_lie_outside() -> None:
    district_layer = CATALOG.get("district")
    frame = gpd.GeoDataFrame(
        {"code": ["440608"], "name": ["高明区"]}, geometry=[shapely.box(100, 10, 101, 11)], crs=4490
    )
    assert len(validate(frame, district_layer, source="x", district=DISTRICT).frame) == 1


def test_all_outside_hints_at_a_wrong_crs_with_the_distance() -> None:
    frame = projects(2, geometry=[shapely.box(116.3, 39.9, 116.31, 39.91), shapely.box(116.4, 39.9, 116.41, 39.91)])
    problems = problems_of(frame, district=DISTRICT)
    assert len(problems) == 3 and problems[0].feature is None  # the file-level hint comes first
    assert problems[0].message.startswith("none of the 2 feature(s) lies in the district")
    assert "coordinate system is probably wrong" in problems[0].message
    assert "km from the district" in problems[0].message
    distance_km = float(problems[0].message.split("is ")[-1].split(" km")[0].replace(",", ""))
    assert 1800 < distance_km < 2000  # Beijing to Foshan is about 1,900 km


def _points_just_inside_whose_gcj02_shift_is_outside(n: int) -> list[shapely.Point]:
    """Real points inside the district that AMap's offset pushes over the boundary."""
    boundary = shapely.get_coordinates(DISTRICT.exterior if DISTRICT.geom_type == "Polygon" else DISTRICT.boundary)
    found = []
    for x, y in boundary[::5]:
        for dx, dy in ((-0.002, -0.002), (-0.003, 0.0), (0.0, -0.003)):
            p = shapely.Point(x + dx, y + dy)
            gx, gy = wgs84_to_gcj02(p.x, p.y)
            if DISTRICT.contains(p) and not DISTRICT.intersects(shapely.Point(float(gx), float(gy))):
                found.append(shapely.Point(float(gx), float(gy)))
                break
        if len(found) == n:
            break
    assert len(found) == n
    return found


def test_all_outside_in_gcj02_says_so() -> None:
    shifted = _points_just_inside_whose_gcj02_shift_is_outside(4)
    frame = gpd.GeoDataFrame(
        {"facility_id": [f"F{i}" for i in range(4)], "name": ["馆"] * 4, "kind": ["图书馆"] * 4},
        geometry=shifted,
        crs=4490,
    )
    problems = problems_of(frame, FACILITIES, district=DISTRICT)
    assert len(problems) == 5
    assert problems[0].feature is None and problems[0].message.endswith("looks like GCJ-02: pass --crs gcj02")
    assert where(problems[1:]) == [(f"F{i}", "geometry") for i in range(4)]


def test_all_outside_with_swapped_axes_says_so() -> None:
    frame = projects(1, geometry=[shapely.box(Y0, X0, Y0 + 0.01, X0 + 0.01)])
    problems = problems_of(frame, district=DISTRICT)
    assert "longitude and latitude look swapped" in problems[0].message


def test_district_object_is_not_mutated() -> None:
    district = shapely.box(112.5, 22.5, 113.0, 23.0)
    validate(projects(2), PROJECTS, source="x", district=district)
    assert not shapely.is_prepared(district)


# --------------------------------------------------------------------------------------------- scale


def _points_in_district(n: int) -> np.ndarray:
    minx, miny, maxx, maxy = DISTRICT.bounds
    side = int(np.sqrt(n * 4)) + 1
    xs, ys = np.meshgrid(np.linspace(minx, maxx, side), np.linspace(miny, maxy, side))
    x, y = xs.ravel(), ys.ravel()
    inside = shapely.contains_xy(DISTRICT, x, y)
    assert inside.sum() >= n
    return np.column_stack([x[inside][:n], y[inside][:n]])


def test_hundred_thousand_features() -> None:
    n = 100_000
    xy = _points_in_district(n)
    boxes = shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + 0.0002, xy[:, 1] + 0.0002)
    boxes[:7] = [
        shapely.Polygon([(x, y), (x + 1e-4, y + 1e-4), (x + 1e-4, y), (x, y + 1e-4), (x, y)]) for x, y in xy[:7]
    ]
    row = _project_row(0)
    data = {k: [v] * n for k, v in row.items()}
    data["project_id"] = [f"P-{i:06d}" for i in range(n)]
    data["status"] = ["在建"] * n
    for i in range(100, 111):
        data["status"][i] = "未知"
    frame = gpd.GeoDataFrame(data, geometry=boxes, crs="EPSG:4490")

    problems = problems_of(frame, district=DISTRICT)
    assert len(problems) == 11
    assert {p.feature for p in problems} == {f"P-{i:06d}" for i in range(100, 111)}

    frame.loc[100:110, "status"] = "在建"
    result = validate(frame, PROJECTS, source="big.gpkg", district=DISTRICT)
    assert len(result.frame) == n
    assert len(result.repairs) == 7
    assert [p.feature for p in result.repairs] == [f"P-{i:06d}" for i in range(7)]
    assert set(result.frame.geom_type) == {"MultiPolygon"}
    assert result.frame.geometry.is_valid.all()
