"""Part 3 queryables: the properties a caller may filter, sort and select on, as a JSON Schema.

Anonymous callers get the public fields only, token holders the fields of their role: the same rule as the
items themselves (geoplan.access), so a private field is neither listed nor accepted in a filter.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from geoplan.access import visible_fields
from geoplan.catalog import FieldDef, LayerDef
from geoplan.cql2 import GEOMETRY
from web.deps import CallerDep, CatalogDep, SettingsDep, visible_vector_layer
from web.ogc.common import CACHE_HEADERS, SCHEMA_JSON
from web.ogc.links import ogc_base

router = APIRouter(prefix="/ogc")

_JSON_TYPES = {"string": "string", "integer": "integer", "float": "number", "boolean": "boolean"}
_GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPolygon": "geometry-multipolygon"}


def queryable_types(layer: LayerDef, fields: list[str]) -> dict[str, str]:
    """Name -> field type for each queryable, `geometry` included (geoplan.cql2 checks filters against it)."""
    types = {f.name: f.type for f in layer.fields if f.name in fields}
    return {**types, GEOMETRY: "geometry"}


def _property(field: FieldDef) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": field.title_zh or field.name, "type": _JSON_TYPES[field.type]}
    if field.allowed:
        schema["enum"] = list(field.allowed)
    if field.max_length is not None and field.type == "string":
        schema["maxLength"] = field.max_length
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    return schema


def queryables_schema(layer: LayerDef, fields: list[str], href: str) -> dict[str, Any]:
    geometry_format = _GEOMETRY_FORMATS.get(layer.geometry or "", "geometry-multilinestring")
    properties: dict[str, Any] = {
        GEOMETRY: {"title": "几何 Geometry", "format": geometry_format, "x-ogc-role": "primary-geometry"}
    }
    properties |= {f.name: _property(f) for f in layer.fields if f.name in fields}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": href,
        "type": "object",
        "title": f"{layer.title_zh} {layer.title_en}",
        "properties": properties,
        "additionalProperties": False,
    }


@router.get("/collections/{collection_id}/queryables", summary="Properties this caller may filter on")
def queryables(
    collection_id: str, request: Request, catalog: CatalogDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    href = f"{ogc_base(request, settings)}/collections/{layer.name}/queryables"
    schema = queryables_schema(layer, visible_fields(layer, caller.role), href)
    return Response(json.dumps(schema, ensure_ascii=False), media_type=SCHEMA_JSON, headers=CACHE_HEADERS)
