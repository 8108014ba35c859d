"""A column map: how a facility list's own columns and words become a catalogue layer's fields and values.

Real lists come as Excel sheets (or CSV) with their own headers (序号, 设施名称, 类别, 经度, 纬度, 地址) and their own
names for categories (综合文化站 for the catalogue's 文化站). The map is a small YAML file the user writes once:

    sheet: 文化设施            # optional: the worksheet (default: the first)
    header_row: 2              # optional: the 1-based row of the headers (titles above it are skipped)
    columns: {facility_id: 序号, name: 设施名称, kind: 类别, lon: 经度, lat: 纬度, address: 地址}
    values:
      kind: {综合文化站: 文化站, 农家书屋(点): 农家书屋}
    id_prefix: CF-             # optional: put before ids that are bare numbers

`columns` maps a catalogue field, or `lon`/`lat`/`wkt` (the geometry) or `address` (only checked: geoplan does
not geocode), to a header. Only mapped columns are read. Every mistake (an unknown field, a header the sheet
lacks, a value that is neither allowed nor mapped, a row without coordinates) is reported at once, with the
row numbers the user sees in Excel, before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geoplan.catalog import LayerDef
from geoplan.errors import InputError, Problem, ValidationFailed
from geoplan.user_yaml import read_user_yaml

MAX_MAP_BYTES = 64 * 1024
GEOMETRY_KEYS = ("lon", "lat", "wkt")
ADDRESS = "address"
_KEYS = frozenset({"sheet", "header_row", "columns", "values", "id_prefix"})


@dataclass(frozen=True)
class ColumnMap:
    """A parsed, checked column map for one layer."""

    layer: LayerDef
    columns: dict[str, str]
    """Catalogue field (or lon/lat/wkt/address) → the sheet's header."""
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    """Catalogue field → {the sheet's word: the catalogue's value}."""
    sheet: str | None = None
    header_row: int = 1
    id_prefix: str = ""

    def prepare(self, name: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
        """The reader's table step for the file shown as `name` (see `geoplan.io.readers.TablePrep`)."""
        return lambda table: apply_map(self, table, name)


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def load_column_map(path: Path, layer: LayerDef) -> ColumnMap:
    """Read and check a column map for `layer`; InputError naming every mistake in it."""
    raw, _ = read_user_yaml(path, what="column map", max_bytes=MAX_MAP_BYTES)
    name = Path(path).name
    if not isinstance(raw, dict):
        raise InputError(f"{name}: a column map is a mapping with `columns:` (and optionally sheet, values, …)")
    problems = [f"unknown key {key!r} (known: {', '.join(sorted(_KEYS))})" for key in raw if key not in _KEYS]
    columns = _columns(raw.get("columns"), layer, problems)
    values = _values(raw.get("values") or {}, layer, columns, problems)
    header_row = raw.get("header_row", 1)
    if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
        problems.append(f"header_row must be a row number (1, 2, …), not {header_row!r}")
    sheet = raw.get("sheet")
    if sheet is not None and not isinstance(sheet, (str, int)):
        problems.append(f"sheet must be a worksheet name, not {sheet!r}")
    prefix = raw.get("id_prefix") or ""
    if prefix and (not isinstance(prefix, str) or layer.id_field is None):
        problems.append(f"id_prefix must be text, for a layer with an id field ({layer.name} id: {layer.id_field})")
    if problems:
        raise InputError(f"{name}: column map for {layer.name}: " + "; ".join(problems))
    return ColumnMap(layer, columns, values, None if sheet is None else str(sheet), header_row, str(prefix))


def _columns(raw: Any, layer: LayerDef, problems: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        problems.append("`columns:` must map catalogue fields to the sheet's headers, e.g. {name: 设施名称}")
        return {}
    known = [*layer.field_names, *GEOMETRY_KEYS, ADDRESS]
    unknown = [str(k) for k in raw if k not in known]
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}; {layer.name} has: {', '.join(known)}")
    empty = [str(k) for k, v in raw.items() if v is None or not _text(v)]
    if empty:
        problems.append(f"no header given for {', '.join(empty)}")
    columns = {str(k): _text(v) for k, v in raw.items() if k in known and k not in empty}
    if not ("lon" in columns and "lat" in columns) and "wkt" not in columns:
        problems.append("map the coordinates: lon and lat (e.g. lon: 经度, lat: 纬度), or wkt")
    missing = [f for f in layer.required_fields if f not in columns]
    if missing:
        problems.append(f"required field(s) not mapped: {', '.join(missing)}")
    return columns


def _values(raw: Any, layer: LayerDef, columns: Mapping[str, str], problems: list[str]) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        problems.append("`values:` must map a field to {the sheet's word: the catalogue's value}")
        return {}
    out: dict[str, dict[str, str]] = {}
    for fname, synonyms in raw.items():
        if fname not in layer.field_names or fname not in columns:
            problems.append(f"values: {fname!r} is not a mapped field of {layer.name}")
            continue
        if not isinstance(synonyms, dict):
            problems.append(f"values.{fname} must be a mapping {{the sheet's word: the catalogue's value}}")
            continue
        allowed = layer.field(fname).allowed
        targets = {_text(k): _text(v) for k, v in synonyms.items()}
        wrong = sorted({v for v in targets.values() if allowed is not None and v not in _allowed_texts(allowed)})
        if wrong and allowed is not None:
            problems.append(
                f"values.{fname}: {', '.join(wrong)} not allowed for {fname}; allowed: {', '.join(map(str, allowed))}"
            )
        out[str(fname)] = targets
    return out


def _allowed_texts(allowed: tuple[Any, ...]) -> set[str]:
    return {_text(a) for a in allowed}


def _rows(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:12])
    return f"row {shown}" if len(numbers) == 1 else f"rows {shown}" + (" …" if len(numbers) > 12 else "")


def _id_text(value: Any, prefix: str) -> Any:
    """A bare number from Excel (7 or 7.0) becomes 'CF-7'; an id that is already text with the prefix stays."""
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text if text.startswith(prefix) else prefix + text


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _coordinate_problems(table: pd.DataFrame, cmap: ColumnMap) -> list[Problem]:
    """Rows whose lon/lat are blank (with the address hint) or not numbers, by their row numbers."""
    if "lon" not in cmap.columns:
        return []
    lon, lat = table["lon"], table["lat"]
    problems: list[Problem] = []
    blank = [int(n) for n in table.index[lon.isna() | lat.isna()]]
    if blank:
        has_address = ADDRESS in table.columns and bool(table.loc[blank, ADDRESS].notna().any())
        hint = " (they give an address only)" if has_address else ""
        problems.append(
            Problem(
                f"{_rows(blank)}: no coordinates{hint}; geoplan does not geocode addresses offline — add "
                f"{cmap.columns['lon']}/{cmap.columns['lat']} (longitude/latitude, e.g. from an AMap pick-point) "
                "to these rows, or leave them out"
            )
        )
    for key in ("lon", "lat"):
        values = table[key]
        for n, v in values.items():
            if v is not None and _number(v) is None:
                problems.append(Problem(f"{v!r} is not a number", feature=f"row {n}", field=cmap.columns[key]))
    return problems


def _value_problems(table: pd.DataFrame, cmap: ColumnMap) -> tuple[pd.DataFrame, list[Problem]]:
    """Map each field's synonyms to the catalogue's values; values neither allowed nor mapped are problems."""
    problems: list[Problem] = []
    out = table.copy()
    for fname in table.columns:
        if fname not in cmap.layer.field_names:
            continue
        synonyms = cmap.values.get(fname, {})
        allowed = cmap.layer.field(fname).allowed
        if not synonyms and allowed is None:
            continue
        mapped = out[fname].map(lambda v, s=synonyms: v if v is None else s.get(_text(v), v))
        out[fname] = mapped
        if allowed is None:
            continue
        texts = _allowed_texts(allowed)
        wrong: dict[str, list[int]] = {}
        for n, v in zip(mapped.index, mapped, strict=True):
            if v is not None and _text(v) not in texts:
                wrong.setdefault(_text(v), []).append(int(n))
        # '文化站 ' with a stray space is the allowed 文化站: hand validation the catalogue's spelling.
        out[fname] = mapped.map(lambda v, t=texts: v if v is None or _text(v) not in t else _text(v))
        for value, numbers in wrong.items():
            problems.append(
                Problem(
                    f"{_rows(numbers)}: {value!r} is not allowed and has no mapping under values.{fname}; "
                    f"allowed: {', '.join(map(str, allowed))}",
                    field=cmap.columns[fname],
                )
            )
    return out, problems


def apply_map(cmap: ColumnMap, table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The table with the mapped columns under their catalogue names, values mapped and ids prefixed.

    `table` is indexed by the user's row numbers (the reader's numbering); ValidationFailed names every problem.
    """
    headers = {_text(c): c for c in table.columns}
    absent = [f"{h} (for {f})" for f, h in cmap.columns.items() if h not in headers]
    if absent:
        found = ", ".join(str(c) for c in table.columns)[:300]
        raise InputError(f"{name}: header(s) not in the sheet: {', '.join(absent)}; its headers are: {found}")
    out = pd.DataFrame({f: table[headers[h]] for f, h in cmap.columns.items()}, index=table.index)
    problems = _coordinate_problems(out, cmap)
    out, value_problems = _value_problems(out, cmap)
    problems += value_problems
    if problems:
        raise ValidationFailed(name, problems)
    if cmap.id_prefix and cmap.layer.id_field in out.columns:
        id_field = cmap.layer.id_field
        out[id_field] = out[id_field].map(lambda v: _id_text(v, cmap.id_prefix))
    if ADDRESS in out.columns and ADDRESS not in cmap.layer.field_names:
        out = out.drop(columns=[ADDRESS])  # only checked: the layer keeps no address
    return out
