"""Checking a frame against its layer definition, and shaping it into exactly what the store holds.

Every way data enters the store passes through `validate`, so the catalogue's rules are enforced in one place.
It reports every problem at once (a planner fixing a 3,000-parcel spreadsheet should not learn about problems
one re-upload at a time), names each one by feature and field, and repairs only what can be repaired without
guessing: invalid geometries via `make_valid`, and only when the caller allows it (not `strict`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import Geod

from geoplan.catalog import FieldDef, GeometryType, LayerDef
from geoplan.crs import (
    METRIC_CRS,
    STORE_CRS,
    geometries_gcj02_to_wgs84,
    is_lonlat_wgs84_family,
)
from geoplan.errors import CRSError, InputError, Problem, ValidationFailed

log = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]

TRUE_WORDS = frozenset({"true", "1", "yes", "是"})
FALSE_WORDS = frozenset({"false", "0", "no", "否"})
# Control characters other than tab and newline (a CR is fine only as part of a Windows CRLF).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
_QUOTE_LIMIT = 40

# shapely type ids
_POINT, _LINE, _RING, _POLYGON, _MPOINT, _MLINE, _MPOLYGON, _COLLECTION = range(8)
_NESTED = (_MPOINT, _MLINE, _MPOLYGON, _COLLECTION)
_PART_TYPES: dict[str, tuple[int, ...]] = {"MultiPolygon": (_POLYGON,), "MultiLineString": (_LINE, _RING)}
_KIND_WORD = {"MultiPolygon": "polygon", "MultiLineString": "line", "Point": "point"}


@dataclass(frozen=True)
class ValidationResult:
    """A frame ready for the store (catalogue columns, types and geometry type, EPSG:4490) and the notes."""

    frame: gpd.GeoDataFrame
    repairs: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class _Findings:
    """Problems collected with the row they belong to, so the final list reads in file order."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self._items: list[tuple[int, int, Problem]] = []

    def add(self, row: int | None, message: str, field_name: str | None = None) -> None:
        feature = None if row is None else self.labels[row]
        self._items.append((-1 if row is None else row, len(self._items), Problem(message, feature, field_name)))

    def add_rows(self, rows: Iterable[int], message: Callable[[int], str], field_name: str | None) -> None:
        for row in rows:
            self.add(int(row), message(int(row)), field_name)

    def sorted(self) -> list[Problem]:
        return [p for _, _, p in sorted(self._items, key=lambda item: (item[0], item[1]))]

    def __bool__(self) -> bool:
        return bool(self._items)


INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
"""Controls (NUL, …), format characters (U+200B zero width space, U+202E right-to-left override), line and
paragraph separators, surrogates, private-use and unassigned code points: an id holding one looks like another."""


def invisible_characters(text: str) -> list[str]:
    """The code points of `text` (as 'U+200B') that a reader cannot see, or that reorder the text around them:
    the one rule for ids, used by the catalogue check (CLI and API writes) and by the web app's URL guard."""
    found = {ch for ch in text if unicodedata.category(ch) in INVISIBLE_CATEGORIES}
    found |= {ch for ch in text if unicodedata.category(ch) == "Zs" and ch != " "}  # no-break and ideographic spaces
    return [f"U+{ord(ch):04X}" for ch in sorted(found)]


def _quote(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…")


# --------------------------------------------------------------------------------------------- columns


def _null_mask(values: pd.Series) -> BoolArray:
    """Missing values and blank text both count as "no value"."""
    isna = values.isna().to_numpy(dtype=bool)
    blank = values.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return isna | blank


def _match_columns(frame: gpd.GeoDataFrame, layer: LayerDef) -> tuple[dict[str, str], list[str]]:
    """Catalogue field -> frame column (exact name first, then ignoring case and spaces), and the extras."""
    available = [str(c) for c in frame.columns if c != frame.geometry.name]
    matched: dict[str, str] = {}
    for name in layer.field_names:
        if name in available:
            matched[name] = name
    for name in layer.field_names:
        if name in matched:
            continue
        loose = [c for c in available if c.strip().lower() == name and c not in matched.values()]
        if loose:
            matched[name] = loose[0]
    extras = [c for c in available if c not in matched.values()]
    return matched, extras


def _string_value(value: object) -> str | None:
    """Text for a string field: codes read as numbers (440608.0) become '440608', blanks become None."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_string(values: pd.Series) -> tuple[pd.Series, BoolArray]:
    out = pd.Series([_string_value(v) for v in values], index=values.index, dtype=object)
    return out, np.zeros(len(values), dtype=bool)


def _numbers(values: pd.Series, null: BoolArray) -> tuple[NDArray[np.float64], BoolArray]:
    """Numbers from text or numbers; `bad` marks given values that are not finite numbers (bools included)."""
    is_bool = values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    cleaned = values.map(lambda v: v.strip() if isinstance(v, str) else v).astype(object)
    cleaned = cleaned.where(~(null | is_bool), None)
    numbers = np.asarray(pd.to_numeric(cleaned, errors="coerce"), dtype="float64")
    bad = ~null & (is_bool | ~np.isfinite(numbers))
    return numbers, bad


def _to_integer(values: pd.Series) -> tuple[pd.Series, BoolArray]:
    null = _null_mask(values)
    numbers, bad = _numbers(values, null)
    with np.errstate(invalid="ignore"):
        bad |= ~null & ~bad & (numbers != np.round(numbers))
    keep = ~null & ~bad
    out = pd.Series(pd.array([None] * len(values), dtype="Int64"), index=values.index)
    out[keep] = numbers[keep].astype("int64")
    return out, bad


def _to_float(values: pd.Series) -> tuple[pd.Series, BoolArray]:
    null = _null_mask(values)
    numbers, bad = _numbers(values, null)
    return pd.Series(np.where(null | bad, np.nan, numbers), index=values.index, dtype="float64"), bad


def _bool_value(value: object) -> bool | None:
    """True/False, or None when the value means neither (the caller tells blank from unparseable)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _to_boolean(values: pd.Series) -> tuple[pd.Series, BoolArray]:
    null = _null_mask(values)
    parsed = [None if n else _bool_value(v) for v, n in zip(values, null, strict=True)]
    bad = ~null & np.array([p is None for p in parsed], dtype=bool)
    return pd.Series(pd.array(parsed, dtype="boolean"), index=values.index), bad


_COERCE: dict[str, Callable[[pd.Series], tuple[pd.Series, BoolArray]]] = {
    "string": _to_string,
    "integer": _to_integer,
    "float": _to_float,
    "boolean": _to_boolean,
}
_TYPE_WORD = {"string": "text", "integer": "a whole number", "float": "a number", "boolean": "true/false (是/否)"}


def _check_values(values: pd.Series, fdef: FieldDef, findings: _Findings) -> None:
    """Rules on coerced, present values: allowed list, range, length, control characters."""
    present = values.notna().to_numpy(dtype=bool)
    name = fdef.name
    if fdef.allowed is not None:
        allowed = ", ".join(str(a) for a in fdef.allowed)
        outside = present & ~values.isin(list(fdef.allowed)).to_numpy(dtype=bool)
        findings.add_rows(
            np.flatnonzero(outside), lambda i: f"{_quote(values[i])} is not allowed; allowed: {allowed}", name
        )
    if fdef.type in ("integer", "float"):
        numbers = values.astype("float64").to_numpy(na_value=np.nan)
        if fdef.minimum is not None:
            low = present & (numbers < fdef.minimum)
            findings.add_rows(np.flatnonzero(low), lambda i: f"{values[i]} is below the minimum {fdef.minimum}", name)
        if fdef.maximum is not None:
            high = present & (numbers > fdef.maximum)
            findings.add_rows(np.flatnonzero(high), lambda i: f"{values[i]} is above the maximum {fdef.maximum}", name)
    if fdef.type == "string":
        text = values.where(present, "").astype(str)
        if fdef.max_length is not None:
            lengths = text.str.len().to_numpy()
            long = np.flatnonzero(lengths > fdef.max_length)
            findings.add_rows(
                long, lambda i: f"{lengths[i]} characters, longer than the maximum {fdef.max_length}", name
            )
        control = np.flatnonzero(text.str.contains(_CONTROL).to_numpy(dtype=bool))
        findings.add_rows(
            control, lambda i: f"contains a control character in {_quote(values[i])} (only tab and newline)", name
        )


def _coerce_field(raw: pd.Series, fdef: FieldDef, present: bool, findings: _Findings) -> pd.Series:
    values, bad = _COERCE[fdef.type](raw)
    word = _TYPE_WORD[fdef.type]
    findings.add_rows(np.flatnonzero(bad), lambda i: f"{_quote(raw[i])} is not {word}", fdef.name)
    if present and fdef.required:
        missing = np.flatnonzero(values.isna().to_numpy(dtype=bool) & ~bad)
        findings.add_rows(missing, lambda i: "required value is missing", fdef.name)
    _check_values(values, fdef, findings)
    return values


def _coerce_fields(
    frame: gpd.GeoDataFrame, layer: LayerDef, matched: dict[str, str], findings: _Findings
) -> dict[str, pd.Series]:
    """Every catalogue field, typed; a missing required column is one problem, not one per feature."""
    out: dict[str, pd.Series] = {}
    for fdef in layer.fields:
        column = matched.get(fdef.name)
        if column is None:
            if fdef.required:
                findings.add(None, "required column is missing", fdef.name)
            raw = pd.Series([None] * len(frame), dtype=object)
        else:
            raw = frame[column].astype(object).reset_index(drop=True)
        out[fdef.name] = _coerce_field(raw, fdef, column is not None, findings)
    return out


# --------------------------------------------------------------------------------------------- identities


def _labels(frame: gpd.GeoDataFrame, layer: LayerDef, matched: dict[str, str]) -> tuple[list[str], pd.Series]:
    """How problems name each feature: its id when it has one ('P-001', or 'P-001 (#7)' when the id repeats)."""
    rows = [f"#{i + 1}" for i in range(len(frame))]
    column = matched.get(layer.id_field) if layer.id_field else None
    if column is None:
        return rows, pd.Series([None] * len(frame), dtype=object)
    ids, _ = _to_string(frame[column].astype(object).reset_index(drop=True))
    repeated = ids.duplicated(keep=False).to_numpy(dtype=bool) & ids.notna().to_numpy(dtype=bool)
    labels = [
        row if ident is None else (f"{ident} ({row})" if rep else str(ident))
        for row, ident, rep in zip(rows, ids, repeated, strict=True)
    ]
    return labels, ids


def _check_ids(ids: pd.Series, id_field: str, existing: set[str] | None, findings: _Findings) -> None:
    present = ids.notna()
    for row in np.flatnonzero(present.to_numpy(dtype=bool)):
        hidden = invisible_characters(str(ids[row]))
        if hidden:
            findings.add(
                int(row),
                f"id {_quote(ids[row])} holds invisible or control characters ({', '.join(hidden)}); type it again",
                id_field,
            )
    first_row: dict[str, int] = {}
    for row in np.flatnonzero((ids.duplicated(keep=False) & present).to_numpy(dtype=bool)):
        ident = str(ids[row])
        if ident in first_row:
            findings.add(int(row), f"duplicate id {_quote(ident)} (first used by #{first_row[ident] + 1})", id_field)
        else:
            first_row[ident] = int(row)
    if existing:
        clash = present & ids.map(lambda v: v is not None and str(v) in existing)
        findings.add_rows(
            np.flatnonzero(clash.to_numpy(dtype=bool)),
            lambda i: f"id {_quote(ids[i])} already exists in the layer",
            id_field,
        )


# --------------------------------------------------------------------------------------------- geometry


def _flatten(geoms: GeomArray, rows: NDArray[np.intp]) -> tuple[GeomArray, NDArray[np.intp]]:
    """All single-part geometries inside `geoms` (through multi-parts and collections), with their rows."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    owners = rows[index]
    while True:
        nested = np.isin(shapely.get_type_id(parts), _NESTED)
        if not nested.any():
            break
        inner, inner_index = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], inner])
        owners = np.concatenate([owners[~nested], owners[nested][inner_index]])
        order = np.argsort(owners, kind="stable")
        parts, owners = parts[order], owners[order]
    return np.asarray(parts, dtype=object), owners


def _regroup(geoms: GeomArray, target: GeometryType) -> GeomArray:
    """Rebuild each geometry as the layer's multi-type from its parts of the right kind; None when none is left.

    Polygon -> MultiPolygon and LineString -> MultiLineString are promotions; for a make_valid result this
    also drops the collapsed parts of lower dimension (a polygon's stray lines and points).
    """
    out = np.full(len(geoms), None, dtype=object)
    parts, owners = _flatten(geoms, np.arange(len(geoms)))
    keep = np.isin(shapely.get_type_id(parts), _PART_TYPES[target]) & ~shapely.is_empty(parts)
    parts, owners = parts[keep], owners[keep]
    for i in np.flatnonzero(shapely.get_type_id(parts) == _RING):
        parts[i] = shapely.LineString(parts[i].coords)  # a closed line, as MultiLineString wants
    builder: Callable[..., Any] = shapely.multilinestrings if target == "MultiLineString" else shapely.multipolygons
    if len(parts):
        builder(parts, indices=owners, out=out)
    return out


def _type_problems(geoms: GeomArray, target: GeometryType) -> list[tuple[int, str]]:
    """Rows whose geometry cannot be read as the layer's type, with the reason."""
    type_ids = shapely.get_type_id(geoms)
    found: list[tuple[int, str]] = []
    if target == "Point":
        counts = shapely.get_num_geometries(geoms)
        for row in np.flatnonzero((type_ids != _POINT) & (type_ids != -1)):
            if type_ids[row] == _MPOINT and counts[row] == 1:
                continue
            what = f"MultiPoint of {counts[row]} points" if type_ids[row] == _MPOINT else geoms[row].geom_type
            found.append((int(row), f"wrong geometry type: {what}, expected a single Point"))
        return found
    accepted = (-1, *_PART_TYPES[target], _MLINE if target == "MultiLineString" else _MPOLYGON)  # -1: None
    for row in np.flatnonzero(~np.isin(type_ids, accepted)):
        if type_ids[row] == _COLLECTION:
            parts, _ = _flatten(geoms[row : row + 1], np.zeros(1, dtype=np.intp))
            if np.isin(shapely.get_type_id(parts), _PART_TYPES[target]).all():
                continue
        found.append((int(row), f"wrong geometry type: {geoms[row].geom_type}, expected {target}"))
    return found


def _promote(geoms: GeomArray, target: GeometryType) -> GeomArray:
    if target == "Point":
        single = shapely.get_type_id(geoms) == _MPOINT
        out = geoms.copy()
        out[single] = shapely.get_geometry(geoms[single], 0)
        return out
    return _regroup(geoms, target)


def _measure_text(geom: shapely.Geometry, target: GeometryType) -> str:
    metric = gpd.GeoSeries([geom], crs=STORE_CRS).to_crs(METRIC_CRS).iloc[0]
    parts = shapely.get_num_geometries(geom)
    if target == "MultiPolygon":
        return f"{parts} part(s), {metric.area:,.0f} m²"
    return f"{parts} part(s), {metric.length:,.0f} m"


def _repair(
    geoms: GeomArray, rows: NDArray[np.intp], target: GeometryType, strict: bool, findings: _Findings
) -> tuple[GeomArray, list[Problem]]:
    """Invalid geometries: a problem when strict, else make_valid keeping the layer's dimension."""
    reasons = shapely.is_valid_reason(geoms[rows])
    if strict:
        for row, reason in zip(rows, reasons, strict=True):
            findings.add(int(row), f"invalid geometry: {reason}", "geometry")
        return geoms, []
    fixed = _regroup(np.asarray(shapely.make_valid(geoms[rows]), dtype=object), target)
    out = geoms.copy()
    repairs: list[Problem] = []
    kind = _KIND_WORD[target]
    for row, reason, geom in zip(rows, reasons, fixed, strict=True):
        if geom is None:
            findings.add(int(row), f"invalid geometry ({reason}); repair left no {kind} parts", "geometry")
            continue
        out[row] = geom
        message = f"invalid geometry ({reason}) repaired with make_valid; kept {_measure_text(geom, target)}"
        repairs.append(Problem(message, findings.labels[row], "geometry"))
    return out, repairs


def _check_geometry(
    geoms: GeomArray, target: GeometryType, strict: bool, findings: _Findings
) -> tuple[GeomArray, BoolArray, list[Problem]]:
    """Geometries shaped to the layer type, which rows hold a usable one, and the repairs made."""
    geoms = np.asarray(shapely.force_2d(geoms), dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    findings.add_rows(np.flatnonzero(missing), lambda i: "geometry is null or empty", "geometry")
    usable = ~missing
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    non_finite = np.unique(owner[~np.isfinite(coords).all(axis=1)])
    findings.add_rows(non_finite, lambda i: "coordinates are not finite numbers", "geometry")
    usable[non_finite] = False
    candidates = geoms.copy()
    candidates[~usable] = None
    for row, message in _type_problems(candidates, target):
        findings.add(row, message, "geometry")
        usable[row] = False
    shaped = np.full(len(geoms), None, dtype=object)
    shaped[usable] = _promote(geoms[usable], target)
    invalid = np.flatnonzero(usable & ~shapely.is_valid(shaped))
    if not len(invalid):
        return shaped, usable, []
    shaped, repairs = _repair(shaped, invalid, target, strict, findings)
    usable &= ~shapely.is_missing(shaped)
    if strict:
        usable[invalid] = False
    return shaped, usable, repairs


# --------------------------------------------------------------------------------------------- district


def _copy_prepared(geom: shapely.Geometry) -> shapely.Geometry:
    """A prepared copy, so the caller's district object is left as it was given."""
    copy = shapely.from_wkb(shapely.to_wkb(geom))
    shapely.prepare(copy)
    return copy


def _share_near(district: shapely.Geometry, geoms: GeomArray, tolerance_deg: float = 0.002) -> float:
    near = _copy_prepared(shapely.buffer(district, tolerance_deg))
    return float(np.mean(shapely.intersects(near, geoms)))


def _distance_km(district: shapely.Geometry, geoms: GeomArray) -> float:
    a = shapely.centroid(district)
    b = shapely.centroid(shapely.union_all(shapely.envelope(geoms)))
    _, _, metres = Geod(ellps="GRS80").inv(a.x, a.y, b.x, b.y)
    return float(metres) / 1000.0


def _all_outside_hint(district: shapely.Geometry, geoms: GeomArray) -> str:
    """Why every feature missed the district: GCJ-02 offsets and swapped axes are the usual culprits."""
    base = f"none of the {len(geoms)} feature(s) lies in the district: the coordinate system is probably wrong"
    if _share_near(district, geometries_gcj02_to_wgs84(geoms)) >= 0.5:
        return f"{base}; shifted from GCJ-02 they fall on the district, so it looks like GCJ-02: pass --crs gcj02"
    swapped = np.asarray(shapely.transform(geoms, lambda c: c[:, ::-1]), dtype=object)
    if _share_near(district, swapped) >= 0.5:
        return f"{base}; with x and y swapped they fall on the district: longitude and latitude look swapped"
    return f"{base} (their centre is {_distance_km(district, geoms):,.0f} km from the district's)"


def _check_district(geoms: GeomArray, usable: BoolArray, district: shapely.Geometry, findings: _Findings) -> None:
    rows = np.flatnonzero(usable)
    if not len(rows):
        return
    inside = shapely.intersects(_copy_prepared(district), geoms[rows])
    outside = rows[~inside]
    findings.add_rows(outside, lambda i: "lies outside the district", "geometry")
    if len(outside) == len(rows):
        findings.add(None, _all_outside_hint(district, geoms[rows]))


# --------------------------------------------------------------------------------------------- entry point


def _in_store_crs(frame: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise CRSError(f"{source}: the data has no coordinate system; read it with geoplan.io.read_file")
    if is_lonlat_wgs84_family(frame.crs):
        return frame  # WGS84 lon/lat is CGCS2000 at map scale
    return frame.to_crs(STORE_CRS)


def validate(
    frame: gpd.GeoDataFrame,
    layer: LayerDef,
    *,
    source: str,
    district: shapely.Geometry | None = None,
    existing_ids: set[str] | None = None,
    strict: bool = False,
    refuse_unknown: bool = False,
) -> ValidationResult:
    """Check `frame` against `layer` and return a new frame shaped for the store, or raise ValidationFailed.

    `district` (EPSG:4490) is checked only for layers that must lie in it; `existing_ids` are the ids already
    stored (append mode). With `strict`, invalid geometries are problems instead of repairs. Columns the layer
    does not define are dropped with a warning, or (`refuse_unknown`, for the API's GeoJSON properties) refused.
    """
    if layer.kind != "vector" or layer.geometry is None:
        raise InputError(f"{source}: layer '{layer.name}' is a {layer.kind} layer, not a vector one")
    data = _in_store_crs(frame, source)
    matched, extras = _match_columns(data, layer)
    labels, ids = _labels(data, layer, matched)
    findings = _Findings(labels)
    values = _coerce_fields(data, layer, matched, findings)
    if layer.id_field is not None:
        _check_ids(ids, layer.id_field, existing_ids, findings)
    if refuse_unknown and extras:
        known = ", ".join(layer.field_names)
        findings.add(None, f"unknown properties {', '.join(map(_quote, extras))}; layer '{layer.name}' has: {known}")
    raw_geoms = np.asarray(data.geometry.to_numpy(), dtype=object)
    geoms, usable, repairs = _check_geometry(raw_geoms, layer.geometry, strict, findings)
    if district is not None and layer.must_lie_in_district:
        _check_district(geoms, usable, district, findings)
    if findings:
        problems = findings.sorted()
        log.info("%s: %d problem(s) for layer %s", source, len(problems), layer.name)
        titles = {f.name: f.title_zh for f in layer.fields if f.title_zh}
        raise ValidationFailed(source, problems, titles=titles)
    warnings = [Problem(f"ignored column(s) not in the catalogue: {', '.join(extras)}")] if extras else []
    out = gpd.GeoDataFrame(values, geometry=gpd.GeoSeries(geoms, crs=STORE_CRS), crs=STORE_CRS)
    return ValidationResult(frame=out, repairs=repairs, warnings=warnings)
