"""Column maps: a facility list's own headers and words read into catalogue fields, with Excel's row numbers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import shapely

from geoplan.catalog import load_catalog
from geoplan.crs import gcj02_to_wgs84, wgs84_to_gcj02
from geoplan.errors import InputError, ValidationFailed
from geoplan.io import read_file
from geoplan.io.column_map import ColumnMap, load_column_map
from geoplan.validation import validate
from tests.conftest import ROOT

CATALOG = load_catalog(ROOT / "layers")
FACILITIES = CATALOG.get("culture_facilities")
HEADERS = ["序号", "设施名称", "类别", "经度", "纬度", "地址", "所属村居", "日均服务人次"]
MAP_YAML = """\
sheet: 文化设施
header_row: 2
columns: {facility_id: 序号, name: 设施名称, kind: 类别, capacity: 日均服务人次, lon: 经度, lat: 纬度, address: 地址}
values:
  kind: {综合文化站: 文化站, 文化活动中心: 综合性文化服务中心, 农家书屋(点): 农家书屋}
id_prefix: CF-
"""
# WGS84 points well inside the district (over 1 km from its edge); the sheet holds their AMap (GCJ-02) coordinates.
WGS84 = np.array([(112.8790, 22.8950), (112.8300, 22.8700), (112.7000, 22.9000), (112.6300, 22.8200)])
KINDS = ["综合文化站", "文化活动中心", "农家书屋(点)", "图书馆"]
EXPECTED_KINDS = ["文化站", "综合性文化服务中心", "农家书屋", "图书馆"]


def _sheet_rows() -> list[list[object]]:
    lon, lat = wgs84_to_gcj02(WGS84[:, 0], WGS84[:, 1])
    return [
        [i + 1, f"设施{i + 1}", KINDS[i], float(lon[i]), float(lat[i]), f"高明区某路{i + 1}号", "某村", 100 * (i + 1)]
        for i in range(len(WGS84))
    ]


def write_workbook(path: Path, rows: list[list[object]], *, blank_after: int | None = None) -> dict[int, int]:
    """A workbook like the bureau's: a cover sheet, then a titled sheet with headers in row 2.

    Returns the Excel row number of each data row (by its position in `rows`).
    """
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "说明"
    cover.append(["本表为示例"])
    sheet = book.create_sheet("文化设施")
    sheet.append(["高明区公共文化设施名录（2024年）"])
    sheet.append(HEADERS)
    excel_rows = {}
    row_number = 3
    for i, row in enumerate(rows):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=row_number, column=column, value=value)
        excel_rows[i] = row_number
        row_number += 2 if blank_after == i else 1  # a blank row, as lists often have between sections
    book.save(path)
    return excel_rows


def write_map(path: Path, text: str = MAP_YAML) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_mapped(path: Path, cmap: ColumnMap, crs: str = "gcj02") -> gpd.GeoDataFrame:
    return read_file(path, crs=crs, layer=cmap.sheet, header_row=cmap.header_row, prepare=cmap.prepare(path.name))


def test_sheet_with_titles_synonyms_and_gcj02_lands_on_the_converter(tmp_path: Path) -> None:
    sheet = tmp_path / "facilities.xlsx"
    rows = _sheet_rows()
    write_workbook(sheet, rows, blank_after=1)
    cmap = load_column_map(write_map(tmp_path / "map.yaml"), FACILITIES)
    frame = validate(read_mapped(sheet, cmap), FACILITIES, source="sheet").frame
    assert list(frame["facility_id"]) == ["CF-1", "CF-2", "CF-3", "CF-4"]
    assert list(frame["kind"]) == EXPECTED_KINDS
    assert list(frame["capacity"]) == [100, 200, 300, 400]
    assert "address" not in frame.columns and "所属村居" not in frame.columns
    # Where each point lands: the converter applied to the sheet's own numbers ...
    sheet_lon = np.array([r[3] for r in rows], dtype=float)
    sheet_lat = np.array([r[4] for r in rows], dtype=float)
    want_lon, want_lat = gcj02_to_wgs84(sheet_lon, sheet_lat)
    got = shapely.get_coordinates(frame.geometry.values)
    assert np.abs(got - np.column_stack([want_lon, want_lat])).max() < 1e-9
    # ... and, independently, the published forward formula (tests/test_crs.py) takes it back to the sheet.
    back_lon, back_lat = wgs84_to_gcj02(got[:, 0], got[:, 1])
    assert np.abs(np.column_stack([back_lon, back_lat]) - np.column_stack([sheet_lon, sheet_lat])).max() < 1e-7
    # The shift is real: the sheet's numbers themselves are hundreds of metres away.
    assert np.abs(got - np.column_stack([sheet_lon, sheet_lat])).max() > 2e-3


def test_csv_with_the_same_map(tmp_path: Path) -> None:
    rows = _sheet_rows()
    lines = ["高明区公共文化设施名录", ",".join(HEADERS), *(",".join(str(v) for v in r) for r in rows)]
    path = tmp_path / "facilities.csv"
    path.write_text("\n".join(lines) + "\n", encoding="gb18030")  # Chinese Excel's CSV
    cmap = load_column_map(write_map(tmp_path / "map.yaml", MAP_YAML.replace("sheet: 文化设施\n", "")), FACILITIES)
    frame = validate(read_mapped(path, cmap), FACILITIES, source="csv").frame
    assert list(frame["kind"]) == EXPECTED_KINDS
    want = np.column_stack(gcj02_to_wgs84(np.array([r[3] for r in rows]), np.array([r[4] for r in rows])))
    assert np.abs(shapely.get_coordinates(frame.geometry.values) - want).max() < 1e-9


def test_unknown_value_names_the_excel_rows(tmp_path: Path) -> None:
    rows = _sheet_rows()
    rows[0][2] = "文化礼堂"
    rows[3][2] = "文化礼堂"
    sheet = tmp_path / "facilities.xlsx"
    excel = write_workbook(sheet, rows, blank_after=1)
    cmap = load_column_map(write_map(tmp_path / "map.yaml"), FACILITIES)
    with pytest.raises(ValidationFailed) as caught:
        read_mapped(sheet, cmap)
    message = str(caught.value)
    assert f"rows {excel[0]}, {excel[3]}: '文化礼堂' is not allowed" in message, message
    assert "values.kind" in message and "类别" in message
    assert excel[3] == excel[0] + 4  # the title, the header and the blank row are counted as Excel counts them


def test_address_without_coordinates_is_refused_naming_the_rows(tmp_path: Path) -> None:
    rows = _sheet_rows()
    rows[2][3] = rows[2][4] = None
    sheet = tmp_path / "facilities.xlsx"
    excel = write_workbook(sheet, rows)
    cmap = load_column_map(write_map(tmp_path / "map.yaml"), FACILITIES)
    with pytest.raises(ValidationFailed) as caught:
        read_mapped(sheet, cmap)
    message = str(caught.value)
    assert f"row {excel[2]}: no coordinates (they give an address only)" in message, message
    assert "does not geocode" in message and "经度/纬度" in message


def test_headers_missing_from_the_sheet_are_listed(tmp_path: Path) -> None:
    sheet = tmp_path / "facilities.xlsx"
    write_workbook(sheet, _sheet_rows())
    text = MAP_YAML.replace("name: 设施名称", "name: 名称").replace("capacity: 日均服务人次", "capacity: 容量")
    cmap = load_column_map(write_map(tmp_path / "map.yaml", text), FACILITIES)
    with pytest.raises(InputError, match=r"header\(s\) not in the sheet: 名称 \(for name\), 容量 \(for capacity\)"):
        read_mapped(sheet, cmap)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("capacity: 日均服务人次", "seats: 日均服务人次"), "unknown field(s) seats"),
        (("kind: {综合文化站: 文化站", "kind: {综合文化站: 文化中心"), "文化中心 not allowed for kind"),
        (("header_row: 2", "header_row: zero"), "header_row must be a row number"),
        (("lon: 经度, lat: 纬度, ", ""), "map the coordinates"),
        (("name: 设施名称, ", ""), "required field(s) not mapped: name"),
        (("id_prefix: CF-", "id_prefx: CF-"), "unknown key 'id_prefx'"),
    ],
)
def test_mistakes_in_the_map_are_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert change[0] in MAP_YAML
    path = write_map(tmp_path / "map.yaml", MAP_YAML.replace(*change))
    with pytest.raises(InputError) as caught:
        load_column_map(path, FACILITIES)
    assert expected in str(caught.value) and "map.yaml" in str(caught.value)


def test_any_point_layer_and_no_maps_for_other_formats(tmp_path: Path) -> None:
    layer = CATALOG.get("public_facilities")
    field = next(f for f in layer.fields if f.allowed)
    columns = {layer.id_field: "编号", field.name: "类型", "lon": "X", "lat": "Y"}
    required = [f for f in layer.required_fields if f not in columns]
    columns.update({f: f"列{i}" for i, f in enumerate(required)})
    text = "columns: {" + ", ".join(f"{k}: {v}" for k, v in columns.items()) + "}\n"
    cmap = load_column_map(write_map(tmp_path / "m.yaml", text), layer)
    assert cmap.columns == {str(k): v for k, v in columns.items()}
    geojson = tmp_path / "x.geojson"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(112.88, 22.9)], crs="EPSG:4490").to_file(geojson)
    with pytest.raises(InputError, match=r"applies to \.csv and \.xlsx"):
        read_file(geojson, prepare=cmap.prepare("x.geojson"))
