"""Population rasters in and out: read any GDAL raster, check it, regrid it to the catalogue's grid, optionally
calibrate it to census totals, write it; and export the stored grid as a Cloud-Optimized GeoTIFF.

Everything that can be wrong with the file is found before the store is touched, so a refused import leaves the
store byte for byte as it was. The arithmetic lives in geoplan.analysis.population_grid and
population_calibration; this module reads files and the store.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RioCRS
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geoplan.analysis.population_calibration import calibrate
from geoplan.analysis.population_grid import (
    NODATA,
    SourceGrid,
    TargetGrid,
    copy_on_grid,
    on_grid,
    regrid_population,
    target_grid,
    valid_cells,
)
from geoplan.crs import GCJ02, METRIC_CRS, STORE_CRS, crs_equivalent, crs_label, parse_crs
from geoplan.errors import CRSError, InputError, NotFoundError, Problem, UnreadableFileError
from geoplan.rasterdata import RasterData
from geoplan.services.ingest import district_outline
from geoplan.storage import LayerStore
from geoplan.storage.base import raster_layer

log = logging.getLogger(__name__)

DEFAULT_MAX_CELLS = 20_000_000
"""Source cells read at most (the window over the district): 20 million float64 cells are 160 MB."""

UnitLevel = Literal["towns", "villages"]
_UNIT_FIELDS: dict[str, tuple[str, str]] = {
    "towns": ("town_code", "town_name"),
    "villages": ("village_code", "village_name"),
}
_CODE_HEADERS = ("code", "代码", "编码", "区划代码", "统计用区划代码")
_NAME_HEADERS = ("name", "名称", "镇街", "镇街名称", "村", "村名", "村（社区）")
_POP_HEADERS = ("population", "pop", "total", "人口", "常住人口", "总人口")


@dataclass(frozen=True)
class RasterImportReport:
    layer: str
    source: str
    method: Literal["copied", "regridded"]
    written_total: float
    source_total: float  # people of the source window read (all of the file's cells over the district's box)
    kept_total: float  # people of the source cells' parts inside the district (exact; before calibration)
    cells: int
    calibrated: list[str] = field(default_factory=list)  # unit totals applied, "name: before → after"
    warnings: list[Problem] = field(default_factory=list)


def import_raster(
    store: LayerStore,
    layer: str,
    path: Path,
    *,
    crs: str | None = None,
    calibrate_to: UnitLevel | None = None,
    totals: Path | None = None,
    actor: str = "system",
    max_cells: int | None = None,
) -> RasterImportReport:
    """Read `path`, regrid (or copy) it to the catalogue's grid, calibrate it if asked, and write it."""
    definition = raster_layer(store.catalog, layer)
    metric = str(definition.raster.get("crs", METRIC_CRS))
    if (calibrate_to is None) != (totals is None):
        raise InputError("--calibrate-to and --totals go together: --calibrate-to towns --totals towns.csv")
    if calibrate_to is not None and calibrate_to not in _UNIT_FIELDS:
        raise InputError(f"--calibrate-to must be towns or villages, not {calibrate_to!r}")
    outline = district_outline(store)
    if outline is None:
        raise InputError("the store has no district outline yet: import the district (or run `geoplan demo`) first")
    district = _to_metric(outline, metric)
    grid = target_grid(district.bounds)
    warnings: list[Problem] = []

    limit = DEFAULT_MAX_CELLS if max_cells is None else max_cells
    source, nodata_declared = _read_source(path, crs=crs, district=district, metric=metric, max_cells=limit)
    if source.band_count > 1:
        warnings.append(Problem(f"{path.name} has {source.band_count} bands; band 1 is imported"))
    values = _checked_values(source.values, nodata=nodata_declared, name=path.name)
    valid = valid_cells(grid, district)
    offset = on_grid(source.transform, values.shape, grid) if crs_equivalent(source.crs, CRS(metric)) else None
    if offset is not None:
        # already the catalogue's cells: copied as is, so export → import is the identity
        array = copy_on_grid(
            values=values, offset=offset, grid=grid, valid=valid
        )  # float32 → float64 → float32 is exact
        kept = float(np.where(array == NODATA, 0.0, array.astype(np.float64)).sum())
        method: Literal["copied", "regridded"] = "copied"
        source_total = float(np.nansum(values))
    else:
        regridded = regrid_population(
            source=SourceGrid(values, source.transform, source.crs.to_wkt()),
            district=district,
            grid=grid,
            metric_crs=metric,
            valid=valid,
        )
        array, kept, method, source_total = regridded.array, regridded.kept, "regridded", regridded.source_total
    if kept <= 0:
        raise InputError(f"{path.name}: no people inside the district (every cell over it is empty or nodata)")

    calibrated: list[str] = []
    if calibrate_to is not None and totals is not None:
        array, calibrated = _calibrate(store, array, grid, calibrate_to, totals, metric, warnings)

    raster = RasterData(array=array, transform=grid.transform, crs=metric, nodata=NODATA)
    written = raster.valid_sum()
    store.write_raster(layer, raster, actor=actor)
    log.info("%s: wrote %s (%s, %.1f persons)", path.name, layer, method, written)
    return RasterImportReport(
        layer, path.name, method, written, source_total, kept, int(valid.sum()), calibrated, warnings
    )


def export_raster(store: LayerStore, layer: str, path: Path) -> RasterData:
    """Write a stored raster layer to `path` as a Cloud-Optimized GeoTIFF with its CRS and nodata."""
    raster_layer(store.catalog, layer)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{path.name}: a raster layer exports to a .tif (Cloud-Optimized GeoTIFF)")
    raster = store.read_raster(layer)
    with rasterio.open(path, "w", **raster.profile("COG")) as dst:
        dst.write(raster.array, 1)
    return raster


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Source:
    values: np.ndarray  # float64, NaN where nodata
    transform: rasterio.Affine
    crs: CRS
    band_count: int


def _to_metric(geom: shapely.Geometry, metric: str) -> shapely.Geometry:
    to_metric = Transformer.from_crs(STORE_CRS, metric, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))


def _read_source(
    path: Path, *, crs: str | None, district: shapely.Geometry, metric: str, max_cells: int
) -> tuple[_Source, float | None]:
    name = path.name
    if not path.is_file():
        raise NotFoundError(f"{name}: no such file")
    try:
        dataset = rasterio.open(path)
    except RasterioIOError:
        raise UnreadableFileError(
            f"{name}: not a raster file GDAL can read (GeoTIFF, COG, GeoPackage raster…)"
        ) from None
    with dataset as src:
        source_crs = _source_crs(src.crs, crs, name)
        t = src.transform
        if t.b != 0 or t.d != 0 or t.e >= 0 or t.a <= 0:
            raise InputError(f"{name}: a rotated or south-up raster; warp it north-up first (gdalwarp)")
        try:
            box = transform_bounds(
                RioCRS.from_wkt(_wkt(metric)), RioCRS.from_wkt(source_crs.to_wkt()), *district.bounds, densify_pts=21
            )
        except (rasterio.errors.CRSError, ValueError):  # a CRS that cannot be transformed is the user's input
            raise CRSError(f"{name}: its CRS {crs_label(source_crs)} cannot be transformed to {metric}") from None
        left, bottom, right, top = src.bounds
        if (
            not all(math.isfinite(v) for v in box)
            or box[0] >= right
            or box[2] <= left
            or box[1] >= top
            or box[3] <= bottom
        ):
            raise InputError(
                f"{name}: lies outside the district (its extent {_fmt(src.bounds)} in {crs_label(source_crs)} "
                f"does not reach the district's {_fmt(box)}); check the file or its --crs"
            )
        # the source cells over the district's box, one cell of margin each side, clipped to the file
        inv = ~t
        cols, rows = zip(*(inv @ (x, y) for x in (box[0], box[2]) for y in (box[1], box[3])), strict=True)
        c0, c1 = max(math.floor(min(cols)) - 1, 0), min(math.ceil(max(cols)) + 1, src.width)
        r0, r1 = max(math.floor(min(rows)) - 1, 0), min(math.ceil(max(rows)) + 1, src.height)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        cells = int(window.width) * int(window.height)
        if cells > max_cells:
            raise InputError(
                f"{name}: {cells:,} cells over the district, more than the limit of {max_cells:,}; "
                "resample it coarser first (a 100 m grid needs about 100,000)"
            )
        raw = src.read(1, window=window)
        nodata = src.nodata
        transform = src.window_transform(window)
        band_count = src.count
    values = raw.astype(np.float64)
    if (nodata is None or not math.isnan(nodata)) and np.isnan(values).any():
        raise InputError(
            f"{name}: {int(np.isnan(values).sum()):,} cell(s) are NaN and the nodata value is {nodata}: "
            "not population counts (declare NaN as nodata, e.g. gdal_edit -a_nodata nan, or fix the file)"
        )
    if nodata is not None:
        hole = np.isnan(values) if math.isnan(nodata) else values == nodata
        values[hole] = np.nan
    return _Source(values, transform, source_crs, band_count), nodata


def _wkt(text: str) -> str:
    return CRS.from_user_input(text).to_wkt()


def _fmt(b: tuple[float, ...] | rasterio.coords.BoundingBox) -> str:
    return "(" + ", ".join(f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}" for v in b) + ")"


def _source_crs(file_crs: RioCRS | None, option: str | None, name: str) -> CRS:
    if option is not None:
        parsed = parse_crs(option)
        if parsed is GCJ02:
            raise CRSError(f"{name}: gcj02 applies to coordinates in lists, not to raster grids")
        assert isinstance(parsed, CRS)
        if file_crs is not None and not crs_equivalent(CRS(file_crs.to_wkt()), parsed):
            raise CRSError(f"{name}: the file says {crs_label(CRS(file_crs.to_wkt()))}, --crs says {crs_label(parsed)}")
        return parsed
    if file_crs is None:
        raise CRSError(f"{name}: the raster has no coordinate system; pass --crs (e.g. --crs EPSG:4326)")
    return CRS(file_crs.to_wkt())


def _checked_values(values: np.ndarray, *, nodata: float | None, name: str) -> np.ndarray:
    """Refuse infinities, NaN that is not the declared nodata, and negative counts (`values`: nodata already NaN)."""
    if np.isinf(values).any():
        raise InputError(f"{name}: {int(np.isinf(values).sum()):,} cell(s) are infinite: not population counts")
    negative = np.nan_to_num(values, nan=0.0) < 0
    if negative.any():
        low = float(np.nanmin(values))
        raise InputError(
            f"{name}: {int(negative.sum()):,} cell(s) are negative (as low as {low:g}) and not the nodata value "
            f"({nodata}): population counts cannot be negative"
        )
    return values


# --------------------------------------------------------------------------------------------- calibration


def _calibrate(
    store: LayerStore,
    array: np.ndarray,
    grid: TargetGrid,
    level: UnitLevel,
    totals_path: Path,
    metric: str,
    warnings: list[Problem],
) -> tuple[np.ndarray, list[str]]:
    code_field, name_field = _UNIT_FIELDS[level]
    units = store.read(level)
    if units.empty:
        raise InputError(f"the store holds no {level} to calibrate to")
    codes = [str(v) for v in units[code_field]]
    names = [str(v) for v in units[name_field]]
    wanted = read_totals(totals_path, codes=codes, names=names)
    totals = np.array([wanted.get(c, np.nan) for c in codes], dtype=np.float64)
    missing = [n for c, n in zip(codes, names, strict=True) if c not in wanted]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        warnings.append(
            Problem(f"{len(missing)} of the {level} have no total in {totals_path.name} and keep their sums: {shown}")
        )
    geoms = np.array([_to_metric(g, metric) for g in units.geometry.values], dtype=object)
    result = calibrate(array=array, grid=grid, units=geoms, totals=totals, names=names)
    for u in result.spread_evenly:
        warnings.append(Problem(f"{names[u]} had no people in the raster; its total is spread evenly over its area"))
    lines = [
        f"{names[u]}: {result.before[u]:,.0f} → {result.after[u]:,.0f}"
        for u in range(len(codes))
        if not np.isnan(totals[u])
    ]
    return result.array, lines


def read_totals(path: Path, *, codes: list[str], names: list[str]) -> dict[str, float]:
    """A CSV of unit totals (UTF-8 or GBK): a code or name column and a population column → {code: total}."""
    if not path.is_file():
        raise NotFoundError(f"{path.name}: no such file")
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UnreadableFileError(f"{path.name}: neither UTF-8 nor GBK text")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UnreadableFileError(f"{path.name}: not a readable CSV ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    headers = {c.lower(): c for c in table.columns}
    pop = _column(headers, _POP_HEADERS)
    code = _column(headers, _CODE_HEADERS, suffix="_code")
    name = _column(headers, _NAME_HEADERS, suffix="_name")
    if pop is None or (code is None and name is None):
        raise InputError(
            f"{path.name}: needs a code or name column and a population column; its headers are "
            f"{', '.join(map(str, table.columns))}"
        )
    by_name = {n: c for c, n in zip(codes, names, strict=True)}
    out: dict[str, float] = {}
    problems: list[str] = []
    for i, row in table.iterrows():
        line = int(str(i)) + 2
        key = str(row[code]).strip() if code is not None and pd.notna(row[code]) else None
        if key is None or key not in codes:
            label = str(row[name]).strip() if name is not None and pd.notna(row[name]) else None
            key = by_name.get(label) if label is not None else None
            if key is None:
                problems.append(f"line {line}: no unit {label or row[code] if code is not None else label!r}")
                continue
        try:
            value = float(str(row[pop]).replace(",", "").strip())
        except ValueError:
            problems.append(f"line {line}: population {row[pop]!r} is not a number")
            continue
        if not math.isfinite(value) or value < 0:
            problems.append(f"line {line}: population {value:g} is not a count")
        elif key in out:
            problems.append(f"line {line}: a second total for {key}")
        else:
            out[key] = value
    if problems:
        raise InputError(f"{path.name}: " + "; ".join(problems[:8]) + (" …" if len(problems) > 8 else ""))
    return out


def _column(headers: dict[str, str], wanted: tuple[str, ...], *, suffix: str = "") -> str | None:
    for key, original in headers.items():
        if key in wanted or (suffix and key.endswith(suffix)):
            return original
    return None
