"""OGC API – Tiles: Mapbox Vector Tiles of every vector layer the caller may see, in WebMercatorQuad.

A tile is made by the store (PostGIS in SQL, the GeoPackage in process; see geoplan.storage.mvt) with the
caller's visible fields only, the id field among them. Its ETag is the layer version and the field list, so a
client revalidates and gets 304 until the layer changes. A tile without features is 204 No Content. Tile paths
follow the standard: {tileMatrix}/{tileRow}/{tileCol}, that is z/y/x.

An optional CQL2 `filter` (with `filter-lang` and `filter-crs`, the items endpoint's grammar, queryables and
errors) keeps only the features it selects: a map asks each zoom for the classes it draws (the reference basemap's
roads). The store runs it where the data lives (SQL on PostGIS); the ETag covers it with the query string.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geoplan.access import visible_fields
from geoplan.catalog import LayerDef
from geoplan.cql2 import FILTER_LANGS, Node, parse_filter
from geoplan.storage import LayerStore
from geoplan.storage.tile_matrix import HALF_WORLD, MAX_ZOOM, TILE_MATRIX_SET, TileKey
from web.deps import CallerDep, CatalogDep, SettingsDep, StoreDep, visible_vector_layer
from web.etags import etag_headers, not_modified
from web.layer_cache import LayerCache
from web.ogc.common import CACHE_HEADERS, JSON, MVT
from web.ogc.crs import CRS84, check_crs, to_storage
from web.ogc.links import ogc_base
from web.ogc.queryables import queryable_types

router = APIRouter(prefix="/ogc")

TMS_URI = f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{TILE_MATRIX_SET}"
MERCATOR_CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_TILE_PIXELS = 256  # the rendering size the scale denominators assume, as the standard's definition does
_FIELD_TYPES = {"string": "String", "integer": "Number", "float": "Number", "boolean": "Boolean"}


def _tile_matrix_set() -> dict[str, Any]:
    matrices = []
    for z in range(MAX_ZOOM + 1):
        cell = 2 * HALF_WORLD / _TILE_PIXELS / 2**z
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / 0.00028,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD, HALF_WORLD],
                "tileWidth": _TILE_PIXELS,
                "tileHeight": _TILE_PIXELS,
                "matrixWidth": 2**z,
                "matrixHeight": 2**z,
            }
        )
    return {
        "id": TILE_MATRIX_SET,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": MERCATOR_CRS,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


@router.get("/tileMatrixSets", summary="Tiling schemes: WebMercatorQuad")
def tile_matrix_sets(request: Request, settings: SettingsDep) -> Response:
    href = f"{ogc_base(request, settings)}/tileMatrixSets/{TILE_MATRIX_SET}"
    entry = {"id": TILE_MATRIX_SET, "title": "Web Mercator", "uri": TMS_URI, "links": [_link("self", JSON, href)]}
    return JSONResponse({"tileMatrixSets": [entry]}, headers=CACHE_HEADERS)


@router.get("/tileMatrixSets/{tile_matrix_set_id}", summary="One tiling scheme's definition")
def tile_matrix_set(tile_matrix_set_id: str) -> Response:
    _check_set(tile_matrix_set_id)
    return JSONResponse(_tile_matrix_set(), headers=CACHE_HEADERS)


@router.get("/collections/{collection_id}/tiles", summary="The vector tilesets of a collection")
async def tilesets(
    collection_id: str, request: Request, catalog: CatalogDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    href = f"{ogc_base(request, settings)}/collections/{layer.name}/tiles"
    entry = {
        "title": f"{layer.title_zh} {layer.title_en}",
        "dataType": "vector",
        "crs": MERCATOR_CRS,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            _link("self", JSON, f"{href}/{TILE_MATRIX_SET}"),
            _link(TILING_SCHEME_REL, JSON, f"{ogc_base(request, settings)}/tileMatrixSets/{TILE_MATRIX_SET}"),
        ],
    }
    return JSONResponse({"links": [_link("self", JSON, href)], "tilesets": [entry]}, headers=CACHE_HEADERS)


@router.get("/collections/{collection_id}/tiles/{tile_matrix_set_id}", summary="A tileset: its tile URL template")
async def tileset(
    collection_id: str,
    tile_matrix_set_id: str,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    settings: SettingsDep,
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    _check_set(tile_matrix_set_id)
    base = ogc_base(request, settings)
    href = f"{base}/collections/{layer.name}/tiles/{TILE_MATRIX_SET}"
    cache: LayerCache = request.app.state.layer_cache
    summary = cache.fresh_summary(layer)
    if summary is None:
        summary = await run_in_threadpool(cache.summary, layer)
    fields = visible_fields(layer, caller.role)
    document: dict[str, Any] = {
        "title": f"{layer.title_zh} {layer.title_en}",
        "dataType": "vector",
        "crs": MERCATOR_CRS,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            _link("self", JSON, href),
            _link(TILING_SCHEME_REL, JSON, f"{base}/tileMatrixSets/{TILE_MATRIX_SET}"),
            {**_link("item", MVT, f"{href}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"), "templated": True},
            _link("collection", JSON, f"{base}/collections/{layer.name}"),
        ],
        "layers": [{"id": layer.name, "dataType": "vector", "geometryDimension": _dimension(layer)}],
        # TileJSON 3.0 fields, for clients that read those (MapLibre, QGIS's generic connection takes the URL).
        "tilejson": "3.0.0",
        "tiles": [f"{href}/{{z}}/{{y}}/{{x}}"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "vector_layers": [
            {"id": layer.name, "fields": {name: _FIELD_TYPES[layer.field(name).type] for name in fields}}
        ],
    }
    if summary.bounds is not None:
        document["bounds"] = list(summary.bounds)
        document["boundingBox"] = {
            "lowerLeft": list(summary.bounds[:2]),
            "upperRight": list(summary.bounds[2:]),
            "crs": CRS84,
        }
    return JSONResponse(document, headers=CACHE_HEADERS)


@router.get(
    "/collections/{collection_id}/tiles/{tile_matrix_set_id}/{tile_matrix}/{tile_row}/{tile_col}",
    summary="One vector tile (MVT): the caller's visible fields; 204 when no feature is in it",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {"description": "no feature in this tile"}},
)
async def tile(
    collection_id: str,
    tile_matrix_set_id: str,
    tile_matrix: int,
    tile_row: int,
    tile_col: int,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    store: StoreDep,
    filter_: Annotated[str | None, Query(alias="filter", description="a CQL2 filter")] = None,
    filter_lang: Annotated[
        str, Query(alias="filter-lang", description="the filter's encoding", json_schema_extra={"enum": FILTER_LANGS})
    ] = "cql2-text",
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="CRS URI of filter geometries")] = None,
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    _check_set(tile_matrix_set_id)
    key = TileKey(tile_matrix, tile_col, tile_row)  # 404 outside the matrix, with the valid range
    fields = visible_fields(layer, caller.role)
    node = None
    if filter_ is not None:  # checked before any store work: a bad filter is a 400 with the parser's message
        node = parse_filter(
            filter_,
            lang=filter_lang,
            queryables=queryable_types(layer, fields),
            to_storage=to_storage(check_crs(filter_crs, parameter="filter-crs")),
        )
    version = await run_in_threadpool(store.layer_version, layer.name)
    etag, headers = etag_headers(request, layer.name, str(version), ",".join(fields))
    if (cached := not_modified(request, etag, headers)) is not None:
        return cached
    data = await run_in_threadpool(_tile, store, layer, key, fields, node)
    return mvt_response(data, headers)


def _tile(store: LayerStore, layer: LayerDef, key: TileKey, fields: list[str], node: Node | None) -> bytes:
    return store.vector_tile(layer.name, key, fields, node)


def mvt_response(data: bytes, headers: dict[str, str]) -> Response:
    """The tile, or 204 No Content for an empty one (VectorGrid draws nothing for it, as for an empty tile)."""
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


def _check_set(tile_matrix_set_id: str) -> None:
    if tile_matrix_set_id != TILE_MATRIX_SET:
        raise HTTPException(404, f"no tile matrix set '{tile_matrix_set_id}'; this API offers {TILE_MATRIX_SET}")


def _dimension(layer: LayerDef) -> int:
    return {"Point": 0, "MultiLineString": 1}.get(layer.geometry or "", 2)


def _link(rel: str, media_type: str, href: str) -> dict[str, str]:
    return {"rel": rel, "type": media_type, "href": href}
