"""Size-limited request bodies and uploads, shared by every route that takes data from a client.

A JSON body is refused with 413 as soon as it is declared or streamed past the limit, and an uploaded file is
copied in chunks into a caller-owned folder under a cleaned base name, so no request can fill the memory or
the disk, or name a path outside that folder. A JSON body is refused (400) when it is not plain JSON: NaN and
Infinity, which Python's parser accepts, and nesting deeper than any document of ours needs.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.types import Message, Receive

from geoplan.errors import InputError
from geoplan.io import FORMATS

UPLOAD_CHUNK = 1024 * 1024
FORM_OVERHEAD = 64 * 1024
"""Room for multipart boundaries and the small form fields on top of the file's own limit."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a body may have: a GeoJSON MultiPolygon in a collection needs 8."""
ModelT = TypeVar("ModelT", bound=BaseModel)


async def json_body(request: Request, limit: int) -> Any:
    """The request body parsed as JSON (`parse_json`); 413 beyond `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request body is larger than {limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the request body is larger than {limit:,} bytes")
    return parse_json(bytes(body))


def _no_constant(name: str) -> Any:
    raise InputError(f"the request body holds {name}, which JSON does not allow; send a number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as infinity
        raise InputError(f"the request body holds the number {text[:30]}, too large for a float")
    return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON: InputError (400) when it is not JSON, holds NaN or ±Infinity (or a number that overflows to
    it), or nests deeper than MAX_JSON_DEPTH (Python's parser would answer a RecursionError, and deep documents
    recurse further on)."""
    try:
        document = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except InputError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("the request body is not valid JSON", zh="请求内容不是有效的 JSON。") from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise InputError(f"the request body's JSON nests arrays and objects deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit`; iterative, so no depth can overflow the stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_safe_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Validation errors for a 4xx body: each `input` kept only when it is plain JSON (never NaN or an object
    JSON cannot hold), so echoing the caller's input can never itself fail with a 500."""
    safe = []
    for error in errors:
        entry = {key: value for key, value in dict(error).items() if key not in ("input", "ctx", "url")}
        if "input" in error and _plain_json(error["input"]):
            entry["input"] = error["input"]
        safe.append(entry)
    return safe


def _plain_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (so only after the token check): the body's
    schema, which FastAPI cannot see then."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def model_body(request: Request, model: type[ModelT], limit: int) -> ModelT:
    """The JSON body (`json_body`) validated as `model`; 422 with pydantic's errors when it does not fit."""
    document = await json_body(request, limit)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise HTTPException(422, json_safe_errors(exc.errors(include_url=False, include_context=False))) from None


def safe_file_name(client_name: str) -> str:
    """The last path component, with anything but letters, digits, CJK, '-', '_' and '.' replaced."""
    base = client_name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^\w.\-\u4e00-\u9fff]", "_", base).lstrip(".")[-100:]
    return cleaned or "upload"


async def save_limited(file: StarletteUploadFile, target: Path, limit: int) -> None:
    """Copy an uploaded file to `target` in chunks; 413 as soon as it passes `limit` bytes."""
    size = 0
    with target.open("wb") as out:
        while chunk := await file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"the file is larger than the {limit:,}-byte limit")
            out.write(chunk)


def _counted_receive(receive: Receive, most: int, limit: int) -> Receive:
    """`receive` that raises 413 as soon as the request body passes `most` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > most:
                raise HTTPException(413, f"the file is larger than the {limit:,}-byte limit")
        return message

    return counted


def is_truthy(value: object) -> bool:
    """A form flag: 1/true/yes/on (any case) is true, anything else false."""
    return str(value or "false").lower() in ("1", "true", "yes", "on")


@asynccontextmanager
async def uploaded_file(request: Request, limit: int, *, prefix: str) -> AsyncIterator[tuple[Path, FormData]]:
    """Parse a multipart form with one geodata file (field `file`), size-limited, and save the file.

    Yields the saved path (in a private folder, under a cleaned base name, with a readable suffix) and the other
    form fields; the folder is removed afterwards. The form is parsed only once the declared size is acceptable.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise HTTPException(413, f"the file is larger than the {limit:,}-byte limit")
    # The multipart parser spools a file to disk as it reads; a chunked body declares no size, so the stream
    # itself is counted and the parse stops at the limit, before anything beyond it is written.
    limited = Request(request.scope, _counted_receive(request.receive, limit + FORM_OVERHEAD, limit))
    async with limited.form(max_files=1, max_fields=10) as form:
        file = form.get("file")
        if not isinstance(file, StarletteUploadFile):
            raise InputError(
                "send the file as multipart/form-data in a field named 'file'",
                zh="请选择要上传的文件（表单字段 file）。",
            )
        name = safe_file_name(file.filename or "")
        suffix = Path(name).suffix.lower()
        if suffix not in FORMATS or FORMATS[suffix].reader is None:
            readable = ", ".join(sorted(s for s, f in FORMATS.items() if f.reader is not None))
            raise InputError(
                f"unsupported file type {suffix or '(none)'!r}; upload one of: {readable}",
                zh=f"不支持的文件类型“{suffix or '无扩展名'}”：请上传以下之一：{readable}。",
            )
        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            target = Path(folder) / name
            await save_limited(file, target, limit)
            yield target, form
