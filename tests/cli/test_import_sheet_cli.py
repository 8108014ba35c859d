"""`geoplan import … sheet.xlsx --crs gcj02 --columns map.yaml` on a copy of the demo store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import gcj02_to_wgs84
from geoplan.storage.gpkg import GeoPackageStore
from tests.io.test_column_map import MAP_YAML, _sheet_rows, write_map, write_workbook


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sheet_import_replaces_the_layer_at_the_converted_positions(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    rows = _sheet_rows()
    write_workbook(sheet := tmp_path / "文化设施名录.xlsx", rows)
    columns = write_map(tmp_path / "map.yaml")
    args = ["import", "culture_facilities", str(sheet), "--crs", "gcj02", "--columns", str(columns)]
    assert main([*args, "--store", str(demo_store_copy)]) == 0
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        stored = store.read("culture_facilities").set_index("facility_id").loc[["CF-1", "CF-2", "CF-3", "CF-4"]]
    finally:
        store.close()
    assert len(stored) == len(rows)
    want = np.column_stack(gcj02_to_wgs84(np.array([r[3] for r in rows]), np.array([r[4] for r in rows])))
    assert np.abs(shapely.get_coordinates(stored.geometry.values) - want).max() < 1e-9
    assert list(stored["kind"]) == ["文化站", "综合性文化服务中心", "农家书屋", "图书馆"]


@pytest.mark.parametrize(
    "case", ["unknown field", "missing header", "unmapped value", "address only", "map for a GeoJSON"]
)
def test_sheet_mistakes_exit_2_and_write_nothing(
    case: str, demo_store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _sheet_rows()
    text = MAP_YAML
    sheet = tmp_path / "list.xlsx"
    expected = {
        "unknown field": "unknown field(s) seats",
        "missing header": "header(s) not in the sheet: 容量",
        "unmapped value": "'文化礼堂' is not allowed",
        "address only": "does not geocode",
        "map for a GeoJSON": "applies to .csv and .xlsx",
    }[case]
    if case == "unknown field":
        text = MAP_YAML.replace("capacity:", "seats:")
    elif case == "missing header":
        text = MAP_YAML.replace("capacity: 日均服务人次", "capacity: 容量")
    elif case == "unmapped value":
        rows[1][2] = "文化礼堂"
    elif case == "address only":
        rows[0][3] = None
    write_workbook(sheet, rows)
    if case == "map for a GeoJSON":
        sheet = tmp_path / "list.geojson"
        sheet.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    columns = write_map(tmp_path / "map.yaml", text)
    before = _digest(demo_store_copy)
    args = ["import", "culture_facilities", str(sheet), "--crs", "gcj02", "--columns", str(columns)]
    assert main([*args, "--store", str(demo_store_copy)]) == 2
    message = capsys.readouterr().err
    assert expected in " ".join(message.split()), message
    assert _digest(demo_store_copy) == before
