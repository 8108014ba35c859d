"""GDAL's OGC API – Features driver (what QGIS uses) reads every public collection completely."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from tests.web.live_server import live_server


@pytest.fixture(scope="module")
def demo_server(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A live server on a module copy of the demo store (a running app may write to its store)."""
    path = tmp_path_factory.mktemp("oapif") / "gaoming.gpkg"
    shutil.copy(demo_store_path, path)
    with live_server(path, path.with_suffix(".log")) as base:
        yield base, path


def test_gdal_reads_every_public_collection_with_the_store_count(
    demo_server: tuple[str, Path], catalog: Catalog
) -> None:
    base, path = demo_server
    store = GeoPackageStore(path, catalog)
    listed = {name for name, _ in pyogrio.list_layers(f"OAPIF:{base}/ogc")}
    public = {layer.name for layer in catalog.vector_layers() if layer.public}
    assert listed == public
    for name in sorted(public):
        layer = catalog.get(name)
        frame = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=name)
        assert len(frame) == store.count(name), name
        # Only public fields travel (GDAL adds its own `id` column for the feature id).
        assert set(frame.columns) - {"id", "geometry"} == set(layer.public_fields), name


@pytest.mark.parametrize("code", ["4490", "4547"])
def test_gdal_reads_a_layer_in_another_crs(demo_server: tuple[str, Path], catalog: Catalog, code: str) -> None:
    """GDAL (>= 3.7 speaks Part 2) asks for crs=<EPSG URI> and reads the server's axis order (lat,lon for 4490;
    northing,easting for 4547) back into x,y. Any axis mix-up on the server shows up as a coordinate mismatch."""
    base, path = demo_server
    stored = GeoPackageStore(path, catalog).read("culture_facilities")
    frame = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer="culture_facilities", CRS=f"EPSG:{code}")
    assert frame.crs is not None and frame.crs.to_epsg() == int(code)
    assert len(frame) == len(stored)
    want = stored.set_index("facility_id").geometry.to_crs(f"EPSG:{code}")  # geopandas: x,y order
    got = frame.set_index("id").geometry
    tolerance = 1e-7 if code == "4490" else 0.01
    for fid, geometry in want.items():
        assert got[fid].distance(geometry) < tolerance, fid
