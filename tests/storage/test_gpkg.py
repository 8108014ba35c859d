"""GeoPackage-specific guarantees: the file stays a standard GeoPackage that GDAL/QGIS read as is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.errors import StoreError
from geoplan.storage.gpkg import GeoPackageStore
from tests.factories import sample_frame


@pytest.fixture
def gpkg(catalog: Catalog, tmp_path: Path) -> GeoPackageStore:
    store = GeoPackageStore(tmp_path / "s.gpkg", catalog)
    store.init()
    return store


def test_gdal_reads_what_we_wrote(gpkg: GeoPackageStore, catalog: Catalog) -> None:
    frame = sample_frame(catalog.get("projects"), 40)
    gpkg.write("projects", frame)
    info = pyogrio.read_info(gpkg.path, layer="projects")
    assert info["features"] == 40
    assert info["crs"] == "EPSG:4490"
    assert info["geometry_type"] == "MultiPolygon"
    via_gdal = pyogrio.read_dataframe(gpkg.path, layer="projects")
    assert sorted(via_gdal["project_id"]) == sorted(frame["project_id"])
    assert shapely.equals_exact(
        via_gdal.sort_values("project_id").geometry.values,
        frame.sort_values("project_id").geometry.values,
        tolerance=0,
    ).all()


def test_spatial_index_and_metadata_follow_every_write(gpkg: GeoPackageStore, catalog: Catalog) -> None:
    layer = catalog.get("roads")
    gpkg.write("roads", sample_frame(layer, 30))
    gpkg.write("roads", sample_frame(layer, 12, start=100), mode="replace")
    gpkg.write("roads", sample_frame(layer, 5, start=200), mode="append")
    connection = sqlite3.connect(gpkg.path)
    rtree_rows = connection.execute("SELECT count(*) FROM rtree_roads_geom").fetchone()[0]
    feature_count = connection.execute(
        "SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = 'roads'"
    ).fetchone()[0]
    extent = connection.execute(
        "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'roads'"
    ).fetchone()
    connection.close()
    stored = gpkg.read("roads")
    assert rtree_rows == feature_count == len(stored) == 17
    assert np.allclose(extent, stored.total_bounds, atol=1e-6)


def test_unique_index_on_id_field(gpkg: GeoPackageStore) -> None:
    connection = sqlite3.connect(gpkg.path)
    indexes = connection.execute("PRAGMA index_list('villages')").fetchall()
    connection.close()
    assert any(row[1] == "ux_villages_village_code" and row[2] == 1 for row in indexes)


def test_missing_store_file_is_a_clear_error(catalog: Catalog, tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path / "absent.gpkg", catalog)
    assert not store.is_initialised()
    with pytest.raises(StoreError, match="geoplan db init"):
        store.read("projects")
    assert not (tmp_path / "absent.gpkg").exists()
