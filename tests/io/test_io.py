"""geoplan.io: every format's round trip, CSV dialects, and refusing hostile or broken files."""

from __future__ import annotations

import io
import json
import random
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer

from geoplan.catalog import LayerDef, load_catalog
from geoplan.errors import CRSError, InputError, NotFoundError, UnreadableFileError, ValidationFailed
from geoplan.io import FORMATS, read_file, supported, write_file
from geoplan.io.writers import shapefile_field_names
from geoplan.validation import validate
from tests.conftest import ROOT

CATALOG = load_catalog(ROOT / "layers")
DISTRICT_WGS84 = ROOT / "layers" / "sources" / "gaoming_district_datav_wgs84.geojson"
WRITABLE = [".geojson", ".json", ".gpkg", ".zip", ".csv", ".xlsx"]
NO_CRS_FORMATS = {".csv", ".xlsx"}  # tables carry no CRS: reading them back needs crs=
X0, Y0 = 112.86, 22.89  # 荷城, inside the district


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route the code's temporary files into a folder of our own, and check it is empty after every test."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == [], "temporary files left behind"


# --------------------------------------------------------------------------------------------- sample data


def _geometry(layer: LayerDef, i: int) -> shapely.Geometry:
    x, y = X0 + 0.004 * i, Y0 + 0.003 * (i % 5)
    if layer.geometry == "Point":
        return shapely.Point(x + 1.23456789e-7, y)
    if layer.geometry == "MultiLineString":
        return shapely.MultiLineString([[(x, y), (x + 0.001, y + 0.0005), (x + 0.002, y)], [(x, y), (x, y + 0.001)]])
    hole = [(x + 0.0004, y + 0.0004), (x + 0.0008, y + 0.0004), (x + 0.0008, y + 0.0008), (x + 0.0004, y + 0.0008)]
    outer = shapely.Polygon(shapely.box(x, y, x + 0.002, y + 0.0015).exterior.coords, [hole])
    return shapely.MultiPolygon([outer, shapely.box(x + 0.0025, y, x + 0.003, y + 0.0005)])


_TEXT = ["高明区 荷城街道", "=SUM(A1:A2)", "'-quoted", "line one\nline two", "+86 757", "普通文本"]


def _value(layer: LayerDef, name: str, i: int) -> object:
    fdef = layer.field(name)
    if i == 3 and not fdef.required:
        return None  # every optional field has a null somewhere
    if fdef.allowed:
        return fdef.allowed[i % len(fdef.allowed)]
    if name == layer.id_field:
        return f"{layer.name[:3].upper()}-{i:04d}"
    if fdef.type == "integer":
        return int(fdef.minimum or 0) + 20 + i
    if fdef.type == "float":
        return min(12.345678901234 * (i + 1), fdef.maximum or 1e9)
    if fdef.type == "boolean":
        return i % 2 == 0
    return _TEXT[i % len(_TEXT)][: fdef.max_length]


def catalogue_frame(layer: LayerDef, n: int = 6) -> gpd.GeoDataFrame:
    """A valid frame for `layer` with Chinese text, formula-like text, newlines, nulls and every type."""
    data = {name: [_value(layer, name, i) for i in range(n)] for name in layer.field_names}
    raw = gpd.GeoDataFrame(data, geometry=[_geometry(layer, i) for i in range(n)], crs="EPSG:4490")
    return validate(raw, layer, source="sample").frame


def _plain(values: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in values]


def assert_same_features(expected: gpd.GeoDataFrame, actual: gpd.GeoDataFrame, layer: LayerDef) -> None:
    """Count, every attribute (after typing by the catalogue) and every vertex to 1e-7 degrees."""
    typed = validate(actual, layer, source="round trip").frame
    assert len(typed) == len(expected)
    for name in layer.field_names:
        got, want = _plain(typed[name]), _plain(expected[name])
        if layer.field(name).type == "float":
            # Nulls must match exactly; only the numbers are compared with a tolerance.
            assert [v is None for v in got] == [v is None for v in want], name
            numbers = [(g, w) for g, w in zip(got, want, strict=True) if w is not None]
            assert [g for g, _ in numbers] == pytest.approx([w for _, w in numbers], rel=1e-12), name
        else:
            assert got == want, name
    for a, b in zip(typed.geometry, expected.geometry, strict=True):
        assert a.geom_type == b.geom_type
        ca, cb = shapely.get_coordinates(shapely.normalize(a)), shapely.get_coordinates(shapely.normalize(b))
        assert ca.shape == cb.shape
        assert np.abs(ca - cb).max() < 1e-7


# --------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", WRITABLE)
@pytest.mark.parametrize("layer_name", ["projects", "culture_facilities", "roads"])
def test_round_trip_preserves_features(tmp_path: Path, suffix: str, layer_name: str) -> None:
    layer = CATALOG.get(layer_name)
    frame = catalogue_frame(layer)
    path = write_file(frame, tmp_path / f"out{suffix}", layer_name=layer_name)
    assert path == tmp_path / f"out{suffix}" and path.stat().st_size > 0
    back = read_file(path, crs="EPSG:4490" if suffix in NO_CRS_FORMATS else None)
    assert back.crs == CRS.from_epsg(4490)
    assert_same_features(frame, back, layer)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "system-tmp") == [f"out{suffix}"]


def test_gpkg_keeps_text_exactly_and_names_the_layer(tmp_path: Path) -> None:
    layer = CATALOG.get("projects")
    frame = catalogue_frame(layer)
    path = write_file(frame, tmp_path / "p.gpkg", layer_name="projects")
    assert [str(row[0]) for row in pyogrio.list_layers(path)] == ["projects"]
    assert pyogrio.read_info(path)["crs"] == "EPSG:4490"
    raw = pyogrio.read_dataframe(path)
    assert _plain(raw["internal_note"]) == _plain(frame["internal_note"])
    assert raw["internal_note"].iloc[1] == "=SUM(A1:A2)"


def test_geojson_is_rfc7946_with_unchanged_numbers(tmp_path: Path) -> None:
    layer = CATALOG.get("projects")
    frame = catalogue_frame(layer, 2)
    path = write_file(frame, tmp_path / "p.geojson", layer_name="projects")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in doc  # RFC 7946: WGS84 lon/lat is implied
    assert doc["features"][0]["properties"]["name"] == "高明区 荷城街道"
    ring = np.array(doc["features"][0]["geometry"]["coordinates"][0][0])
    assert shapely.LinearRing(ring).is_ccw  # right-hand rule for exteriors
    expected = shapely.get_coordinates(frame.geometry.iloc[0].geoms[0].exterior)
    assert {tuple(np.round(c, 9)) for c in ring} == {tuple(np.round(c, 9)) for c in expected}


def test_zipped_shapefile_has_utf8_prj_short_names_and_a_name_map(tmp_path: Path) -> None:
    layer = CATALOG.get("projects")
    frame = catalogue_frame(layer)
    path = write_file(frame, tmp_path / "p.zip", layer_name="projects")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(f"projects{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".fieldnames.json"))
        assert zf.read("projects.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        assert CRS.from_wkt(zf.read("projects.prj").decode()).equals(CRS.from_epsg(4490), ignore_axis_order=True)
        mapping = json.loads(zf.read("projects.fieldnames.json"))["geoplan_field_names"]
        zf.extractall(tmp_path / "unzipped")
    assert mapping["responsibl"] == "responsible_unit"
    direct = pyogrio.read_dataframe(tmp_path / "unzipped" / "projects.shp")  # what any GIS sees
    assert all(len(c.encode()) <= 10 for c in direct.columns)
    assert "assured_pl" in direct.columns and "assured_planning" not in direct.columns
    assert "assured_planning" in read_file(path).columns  # ours restores the full names


def test_shapefile_field_names_are_deterministic_and_unique() -> None:
    columns = ["abcdefghijXX", "abcdefghijYY", "ABCDEFGHIJzz", "short", "高明区项目名称"]
    names = shapefile_field_names(columns)
    assert names == shapefile_field_names(columns)
    assert names["abcdefghijXX"] == "abcdefghij"
    assert names["abcdefghijYY"] == "abcdefgh_1"
    assert names["ABCDEFGHIJzz"] == "ABCDEFGH_2"  # DBF names ignore case
    assert names["short"] == "short"
    assert names["高明区项目名称"] == "高明区"  # 9 bytes: a fourth character would need 12
    assert len({n.lower() for n in names.values()}) == len(columns)


def test_shapefile_clips_text_at_254_bytes_on_a_character_boundary(tmp_path: Path) -> None:
    layer = CATALOG.get("projects")
    frame = catalogue_frame(layer, 1)
    frame["internal_note"] = "高" * 100  # 300 bytes
    path = write_file(frame, tmp_path / "p.zip", layer_name="projects")
    assert read_file(path)["internal_note"].iloc[0] == "高" * 84  # 252 bytes


def test_csv_has_bom_escaped_formulas_and_wkt(tmp_path: Path) -> None:
    layer = CATALOG.get("culture_facilities")
    frame = catalogue_frame(layer)
    path = write_file(frame, tmp_path / "f.csv", layer_name="culture_facilities")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == [*layer.field_names, "wkt"]
    assert table["name"].iloc[1] == "'=SUM(A1:A2)"  # Excel shows it instead of running it
    assert table["name"].iloc[2] == "''-quoted"
    assert table["name"].iloc[0] == "高明区 荷城街道"
    assert shapely.from_wkt(table["wkt"].iloc[0]).equals_exact(frame.geometry.iloc[0], 1e-9)
    back = read_file(path, crs="EPSG:4490")
    assert list(back["name"].iloc[:3]) == ["高明区 荷城街道", "=SUM(A1:A2)", "'-quoted"]


def test_xlsx_has_centroids_text_cells_and_notes_for_huge_geometries(tmp_path: Path) -> None:
    facilities = CATALOG.get("culture_facilities")
    path = write_file(catalogue_frame(facilities), tmp_path / "f.xlsx", layer_name="culture_facilities")
    sheet = openpyxl.load_workbook(path).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header == [*facilities.field_names, "centroid_lon", "centroid_lat", "wkt", "wkt_note"]
    assert sheet.title == "culture_facilities"
    formula_cell = sheet.cell(row=3, column=2)
    assert formula_cell.value == "=SUM(A1:A2)" and formula_cell.data_type == "s"
    lon = sheet.cell(row=2, column=header.index("centroid_lon") + 1).value
    assert lon == pytest.approx(X0 + 1.23456789e-7, abs=1e-9)

    district = gpd.read_file(DISTRICT_WGS84).set_crs("EPSG:4490", allow_override=True)
    frame = gpd.GeoDataFrame({"code": ["440608"]}, geometry=district.geometry.values, crs="EPSG:4490")
    assert len(frame.geometry.iloc[0].wkt) > 32_767  # the premise of this check
    path = write_file(frame, tmp_path / "d.xlsx", layer_name="district")
    row = [c.value for c in openpyxl.load_workbook(path).worksheets[0][2]]
    assert row[0] == "440608"
    assert row[3] is None and "32,767" in row[4]
    centre = shapely.Point(row[1], row[2])
    assert district.geometry.iloc[0].contains(centre)


# --------------------------------------------------------------------------------------------- other readers


def test_kml_is_read(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"Name": ["图书馆", "文化站"]}, geometry=[shapely.Point(X0, Y0), shapely.Point(X0 + 0.01, Y0)], crs=4326
    )
    path = tmp_path / "places.kml"
    pyogrio.write_dataframe(frame, path, driver="KML")
    back = read_file(path)
    assert back.crs == CRS.from_epsg(4490)
    assert list(back["Name"]) == ["图书馆", "文化站"]
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry.to_numpy()), [[X0, Y0], [X0 + 0.01, Y0]])


def _write_shapefile(folder: Path, stem: str = "pts", *, prj: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    frame = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[shapely.Point(X0, Y0), shapely.Point(X0, Y0 + 0.01)], crs=4490)
    path = folder / f"{stem}.shp"
    pyogrio.write_dataframe(frame, path, encoding="UTF-8")
    if not prj:
        path.with_suffix(".prj").unlink()
    return path


def test_bare_shapefile_with_and_without_prj(tmp_path: Path) -> None:
    assert len(read_file(_write_shapefile(tmp_path / "with"))) == 2
    naked = _write_shapefile(tmp_path / "without", prj=False)
    with pytest.raises(CRSError, match="--crs"):
        read_file(naked)
    assert read_file(naked, crs="EPSG:4490").crs == CRS.from_epsg(4490)


def test_zip_holding_a_geojson_is_read(tmp_path: Path) -> None:
    layer = CATALOG.get("culture_facilities")
    inner = write_file(catalogue_frame(layer), tmp_path / "inner.geojson", layer_name="x")
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(inner, "data/inner.geojson")
        zf.writestr("README.txt", "not data")
    assert_same_features(catalogue_frame(layer), read_file(path), layer)


def test_zip_with_two_shapefiles_needs_a_layer(tmp_path: Path) -> None:
    a = _write_shapefile(tmp_path / "a", "first")
    b = _write_shapefile(tmp_path / "b", "second")
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for shp in (a, b):
            for part in shp.parent.iterdir():
                zf.write(part, part.name)
        zf.writestr("__MACOSX/._first.shp", b"junk")
    with pytest.raises(InputError) as info:
        read_file(path)
    assert "first.shp" in str(info.value) and "second.shp" in str(info.value) and "--layer" in str(info.value)
    assert len(read_file(path, layer="second")) == 2


def test_gpkg_layers_are_chosen_by_name(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    for name, n in (("alpha", 1), ("beta", 3)):
        frame = gpd.GeoDataFrame({"i": range(n)}, geometry=[shapely.Point(X0, Y0)] * n, crs=4490)
        pyogrio.write_dataframe(frame, path, layer=name, append=path.exists())
    with pytest.raises(InputError) as info:
        read_file(path)
    assert "alpha" in str(info.value) and "beta" in str(info.value)
    assert len(read_file(path, layer="beta")) == 3
    with pytest.raises(InputError, match="no layer 'gamma'; it has: alpha, beta"):
        read_file(path, layer="gamma")


def test_unknown_suffix_is_read_by_content(tmp_path: Path) -> None:
    layer = CATALOG.get("culture_facilities")
    path = write_file(catalogue_frame(layer), tmp_path / "f.geojson", layer_name="f")
    renamed = path.rename(tmp_path / "download.txt")
    assert len(read_file(renamed)) == 6


# --------------------------------------------------------------------------------------------- CSV dialects


def _csv(tmp_path: Path, text: str, *, encoding: str = "utf-8", name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("lon", "lat"), [("lon", "lat"), ("lng", "lat"), ("Longitude", "LATITUDE"), ("X", "y"), ("经度", "纬度")]
)
def test_csv_lon_lat_column_names(tmp_path: Path, lon: str, lat: str) -> None:
    path = _csv(tmp_path, f"name,{lon},{lat}\n甲,{X0},{Y0}\n乙, {X0 + 0.01} ,{Y0}\n")
    back = read_file(path, crs="EPSG:4490")
    assert list(back["name"]) == ["甲", "乙"]
    assert lon not in back.columns and lat not in back.columns
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry.to_numpy()), [[X0, Y0], [X0 + 0.01, Y0]])


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_encodings(tmp_path: Path, encoding: str) -> None:
    path = _csv(tmp_path, f"名称,经度,纬度\n高明区文化馆,{X0},{Y0}\n", encoding=encoding)
    back = read_file(path, crs="EPSG:4490")
    assert list(back["名称"]) == ["高明区文化馆"]


@pytest.mark.parametrize("column", ["wkt", "WKT", "geometry", "geom"])
def test_csv_wkt_columns_and_semicolons(tmp_path: Path, column: str) -> None:
    polygon = f"POLYGON (({X0} {Y0}, {X0 + 0.01} {Y0}, {X0 + 0.01} {Y0 + 0.01}, {X0} {Y0}))"
    path = _csv(tmp_path, f"id;{column}\nA;{polygon}\n")
    back = read_file(path, crs="EPSG:4490")
    assert list(back["id"]) == ["A"] and back.geometry.iloc[0].equals(shapely.from_wkt(polygon))


def test_csv_keeps_codes_as_text(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"code,flag,lon,lat\n007,是,{X0},{Y0}\n440608001001,否,{X0},{Y0}\n")
    back = read_file(path, crs="EPSG:4490")
    assert list(back["code"]) == ["007", "440608001001"]  # no leading zeros lost to number parsing
    assert list(back["flag"]) == ["是", "否"]


def test_csv_without_crs_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"lon,lat\n{X0},{Y0}\n")
    with pytest.raises(CRSError) as info:
        read_file(path)
    assert str(info.value).startswith("t.csv: ") and "--crs" in str(info.value)


def test_csv_in_zone_prefixed_metres_is_detected(tmp_path: Path) -> None:
    lon, lat = np.array([112.70, 112.88]), np.array([22.85, 22.89])
    x, y = Transformer.from_crs(4490, 4526, always_xy=True).transform(lon, lat)
    rows = "\n".join(f"{i},{xx:.3f},{yy:.3f}" for i, (xx, yy) in enumerate(zip(x, y, strict=True)))
    path = _csv(tmp_path, f"id,x,y\n{rows}\n", name="survey.csv")
    back = read_file(path)
    np.testing.assert_allclose(
        shapely.get_coordinates(back.geometry.to_numpy()), np.column_stack([lon, lat]), rtol=0, atol=1e-7
    )


def test_csv_bad_coordinates_name_row_and_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"id,lon,lat\nA,{X0},{Y0}\nB,abc,{Y0}\nC,{X0},\nD,,\n")
    with pytest.raises(ValidationFailed) as info:
        read_file(path, crs="EPSG:4490")
    problems = [(p.feature, p.field) for p in info.value.problems]
    assert problems == [("#2", "lon"), ("#3", "lat")]  # D has no geometry at all: validation's business
    assert "'abc'" in str(info.value.problems[0])


def test_csv_bad_wkt_is_reported(tmp_path: Path) -> None:
    path = _csv(tmp_path, 'id,wkt\nA,"POINT (1 2)"\nB,"POLYGON ((0 0, 1 1"\n')
    with pytest.raises(ValidationFailed) as info:
        read_file(path, crs="EPSG:4490")
    assert [(p.feature, p.field) for p in info.value.problems] == [("#2", "wkt")]


def test_csv_without_geometry_columns_is_unreadable(tmp_path: Path) -> None:
    path = _csv(tmp_path, "name,value\na,1\n")
    with pytest.raises(UnreadableFileError, match=r"t.csv: not a readable CSV.*no geometry columns"):
        read_file(path, crs="EPSG:4490")


# --------------------------------------------------------------------------------------------- broken files


def _garbage(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_garbage_bytes_are_unreadable(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(_garbage(len(suffix)))
    with pytest.raises(UnreadableFileError) as info:
        read_file(path, crs="EPSG:4490")
    message = str(info.value)
    assert message.startswith(f"junk{suffix}: not a readable ")
    assert "Traceback" not in message and str(tmp_path) not in message


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_empty_files_are_unreadable(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.touch()
    with pytest.raises(UnreadableFileError, match=rf"^empty{suffix}: not a readable .*: the file is empty$"):
        read_file(path)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".xlsx", ".csv"])
def test_truncated_files_are_unreadable(tmp_path: Path, suffix: str) -> None:
    whole = write_file(catalogue_frame(CATALOG.get("projects")), tmp_path / f"whole{suffix}", layer_name="p")
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 3] if suffix != ".csv" else b"\x00" + data[:50])
    with pytest.raises(UnreadableFileError, match=rf"^cut{suffix}: not a readable"):
        read_file(cut, crs="EPSG:4490")


def test_wrong_extension_is_named(tmp_path: Path) -> None:
    gpkg = write_file(catalogue_frame(CATALOG.get("roads")), tmp_path / "r.gpkg", layer_name="roads")
    renamed = gpkg.rename(tmp_path / "roads.geojson")
    with pytest.raises(UnreadableFileError) as info:
        read_file(renamed)
    assert str(info.value).startswith("roads.geojson: not a readable GeoJSON: the content looks like GeoPackage")


def test_unknown_suffix_garbage_lists_supported_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.dwg"
    path.write_bytes(_garbage(1))
    with pytest.raises(UnreadableFileError) as info:
        read_file(path)
    assert "data.dwg" in str(info.value) and ".gpkg (GeoPackage)" in str(info.value)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"nothing\.geojson: no such file"):
        read_file(tmp_path / "nothing.geojson")


def test_too_big_file_is_refused(tmp_path: Path) -> None:
    path = write_file(catalogue_frame(CATALOG.get("projects")), tmp_path / "p.geojson", layer_name="p")
    with pytest.raises(UnreadableFileError, match=r"p.geojson: .* bytes is more than the 100-byte import limit"):
        read_file(path, max_bytes=100)


@pytest.mark.parametrize(
    ("suffix", "content"),
    [(".geojson", '{"type": "FeatureCollection", "features": []}'), (".csv", "id,lon,lat\n")],
)
def test_file_without_features_is_an_input_error(tmp_path: Path, suffix: str, content: str) -> None:
    path = tmp_path / f"none{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=rf"none{suffix}: the file holds no features") as info:
        read_file(path, crs="EPSG:4490")
    assert not isinstance(info.value, UnreadableFileError)


# --------------------------------------------------------------------------------------------- hostile zips


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "member", ["../evil.geojson", "data/../../evil.geojson", "/tmp/evil.geojson", "..\\evil.geojson"]
)
def test_zip_path_traversal_is_refused_before_extracting(tmp_path: Path, member: str) -> None:
    inside = tmp_path / "in"
    inside.mkdir()
    path = _zip(inside / "evil.zip", {"ok.txt": b"fine", member: b'{"type": "FeatureCollection", "features": []}'})
    with pytest.raises(UnreadableFileError) as info:
        read_file(path)
    assert str(info.value).startswith("evil.zip: unsafe or unreadable zip archive")
    assert repr(member) in str(info.value)
    assert not (tmp_path / "evil.geojson").exists()


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("data.geojson")
        info.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnreadableFileError, match="symbolic link"):
        read_file(path)


def test_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(1001)})
    with pytest.raises(UnreadableFileError, match="1001 members"):
        read_file(path)


def test_zip_bomb_is_refused_from_the_central_directory(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.zip", {"big.geojson": bytes(30 * 1024 * 1024)})
    assert path.stat().st_size < 100_000  # the premise: 30 MiB of zeros squeezes into a few kB
    with pytest.raises(UnreadableFileError, match="zip bomb"):
        read_file(path)


def test_zip_unpacking_beyond_the_byte_limit_is_refused(tmp_path: Path) -> None:
    digits = "".join(random.Random(3).choices("0123456789", k=2_000_000)).encode()  # compresses ~2.3x only
    path = _zip(tmp_path / "big.zip", {"a.csv": digits})
    assert path.stat().st_size < 1_500_000
    with pytest.raises(UnreadableFileError, match="unpacks to 2,000,000 bytes"):
        read_file(path, max_bytes=1_500_000)


def test_zip_without_datasets_is_unreadable(tmp_path: Path) -> None:
    path = _zip(tmp_path / "docs.zip", {"readme.txt": b"hello"})
    with pytest.raises(UnreadableFileError, match=r"docs\.zip: not a readable zipped Shapefile.*holds no Shapefile"):
        read_file(path)


def test_broken_member_inside_a_zip_is_named(tmp_path: Path) -> None:
    path = _zip(tmp_path / "b.zip", {"folder/data.geojson": b'{"type": "FeatureCollection", "features": [{'})
    with pytest.raises(UnreadableFileError) as info:
        read_file(path)
    assert str(info.value).startswith("b.zip!folder/data.geojson: not a readable GeoJSON")
    assert "geoplan-unzip" not in str(info.value)


# --------------------------------------------------------------------------------------------- writing


def test_unknown_or_read_only_suffix_is_refused_for_writing(tmp_path: Path) -> None:
    frame = catalogue_frame(CATALOG.get("roads"))
    for name in ("roads.dwg", "roads.shp", "roads.kml"):
        with pytest.raises(InputError) as info:
            write_file(frame, tmp_path / name, layer_name="roads")
        assert info.value.args[0].startswith(f"{name}: cannot write")
        assert supported(writable=True) in str(info.value)
        assert ".gpkg (GeoPackage)" in str(info.value) and ".kml" not in str(info.value).split("supported:")[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system-tmp"]


def test_frame_without_crs_is_not_written(tmp_path: Path) -> None:
    frame = catalogue_frame(CATALOG.get("roads")).set_crs(None, allow_override=True)
    with pytest.raises(CRSError):
        write_file(frame, tmp_path / "r.gpkg", layer_name="roads")


def test_projected_frame_is_written_in_cgcs2000(tmp_path: Path) -> None:
    frame = catalogue_frame(CATALOG.get("culture_facilities"))
    metric = frame.to_crs("EPSG:4547")
    path = write_file(metric, tmp_path / "f.gpkg", layer_name="f")
    back = pyogrio.read_dataframe(path)
    assert back.crs == CRS.from_epsg(4490)
    np.testing.assert_allclose(
        shapely.get_coordinates(back.geometry.to_numpy()), shapely.get_coordinates(frame.geometry.to_numpy()), atol=1e-9
    )
    assert metric.crs == CRS.from_epsg(4547)  # input untouched


def test_existing_file_is_replaced_and_failures_leave_nothing(tmp_path: Path) -> None:
    layer = CATALOG.get("culture_facilities")
    target = tmp_path / "f.gpkg"
    write_file(catalogue_frame(layer, 6), target, layer_name="f")
    write_file(catalogue_frame(layer, 2), target, layer_name="f")
    assert len(pyogrio.read_dataframe(target)) == 2
    clash = catalogue_frame(layer, 2).assign(wkt="x")
    with pytest.raises(InputError, match=r"^f.csv: the layer already has a 'wkt' attribute"):
        write_file(clash, tmp_path / "f.csv", layer_name="f")
    mixed = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[shapely.Point(X0, Y0), shapely.box(X0, Y0, X0 + 1, Y0 + 1)])
    with pytest.raises(InputError, match=r"^m.zip: "):
        write_file(mixed.set_crs(4490), tmp_path / "m.zip", layer_name="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gpkg", "system-tmp"]
