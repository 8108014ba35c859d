"""Size-limited request bodies and uploads, shared by every route that takes data from a client.

A JSON body is refused with 413 as soon as it is declared or streamed past the limit, and an uploaded file is
copied in chunks into a caller-owned folder under a cleaned base name, so no request can fill the memory or
the disk, or name a path outside that folder.
"""

from __future__ import annotations

import json
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

from geoplan.errors import InputError
from geoplan.io import FORMATS

UPLOAD_CHUNK = 1024 * 1024
FORM_OVERHEAD = 64 * 1024
"""Room for multipart boundaries and the small form fields on top of the file's own limit."""
ModelT = TypeVar("ModelT", bound=BaseModel)


async def json_body(request: Request, limit: int) -> Any:
    """The request body parsed as JSON; 413 beyond `limit` bytes (declared or streamed), InputError if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request body is larger than {limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the request body is larger than {limit:,} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the request body is not valid JSON") from None


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
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None


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
    async with request.form(max_files=1, max_fields=10) as form:
        file = form.get("file")
        if not isinstance(file, StarletteUploadFile):
            raise InputError("send the file as multipart/form-data in a field named 'file'")
        name = safe_file_name(file.filename or "")
        suffix = Path(name).suffix.lower()
        if suffix not in FORMATS or FORMATS[suffix].reader is None:
            readable = ", ".join(sorted(s for s, f in FORMATS.items() if f.reader is not None))
            raise InputError(f"unsupported file type {suffix or '(none)'!r}; upload one of: {readable}")
        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            target = Path(folder) / name
            await save_limited(file, target, limit)
            yield target, form
