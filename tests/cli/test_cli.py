"""The `geoplan` command end to end on the real demo store: the foundation's must-shows.

The demo store is the session's shared one (`demo_store_path`); tests that import work on a copy, and compare
the file's bytes (GeoPackage) or every row (PostGIS) before and after a refused import.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import METRIC_CRS, wgs84_to_gcj02
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore
from tests.conftest import SOURCES_DIR
from tests.demo.test_demo import NO_DEMO_DATA

CENSUS_2020 = 469_038
DISTRICT_KM2 = 937.9


@pytest.fixture
def store_copy(demo_store_copy: Path, catalog: Catalog) -> Iterator[GeoPackageStore]:
    store = GeoPackageStore(demo_store_copy, catalog)
    yield store
    store.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layers_lists_every_catalogue_layer_with_plausible_counts(
    demo_store_path: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["layers", "--store", str(demo_store_path)]) == 0
    output = capsys.readouterr().out
    for layer in catalog:
        assert layer.name in output
    store = GeoPackageStore(demo_store_path, catalog)
    assert store.count("district") == 1
    assert store.count("towns") == 8
    assert store.count("villages") == 81
    assert 30 <= store.count("projects") <= 60
    assert store.count("roads") > 1000
    for layer in catalog.vector_layers():
        assert (store.count(layer.name) > 0) is (layer.name not in NO_DEMO_DATA), layer.name


def test_district_area_in_the_metric_crs(demo_store_path: Path, catalog: Catalog) -> None:
    district = GeoPackageStore(demo_store_path, catalog).read("district").to_crs(METRIC_CRS)
    assert district.area.sum() / 1e6 == pytest.approx(DISTRICT_KM2, rel=0.005)


def test_population_raster_sums_to_the_census(demo_store_path: Path, catalog: Catalog) -> None:
    raster = GeoPackageStore(demo_store_path, catalog).read_raster("population")
    assert raster.crs == "EPSG:4547" and raster.cell_area_m2 == pytest.approx(10_000)
    assert raster.valid_sum() == pytest.approx(CENSUS_2020, rel=0.001)


def test_every_village_lies_in_its_real_town(demo_store_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(demo_store_path, catalog)
    villages = store.read("villages").to_crs(METRIC_CRS)
    towns = store.read("towns").to_crs(METRIC_CRS).set_index("town_code")
    official = gpd.pd.read_csv(SOURCES_DIR / "gaoming_villages_nbs2023.csv", dtype=str).set_index("village_code")
    assert set(villages["village_code"]) == set(official.index)
    for village in villages.itertuples():
        assert village.town_code == official.loc[village.village_code, "town_code"]
        town = towns.loc[village.town_code, "geometry"]
        # Within the town, allowing 1 cm for floating-point noise along shared boundaries.
        assert village.geometry.difference(town.buffer(0.01)).area < 1.0, village.village_name


def test_console_script_and_exit_codes(demo_store_path: Path, tmp_path: Path) -> None:
    geoplan = Path(sys.executable).with_name("geoplan")
    ok = subprocess.run([geoplan, "layers", "--store", str(demo_store_path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "villages" in ok.stdout
    bad = subprocess.run(
        [geoplan, "import", "nope", str(tmp_path / "x.geojson"), "--store", str(demo_store_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown layer 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    broken_store = subprocess.run([geoplan, "layers", "--store", str(tmp_path)], capture_output=True, text=True)
    assert broken_store.returncode == 1 and "internal error" in broken_store.stderr
    assert "Traceback" not in broken_store.stderr


def _write_geojson(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    return path


def _project_feature(store: GeoPackageStore, **changes: object) -> dict[str, object]:
    frame = store.read("projects").head(1)
    feature = json.loads(frame.to_json(drop_id=True))["features"][0]
    feature["properties"].update({"project_id": "GM-TEST-001", **changes})
    return feature


def _bad_files(tmp_path: Path, store: GeoPackageStore) -> dict[str, tuple[Path, list[str]]]:
    bowtie = _project_feature(store)
    bowtie["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[112.85, 22.88], [112.86, 22.89], [112.86, 22.88], [112.85, 22.89], [112.85, 22.88]]],
    }
    missing = _project_feature(store)
    del missing["properties"]["task_area"]  # type: ignore[attr-defined]
    wrong_type = _project_feature(store, start_year="twenty-twenty")
    no_crs = tmp_path / "no_crs.csv"
    no_crs.write_text("project_id,name,lon,lat\nGM-X,x,112.85,22.88\n", "utf-8")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_bytes(bytes(range(256)) * 40)
    return {
        "broken geometry (strict)": (_write_geojson(tmp_path / "bowtie.geojson", [bowtie]), ["--strict"]),
        "missing required field": (_write_geojson(tmp_path / "missing.geojson", [missing]), []),
        "wrong type": (_write_geojson(tmp_path / "wrong_type.geojson", [wrong_type]), []),
        "unknown CRS": (no_crs, []),
        "garbage bytes": (garbage, []),
    }


EXPECTED_MESSAGES = {
    "broken geometry (strict)": "invalid",
    "missing required field": "task_area",
    "wrong type": "start_year",
    "unknown CRS": "--crs",
    "garbage bytes": "garbage.geojson",
}


@pytest.mark.parametrize("case", list(EXPECTED_MESSAGES))
def test_bad_imports_exit_2_name_the_problem_and_change_nothing(
    case: str, store_copy: GeoPackageStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, options = _bad_files(tmp_path, store_copy)[case]
    before = _digest(store_copy.path)
    for mode in ("replace", "append"):
        code = main(["import", "projects", str(path), "--mode", mode, "--store", str(store_copy.path), *options])
        message = capsys.readouterr().err
        assert code == 2, message
        assert EXPECTED_MESSAGES[case] in message, message
        assert path.name in message or case == "unknown CRS"
    assert _digest(store_copy.path) == before


def test_broken_geometry_is_repaired_and_reported_without_strict(
    store_copy: GeoPackageStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _bad_files(tmp_path, store_copy)["broken geometry (strict)"]
    count = store_copy.count("projects")
    assert main(["import", "projects", str(path), "--mode", "append", "--store", str(store_copy.path)]) == 0
    assert "GM-TEST-001" in capsys.readouterr().err  # the repair report names the feature
    assert store_copy.count("projects") == count + 1
    repaired = store_copy.read("projects", where={"project_id": "GM-TEST-001"}).geometry.iloc[0]
    assert repaired.is_valid and repaired.area > 0


def test_gcj02_import_lands_within_2_m_of_the_wgs84_original(store_copy: GeoPackageStore, tmp_path: Path) -> None:
    original = store_copy.read("villages")
    shifted = original.copy()
    shifted["geometry"] = shapely.transform(
        original.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    )
    amap_export = tmp_path / "villages_amap.geojson"
    shifted.to_file(amap_export, driver="GeoJSON")
    assert main(["import", "villages", str(amap_export), "--crs", "gcj02", "--store", str(store_copy.path)]) == 0
    back = store_copy.read("villages").set_index("village_code").loc[original["village_code"]]
    a = original.to_crs(METRIC_CRS).geometry.values
    b = gpd.GeoSeries(back.geometry.values, crs=original.crs).to_crs(METRIC_CRS).values
    assert float(np.max(shapely.hausdorff_distance(a, b))) < 2.0
    # Without the conversion the same file would be hundreds of metres off: the check can fail.
    assert float(np.min(shapely.hausdorff_distance(a, shifted.to_crs(METRIC_CRS).geometry.values))) > 300


def test_real_district_from_amap_lands_on_the_wgs84_conversion(store_copy: GeoPackageStore, tmp_path: Path) -> None:
    amap = gpd.read_file(SOURCES_DIR / "gaoming_district_datav_gcj02.geojson")
    amap = amap.assign(code="440608", name="高明区")[["code", "name", "geometry"]]
    path = tmp_path / "district_gcj02.geojson"
    amap.to_file(path, driver="GeoJSON")
    assert main(["import", "district", str(path), "--crs", "gcj02", "--store", str(store_copy.path)]) == 0
    wgs84 = gpd.read_file(SOURCES_DIR / "gaoming_district_datav_wgs84.geojson").to_crs(METRIC_CRS).geometry.iloc[0]
    imported = store_copy.read("district").to_crs(METRIC_CRS).geometry.iloc[0]
    assert shapely.hausdorff_distance(imported, wgs84) < 2.0


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".csv"])
def test_export_then_import_round_trips(
    suffix: str, store_copy: GeoPackageStore, tmp_path: Path, catalog: Catalog
) -> None:
    original = store_copy.read("culture_facilities")
    path = tmp_path / f"facilities{suffix}"
    assert main(["export", "culture_facilities", str(path), "--store", str(store_copy.path)]) == 0
    crs = ["--crs", "EPSG:4490"] if suffix == ".csv" else []
    assert main(["import", "culture_facilities", str(path), "--store", str(store_copy.path), *crs]) == 0
    back = store_copy.read("culture_facilities")
    assert list(back["facility_id"]) == list(original["facility_id"])
    assert back.drop(columns="geometry").equals(original.drop(columns="geometry"))
    assert shapely.equals_exact(back.geometry.values, original.geometry.values, tolerance=1e-7).all()


def test_xlsx_export_has_every_feature(store_copy: GeoPackageStore, tmp_path: Path) -> None:
    path = tmp_path / "villages.xlsx"
    assert main(["export", "villages", str(path), "--store", str(store_copy.path)]) == 0
    sheet = gpd.pd.read_excel(path, dtype=str)
    assert sorted(sheet["village_code"]) == sorted(store_copy.read("villages")["village_code"])


@pytest.mark.postgis
def test_demo_into_postgis_matches_the_geopackage(
    demo_store_path: Path, postgis_url: str, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "init", "--store", postgis_url]) == 0
    # the layers and the raster (its snapshots on PostGIS: test_demo_history's quarter on PostGIS)
    assert main(["demo", "--store", postgis_url, "--no-snapshots"]) == 0
    pg = PostGISStore(postgis_url, catalog)
    gpkg = GeoPackageStore(demo_store_path, catalog)
    try:
        for layer in catalog.vector_layers():
            assert pg.count(layer.name) == gpkg.count(layer.name), layer.name
        villages_pg = pg.read("villages").sort_values("village_code").reset_index(drop=True)
        villages_gpkg = gpkg.read("villages").sort_values("village_code").reset_index(drop=True)
        assert villages_pg.drop(columns="geometry").equals(villages_gpkg.drop(columns="geometry"))
        assert shapely.equals_exact(villages_pg.geometry.values, villages_gpkg.geometry.values, 1e-12).all()
        assert pg.read_raster("population").valid_sum() == pytest.approx(CENSUS_2020, rel=0.001)
        # A refused import leaves every PostGIS row as it was.
        before = pg.read("projects")
        garbage = tmp_path / "garbage.kml"
        garbage.write_bytes(b"\x00\x01 not kml")
        assert main(["import", "projects", str(garbage), "--store", postgis_url]) == 2
        assert pg.read("projects").equals(before)
    finally:
        pg.close()


def test_malformed_options_exit_2_with_usage(demo_store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "--store", str(demo_store_path), "--no-such-option"]) == 2
    assert main(["import", "projects", "--store", str(demo_store_path)]) == 2  # the FILE argument is missing
    assert "Usage" in capsys.readouterr().err
    assert main(["version"]) == 0
