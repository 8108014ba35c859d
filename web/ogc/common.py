"""What every OGC API module (Features, Tiles) shares: media types, conformance, the visible-layer check,
format negotiation."""

from __future__ import annotations

from fastapi import HTTPException, Request

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
HTML = "text/html"
MVT = "application/vnd.mapbox-vector-tile"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
TILING_SCHEMES_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
VECTOR_TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"

_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
_PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    f"{_PART3}queryables",
    f"{_PART3}queryables-query-parameters",
    f"{_PART3}filter",
    f"{_PART3}features-filter",
    f"{_CQL2}cql2-text",
    f"{_CQL2}cql2-json",
    f"{_CQL2}basic-cql2",
    f"{_CQL2}advanced-comparison-operators",
    f"{_CQL2}case-insensitive-comparison",
    f"{_CQL2}basic-spatial-functions",
    f"{_CQL2}basic-spatial-operators",  # the draft name newer QGIS checks before pushing spatial filters down
    f"{_TILES}core",
    f"{_TILES}tileset",
    f"{_TILES}tilesets-list",
    f"{_TILES}geodata-tilesets",
    f"{_TILES}mvt",
    f"{_TILES}oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]

# Cached per caller's role (the token), revalidated every time: the data can change at any write.
CACHE_HEADERS = {"Cache-Control": "no-cache", "Vary": "Authorization, Accept"}


def _quality(accept: str, media_type: str) -> float:
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name.lower() == media_type:
            for param in params:
                key, _, value = param.partition("=")
                if key.strip() == "q":
                    try:
                        return float(value)
                    except ValueError:
                        return 0.0
            return 1.0
    return 0.0


def wants_html(request: Request) -> bool:
    """`f=html`, or an Accept header naming text/html ahead of every JSON type it names. `*/*` (OWSLib) and
    application/json (GDAL, QGIS) get JSON: clients keep the default."""
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("html", "json"):
            raise HTTPException(400, "f must be json or html")
        return f == "html"
    accept = request.headers.get("accept", "")
    html = _quality(accept, HTML)
    return html > 0 and all(html >= _quality(accept, t) for t in (JSON, GEOJSON, SCHEMA_JSON))
