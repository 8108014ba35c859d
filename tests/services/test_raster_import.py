"""The raster import on each backend (GeoPackage and PostGIS): the same grid written, an audit entry per write,
and a refused file leaves no raster and no audit entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.services.raster_import import export_raster, import_raster, read_totals
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from tests.cli.test_population_raster_cli import EDGE_PATCH
from tests.rasters import write_tif


def _with_demo_district(store: LayerStore, demo_store_path: Path, catalog: Catalog) -> None:
    demo = GeoPackageStore(demo_store_path, catalog)
    try:
        store.write("district", demo.read("district"), actor="test")
    finally:
        demo.close()


def test_import_export_on_each_backend(
    store: LayerStore, demo_store_path: Path, catalog: Catalog, tmp_path: Path
) -> None:
    _with_demo_district(store, demo_store_path, catalog)
    rng = np.random.default_rng(21)
    values = rng.uniform(0, 20, (36, 40)).astype(np.float32)
    tif = write_tif(tmp_path / "patch.tif", values, EDGE_PATCH, nodata=None)

    bad = values.copy()
    bad[0, 0] = -1.0
    with pytest.raises(InputError, match="negative"):
        import_raster(store, "population", write_tif(tmp_path / "bad.tif", bad, EDGE_PATCH, nodata=None), actor="t")
    assert not store.has_raster("population")
    assert store.audit_log(layer="population") == []

    report = import_raster(store, "population", tif, actor="tester")
    stored = store.read_raster("population")
    assert report.method == "regridded"
    assert stored.valid_sum() == pytest.approx(report.kept_total, rel=1e-6)
    entries = store.audit_log(layer="population")
    assert [(e.actor, e.action) for e in entries] == [("tester", "write:raster")]

    out = export_raster(store, "population", tmp_path / "out.tif")
    again = import_raster(store, "population", tmp_path / "out.tif", actor="tester")
    assert again.method == "copied"
    assert store.read_raster("population").array.tobytes() == out.array.tobytes() == stored.array.tobytes()


def test_totals_csv_by_code_in_utf8_and_its_mistakes(tmp_path: Path) -> None:
    codes, names = ["440608001", "440608002"], ["荷城街道", "杨和镇"]
    good = tmp_path / "t.csv"
    good.write_text('town_code,population\n440608001,"12,345"\n', encoding="utf-8-sig")
    assert read_totals(good, codes=codes, names=names) == {"440608001": 12345.0}
    for text, message in [
        ("town_code,population\n440608001,-5\n", "not a count"),
        ("town_code,population\n440608001,many\n", "not a number"),
        ("town_code,population\n440608001,1\n440608001,2\n", "a second total"),
        ("where,how many\n1,2\n", "needs a code or name column"),
    ]:
        good.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            read_totals(good, codes=codes, names=names)
