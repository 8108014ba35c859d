"""The table of supported file formats, and `read_file` / `write_file` that dispatch through it.

One table serves the code and the error messages, so "supported: ..." can never drift from what works.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from geoplan.crs import STORE_CRS, is_lonlat_wgs84_family, to_store_crs
from geoplan.errors import CRSError, InputError, NotFoundError, UnreadableFileError
from geoplan.io import readers, writers
from geoplan.io.archive import NotAZipError, extracted
from geoplan.io.readers import FormatError, ReadOptions, TablePrep

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024

Reader = Callable[[Path, ReadOptions], gpd.GeoDataFrame]
Writer = Callable[[gpd.GeoDataFrame, Path, str], None]


@dataclass(frozen=True)
class FileFormat:
    """One supported suffix: what to call it, how to read and write it, and what its first bytes look like."""

    label: str
    reader: Reader | None
    writer: Writer | None
    magic: str | None
    """Content family from `sniff` ('json', 'sqlite', 'zip', 'xml', 'shp'); None for plain-text tables."""


def _read_zip(path: Path, opts: ReadOptions) -> gpd.GeoDataFrame:
    """Unpack safely, then read the one dataset inside through this same table (so its checks apply too)."""
    try:
        with extracted(path, max_bytes=opts.max_bytes, archive=opts.name) as root:
            member = readers.pick_member(root, layer=opts.layer, name=opts.name)
            inner_layer = None if member.suffix.lower() == ".shp" else opts.layer
            shown = f"{opts.name}!{member.relative_to(root).as_posix()}"
            return read_raw(member, layer=inner_layer, max_bytes=opts.max_bytes, name=shown)
    except NotAZipError as exc:
        raise FormatError(str(exc)) from None


def _ogr(*drivers: str) -> Reader:
    return functools.partial(readers.read_ogr, drivers=drivers)


_GEOJSON_DRIVERS = ("GeoJSON", "GeoJSONSeq", "ESRIJSON")

FORMATS: dict[str, FileFormat] = {
    ".geojson": FileFormat("GeoJSON", _ogr(*_GEOJSON_DRIVERS), writers.write_geojson, "json"),
    ".json": FileFormat("GeoJSON", _ogr(*_GEOJSON_DRIVERS), writers.write_geojson, "json"),
    ".gpkg": FileFormat("GeoPackage", _ogr("GPKG"), writers.write_gpkg, "sqlite"),
    ".zip": FileFormat(
        "zipped Shapefile (or one zipped GeoJSON/GeoPackage/KML)", _read_zip, writers.write_shapefile_zip, "zip"
    ),
    ".shp": FileFormat("ESRI Shapefile", _ogr("ESRI Shapefile"), None, "shp"),
    ".kml": FileFormat("KML", _ogr("KML", "LIBKML"), None, "xml"),
    ".csv": FileFormat("CSV (lon/lat or WKT columns)", readers.read_csv, writers.write_csv, None),
    ".xlsx": FileFormat("Excel workbook (lon/lat or WKT columns)", readers.read_xlsx, writers.write_xlsx, "zip"),
}
"""Every supported suffix. Readers return the file's own CRS; writers get EPSG:4490 frames."""

_SNIFFED_SUFFIX = {"json": ".geojson", "sqlite": ".gpkg", "zip": ".zip", "xml": ".kml", "shp": ".shp"}
_BINARY_FAMILIES = frozenset({"sqlite", "zip", "shp"})


def supported(*, writable: bool = False) -> str:
    """'.geojson (GeoJSON), .gpkg (GeoPackage), ...' for messages."""
    return ", ".join(
        f"{suffix} ({fmt.label})"
        for suffix, fmt in FORMATS.items()
        if (fmt.writer if writable else fmt.reader) is not None
    )


# --------------------------------------------------------------------------------------------- reading


def sniff(path: Path) -> str | None:
    """The content family from the first bytes, cheaply: enough to catch a renamed file."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x00\x00\x27\x0a"):  # Shapefile main-file code 9994
        return "shp"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"{", b"[")):
        return "json"
    if text.startswith(b"<") and b"<kml" in head:
        return "xml"
    return None


def _file_size(path: Path) -> int:
    """Bytes a read will touch: a Shapefile is its .shp plus its .dbf and .shx."""
    if path.suffix.lower() != ".shp":
        return path.stat().st_size
    siblings = (path.with_suffix(s) for s in (".shp", ".shx", ".dbf"))
    return sum(p.stat().st_size for p in siblings if p.is_file())


def _format_for_reading(path: Path, name: str) -> FileFormat:
    suffix = path.suffix.lower()
    family = sniff(path)
    fmt = FORMATS.get(suffix)
    if fmt is not None and fmt.reader is not None:
        mismatch = family is not None and family != fmt.magic
        if mismatch and (fmt.magic is not None or family in _BINARY_FAMILIES):
            other = _SNIFFED_SUFFIX[str(family)]
            raise UnreadableFileError(
                f"{name}: not a readable {fmt.label}: the content looks like {FORMATS[other].label} "
                f"(rename it to {other}?)",
                zh=f"文件无法读取：扩展名是 {fmt.label}，内容却像 {FORMATS[other].label}（是否应改名为 {other}？）。",
            )
        return fmt
    if family is not None:
        log.info("%s: unknown suffix; content looks like %s", name, FORMATS[_SNIFFED_SUFFIX[family]].label)
        return FORMATS[_SNIFFED_SUFFIX[family]]
    raise UnreadableFileError(
        f"{name}: not a supported geodata file; supported: {supported()}",
        zh=f"不是受支持的地理数据文件。支持：{supported()}。",
    )


TABLE_SUFFIXES = (".csv", ".xlsx")
"""The formats whose columns a column map can rename (`header_row`, `prepare`)."""


def read_raw(
    path: Path,
    *,
    layer: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    header_row: int = 1,
    prepare: TablePrep | None = None,
) -> gpd.GeoDataFrame:
    """Read a file's features with its own CRS (or none), after the size and format checks. `header_row` and
    `prepare` apply to tables (.csv, .xlsx) only."""
    shown = name or path.name
    if not path.exists():
        raise NotFoundError(f"{shown}: no such file")
    if not path.is_file():
        raise UnreadableFileError(f"{shown}: not a file")
    size = _file_size(path)
    if size > max_bytes:
        raise UnreadableFileError(
            f"{shown}: {size:,} bytes is more than the {max_bytes:,}-byte import limit",
            zh=f"文件过大：{size:,} 字节，超过导入上限 {max_bytes:,} 字节。",
        )
    fmt = _format_for_reading(path, shown)
    if size == 0:
        raise UnreadableFileError(f"{shown}: not a readable {fmt.label}: the file is empty", zh="文件是空的。")
    assert fmt.reader is not None  # _format_for_reading only returns readable formats
    if prepare is not None and fmt not in (FORMATS[s] for s in TABLE_SUFFIXES):
        raise InputError(f"{shown}: a column map applies to .csv and .xlsx tables, not to {fmt.label}")
    try:
        return fmt.reader(path, ReadOptions(layer, max_bytes, shown, header_row, prepare))
    except FormatError as exc:
        raise UnreadableFileError(
            f"{shown}: not a readable {fmt.label}: {exc}",
            zh=f"文件无法作为 {fmt.label} 读取：可能已损坏、被截断或格式不对。",
        ) from None


def read_file(
    path: Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    header_row: int = 1,
    prepare: TablePrep | None = None,
) -> gpd.GeoDataFrame:
    """Read any supported file into a new GeoDataFrame in EPSG:4490.

    `crs` is the user's --crs: required when the file does not say (CSV, a Shapefile without .prj), and
    "gcj02" for AMap coordinates. `layer` picks a GeoPackage layer, a KML folder, a sheet or a zip member.
    `header_row` and `prepare` (a column map's) apply to .csv and .xlsx tables.
    """
    path = Path(path)
    frame = read_raw(path, layer=layer, max_bytes=max_bytes, header_row=header_row, prepare=prepare)
    if len(frame) == 0:
        raise InputError(f"{path.name}: the file holds no features", zh="文件中没有任何要素。")
    return to_store_crs(frame, declared=crs, source=path.name)


# --------------------------------------------------------------------------------------------- writing


def _in_store_crs(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise CRSError(f"{name}: the frame has no CRS; refusing to write coordinates of unknown meaning")
    if is_lonlat_wgs84_family(frame.crs):
        return frame.set_crs(STORE_CRS, allow_override=True)
    return frame.to_crs(STORE_CRS)


def _remove_leftovers(tmp: Path) -> None:
    for leftover in tmp.parent.iterdir():  # the file itself and GDAL journals: <tmp>-journal, <tmp>-wal
        if leftover.name.startswith(tmp.name):
            leftover.unlink(missing_ok=True)


def write_file(frame: gpd.GeoDataFrame, path: Path, *, layer_name: str) -> Path:
    """Write `frame` to `path` in the format its suffix names; an existing file is replaced atomically."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None or fmt.writer is None:
        raise InputError(f"{path.name}: cannot write '{path.suffix}' files; supported: {supported(writable=True)}")
    if not layer_name.strip():
        raise InputError(f"{path.name}: empty layer name")
    if not path.parent.is_dir():
        raise InputError(f"{path.name}: folder {path.parent} does not exist")
    data = _in_store_crs(frame, path.name)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        fmt.writer(data, tmp, layer_name)
        os.replace(tmp, path)
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from None
    finally:
        _remove_leftovers(tmp)
    log.info("wrote %d feature(s) to %s", len(frame), path)
    return path
