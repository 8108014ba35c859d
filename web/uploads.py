"""Size-limited request bodies and uploads, shared by every route that takes data from a client.

A JSON body is refused with 413 as soon as it is declared or streamed past the limit, and an uploaded file is
copied in chunks into a caller-owned folder under a cleaned base name, so no request can fill the memory or
the disk, or name a path outside that folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile as StarletteUploadFile

from geoplan.errors import InputError

UPLOAD_CHUNK = 1024 * 1024
FORM_OVERHEAD = 64 * 1024
"""Room for multipart boundaries and the small form fields on top of the file's own limit."""


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
