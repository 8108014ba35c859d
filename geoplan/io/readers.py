"""Per-format readers. Each returns the file's features as found (the file's CRS or none); deciding what the
numbers mean is `geoplan.crs.to_store_crs`'s job, and checking them against the catalogue is validation's.

Readers raise `FormatError` with a short reason; `read_file` turns it into an `UnreadableFileError` naming the
file and the format, so a user never sees a GDAL traceback.
"""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geoplan.errors import InputError, Problem, ValidationFailed
from geoplan.io.archive import NotAZipError, open_zip

log = logging.getLogger(__name__)

FIELD_MAP_SUFFIX = ".fieldnames.json"
"""Sidecar next to a Shapefile that maps its 10-character DBF names back to the full names (written by us)."""
FIELD_MAP_KEY = "geoplan_field_names"

LON_COLUMNS = ("lon", "lng", "longitude", "经度", "x")
LAT_COLUMNS = ("lat", "latitude", "纬度", "y")
WKT_COLUMNS = ("wkt", "geometry", "geom")
XLSX_HELPER_COLUMNS = ("centroid_lon", "centroid_lat", "wkt", "wkt_note")
"""Columns our own Excel export adds; dropped again on reading when all four are present (bar `wkt`)."""

# Strings our CSV export prefixed with an apostrophe so Excel does not run them as formulas.
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"^'[=+\-@\t\r']")

T = TypeVar("T")

TablePrep = Callable[[pd.DataFrame], pd.DataFrame]
"""A step between reading a table and building its geometries (a column map): it gets the cells, indexed by
the row numbers the user sees in Excel (or the line numbers of a CSV), and returns the table to build from."""


class FormatError(Exception):
    """The file is not readable as the format its name (or content) says; the message is the short reason."""


@dataclass(frozen=True)
class ReadOptions:
    """What every reader needs: the layer asked for, the byte budget and the name to show the user."""

    layer: str | None
    max_bytes: int
    name: str
    header_row: int = 1
    """Tables only: the 1-based row (CSV line) of the headers; the rows above it are titles and are skipped."""
    prepare: TablePrep | None = None
    """Tables only: applied to the cells before the geometries are built."""


# --------------------------------------------------------------------------------------------- OGR formats


# GDAL phrasings worth translating into something a planner can act on.
_GDAL_PLAIN = {
    "not recognized as being in a supported file format": "unrecognised content (corrupt, or another format)",
    "database disk image is malformed": "the database is corrupt or truncated",
    "file is not a database": "not an SQLite/GeoPackage database",
}


def _short_reason(exc: BaseException, path: Path) -> str:
    """GDAL's message without its advice boilerplate or our temporary paths, on one line."""
    text = str(exc)
    for phrase, plain in _GDAL_PLAIN.items():
        if phrase in text:
            return plain
    text = text.split("; It might help")[0]
    text = text.replace(str(path), path.name).replace(str(path.parent) + "/", "")
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _ogr(call: Callable[..., T], path: Path, name: str, **kwargs: Any) -> T:
    """Run a pyogrio call; GDAL warnings go to the log, any failure becomes a FormatError.

    Broad on purpose: GDAL on hostile bytes can fail in many ways, and every one of them means "unreadable".
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call(path, **kwargs)
        except Exception as exc:
            log.debug("%s: GDAL failed", name, exc_info=True)
            raise FormatError(_short_reason(exc, path)) from None
    for warning in caught:
        log.warning("%s: %s", name, warning.message)
    return result


def _choose_layer(path: Path, opts: ReadOptions) -> str:
    layers = _ogr(pyogrio.list_layers, path, opts.name)
    names = [str(row[0]) for row in layers]
    if opts.layer is not None:
        if opts.layer in names:
            return opts.layer
        raise InputError(f"{opts.name}: no layer {opts.layer!r}; it has: {', '.join(names)}")
    spatial = [str(row[0]) for row in layers if row[1] is not None]
    if len(names) == 1:
        return names[0]
    if len(spatial) == 1:
        return spatial[0]
    if not names:
        raise FormatError("it holds no layers")
    raise InputError(f"{opts.name} holds {len(names)} layers ({', '.join(names)}); choose one with --layer")


def restore_field_names(frame: gpd.GeoDataFrame, shp: Path) -> gpd.GeoDataFrame:
    """Undo our Shapefile export's 10-character field names using its sidecar map, when there is one."""
    sidecar = shp.with_suffix(FIELD_MAP_SUFFIX)
    if not sidecar.is_file():
        return frame
    try:
        mapping = json.loads(sidecar.read_text(encoding="utf-8"))[FIELD_MAP_KEY]
    except (ValueError, KeyError, TypeError, OSError):
        log.warning("%s: ignoring unreadable field-name map", sidecar.name)
        return frame
    if not isinstance(mapping, dict):
        return frame
    renames = {k: str(v) for k, v in mapping.items() if k in frame.columns and k != frame.geometry.name}
    return frame.rename(columns=renames)


def read_ogr(path: Path, opts: ReadOptions, *, drivers: Sequence[str]) -> gpd.GeoDataFrame:
    """Read one layer with GDAL, insisting that GDAL recognised the content as one of `drivers`."""
    layer = _choose_layer(path, opts)
    info = _ogr(pyogrio.read_info, path, opts.name, layer=layer)
    if info["driver"] not in drivers:
        raise FormatError(f"GDAL reads it as {info['driver']}")
    frame = _ogr(pyogrio.read_dataframe, path, opts.name, layer=layer)
    if not isinstance(frame, gpd.GeoDataFrame):
        raise FormatError(f"layer {layer!r} has no geometry column")
    if info["driver"] == "ESRI Shapefile":
        frame = restore_field_names(frame, path)
    return frame


# --------------------------------------------------------------------------------------------- tables


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK: Chinese Excel's CSV)."""
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FormatError("binary data, not text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise FormatError("broken UTF-16 text") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != "utf-8-sig":
            log.info("CSV is not UTF-8; decoded as %s", encoding)
        return text
    raise FormatError("not UTF-8 or GBK/GB18030 text")


def _delimiter(text: str) -> str:
    """Comma, semicolon or tab, whichever the header line uses most (European and 'Unicode text' exports)."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def _blank_to_none(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns where blank cells are None, so every reader hands validation the same shape of data."""
    out = table.astype(object)
    for column in out.columns:
        values = out[column]
        blank = values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
        out[column] = values.where(~blank, None)
    out = out.loc[:, [not (_unnamed(c) and out[c].isna().all()) for c in out.columns]]
    return out.loc[~out.isna().all(axis=1)]  # the index keeps the user's row numbers


def _numbered(table: pd.DataFrame, header_row: int) -> pd.DataFrame:
    """The body rows indexed by their row number in the file (the header is row `header_row`)."""
    return table.set_axis(range(header_row + 1, header_row + 1 + len(table)), axis=0)


def _geodata(table: pd.DataFrame, opts: ReadOptions) -> gpd.GeoDataFrame:
    if opts.prepare is not None:
        table = opts.prepare(table)
    return frame_from_table(table.reset_index(drop=True), opts.name)


def _unnamed(column: object) -> bool:
    text = str(column).strip()
    return not text or text.startswith("Unnamed: ")


def unescape_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the apostrophe our CSV export put before formula-like text (Excel's own text marker)."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        escaped = values.map(lambda v: isinstance(v, str) and bool(_ESCAPED.match(v))).astype(bool)
        if escaped.any():
            out.loc[escaped, column] = values[escaped].map(lambda v: v[1:])
    return out


def read_csv(path: Path, opts: ReadOptions) -> gpd.GeoDataFrame:
    """A CSV with lon/lat or WKT columns; every value is kept as text for validation to type."""
    text = _decode(path.read_bytes())
    if opts.header_row > 1:
        text = "\n".join(text.split("\n")[opts.header_row - 1 :])
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=_delimiter(text),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,  # blank lines count, so row numbers match the file's lines
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise FormatError(" ".join(str(exc).split())[:200]) from None
    return _geodata(unescape_formulas(_blank_to_none(_numbered(table, opts.header_row))), opts)


def read_xlsx(path: Path, opts: ReadOptions) -> gpd.GeoDataFrame:
    """The first sheet (or the sheet named by `layer`) of a workbook, read like a CSV."""
    import openpyxl  # heavy; only Excel imports need it

    try:
        with open_zip(path, max_bytes=opts.max_bytes, archive=opts.name):
            pass  # an .xlsx is a zip: refuse bombs before openpyxl inflates anything
    except NotAZipError as exc:
        raise FormatError(str(exc)) from None
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, zipfile and XML errors alike
        raise FormatError(" ".join(str(exc).split())[:200] or type(exc).__name__) from None
    try:
        rows = _sheet_rows(workbook, opts)
    finally:
        workbook.close()
    if not rows:
        raise FormatError("the sheet is empty")
    if len(rows) < opts.header_row:
        raise FormatError(f"the sheet has {len(rows)} row(s), so no header row {opts.header_row}")
    first = opts.header_row - 1
    header = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(rows[first])]
    width = len(header)
    body = [list(r[:width]) + [None] * (width - len(r)) for r in rows[first + 1 :]]
    table = _blank_to_none(_numbered(pd.DataFrame(body, columns=header, dtype=object), opts.header_row))
    if all(c in table.columns for c in XLSX_HELPER_COLUMNS):
        table = table.drop(columns=[c for c in XLSX_HELPER_COLUMNS if c != "wkt"])
    return _geodata(table, opts)


def _sheet_rows(workbook: Any, opts: ReadOptions) -> list[tuple[Any, ...]]:
    if opts.layer is not None:
        if opts.layer not in workbook.sheetnames:
            raise InputError(f"{opts.name}: no sheet {opts.layer!r}; it has: {', '.join(workbook.sheetnames)}")
        sheet = workbook[opts.layer]
    else:
        sheet = workbook.worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lookup: dict[str, str] = {}
    for column in columns:
        lookup.setdefault(str(column).strip().lstrip("\ufeff").lower(), column)
    return next((lookup[c] for c in candidates if c in lookup), None)


def frame_from_table(table: pd.DataFrame, name: str) -> gpd.GeoDataFrame:
    """Build geometries from a WKT column, or else from lon/lat columns; other columns become attributes."""
    columns = [str(c) for c in table.columns]
    table = table.set_axis(columns, axis=1)
    wkt = _find_column(columns, WKT_COLUMNS)
    lon, lat = _find_column(columns, LON_COLUMNS), _find_column(columns, LAT_COLUMNS)
    if wkt is not None:
        geometry = _parse_wkt(table[wkt], name, wkt)
        attributes = table.drop(columns=[wkt])
    elif lon is not None and lat is not None:
        geometry = _parse_points(table[lon], table[lat], name, (lon, lat))
        attributes = table.drop(columns=[lon, lat])
    else:
        raise FormatError(
            "no geometry columns: expected lon/lat columns (lon, lng, longitude, x, 经度 / lat, latitude, y, "
            f"纬度) or a WKT column (wkt, geometry, geom); found: {', '.join(columns)[:200]}"
        )
    try:
        return gpd.GeoDataFrame(attributes, geometry=gpd.GeoSeries(geometry, index=attributes.index), crs=None)
    except ValueError as exc:
        raise FormatError(str(exc)) from None


def _quote(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _parse_wkt(values: pd.Series, name: str, column: str) -> np.ndarray:
    texts = np.array([None if v is None else str(v).strip() for v in values], dtype=object)
    geoms = shapely.from_wkt(texts, on_invalid="ignore")
    bad = np.flatnonzero(pd.isna(geoms) & pd.notna(texts))
    if len(bad):
        problems = [Problem(f"not valid WKT: {_quote(texts[i])}", feature=f"#{i + 1}", field=column) for i in bad]
        raise ValidationFailed(name, problems)
    return np.asarray(geoms, dtype=object)


def _to_float(values: pd.Series) -> np.ndarray:
    cleaned = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    return np.asarray(pd.to_numeric(cleaned, errors="coerce"), dtype="float64")


def _parse_points(lons: pd.Series, lats: pd.Series, name: str, columns: tuple[str, str]) -> np.ndarray:
    x, y = _to_float(lons), _to_float(lats)
    given_x, given_y = lons.notna().to_numpy(), lats.notna().to_numpy()
    problems = []
    for values, numbers, given, column in ((lons, x, given_x, columns[0]), (lats, y, given_y, columns[1])):
        other_given = given_y if column == columns[0] else given_x
        for i in np.flatnonzero((given & ~np.isfinite(numbers)) | (~given & other_given)):
            shown = _quote(values.iloc[i]) if given[i] else "blank"
            problems.append(Problem(f"coordinate {shown} is not a finite number", feature=f"#{i + 1}", field=column))
    if problems:
        raise ValidationFailed(name, sorted(problems, key=lambda p: int(str(p.feature)[1:])))
    given = given_x & given_y
    geometry = np.full(len(x), None, dtype=object)
    geometry[given] = shapely.points(x[given], y[given])
    return geometry


# --------------------------------------------------------------------------------------------- archives


ZIP_DATASET_SUFFIXES = (".shp", ".geojson", ".json", ".gpkg", ".kml")


def pick_member(root: Path, *, layer: str | None, name: str) -> Path:
    """The one dataset in an unpacked zip: its Shapefile, else its single GeoJSON/GeoPackage/KML."""
    files = [
        p for p in sorted(root.rglob("*")) if p.is_file() and "__MACOSX" not in p.parts and not p.name.startswith("._")
    ]
    for suffixes in ((".shp",), ZIP_DATASET_SUFFIXES[1:]):
        found = [p for p in files if p.suffix.lower() in suffixes]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            return _pick_by_layer(found, root, layer, name)
    raise FormatError(f"it holds no Shapefile, GeoJSON, GeoPackage or KML ({len(files)} file(s))")


def _pick_by_layer(found: list[Path], root: Path, layer: str | None, name: str) -> Path:
    listed = ", ".join(p.relative_to(root).as_posix() for p in found)
    if layer is not None:
        matches = [p for p in found if layer in (p.stem, p.name, p.relative_to(root).as_posix())]
        if len(matches) == 1:
            return matches[0]
    raise InputError(f"{name} holds {len(found)} datasets ({listed}); choose one with --layer <name>")
