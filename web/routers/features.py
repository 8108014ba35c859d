"""OGC API – Features (Part 1: Core, GeoJSON) over the catalogue layers, so QGIS, GDAL and other departments'
systems can read them. Anonymous callers see only public layers and public fields.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geoplan.access import can_see_layer, visible_fields, visible_layers
from geoplan.catalog import LayerDef
from geoplan.geojson import feature_collection
from web.deps import CallerDep, CatalogDep, SettingsDep, StoreDep
from web.layer_cache import LayerCache

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
RESERVED_PARAMS = {"f", "bbox", "limit", "offset"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _visible_vector_layer(catalog: CatalogDep, caller: CallerDep, collection_id: str) -> LayerDef:
    """404 for unknown and for hidden layers alike, so the public cannot learn which private layers exist."""
    if collection_id not in catalog:
        raise HTTPException(404, f"no collection '{collection_id}'")
    layer = catalog.get(collection_id)
    if layer.kind != "vector" or not can_see_layer(layer, caller.role):
        raise HTTPException(404, f"no collection '{collection_id}'")
    return layer


def _collection(layer: LayerDef, base: str, store: StoreDep) -> dict[str, Any]:
    bounds = store.bounds(layer.name)
    title = f"{layer.title_zh} {layer.title_en}" + (" (synthetic)" if layer.synthetic else "")
    href = f"{base}/collections/{layer.name}"
    collection: dict[str, Any] = {
        "id": layer.name,
        "title": title,
        "description": layer.description.strip(),
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "items", "type": GEOJSON, "title": title, "href": f"{href}/items"},
        ],
    }
    if bounds is not None:
        collection["extent"] = {"spatial": {"bbox": [list(bounds)], "crs": CRS84}}
    return collection


@router.get("", summary="Landing page")
def landing(request: Request) -> dict[str, Any]:
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return {
        "title": "geoplan: Gaoming District plan layers",
        "description": "OGC API – Features over the action plan's layers (CGCS2000 ≈ CRS84 lon/lat).",
        "links": [
            {"rel": "self", "type": "application/json", "href": base},
            {"rel": "conformance", "type": "application/json", "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "href": f"{base}/collections"},
            {
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "href": f"{root}/openapi.json",
            },
            {"rel": "service-doc", "type": "text/html", "href": f"{root}/docs"},
        ],
    }


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="The layers this caller may read")
def collections(request: Request, catalog: CatalogDep, caller: CallerDep, store: StoreDep) -> dict[str, Any]:
    base = _base(request)
    layers = [layer for layer in visible_layers(catalog, caller.role) if layer.kind == "vector"]
    return {
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/collections"}],
        "collections": [_collection(layer, base, store) for layer in layers],
    }


@router.get("/collections/{collection_id}", summary="One layer")
def collection(
    collection_id: str, request: Request, catalog: CatalogDep, caller: CallerDep, store: StoreDep
) -> dict[str, Any]:
    layer = _visible_vector_layer(catalog, caller, collection_id)
    return _collection(layer, _base(request), store)


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise HTTPException(400, "bbox must be four numbers: minLon,minLat,maxLon,maxLat") from None
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] > values[2] or values[1] > values[3]:
        raise HTTPException(400, "bbox must be four numbers: minLon,minLat,maxLon,maxLat")
    return (values[0], values[1], values[2], values[3])


@router.get("/collections/{collection_id}/items", summary="Features, paged, filtered by bbox and properties")
async def items(
    collection_id: str,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
    limit: Annotated[int, Query(ge=1, description="page size (capped by the server)")] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    layer = _visible_vector_layer(catalog, caller, collection_id)
    fields = visible_fields(layer, caller.role)
    filters = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}
    unknown = sorted(set(filters) - set(fields))
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s): {', '.join(unknown)}")
    box = _parse_bbox(bbox)
    limit = min(limit, settings.max_page_size)
    cache: LayerCache = request.app.state.layer_cache
    # Served on the event loop when the cache is current; a rebuild (reading and serialising a whole layer)
    # goes to the thread pool so it never stalls other requests.
    cached = cache.fresh(layer, fields)
    if cached is None:
        cached = await run_in_threadpool(cache.get, layer, fields)

    etag = (
        '"'
        + hashlib.sha256(f"{layer.name}|{cached.version}|{','.join(fields)}|{request.url.query}".encode()).hexdigest()[
            :32
        ]
        + '"'
    )
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Authorization"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    rows = cached.rows_in_bbox(box) if box is not None else np.arange(len(cached.features))
    for name, value in filters.items():
        column = cached.frame[name].astype(object).to_numpy()[rows]
        rows = rows[np.array([str(v) == value for v in column], dtype=bool)] if len(rows) else rows
    page = rows[offset : offset + limit]
    features = [cached.features[i] for i in page]
    base = f"{_base(request)}/collections/{layer.name}/items"
    links = [{"rel": "self", "type": GEOJSON, "href": str(request.url)}]
    if offset + limit < len(rows):
        links.append(
            {
                "rel": "next",
                "type": GEOJSON,
                "href": str(request.url.include_query_params(offset=offset + limit, limit=limit)),
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": GEOJSON,
                "href": str(request.url.include_query_params(offset=max(0, offset - limit), limit=limit)),
            }
        )
    links.append({"rel": "collection", "type": "application/json", "href": base.rsplit("/items", 1)[0]})
    body = feature_collection(features, numberMatched=len(rows), numberReturned=len(features), links=links)
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature by its id")
def item(collection_id: str, feature_id: str, request: Request, catalog: CatalogDep, caller: CallerDep) -> Response:
    layer = _visible_vector_layer(catalog, caller, collection_id)
    if layer.id_field is None:
        raise HTTPException(404, "this collection has no feature ids")
    cache: LayerCache = request.app.state.layer_cache
    cached = cache.get(layer, visible_fields(layer, caller.role))
    matches = np.flatnonzero(cached.frame[layer.id_field].astype(str).to_numpy() == feature_id)
    if len(matches) == 0:
        raise HTTPException(404, f"no feature '{feature_id}' in '{collection_id}'")
    return Response(cached.features[int(matches[0])].encode(), media_type=GEOJSON, headers={"Vary": "Authorization"})
