"""One table maps geoplan's typed errors to HTTP status codes. A 5xx never echoes internals."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geoplan.errors import (
    READ_ONLY_MESSAGE,
    ConflictError,
    CRSError,
    GeoplanError,
    InputError,
    NotFoundError,
    UnreadableFileError,
    ValidationFailed,
    is_read_only_refusal,
)
from web.error_chinese import (
    CONFLICT_REASON_ZH,
    INTERNAL_ZH,
    READ_ONLY_ZH,
    zh_for_error,
    zh_for_http,
    zh_for_validation,
)
from web.uploads import json_safe_errors

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationFailed, 422),
    (CRSError, 422),
    (UnreadableFileError, 400),
    (InputError, 400),
)


def status_for(exc: Exception) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


async def _handle_geoplan_error(request: Request, exc: Exception) -> JSONResponse:
    if is_read_only_refusal(exc):
        return _read_only()
    status = status_for(exc)
    if status >= 500:
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _internal(status)
    # `detail_zh` is what the pages show (geoplan-session.js prefers it); `detail` stays English for clients.
    body: dict[str, object] = {"detail": str(exc), "detail_zh": zh_for_error(exc)}
    if isinstance(exc, ConflictError) and exc.features:  # a stale scenario: the features, for a page to list
        body["features"] = [
            {"layer": layer, "feature_id": fid, "reason": reason, "reason_zh": CONFLICT_REASON_ZH.get(reason, reason)}
            for layer, fid, reason in exc.features[:200]
        ]
    problems = getattr(exc, "problems", None)
    if problems:
        body["problems"] = [{"feature": p.feature, "field": p.field, "message": p.message} for p in problems[:200]]
    return JSONResponse(body, status_code=status)


async def _handle_request_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, minus any input JSON cannot hold (a NaN echoed back would make the answer a 500)."""
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    body = {"detail": json_safe_errors(errors), "detail_zh": zh_for_validation(errors)}
    return JSONResponse(body, status_code=422)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own answer to an HTTPException (401, 403, 404, 413 …), with its Chinese beside it."""
    if not isinstance(exc, StarletteHTTPException):
        return await _handle_unexpected(request, exc)
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=headers)
    body = {"detail": exc.detail, "detail_zh": zh_for_http(exc.status_code, exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _read_only() -> JSONResponse:
    return JSONResponse({"detail": READ_ONLY_MESSAGE, "detail_zh": READ_ONLY_ZH}, status_code=503)


def _internal(status: int = 500) -> JSONResponse:
    return JSONResponse({"detail": "internal error", "detail_zh": INTERNAL_ZH}, status_code=status)


async def _handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_read_only_refusal(exc):  # an app process serving from a replica: expected, and the caller can act
        return _read_only()
    return await _handle_unexpected(request, exc)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _internal()


def document_error_bodies(app: FastAPI) -> None:
    """The OpenAPI document's 422 body as the API sends it: FastAPI's list of validation errors, or (a catalogue
    check that failed, `ValidationFailed`) one message with the problems listed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        body = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if body is not None:
            detail = body["properties"]["detail"]
            body["properties"]["detail"] = {"title": "Detail", "anyOf": [detail, {"type": "string"}]}
            problem = {"type": "object", "properties": {"feature": {}, "field": {}, "message": {"type": "string"}}}
            body["properties"]["problems"] = {"type": "array", "items": problem}
            body["properties"]["detail_zh"] = {"type": "string", "description": "the same in Chinese, for people"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GeoplanError, _handle_geoplan_error)
    app.add_exception_handler(RequestValidationError, _handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(Exception, _handle_unexpected)
    document_error_bodies(app)
