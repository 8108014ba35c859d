"""A checked CQL2 AST (geoplan.cql2) as a bound SQLAlchemy expression over a layer table.

pygeofilter's SQLAlchemy backend keeps every literal a bound parameter. Two fixes: geometry literals arrive
already in stored lon/lat (`parse_filter` moved them) and must carry the column's SRID, not the backend's fixed
4326; a name that is not mapped must raise instead of silently becoming a Python value; and numbers are bound
with their own type, so `start_year > 2018.5` means what it says, and strings order by code point (both as in
the frame evaluator).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import shapely
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import handle
from pygeofilter.backends.sqlalchemy import filters
from pygeofilter.backends.sqlalchemy.evaluate import SQLAlchemyFilterEvaluator
from sqlalchemy import BigInteger, Float, String, func, literal
from sqlalchemy.sql.elements import ColumnElement

from geoplan.cql2 import Node


class _Evaluator(SQLAlchemyFilterEvaluator):
    def __init__(self, field_mapping: Mapping[str, Any], srid: int) -> None:
        super().__init__(dict(field_mapping), undefined_as_null=False)
        self.srid = srid

    @handle(ast.Comparison, subclasses=True)
    def comparison(self, node: Any, lhs: Any, rhs: Any) -> Any:
        if node.op.value in ("<", "<=", ">", ">="):
            lhs, rhs = _codepoint_order(lhs), _codepoint_order(rhs)
        return filters.runop(lhs, rhs, node.op.value)

    @handle(ast.Between)
    def between(self, node: Any, lhs: Any, low: Any, high: Any) -> Any:
        return filters.between(_codepoint_order(lhs), low, high, node.not_)

    @handle(*values.LITERALS)
    def literal(self, node: Any) -> Any:
        # Bound with their own type, not the column's: an INTEGER column would cast 2018.5 to 2019.
        if isinstance(node, bool):
            return node
        if isinstance(node, int):
            return literal(node, BigInteger)
        if isinstance(node, float):
            return literal(node, Float)
        return node

    @handle(values.Geometry)
    def geometry(self, node: values.Geometry) -> Any:
        return func.ST_GeomFromText(shapely.geometry.shape(node.geometry).wkt, self.srid)


def _codepoint_order(operand: Any) -> Any:
    """Strings ordered by code point (COLLATE "C"), as Python orders them on the GeoPackage path; a database
    created with a language collation (en_US and the like) would order 'park' before 'Park'."""
    if isinstance(getattr(operand, "type", None), String):
        return operand.collate("C")
    return operand


def to_sql(node: Node, field_mapping: Mapping[str, Any], *, srid: int) -> ColumnElement[bool]:
    """The WHERE clause of `node`; `field_mapping` maps each queryable (and `geometry`) to a column."""
    expression: ColumnElement[bool] = _Evaluator(field_mapping, srid).evaluate(node)
    return expression
