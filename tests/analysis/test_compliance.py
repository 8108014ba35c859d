"""The site compliance check: hand-made layers with known answers, then the demo store.

Expected areas are computed here independently (plain shapely on squares whose overlaps are known by hand, or
geopandas overlays of the demo layers read straight from the GeoPackage with pyogrio), never by the code under
test. Every bad input must end in an InputError with a clear message or in a documented repair, and the store
file must stay byte-identical.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod

from geoplan.analysis.compliance import MIN_OVERLAP_M2, ComplianceReport, check_site
from geoplan.analysis.compliance_site import site_from_geojson
from geoplan.analysis.rules import ConflictRule, parse_rules
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, wgs84_to_gcj02
from geoplan.errors import CRSError, InputError, UnreadableFileError
from geoplan.services.compliance import check_site_in_store, load_site
from geoplan.services.rule_files import default_rules_path, load_rules
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

# A corner inside Gaoming, in EPSG:4547 metres (about 112.75°E, 22.85°N).
X0, Y0 = 370_000.0, 2_528_000.0


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _rule(code: str, severity: str, relation: str, layer_b: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "title_zh": f"规则{code}",
        "title_en": f"rule {code}",
        "severity": severity,
        "relation": relation,
        "layer_a": "projects",
        "layer_b": layer_b,
        "basis": f"依据{code}",
        "site_check": True,
        **extra,
    }


@pytest.fixture(scope="module")
def rules(catalog: Catalog) -> dict[str, ConflictRule]:
    raw = {
        "rules": [
            _rule("ECO", "high", "intersection", "eco_redlines"),
            _rule("FARM_LOW", "low", "intersection", "basic_farmland"),
            _rule("OUTSIDE", "medium", "difference", "dev_boundary"),
            _rule("ECO_WATER", "high", "intersection", "eco_redlines", filter_b={"kind": "水源涵养"}),
            {**_rule("NOT_FOR_SITES", "high", "intersection", "eco_redlines"), "site_check": False},
        ]
    }
    return {rule.code: rule for rule in parse_rules(raw, catalog)}


def _layer(
    id_field: str, geoms: list[shapely.Geometry], crs: str = METRIC_CRS, **columns: list[Any]
) -> gpd.GeoDataFrame:
    ids = [f"{id_field[:2].upper()}-{i + 1}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({id_field: ids, **columns}, geometry=geoms, crs=crs)


def _site(geom: shapely.Geometry, crs: str = METRIC_CRS, name: str = "test site") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [name]}, geometry=[geom], crs=crs)


def _check(
    site_geom: shapely.Geometry,
    rules: list[ConflictRule],
    *,
    eco: Sequence[shapely.Geometry] = (),
    farmland: Sequence[shapely.Geometry] = (),
    boundary: Sequence[shapely.Geometry] = (),
    district: shapely.Geometry | None = None,
    eco_kinds: list[str] | None = None,
    catalog: Catalog | None = None,
) -> ComplianceReport:
    layers = {
        "eco_redlines": _layer("redline_id", list(eco), kind=eco_kinds or ["水土保持"] * len(eco)),
        "basic_farmland": _layer("farmland_id", list(farmland)),
        "dev_boundary": _layer("boundary_id", list(boundary)),
    }
    return check_site(site=_site(site_geom), layers=layers, rules=rules, district=district, catalog=catalog)


def _hit(report: ComplianceReport, code: str) -> Any:
    found = [h for h in report.hits if h.rule == code]
    assert len(found) == 1, [h.rule for h in report.hits]
    return found[0]


# --------------------------------------------------------------------------------------------- hand-made layers


def test_square_half_inside_a_red_line_overlaps_half_and_fails(
    rules: dict[str, ConflictRule], catalog: Catalog
) -> None:
    site = _box(0, 0, 100, 100)
    report = _check(site, [rules["ECO"]], eco=[_box(50, -50, 150, 150)], catalog=catalog)
    hit = _hit(report, "ECO")
    assert report.site_area_m2 == pytest.approx(10_000.0, abs=1e-6)
    assert hit.overlap_m2 == pytest.approx(5_000.0, abs=1e-6)
    assert hit.overlap_pct == pytest.approx(50.0, abs=1e-9)
    assert hit.feature_ids == ("RE-1",) and hit.severity == "high" and hit.basis == "依据ECO"
    assert report.passed is False and report.verdict == "fail"
    assert [t.layer for t in report.touched_layers] == ["eco_redlines"]
    assert report.touched_layers[0].feature_ids == ("RE-1",) and report.touched_layers[0].synthetic
    # The ellipsoidal area, independently: the overlap square's corners in lon/lat through pyproj.Geod.
    lonlat = gpd.GeoSeries([_box(50, 0, 100, 100)], crs=METRIC_CRS).to_crs(STORE_CRS).iloc[0]
    lon, lat = lonlat.exterior.xy
    expected = abs(Geod(ellps="GRS80").polygon_area_perimeter(lon, lat)[0])
    assert hit.overlap_ellipsoid_m2 == pytest.approx(expected, rel=1e-6)
    as_json = report.to_dict()
    assert as_json["pass"] is False and as_json["hits"][0]["overlap_m2"] == 5000.0
    assert as_json["hits"][0]["overlap_pct"] == 50.0 and as_json["hits"][0]["feature_ids"] == ["RE-1"]
    json.dumps(as_json)  # serialisable as it is


def test_site_sharing_an_edge_with_a_red_line_is_clear(rules: dict[str, ConflictRule]) -> None:
    report = _check(_box(0, 0, 100, 100), [rules["ECO"]], eco=[_box(100, 0, 200, 100)])
    assert report.hits == () and report.passed and report.verdict == "pass"
    assert [r.rule for r in report.rules_without_hits] == ["ECO"]
    assert report.touched_layers == ()


def test_the_same_edge_in_lon_lat_is_clear_too(rules: dict[str, ConflictRule]) -> None:
    """Reprojection of a shared edge must not create an overlap: both sides go through the same transform."""
    to_lonlat = gpd.GeoSeries([_box(0, 0, 100, 100), _box(100, -30, 200, 130)], crs=METRIC_CRS).to_crs(STORE_CRS)
    site, redline = to_lonlat.iloc[0], to_lonlat.iloc[1]
    layers = {
        "eco_redlines": _layer("redline_id", [redline], crs=STORE_CRS, kind=["水土保持"]),
    }
    report = check_site(site=_site(site, STORE_CRS), layers=layers, rules=[rules["ECO"]], district=None)
    assert report.hits == ()


def test_overlaps_below_the_tolerance_are_not_hits(rules: dict[str, ConflictRule]) -> None:
    assert MIN_OVERLAP_M2 == 1.0
    sliver = _check(_box(0, 0, 100, 100), [rules["ECO"]], eco=[_box(99.995, 0, 200, 100)])  # 0.5 m²
    assert sliver.hits == () and sliver.touched_layers == ()
    real = _check(_box(0, 0, 100, 100), [rules["ECO"]], eco=[_box(99.98, 0, 200, 100)])  # 2 m²
    assert _hit(real, "ECO").overlap_m2 == pytest.approx(2.0, rel=1e-6)


def test_low_severity_only_passes_with_a_warning(rules: dict[str, ConflictRule]) -> None:
    report = _check(_box(0, 0, 100, 100), [rules["ECO"], rules["FARM_LOW"]], farmland=[_box(-50, -50, 50, 50)])
    hit = _hit(report, "FARM_LOW")
    assert hit.overlap_m2 == pytest.approx(2_500.0, abs=1e-6) and hit.overlap_pct == pytest.approx(25.0)
    assert report.passed is True and report.verdict == "pass_with_warnings"
    assert report.warnings == (hit,)
    assert [r.rule for r in report.rules_without_hits] == ["ECO"]


def test_difference_rule_reports_the_share_outside_the_boundary(rules: dict[str, ConflictRule]) -> None:
    report = _check(_box(0, 0, 100, 100), [rules["OUTSIDE"]], boundary=[_box(-1000, -1000, 70, 1000)])
    hit = _hit(report, "OUTSIDE")
    assert hit.overlap_m2 == pytest.approx(3_000.0, abs=1e-6)
    assert hit.overlap_pct == pytest.approx(30.0)
    assert hit.feature_ids == () and hit.relation == "difference"
    assert report.passed is False  # medium severity fails
    assert shapely.equals_exact(shapely.normalize(hit.geometry), shapely.normalize(_box(70, 0, 100, 100)), 1e-6)


def test_difference_rule_uses_the_union_of_the_boundary(rules: dict[str, ConflictRule]) -> None:
    halves = [_box(-10, -10, 50, 110), _box(50, -10, 110, 110)]
    report = _check(_box(0, 0, 100, 100), [rules["OUTSIDE"]], boundary=halves)
    assert report.hits == ()
    empty = _check(_box(0, 0, 100, 100), [rules["OUTSIDE"]], boundary=[])
    assert _hit(empty, "OUTSIDE").overlap_pct == pytest.approx(100.0)


def test_overlapping_features_are_counted_once(rules: dict[str, ConflictRule]) -> None:
    report = _check(_box(0, 0, 100, 100), [rules["ECO"]], eco=[_box(20, -10, 60, 110), _box(40, -10, 80, 110)])
    hit = _hit(report, "ECO")
    assert hit.overlap_m2 == pytest.approx(6_000.0, abs=1e-6)  # x 20..80, not 4000 + 4000
    assert hit.feature_ids == ("RE-1", "RE-2")


def test_filter_b_limits_the_features_a_rule_sees(rules: dict[str, ConflictRule]) -> None:
    eco = [_box(-10, -10, 30, 110), _box(60, -10, 110, 110)]
    report = _check(
        _box(0, 0, 100, 100), [rules["ECO"], rules["ECO_WATER"]], eco=eco, eco_kinds=["水土保持", "水源涵养"]
    )
    assert _hit(report, "ECO").overlap_m2 == pytest.approx(7_000.0, abs=1e-6)
    water = _hit(report, "ECO_WATER")
    assert water.overlap_m2 == pytest.approx(4_000.0, abs=1e-6) and water.feature_ids == ("RE-2",)


def test_rules_without_site_check_are_not_applied(rules: dict[str, ConflictRule]) -> None:
    report = _check(
        _box(0, 0, 100, 100), list(rules.values()), eco=[_box(0, 0, 100, 100)], boundary=[_box(-9, -9, 200, 200)]
    )
    assert "NOT_FOR_SITES" not in {r.rule for r in report.checked_rules}
    assert {r.rule for r in report.checked_rules} == {"ECO", "FARM_LOW", "OUTSIDE", "ECO_WATER"}
    with pytest.raises(InputError, match="site_check"):
        _check(_box(0, 0, 100, 100), [rules["NOT_FOR_SITES"]])


def test_inputs_are_not_mutated(rules: dict[str, ConflictRule]) -> None:
    site = _site(shapely.Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)]))  # a bow-tie
    layers = {"eco_redlines": _layer("redline_id", [_box(50, -50, 150, 150)], kind=["水土保持"])}
    before_site, before_layers = copy.deepcopy(site), copy.deepcopy(layers)
    report = check_site(site=site, layers=layers, rules=[rules["ECO"]], district=None)
    assert site.equals(before_site) and layers["eco_redlines"].equals(before_layers["eco_redlines"])
    assert any("make_valid" in note for note in report.notes)


def test_mixed_crs_is_refused(rules: dict[str, ConflictRule]) -> None:
    site = _site(gpd.GeoSeries([_box(0, 0, 100, 100)], crs=METRIC_CRS).to_crs(STORE_CRS).iloc[0], STORE_CRS)
    layers = {"eco_redlines": _layer("redline_id", [_box(50, -50, 150, 150)], kind=["水土保持"])}
    with pytest.raises(CRSError, match="one CRS"):
        check_site(site=site, layers=layers, rules=[rules["ECO"]], district=None)


def test_district_partly_and_wholly_outside(rules: dict[str, ConflictRule]) -> None:
    district = _box(-1000, -1000, 80, 1000)
    report = _check(_box(0, 0, 100, 100), [rules["ECO"]], district=district)
    assert report.outside_district_m2 == pytest.approx(2_000.0, abs=1e-6)
    assert any("20.0% of the site" in note and "outside the district" in note for note in report.notes)
    with pytest.raises(InputError, match="outside the district"):
        _check(_box(2000, 0, 2100, 100), [rules["ECO"]], district=district)


def test_site_size_limits(rules: dict[str, ConflictRule]) -> None:
    with pytest.raises(InputError, match=r"km².*50 km²"):
        _check(_box(0, 0, 8000, 8000), [rules["ECO"]])  # 64 km²
    with pytest.raises(InputError, match="no area"):
        _check(_box(0, 0, 0.5, 0.5), [rules["ECO"]])
    with pytest.raises(InputError, match="Point"):
        _check(shapely.Point(X0, Y0), [rules["ECO"]])


# --------------------------------------------------------------------------------------------- the demo store


@pytest.fixture(scope="module")
def demo_store(demo_store_path: Path, catalog: Catalog) -> GeoPackageStore:
    return GeoPackageStore(demo_store_path, catalog)


@pytest.fixture(scope="module")
def demo_rules(catalog: Catalog) -> list[ConflictRule]:
    return load_rules(default_rules_path(LAYERS_DIR), catalog)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: Path, layer: str) -> gpd.GeoDataFrame:
    """A demo layer straight from the GeoPackage (pyogrio), not through the store under test, in EPSG:4547."""
    return gpd.read_file(path, layer=layer, engine="pyogrio").to_crs(METRIC_CRS)


def _expected(site_m: shapely.Geometry, demo_store_path: Path) -> dict[str, tuple[float, set[str]]]:
    """The three site rules of conflicts.yaml computed by hand: rule -> (area m², touched ids)."""
    expected: dict[str, tuple[float, set[str]]] = {}
    for code, layer, id_field in (
        ("ECO_PROJECT", "eco_redlines", "redline_id"),
        ("FARMLAND_PROJECT", "basic_farmland", "farmland_id"),
    ):
        frame = _read(demo_store_path, layer)
        each = shapely.area(shapely.intersection(site_m, frame.geometry.to_numpy()))
        touched = each >= 1.0
        if touched.any():
            area = shapely.intersection(site_m, shapely.union_all(frame.geometry.to_numpy()[touched])).area
            expected[code] = (area, set(frame[id_field].to_numpy()[touched]))
    boundary = shapely.union_all(_read(demo_store_path, "dev_boundary").geometry.to_numpy())
    outside = shapely.difference(site_m, boundary).area
    if outside >= 1.0:
        expected["PROJECT_OUTSIDE_BOUNDARY"] = (outside, set())
    return expected


@pytest.fixture(scope="module")
def conflicting_project(demo_store_path: Path) -> gpd.GeoDataFrame:
    """The project with the largest overlap with the red lines, found by an overlay of our own (EPSG:4490)."""
    projects = gpd.read_file(demo_store_path, layer="projects", engine="pyogrio")
    redlines = shapely.union_all(_read(demo_store_path, "eco_redlines").geometry.to_numpy())
    overlap = shapely.area(shapely.intersection(projects.to_crs(METRIC_CRS).geometry.to_numpy(), redlines))
    best = int(np.argmax(overlap))
    assert overlap[best] > 10_000, "the demo data should hold a project on a red line"
    return projects.iloc[[best]][["project_id", "name", "geometry"]].reset_index(drop=True)


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def _run(store: GeoPackageStore, rules: list[ConflictRule], source: Any, **kwargs: Any) -> ComplianceReport:
    site = load_site(source, **kwargs)
    return check_site_in_store(store, site.frame, rules=rules, notes=site.notes, source=site.source)


def test_a_project_on_a_red_line_fails_with_the_independent_overlap(
    demo_store: GeoPackageStore,
    demo_rules: list[ConflictRule],
    demo_store_path: Path,
    conflicting_project: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    digest = _digest(demo_store_path)
    path = _write(conflicting_project, tmp_path / "site.geojson")
    report = _run(demo_store, demo_rules, path)
    site_m = gpd.read_file(path).to_crs(METRIC_CRS).geometry.iloc[0]
    expected = _expected(site_m, demo_store_path)
    assert "ECO_PROJECT" in expected
    assert {h.rule: h.overlap_m2 for h in report.hits} == pytest.approx(
        {k: v[0] for k, v in expected.items()}, rel=1e-9
    )
    for hit in report.hits:
        assert set(hit.feature_ids) == expected[hit.rule][1]
    eco = _hit(report, "ECO_PROJECT")
    assert eco.severity == "high" and report.passed is False
    assert eco.overlap_pct == pytest.approx(100 * expected["ECO_PROJECT"][0] / site_m.area)
    assert report.site_area_m2 == pytest.approx(site_m.area, rel=1e-9)
    assert report.site_name == conflicting_project["name"].iloc[0]
    assert report.synthetic and "eco_redlines" in report.synthetic_layers
    assert report.data["layer_versions"]["eco_redlines"] == demo_store.layer_version("eco_redlines")
    assert _digest(demo_store_path) == digest


def test_a_site_in_the_clear_passes_and_lists_every_rule_checked(
    demo_store: GeoPackageStore, demo_rules: list[ConflictRule], demo_store_path: Path
) -> None:
    boundary = shapely.union_all(_read(demo_store_path, "dev_boundary").geometry.to_numpy())
    blocked = shapely.union_all(
        [
            shapely.union_all(_read(demo_store_path, layer).geometry.to_numpy())
            for layer in ("eco_redlines", "basic_farmland")
        ]
    )
    free = shapely.difference(boundary, blocked).buffer(-60)
    centre = free.representative_point()
    site_m = shapely.box(centre.x - 40, centre.y - 40, centre.x + 40, centre.y + 40)
    site = gpd.GeoSeries([site_m], crs=METRIC_CRS).to_crs(STORE_CRS).iloc[0]
    report = _run(demo_store, demo_rules, json.loads(shapely.to_geojson(site)))
    assert report.hits == () and report.passed and report.verdict == "pass"
    site_rules = {r.code for r in demo_rules if r.site_check}
    assert {r.rule for r in report.rules_without_hits} == site_rules == {r.rule for r in report.checked_rules}
    assert report.site_area_m2 == pytest.approx(6_400.0, rel=1e-6)


def test_gcj02_site_with_crs_gcj02_matches_the_wgs84_site(
    demo_store: GeoPackageStore,
    demo_rules: list[ConflictRule],
    conflicting_project: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    truth = _run(demo_store, demo_rules, _write(conflicting_project, tmp_path / "wgs84.geojson"))

    def to_gcj(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    shifted = conflicting_project.set_geometry(shapely.transform(conflicting_project.geometry.to_numpy(), to_gcj))
    path = _write(shifted, tmp_path / "amap.geojson")
    report = _run(demo_store, demo_rules, path, crs="gcj02")
    assert report.site_area_m2 == pytest.approx(truth.site_area_m2, rel=1e-3)
    assert {h.rule for h in report.hits} == {h.rule for h in truth.hits}
    for hit in truth.hits:
        assert _hit(report, hit.rule).overlap_m2 == pytest.approx(hit.overlap_m2, rel=1e-3)
    # Without --crs the same numbers are taken as true coordinates, ~600 m off: the answer changes.
    unshifted = _run(demo_store, demo_rules, path)
    assert _hit(unshifted, "ECO_PROJECT").overlap_m2 != pytest.approx(_hit(truth, "ECO_PROJECT").overlap_m2, rel=1e-3)


def test_a_site_drawn_on_the_map_as_a_bare_geometry(
    demo_store: GeoPackageStore, demo_rules: list[ConflictRule], conflicting_project: gpd.GeoDataFrame
) -> None:
    geometry = json.loads(shapely.to_geojson(conflicting_project.geometry.iloc[0]))
    feature = {"type": "Feature", "geometry": geometry, "properties": {"name": "画的"}}
    collection = {"type": "FeatureCollection", "features": [feature]}
    areas = [_run(demo_store, demo_rules, doc).site_area_m2 for doc in (geometry, feature, collection)]
    assert areas[0] == areas[1] == areas[2]
    assert site_from_geojson(feature).name == "画的"


def test_a_site_partly_outside_the_district_is_checked_with_a_note(
    demo_store: GeoPackageStore, demo_rules: list[ConflictRule], demo_store_path: Path
) -> None:
    district = _read(demo_store_path, "district").geometry.iloc[0]
    edge = shapely.get_coordinates(district.boundary)[0]
    site_m = shapely.box(edge[0] - 300, edge[1] - 300, edge[0] + 300, edge[1] + 300)
    share = 100 * shapely.difference(site_m, district).area / site_m.area
    assert 5 < share < 95
    site = gpd.GeoSeries([site_m], crs=METRIC_CRS).to_crs(STORE_CRS).iloc[0]
    report = _run(demo_store, demo_rules, json.loads(shapely.to_geojson(site)))
    note = next(n for n in report.notes if "outside the district" in n)
    assert note.startswith(f"{share:.1f}% of the site")


def _feature(geometry: dict[str, Any] | None, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(shapely.box(lon, lat, lon + size, lat + size)))


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[112.86, 22.89], [112.862, 22.892], [112.862, 22.89], [112.86, 22.892], [112.86, 22.89]]],
}

BAD_DOCUMENTS: dict[str, tuple[Any, type[Exception], str]] = {
    "point": ({"type": "Point", "coordinates": [112.86, 22.89]}, InputError, "must be a polygon, but it is a Point"),
    "line": (
        _feature({"type": "LineString", "coordinates": [[112.86, 22.89], [112.87, 22.9]]}),
        InputError,
        "it is a LineString",
    ),
    "several": (
        {"type": "FeatureCollection", "features": [_feature(_square(112.86, 22.89)), _feature(_square(112.87, 22.89))]},
        InputError,
        "one site per check; got 2 features",
    ),
    "outside": (_square(113.5, 23.5), InputError, "outside the district"),
    "empty": (_feature(None), InputError, "no geometry"),
    "district-sized": (_square(112.5, 22.7, 0.2), InputError, "more than the 50 km²"),
    "not geojson": ({"hello": "world"}, InputError, "expected a GeoJSON Feature"),
    "broken coordinates": ({"type": "Polygon", "coordinates": [[["a", "b"]]]}, InputError, "unreadable geometry"),
    "projected without crs": (
        json.loads(shapely.to_geojson(shapely.box(370000, 2528000, 370100, 2528100))),
        CRSError,
        "pass --crs",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_bad_documents_are_refused_clearly_and_change_nothing(
    case: str, demo_store: GeoPackageStore, demo_rules: list[ConflictRule], demo_store_path: Path
) -> None:
    document, error, message = BAD_DOCUMENTS[case]
    digest, versions = _digest(demo_store_path), _versions(demo_store)
    with pytest.raises(error, match=message):
        _run(demo_store, demo_rules, document)
    assert _digest(demo_store_path) == digest and _versions(demo_store) == versions


def _versions(store: GeoPackageStore) -> dict[str, int]:
    return {layer.name: store.layer_version(layer.name) for layer in store.catalog.vector_layers()}


def test_an_invalid_bowtie_is_repaired_with_a_note_or_refused_when_strict(
    demo_store: GeoPackageStore, demo_rules: list[ConflictRule], demo_store_path: Path
) -> None:
    digest = _digest(demo_store_path)
    report = _run(demo_store, demo_rules, BOWTIE)
    triangles = shapely.make_valid(shapely.geometry.shape(BOWTIE))
    expected = gpd.GeoSeries([triangles], crs=STORE_CRS).to_crs(METRIC_CRS).area.iloc[0]
    assert report.site_area_m2 == pytest.approx(expected, rel=1e-9)
    assert any("Self-intersection" in n and "make_valid" in n for n in report.notes)
    with pytest.raises(InputError, match="invalid"):
        _run(demo_store, demo_rules, BOWTIE, strict=True)
    assert _digest(demo_store_path) == digest


def test_bad_files_are_refused_clearly(
    demo_store: GeoPackageStore, demo_rules: list[ConflictRule], demo_store_path: Path, tmp_path: Path
) -> None:
    digest = _digest(demo_store_path)
    garbage = tmp_path / "site.geojson"
    garbage.write_bytes(b"{\x00\x01 this is not geojson \xff")
    with pytest.raises(UnreadableFileError, match=re.escape("site.geojson")):
        _run(demo_store, demo_rules, garbage)
    csv = tmp_path / "site.csv"
    csv.write_text('name,wkt\nA,"POLYGON((112.86 22.89,112.862 22.89,112.862 22.892,112.86 22.89))"\n')
    with pytest.raises(CRSError, match="--crs"):
        _run(demo_store, demo_rules, csv)
    assert _run(demo_store, demo_rules, csv, crs="EPSG:4490").site_area_m2 > 0
    with pytest.raises(InputError, match="no such file"):
        _run(demo_store, demo_rules, tmp_path / "missing.geojson")
    assert _digest(demo_store_path) == digest


def test_the_report_names_a_control_layer_synthetic_only_while_it_holds_demo_data(
    demo_store_path: Path,
    catalog: Catalog,
    demo_rules: list[ConflictRule],
    conflicting_project: gpd.GeoDataFrame,
    tmp_path: Path,
) -> None:
    """The demo's red lines are synthetic; once a real file replaces them the same check no longer says so."""
    copy = tmp_path / "store.gpkg"
    shutil.copyfile(demo_store_path, copy)
    store = GeoPackageStore(copy, catalog)
    try:
        site = _write(conflicting_project, tmp_path / "site.geojson")
        before = _run(store, demo_rules, site)
        assert "eco_redlines" in before.synthetic_layers
        assert {t.layer: t.synthetic for t in before.touched_layers}["eco_redlines"] is True
        store.write("eco_redlines", store.read("eco_redlines"), actor="cli:planner")  # the same shapes, from a file
        after = _run(store, demo_rules, site)
        assert "eco_redlines" not in after.synthetic_layers
        assert {t.layer: t.synthetic for t in after.touched_layers}["eco_redlines"] is False
        assert after.to_dict()["synthetic_layers"] == list(after.synthetic_layers)
        assert [h.rule for h in after.hits] == [h.rule for h in before.hits]  # the finding itself is unchanged
    finally:
        store.close()
