"""CQL2 filters (OGC API – Features Part 3): parse, check against the caller's queryables, evaluate on a frame.

cql2-text is read by the `cql2` package (the standard's grammar) into cql2-json; pygeofilter builds the
one AST from cql2-json. Before anything runs, `parse_filter` walks that AST once and
refuses what this server does not implement or the caller may not query: a property that is not a queryable
for this caller (a private field reads as unknown, so its existence is not revealed), a type mismatch that a
database would only report as an error, temporal and array operators. Geometry literals are moved into the
stored CRS by the caller's transform, so both evaluators compare like with like.

Two evaluators, one semantics (SQL's three-valued logic, NULL is neither true nor false): PostGIS compiles the
AST into bound SQL (`geoplan.storage.postgis_filter`); `frame_mask` evaluates it vectorised on a frame with
pandas' nullable booleans, which follow the same Kleene logic. pygeofilter's own native backend builds Python
source with eval(): never used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import cql2
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json

from geoplan.errors import InputError

GEOMETRY = "geometry"
"""The queryable name of a layer's geometry."""
FILTER_LANGS = ["cql2-text", "cql2-json"]
Node = Any  # pygeofilter's AST is untyped
CoordinateFunction = Callable[[np.ndarray], np.ndarray]

_NUMERIC = ("integer", "float")
_COMPARISONS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def parse_filter(
    text: str, *, lang: str, queryables: Mapping[str, str], to_storage: CoordinateFunction | None = None
) -> Node:
    """The checked AST of a filter. `queryables` maps each name the caller may query to its field type
    (`string`, `integer`, `float`, `boolean`, or `geometry`); `to_storage` moves literal coordinates from the
    filter's CRS (`filter-crs`) into stored lon/lat. Raises InputError with a message the caller can act on."""
    if lang not in FILTER_LANGS:
        raise InputError(f"filter-lang must be one of {', '.join(FILTER_LANGS)}")
    try:
        document = _text_as_json(text) if lang == "cql2-text" else json.loads(text)
        node = parse_json(_for_pygeofilter(document))
    except (cql2.ParseError, cql2.ValidationError) as exc:
        raise InputError(f"cannot parse the {lang} filter: {_first_line(exc)}") from None
    except Exception as exc:  # pygeofilter's JSON walker fails with any exception type on odd input
        raise InputError(f"cannot parse the {lang} filter: {_first_line(exc)}") from None
    try:
        return _Checker(queryables, to_storage).predicate(node)
    except InputError:
        raise
    except Exception as exc:  # a tree shape the parser let through that the checker cannot use
        raise InputError(f"unsupported filter: {_first_line(exc)}") from None


def _text_as_json(text: str) -> Any:
    """cql2-text as cql2-json, by the `cql2` package (the standard's grammar). pygeofilter 0.4's own text
    grammar refuses valid CQL2: NOT over AND/OR, one-letter names, the '' escape in strings."""
    return cql2.parse_text(text).to_json()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _for_pygeofilter(node: Any) -> Any:
    """cql2-json in the shapes pygeofilter 0.4 reads right: BETWEEN as the draft [x, [lo, hi]] (the standard's
    is [x, lo, hi]), and a {"bbox": [minx, miny, maxx, maxy]} as a polygon (pygeofilter's Envelope takes
    x1, x2, y1, y2, so it would swap the middle two)."""
    if isinstance(node, list):
        return [_for_pygeofilter(n) for n in node]
    if not isinstance(node, dict):
        return node
    bbox = node.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
        return shapely.geometry.mapping(shapely.box(*(float(v) for v in bbox)))
    node = {k: _for_pygeofilter(v) for k, v in node.items()}
    args = node.get("args")
    if node.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        node["args"] = [args[0], [args[1], args[2]]]
    return node


class _Checker:
    def __init__(self, queryables: Mapping[str, str], to_storage: CoordinateFunction | None) -> None:
        self.queryables = queryables
        self.to_storage = to_storage

    def predicate(self, node: Node) -> Node:
        if isinstance(node, (ast.And, ast.Or)):
            return type(node)(self.predicate(node.lhs), self.predicate(node.rhs))
        if isinstance(node, ast.Not):
            return ast.Not(self.predicate(node.sub_node))
        if isinstance(node, ast.Comparison):
            kind = self.operand_type(node.lhs, node.rhs)
            if kind == "geometry" or (kind == "boolean" and node.op.value not in ("=", "<>")):
                raise InputError(f"'{node.op.value}' does not apply to {kind} values")
            return type(node)(self.operand(node.lhs), self.operand(node.rhs))
        if isinstance(node, ast.Between):
            kind = self.operand_type(node.lhs, node.low, node.high)
            if kind not in _NUMERIC and kind != "string":
                raise InputError("BETWEEN needs numbers or strings")
            return ast.Between(self.operand(node.lhs), node.low, node.high, node.not_)
        if isinstance(node, ast.Like):
            if self.operand_type(node.lhs, node.pattern) != "string":
                raise InputError("LIKE needs a string property")
            pattern = node.pattern
            if isinstance(pattern, ast.Function):  # CASEI('A%') on the pattern side: a literal, lower-cased
                if not isinstance(pattern.arguments[0], str):
                    raise InputError("the LIKE pattern must be a string literal")
                pattern = pattern.arguments[0].lower()
            # The cql2-text grammar leaves ECQL's '.' as the one-character wildcard; CQL2's is '_'.
            return ast.Like(self.operand(node.lhs), pattern, node.nocase, "%", "_", "\\", node.not_)
        if isinstance(node, ast.In):
            self.operand_type(node.lhs, *node.sub_nodes)
            return ast.In(self.operand(node.lhs), [self.operand(v) for v in node.sub_nodes], node.not_)
        if isinstance(node, ast.IsNull):
            self.operand_type(node.lhs)
            return ast.IsNull(self.operand(node.lhs), node.not_)
        if isinstance(node, ast.GeometryIntersects):
            if self.operand_type(node.lhs) != "geometry":
                raise InputError("S_INTERSECTS needs the geometry property and a geometry literal")
            return ast.GeometryIntersects(node.lhs, self.geometry(node.rhs))
        raise InputError(f"unsupported filter expression: {type(node).__name__}")

    def operand_type(self, *operands: Node) -> str:
        """The one type all operands share; properties must be queryables, literals must match them."""
        kinds = {self._type(o) for o in operands} - {"null"}
        if kinds == {"integer", "float"}:
            kinds = {"float"}
        if len(kinds) > 1:
            raise InputError(f"type mismatch in filter: {' vs '.join(sorted(kinds))}")
        return kinds.pop() if kinds else "null"

    def _type(self, operand: Node) -> str:
        if isinstance(operand, ast.Attribute):
            if operand.name not in self.queryables:
                raise InputError(f"'{operand.name}' is not a queryable of this collection")
            return self.queryables[operand.name]
        if isinstance(operand, ast.Function):
            if operand.name != "lower" or len(operand.arguments) != 1:  # CASEI parses as lower()
                raise InputError(f"unsupported function '{operand.name}'")
            if self._type(operand.arguments[0]) != "string":
                raise InputError("CASEI needs a string")
            return "string"
        if isinstance(operand, bool):
            return "boolean"
        if isinstance(operand, int):
            if not -(2**63) <= operand < 2**63:
                raise InputError(f"integer {operand} is out of range")
            return "integer"
        if isinstance(operand, float):
            return "float"
        if isinstance(operand, str):
            return "string"
        if operand is None:
            return "null"
        if isinstance(operand, (values.Geometry, values.Envelope)):
            return "geometry"
        raise InputError(f"unsupported value in filter: {type(operand).__name__}")

    def operand(self, operand: Node) -> Node:
        return operand

    def geometry(self, node: Node) -> values.Geometry:
        if isinstance(node, ast.Function) and node.name == "bbox" and len(node.arguments) == 4:
            shape = shapely.box(*(float(v) for v in node.arguments))
        elif isinstance(node, values.Envelope):
            shape = shapely.box(node.x1, node.y1, node.x2, node.y2)
        elif isinstance(node, values.Geometry):
            try:
                shape = shapely.geometry.shape(node.geometry)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise InputError(f"invalid geometry literal: {_first_line(exc)}") from None
        else:
            raise InputError("S_INTERSECTS needs a geometry literal (WKT, GeoJSON or BBOX)")
        if self.to_storage is not None:
            shape = shapely.transform(shape, self.to_storage)
        if not shapely.is_valid(shape) and not isinstance(shape, shapely.Point):
            shape = shapely.make_valid(shape)
        return values.Geometry(shapely.geometry.mapping(shape))


# -- the frame evaluator ---------------------------------------------------------------------------------------

Value = Any  # a pandas Series (nullable boolean for predicates) or a scalar


def frame_mask(node: Node, frame: gpd.GeoDataFrame) -> np.ndarray:
    """Rows of `frame` the checked filter selects (unknown counts as not selected, as in SQL's WHERE)."""
    result = _FrameEvaluator(frame).predicate(node)
    return np.asarray(result.fillna(False).to_numpy(dtype=bool))


class _FrameEvaluator:
    def __init__(self, frame: gpd.GeoDataFrame) -> None:
        self.frame = frame
        self.index = frame.index

    def predicate(self, node: Node) -> pd.Series:
        if isinstance(node, ast.And):
            return self.predicate(node.lhs) & self.predicate(node.rhs)
        if isinstance(node, ast.Or):
            return self.predicate(node.lhs) | self.predicate(node.rhs)
        if isinstance(node, ast.Not):
            return ~self.predicate(node.sub_node)
        if isinstance(node, ast.Comparison):
            op = _COMPARISONS[node.op.value]
            return self.compare(self.value(node.lhs), self.value(node.rhs), op)
        if isinstance(node, ast.Between):
            lhs = self.value(node.lhs)
            inside = self.compare(lhs, node.low, "ge") & self.compare(lhs, node.high, "le")
            return ~inside if node.not_ else inside
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            lhs = self.value(node.lhs)
            found = self.boolean(lhs.isin([self.value(v) for v in node.sub_nodes]), lhs.isna())
            return ~found if node.not_ else found
        if isinstance(node, ast.IsNull):
            missing = self.boolean(self.value(node.lhs).isna(), None)
            return ~missing if node.not_ else missing
        if isinstance(node, ast.GeometryIntersects):
            shape = shapely.geometry.shape(node.rhs.geometry)
            hits = shapely.intersects(np.asarray(self.frame.geometry.values, dtype=object), shape)
            return self.boolean(pd.Series(hits, index=self.index), None)
        raise InputError(f"unsupported filter expression: {type(node).__name__}")

    def value(self, node: Node) -> Value:
        if isinstance(node, ast.Attribute):
            column = self.frame[node.name]
            return column.astype(object).where(column.notna(), None)
        if isinstance(node, ast.Function):  # lower(), the only function the checker lets through
            inner = self.value(node.arguments[0])
            return inner.str.lower() if isinstance(inner, pd.Series) else str(inner).lower()
        return node

    def boolean(self, values_: Any, unknown: pd.Series | None) -> pd.Series:
        result = pd.Series(pd.array(np.asarray(values_, dtype=bool), dtype="boolean"), index=self.index)
        if unknown is not None:
            result[np.asarray(unknown, dtype=bool)] = pd.NA
        return result

    def compare(self, lhs: Value, rhs: Value, op: str) -> pd.Series:
        if not isinstance(lhs, pd.Series) and not isinstance(rhs, pd.Series):
            return self.boolean(np.full(len(self.index), getattr(_Scalar(lhs), op)(rhs)), None)
        if not isinstance(lhs, pd.Series):  # literal on the left: flip so the column leads
            lhs, rhs, op = rhs, lhs, {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
        unknown = lhs.isna() | (rhs.isna() if isinstance(rhs, pd.Series) else rhs is None)
        present = lhs.where(~unknown, other=_placeholder(lhs, rhs))
        other = rhs.where(~unknown, other=_placeholder(lhs, rhs)) if isinstance(rhs, pd.Series) else rhs
        return self.boolean(getattr(present, op)(other), unknown)

    def like(self, node: Node) -> pd.Series:
        lhs = self.value(node.lhs)
        regex = _like_regex(node.pattern)
        unknown = lhs.isna()
        text = lhs.where(~unknown, "")
        hits = [
            re.fullmatch(regex, str(v), flags=re.DOTALL | (re.IGNORECASE if node.nocase else 0)) is not None
            for v in text
        ]
        found = self.boolean(hits, unknown)
        return ~found if node.not_ else found


class _Scalar:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, op: str) -> Callable[[Any], bool]:
        return lambda other: bool(getattr(pd.Series([self.value]), op)(other).iloc[0])


def _placeholder(lhs: pd.Series, rhs: Any) -> Any:
    """A value of the column's kind to stand in for NULLs (their result is masked as unknown afterwards)."""
    sample = lhs.dropna()
    if len(sample):
        return sample.iloc[0]
    return rhs.dropna().iloc[0] if isinstance(rhs, pd.Series) and rhs.notna().any() else rhs


def _like_regex(pattern: str) -> str:
    """CQL2 LIKE: '%' any run, '_' one character, '\\' escapes the next character."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)
