"""Features of a collection: paging, bbox (Part 1), crs / bbox-crs (Part 2), filter / sortby / properties
(Part 3) and property=value query parameters.

Items come from the layer cache (the layer read and serialised once per version). A CQL2 filter runs where the
data lives: as bound SQL on PostGIS (the store returns matching positions in the cached order) and vectorised
on the cached frame for the GeoPackage. Sorting, the field subset and the CRS change work on the cache.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geoplan.access import visible_fields
from geoplan.catalog import LayerDef
from geoplan.cql2 import FILTER_LANGS, Node, frame_mask, parse_filter
from geoplan.geojson import feature_collection
from geoplan.services.provenance import synthetic_now
from geoplan.storage.base import FilterPushdown
from web.deps import CallerDep, CatalogDep, SettingsDep, StoreDep, visible_vector_layer
from web.layer_cache import CachedLayer, LayerCache
from web.ogc.common import CACHE_HEADERS, GEOJSON, HTML, JSON, wants_html
from web.ogc.crs import bbox_to_storage, check_crs, content_crs, from_storage, to_storage
from web.ogc.html import render
from web.ogc.links import ogc_base, self_url
from web.ogc.queryables import queryable_types

router = APIRouter(prefix="/ogc")

RESERVED_PARAMS = {
    "f",
    "bbox",
    "bbox-crs",
    "crs",
    "limit",
    "offset",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
    "properties",
}
_PUSHDOWN_TRIES = 3


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    message = "bbox must be four numbers: min x, min y, max x, max y in bbox-crs (CRS84: lon, lat)"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise HTTPException(400, message) from None
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] > values[2] or values[1] > values[3]:
        raise HTTPException(400, message)
    return (values[0], values[1], values[2], values[3])


def _names(text: str | None, allowed: list[str], parameter: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n.lstrip("+-") for n in names if n.lstrip("+-") not in allowed]
    if unknown:
        raise HTTPException(400, f"{parameter}: not a queryable of this collection: {', '.join(unknown)}")
    return names


def _sorted(rows: np.ndarray, frame: pd.DataFrame, sortby: list[str]) -> np.ndarray:
    """Rows ordered by the sort keys (stable; missing values last, as PostgreSQL sorts ascending)."""
    if not sortby or len(rows) == 0:
        return rows
    keys = [s.lstrip("+-") for s in sortby]
    part = frame.iloc[rows][keys].reset_index(drop=True)
    order = part.sort_values(
        keys, ascending=[not s.startswith("-") for s in sortby], kind="stable", na_position="last"
    ).index
    return rows[np.asarray(order)]


async def cached_layer(cache: LayerCache, layer: LayerDef, fields: list[str]) -> CachedLayer:
    """The cache entry: from memory on the event loop when current, else rebuilt in the thread pool (reading
    and serialising a whole layer must never stall other requests)."""
    cached = cache.fresh(layer, fields)
    return cached if cached is not None else await run_in_threadpool(cache.get, layer, fields)


async def _filtered(
    request: Request, layer: LayerDef, fields: list[str], node: Node, store: StoreDep
) -> tuple[CachedLayer, np.ndarray]:
    """The cache entry and a mask of the rows the filter selects, both of one layer version."""
    cache: LayerCache = request.app.state.layer_cache
    cached = await cached_layer(cache, layer, fields)
    if isinstance(store, FilterPushdown):
        for _ in range(_PUSHDOWN_TRIES):  # a write between the two reads: read both again
            version, positions = await run_in_threadpool(store.filter_rows, layer.name, node)
            if version == cached.version:
                mask = np.zeros(len(cached.features), dtype=np.bool_)
                mask[positions] = True
                return cached, mask
            cached = await run_in_threadpool(cache.get, layer, fields)
        raise HTTPException(503, "the layer is changing too fast to filter; try again")
    return cached, await run_in_threadpool(frame_mask, node, cached.frame)


@router.get("/collections/{collection_id}/items", summary="Features: paged; bbox, CQL2 filter, sort, CRS")
async def items(
    collection_id: str,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(description="min x, min y, max x, max y in bbox-crs")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS URI of bbox; CRS84 if absent")] = None,
    crs: Annotated[str | None, Query(description="CRS URI of the response; CRS84 if absent")] = None,
    limit: Annotated[int, Query(ge=1, description="page size (capped by the server)")] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
    filter_: Annotated[str | None, Query(alias="filter", description="a CQL2 filter")] = None,
    filter_lang: Annotated[
        str, Query(alias="filter-lang", description="the filter's encoding", json_schema_extra={"enum": FILTER_LANGS})
    ] = "cql2-text",
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="CRS URI of filter geometries")] = None,
    sortby: Annotated[str | None, Query(description="fields, comma-separated; '-' sorts descending")] = None,
    properties: Annotated[str | None, Query(description="fields to return, comma-separated")] = None,
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    fields = visible_fields(layer, caller.role)
    html = wants_html(request)
    filters = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}
    unknown = sorted(set(filters) - set(fields))
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s): {', '.join(unknown)}")
    out_crs = check_crs(crs)
    box = _parse_bbox(bbox)
    if box is not None:
        box = bbox_to_storage(box, check_crs(bbox_crs, parameter="bbox-crs"))
    node = None
    if filter_ is not None:
        node = parse_filter(
            filter_,
            lang=filter_lang,
            queryables=queryable_types(layer, fields),
            to_storage=to_storage(check_crs(filter_crs, parameter="filter-crs")),
        )
    sort_keys = _names(sortby, fields, "sortby")
    selected = tuple(_names(properties, fields, "properties")) if properties is not None else tuple(fields)
    limit = min(limit, settings.max_page_size)

    if html:
        base = f"{ogc_base(request, settings)}/collections/{layer.name}"
        context = {
            "title": f"{layer.title_zh} · 地图",
            "layer": layer,
            "synthetic": layer.name in await run_in_threadpool(synthetic_now, store),
            "items_url": self_url(request, settings, drop=("crs",), f="json"),  # Leaflet draws lon/lat
        }
        return render(request, settings, "ogc_items.html", context | {"collection_url": base})

    cache: LayerCache = request.app.state.layer_cache
    if node is not None:
        cached, mask = await _filtered(request, layer, fields, node, store)
    else:
        cached = await cached_layer(cache, layer, fields)
        mask = None

    tag = f"{layer.name}|{cached.version}|{','.join(fields)}|{request.url.query}"
    etag = '"' + hashlib.sha256(tag.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, **CACHE_HEADERS, **content_crs(out_crs)}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    rows = cached.rows_in_bbox(box) if box is not None else np.arange(len(cached.features))
    if mask is not None:
        rows = rows[mask[rows]]
    for name, value in filters.items():
        column = cached.frame[name].astype(object).to_numpy()[rows]
        rows = rows[np.array([str(v) == value for v in column], dtype=bool)] if len(rows) else rows
    rows = _sorted(rows, cached.frame, sort_keys)
    page = rows[offset : offset + limit]
    features = await _serialised(cached, out_crs, selected, layer, page)
    links = [{"rel": "self", "type": GEOJSON, "href": self_url(request, settings)}]
    if offset + limit < len(rows):
        links.append(
            {"rel": "next", "type": GEOJSON, "href": self_url(request, settings, offset=offset + limit, limit=limit)}
        )
    if offset > 0:
        previous = self_url(request, settings, offset=max(0, offset - limit), limit=limit)
        links.append({"rel": "prev", "type": GEOJSON, "href": previous})
    links.append({"rel": "alternate", "type": HTML, "href": self_url(request, settings, f="html")})
    links.append({"rel": "collection", "type": JSON, "href": f"{ogc_base(request, settings)}/collections/{layer.name}"})
    body = feature_collection(features, numberMatched=len(rows), numberReturned=len(features), links=links)
    return Response(body, media_type=GEOJSON, headers=headers)


async def _serialised(
    cached: CachedLayer, crs: str, fields: tuple[str, ...], layer: LayerDef, page: np.ndarray
) -> list[str]:
    transform = from_storage(crs)
    if fields != cached.fields:
        return await run_in_threadpool(cached.subset, page, fields, transform, layer.id_field)
    if transform is None or crs in cached.views:
        view = cached.view(crs, transform, layer.id_field)
    else:  # a first view in a CRS serialises the whole layer: not on the event loop
        view = await run_in_threadpool(cached.view, crs, transform, layer.id_field)
    return [view[i] for i in page]


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature by its id")
async def item(
    collection_id: str,
    feature_id: str,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    crs: Annotated[str | None, Query(description="CRS URI of the response; CRS84 if absent")] = None,
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    out_crs = check_crs(crs)
    if layer.id_field is None:
        raise HTTPException(404, "this collection has no feature ids")
    cache: LayerCache = request.app.state.layer_cache
    fields = visible_fields(layer, caller.role)
    cached = await cached_layer(cache, layer, fields)
    matches = np.flatnonzero(cached.frame[layer.id_field].astype(str).to_numpy() == feature_id)
    if len(matches) == 0:
        raise HTTPException(404, f"no feature '{feature_id}' in '{collection_id}'")
    [feature] = await _serialised(cached, out_crs, cached.fields, layer, matches[:1])
    headers = {"Vary": "Authorization", **content_crs(out_crs)}
    return Response(feature.encode(), media_type=GEOJSON, headers=headers)
