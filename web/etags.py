"""ETags for answers computed from the store: the same inputs give the same tag, so a client that already holds
the answer gets 304 Not Modified instead of the body again."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response


def etag_headers(request: Request, *parts: str) -> tuple[str, dict[str, str]]:
    """The tag of `parts` (what the answer was computed from: cache digests, ids) with the request's path and
    query, and the headers to send with it. Answers depend on the caller's token, hence `Vary: Authorization`."""
    text = "|".join([*parts, request.url.path, request.url.query])
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    return etag, {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Authorization"}


def not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    """304 when the client already holds this tag, else None (send the answer)."""
    return Response(status_code=304, headers=headers) if request.headers.get("if-none-match") == etag else None
