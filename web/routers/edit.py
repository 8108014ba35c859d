"""Writes: create, edit and delete features, and upload whole layer files. All need a token of the layer's
`edit_role` (401 without a token, 403 below the role); all go through catalogue validation and land in the
audit log with who, when, and the features before and after (read it through web/routers/audit.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from geoplan.access import Role
from geoplan.catalog import LayerDef
from geoplan.errors import InputError
from geoplan.geojson import frame_from_geojson
from geoplan.services.ingest import import_file, prepare_frame
from web.deps import Caller, CatalogDep, SettingsDep, StoreDep, get_caller
from web.uploads import is_truthy, uploaded_file
from web.uploads import json_body as _json_body

router = APIRouter(prefix="/api/layers", tags=["editing"])

CallerOrPublic = Annotated[Caller, Depends(get_caller)]


def editable_layer(layer_name: str, caller: CallerOrPublic, catalog: CatalogDep) -> LayerDef:
    """The layer, if the caller may change it. A dependency, so it runs before any request body is read or
    validated: callers without the right token get 401/403, never a validation error about the body."""
    if caller.role is Role.PUBLIC:
        raise HTTPException(401, "this needs a token", headers={"WWW-Authenticate": "Bearer"})
    if layer_name not in catalog:
        raise HTTPException(404, f"no layer '{layer_name}'")
    layer = catalog.get(layer_name)
    if layer.kind != "vector":
        raise HTTPException(
            400, f"layer '{layer_name}' is a raster layer; replace it with `geoplan import {layer_name} FILE.tif`"
        )
    needed = Role.parse(layer.edit_role)
    if caller.role < needed:
        raise HTTPException(
            403, f"editing '{layer_name}' needs the {needed.label} role; your token is {caller.role.label}"
        )
    return layer


EditableLayer = Annotated[LayerDef, Depends(editable_layer)]


@router.post("/{layer_name}/features", status_code=201, summary="Add features (a GeoJSON Feature or collection)")
async def create_features(
    layer: EditableLayer, request: Request, caller: CallerOrPublic, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    frame = frame_from_geojson(await _json_body(request, settings.max_upload_bytes), source="request body")
    result = prepare_frame(store, layer.name, frame, source="request body", mode="append", refuse_unknown=True)
    written = store.write(layer.name, result.frame, mode="append", actor=caller.actor)
    ids = [str(v) for v in result.frame[layer.id_field]] if layer.id_field else []
    return {"written": written, "ids": ids, "repairs": [str(p) for p in result.repairs]}


@router.put("/{layer_name}/features/{feature_id}", summary="Replace one feature")
async def replace_feature(
    layer: EditableLayer,
    feature_id: str,
    request: Request,
    caller: CallerOrPublic,
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    if layer.id_field is None:
        raise HTTPException(400, f"layer '{layer.name}' has no id field")
    frame = frame_from_geojson(await _json_body(request, settings.max_upload_bytes), source="request body")
    if len(frame) != 1:
        raise InputError("send exactly one Feature to replace a feature", zh="修改一个要素时请只提交一个要素。")
    body_id = frame[layer.id_field].iloc[0] if layer.id_field in frame.columns else None
    if body_id is not None and str(body_id) != feature_id:
        raise InputError(
            f"the feature's {layer.id_field} ({body_id}) differs from the URL ({feature_id})",
            zh=f"要素的编号（{body_id}）与所修改的要素（{feature_id}）不一致。",
        )
    frame[layer.id_field] = feature_id
    result = prepare_frame(store, layer.name, frame, source="request body", mode="replace", refuse_unknown=True)
    store.update_features(layer.name, result.frame, actor=caller.actor)
    return {"updated": feature_id, "repairs": [str(p) for p in result.repairs]}


@router.delete("/{layer_name}/features/{feature_id}", summary="Delete one feature")
def delete_feature(layer: EditableLayer, feature_id: str, caller: CallerOrPublic, store: StoreDep) -> dict[str, Any]:
    store.delete_features(layer.name, [feature_id], actor=caller.actor)
    return {"deleted": feature_id}


_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "mode": {"type": "string", "enum": ["replace", "append"], "default": "replace"},
                        "crs": {"type": "string", "description": "EPSG:4547, gcj02, … when the file has none"},
                        "strict": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}


@router.post(
    "/{layer_name}/upload",
    summary="Replace or append a layer from a file (size-limited)",
    openapi_extra=_UPLOAD_FORM,
)
async def upload_layer(
    layer: EditableLayer, request: Request, caller: CallerOrPublic, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    # The form is parsed here, after the token check. The client's file name is reduced to a plain base name
    # (messages then name the user's file) in a private folder, so '../../etc/passwd.geojson' points nowhere.
    async with uploaded_file(request, settings.max_upload_bytes, prefix="geoplan-upload-") as (path, form):
        mode = str(form.get("mode") or "replace")
        if mode not in ("replace", "append"):
            raise InputError(
                f"mode must be replace or append, not {mode!r}",
                zh="导入方式只能是“替换”（replace）或“追加”（append）。",
            )
        report = await run_in_threadpool(
            import_file,
            store,
            layer.name,
            path,
            crs=str(form["crs"]) if form.get("crs") else None,
            mode="append" if mode == "append" else "replace",
            strict=is_truthy(form.get("strict")),
            actor=caller.actor,
            max_bytes=settings.max_upload_bytes,
        )
    return {
        "written": report.written,
        "mode": report.mode,
        "repairs": [str(p) for p in report.repairs],
        "warnings": [str(p) for p in report.warnings],
    }
