"""The collections: one per vector layer the caller may see, with its extent, CRSs and links.

Count and extent come from the layer cache's summaries, keyed by layer version: a request costs one indexed
version query per layer and is answered on the event loop; only a changed layer is recounted (in the pool).
Whether a layer still holds synthetic demo data (its title says "(synthetic)") is known at that same version
(geoplan.services.provenance caches it per layer version); only a changed layer's audit log is read (in the pool).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geoplan.access import visible_layers
from geoplan.catalog import LayerDef
from geoplan.services.provenance import is_synthetic, known_synthetic
from geoplan.storage import LayerStore
from web.deps import CallerDep, CatalogDep, SettingsDep, StoreDep, visible_vector_layer
from web.layer_cache import LayerCache, LayerSummary
from web.ogc.common import (
    CACHE_HEADERS,
    GEOJSON,
    HTML,
    JSON,
    QUERYABLES_REL,
    SCHEMA_JSON,
    VECTOR_TILESETS_REL,
    wants_html,
)
from web.ogc.crs import CRS84, STORAGE_CRS, SUPPORTED_CRS
from web.ogc.html import render
from web.ogc.links import ogc_base

router = APIRouter(prefix="/ogc")


async def _summary(cache: LayerCache, layer: LayerDef) -> LayerSummary:
    summary = cache.fresh_summary(layer)
    return summary if summary is not None else await run_in_threadpool(cache.summary, layer)


async def _synthetic(store: LayerStore, layer: LayerDef, summary: LayerSummary) -> bool:
    """Whether the layer holds demo data at the summary's (current) version: known without a query once read."""
    known = known_synthetic(store, layer, summary.version)
    if known is not None:
        return known
    return await run_in_threadpool(lambda: is_synthetic(store, layer, version=summary.version))


async def _document(store: LayerStore, cache: LayerCache, layer: LayerDef, base: str) -> dict[str, Any]:
    summary = await _summary(cache, layer)
    return collection_document(layer, base, summary, synthetic=await _synthetic(store, layer, summary))


def _chinese(layers: list[LayerDef], documents: list[dict[str, Any]]) -> dict[str, str]:
    """What a person reads on the HTML pages: the Chinese description, shown when the JSON shows a description."""
    return {
        layer.name: layer.description_zh for layer, doc in zip(layers, documents, strict=True) if doc["description"]
    }


def collection_document(layer: LayerDef, base: str, summary: LayerSummary, *, synthetic: bool) -> dict[str, Any]:
    """One collection; `synthetic`: the layer holds demo data now (geoplan.services.provenance)."""
    title = f"{layer.title_zh} {layer.title_en}" + (" (synthetic)" if synthetic else "")
    # The catalogue's description tells of the demo's data: not once real data has replaced it.
    description = layer.description.strip() if synthetic or not layer.synthetic else ""
    href = f"{base}/collections/{layer.name}"
    document: dict[str, Any] = {
        "id": layer.name,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": SUPPORTED_CRS,
        "storageCrs": STORAGE_CRS,
        "numberMatched": summary.count,
        "links": [
            {"rel": "self", "type": JSON, "title": "this collection", "href": href},
            {"rel": "alternate", "type": HTML, "title": "this collection as HTML", "href": f"{href}?f=html"},
            {"rel": "items", "type": GEOJSON, "title": title, "href": f"{href}/items"},
            {"rel": "items", "type": HTML, "title": f"{title} (map)", "href": f"{href}/items?f=html"},
            {"rel": QUERYABLES_REL, "type": SCHEMA_JSON, "title": "queryables", "href": f"{href}/queryables"},
            {"rel": VECTOR_TILESETS_REL, "type": JSON, "title": "vector tiles", "href": f"{href}/tiles"},
        ],
    }
    if summary.bounds is not None:
        document["extent"] = {"spatial": {"bbox": [list(summary.bounds)], "crs": CRS84}}
    return document


@router.get("/collections", summary="The layers this caller may read")
async def collections(
    request: Request, catalog: CatalogDep, caller: CallerDep, settings: SettingsDep, store: StoreDep
) -> Response:
    base = ogc_base(request, settings)
    cache: LayerCache = request.app.state.layer_cache
    layers = [layer for layer in visible_layers(catalog, caller.role) if layer.kind == "vector"]
    documents = [await _document(store, cache, layer, base) for layer in layers]
    if wants_html(request):
        context = {"title": "数据集（图层）", "collections": documents, "descriptions": _chinese(layers, documents)}
        return render(request, settings, "ogc_collections.html", context)
    body = {
        "links": [
            {"rel": "self", "type": JSON, "href": f"{base}/collections"},
            {"rel": "alternate", "type": HTML, "href": f"{base}/collections?f=html"},
        ],
        "collections": documents,
    }
    return JSONResponse(body, headers=CACHE_HEADERS)


@router.get("/collections/{collection_id}", summary="One layer")
async def collection(
    collection_id: str,
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    settings: SettingsDep,
    store: StoreDep,
) -> Response:
    layer = visible_vector_layer(catalog, caller.role, collection_id, what="collection")
    cache: LayerCache = request.app.state.layer_cache
    document = await _document(store, cache, layer, ogc_base(request, settings))
    if wants_html(request):
        context = {"title": document["title"], "collections": [document], "descriptions": _chinese([layer], [document])}
        return render(request, settings, "ogc_collections.html", context)
    return JSONResponse(document, headers=CACHE_HEADERS)
