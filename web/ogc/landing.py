"""The landing page and the conformance declaration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from web.deps import SettingsDep
from web.ogc.common import CACHE_HEADERS, CONFORMANCE, HTML, JSON, TILING_SCHEMES_REL, wants_html
from web.ogc.html import render
from web.ogc.links import ogc_base, site_root

router = APIRouter(prefix="/ogc")


def landing_document(request: Request, settings: SettingsDep) -> dict[str, Any]:
    base, root = ogc_base(request, settings), site_root(request, settings)
    return {
        "title": "geoplan: Gaoming District plan layers",
        "description": "OGC API – Features and Tiles over the action plan's layers (stored in CGCS2000, EPSG:4490).",
        "links": [
            {"rel": "self", "type": JSON, "title": "this document", "href": base},
            {"rel": "alternate", "type": HTML, "title": "this document as HTML", "href": f"{base}?f=html"},
            {"rel": "conformance", "type": JSON, "title": "conformance classes", "href": f"{base}/conformance"},
            {"rel": "data", "type": JSON, "title": "collections", "href": f"{base}/collections"},
            {"rel": TILING_SCHEMES_REL, "type": JSON, "title": "tiling schemes", "href": f"{base}/tileMatrixSets"},
            {
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "the API definition",
                "href": f"{root}/openapi.json",
            },
            {"rel": "service-doc", "type": HTML, "title": "the API documentation", "href": f"{root}/docs"},
        ],
    }


@router.get("", summary="Landing page")
def landing(request: Request, settings: SettingsDep) -> Response:
    document = landing_document(request, settings)
    if wants_html(request):
        return render(request, settings, "ogc_landing.html", {"title": "数据接口（OGC API）", "doc": document})
    return JSONResponse(document, headers=CACHE_HEADERS)


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request, settings: SettingsDep) -> Response:
    document = {"conformsTo": CONFORMANCE}
    if wants_html(request):
        return render(request, settings, "ogc_landing.html", {"title": "符合性类别", "conformance": CONFORMANCE})
    return JSONResponse(document, headers=CACHE_HEADERS)
