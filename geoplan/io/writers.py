"""Per-format writers. Each gets a frame already in EPSG:4490 and a temporary target path (the caller moves it
into place only when the writer succeeded, so a failed export never leaves half a file behind).

Writers raise `InputError` without the file name (they only see the temporary path); `write_file` adds it.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.io.archive import pack
from geoplan.io.readers import CSV_FORMULA_START, FIELD_MAP_KEY, FIELD_MAP_SUFFIX, XLSX_HELPER_COLUMNS

log = logging.getLogger(__name__)

WKT_DECIMALS = 9
"""1e-9 degrees is 0.1 mm: lossless for planning data, and far shorter than full float repr."""
DBF_NAME_BYTES = 10
DBF_STRING_BYTES = 254
EXCEL_CELL_CHARS = 32_767
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_ILLEGAL = re.compile(r"[\[\]:*?/\\]")


def _attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(frame.drop(columns=frame.geometry.name)).reset_index(drop=True)


def _ogr_write(frame: gpd.GeoDataFrame, path: Path, **kwargs: Any) -> None:
    """pyogrio write with GDAL warnings sent to the log and failures reported as the user's input problem."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pyogrio.write_dataframe(frame.reset_index(drop=True), path, **kwargs)
        except Exception as exc:  # GDAL refuses data in many ways (mixed geometry types, odd dtypes)
            raise InputError(f"{path.suffix} export failed: {' '.join(str(exc).split())[:200]}") from None
    for warning in caught:
        log.warning("%s export: %s", path.suffix, warning.message)


# --------------------------------------------------------------------------------------------- GIS formats


def write_geojson(frame: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    """RFC 7946 GeoJSON: WGS84 lon/lat. CGCS2000 numbers are written unchanged (they agree to centimetres)."""
    wgs84 = frame.set_crs("EPSG:4326", allow_override=True)
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": WKT_DECIMALS}
    _ogr_write(wgs84, path, driver="GeoJSON", layer=layer_name, layer_options=options)


def write_gpkg(frame: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    """A GeoPackage holding one layer named `layer_name`, in EPSG:4490."""
    _ogr_write(frame, path, driver="GPKG", layer=layer_name)


def _truncate_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, never cutting a character in half."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def shapefile_field_names(columns: list[str]) -> dict[str, str]:
    """Deterministic DBF names (<= 10 bytes, unique ignoring case) for `columns`, in order.

    GDAL would truncate too, but its de-duplication depends on its version; ours is stable and recorded in a
    sidecar so our own reader restores the full names.
    """
    result: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        short = _truncate_bytes(column, DBF_NAME_BYTES)
        counter = 1
        while short.lower() in used:
            suffix = f"_{counter}"
            short = _truncate_bytes(column, DBF_NAME_BYTES - len(suffix)) + suffix
            counter += 1
        used.add(short.lower())
        result[column] = short
    return result


def _clip_long_strings(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """DBF text holds 254 bytes; clip at a character boundary ourselves and say so, rather than let GDAL do it."""
    out = table.copy()
    for column in out.columns:
        too_long = out[column].map(lambda v: isinstance(v, str) and len(v.encode("utf-8")) > DBF_STRING_BYTES)
        count = int(too_long.astype(bool).sum())
        if count:
            log.warning(
                "%s: %d value(s) of '%s' clipped to %d bytes (Shapefile limit)", name, count, column, DBF_STRING_BYTES
            )
            out[column] = out[column].map(lambda v: _truncate_bytes(v, DBF_STRING_BYTES) if isinstance(v, str) else v)
    return out


def _safe_stem(layer_name: str) -> str:
    stem = re.sub(r"[^\w\-]+", "_", layer_name).strip("_")
    return stem or "layer"


def write_shapefile_zip(frame: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    """A zipped ESRI Shapefile (.shp/.shx/.dbf/.prj/.cpg UTF-8) plus a field-name map when names were cut."""
    stem = _safe_stem(layer_name)
    attributes = _attributes(frame)
    names = shapefile_field_names([str(c) for c in attributes.columns])
    renamed = {full: short for full, short in names.items() if full != short}
    if renamed:
        log.warning("%s: Shapefile field names cut to 10 bytes: %s", layer_name, renamed)
    attributes = _clip_long_strings(attributes.rename(columns=names), layer_name)
    out = gpd.GeoDataFrame(attributes, geometry=frame.geometry.reset_index(drop=True), crs=frame.crs)
    with tempfile.TemporaryDirectory(prefix="geoplan-shp-") as tmp:
        shp = Path(tmp) / f"{stem}.shp"
        _ogr_write(out, shp, driver="ESRI Shapefile", encoding="UTF-8")
        if renamed:
            mapping = {FIELD_MAP_KEY: {short: full for full, short in renamed.items()}}
            shp.with_suffix(FIELD_MAP_SUFFIX).write_text(json.dumps(mapping, ensure_ascii=False), "utf-8")
        pack(sorted(Path(tmp).iterdir()), path)


# --------------------------------------------------------------------------------------------- tables


def _escape_formula(value: object) -> object:
    """Prefix formula-like text with an apostrophe so Excel shows it instead of running it (CSV injection).

    Text that already starts with an apostrophe before such a character gets one more, so the reader's
    `unescape_formulas` is an exact inverse.
    """
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(CSV_FORMULA_START) or (value.startswith("'") and value[1:2] in (*CSV_FORMULA_START, "'")):
        return "'" + value
    return value


def write_csv(frame: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    """UTF-8 with BOM (so Excel shows Chinese), the attributes, then the geometry as a `wkt` column."""
    table = _attributes(frame)
    if any(str(c).lower() == "wkt" for c in table.columns):
        raise InputError("the layer already has a 'wkt' attribute; cannot add the geometry column")
    for column in table.columns:
        if table[column].dtype == object or str(table[column].dtype) in ("str", "string"):
            table[column] = table[column].astype(object).map(_escape_formula)
    table["wkt"] = shapely.to_wkt(frame.geometry.to_numpy(), rounding_precision=WKT_DECIMALS)
    table.to_csv(path, index=False, encoding="utf-8-sig")


def _excel_value(value: object) -> object:
    """A value openpyxl can store: native Python numbers/bools, None for missing, text without control bytes."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, int | str):
        return _EXCEL_ILLEGAL.sub("\ufffd", value) if isinstance(value, str) else value
    return str(value)


def _centroids_lonlat(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids computed in metres (a lon/lat centroid is skewed), reported as lon/lat."""
    metric = gpd.GeoSeries(geoms, crs=STORE_CRS).to_crs(METRIC_CRS)
    centres = metric.centroid.to_crs(STORE_CRS).to_numpy()
    return shapely.get_x(centres), shapely.get_y(centres)


def _sheet_title(layer_name: str) -> str:
    return _SHEET_ILLEGAL.sub("_", layer_name).strip("'")[:31] or "layer"


def _excel_geometry_columns(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    geoms = frame.geometry.to_numpy()
    lon, lat = _centroids_lonlat(geoms)
    wkt = shapely.to_wkt(geoms, rounding_precision=WKT_DECIMALS)
    too_long = np.array([w is not None and len(w) > EXCEL_CELL_CHARS for w in wkt], dtype=bool)
    notes = [
        f"WKT has {len(w)} characters, over Excel's {EXCEL_CELL_CHARS:,}-character cell limit; "
        "export as GeoPackage or GeoJSON for the geometry"
        if long
        else None
        for w, long in zip(wkt, too_long, strict=True)
    ]
    if too_long.any():
        log.warning("%d geometries too large for an Excel cell; their WKT is left empty", int(too_long.sum()))
    return pd.DataFrame(
        {"centroid_lon": lon, "centroid_lat": lat, "wkt": np.where(too_long, None, wkt), "wkt_note": notes}
    )


def write_xlsx(frame: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    """One sheet: attributes, centroid lon/lat, WKT when it fits a cell (else a note saying why it is empty)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    table = _attributes(frame)
    clash = [c for c in XLSX_HELPER_COLUMNS if c in table.columns]
    if clash:
        raise InputError(f"the layer already has column(s) {clash}; cannot add geometry columns")
    table = pd.concat([table, _excel_geometry_columns(frame)], axis=1)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(layer_name))
    sheet.freeze_panes = "A2"
    sheet.append([str(c) for c in table.columns])
    for row in table.itertuples(index=False, name=None):
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=_excel_value(value))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would treat "=..." as a formula
            cells.append(cell)
        sheet.append(cells)
    workbook.save(path)
