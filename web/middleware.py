"""ASGI middleware for what every route shares: HEAD answered wherever GET is, and URL paths with invisible
characters refused before any route sees them.

FastAPI routes answer only the methods they declare, so HEAD got 405 on every page and API path (RFC 9110
§9.3.2 wants GET's status and headers without the body); link checkers and caches ask HEAD first. A path such as
`/items/GM-2024-001%00` must not reach a lookup that ignores the NUL (numpy's strings drop trailing NULs) and
answer with another feature; no name or id of ours holds such characters (the catalogue check refuses them).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geoplan.validation import invisible_characters


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as GET and the body is dropped on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed GET body: the headers are already sent, the rest is not wanted
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class RefuseInvisiblePaths:
    """ASGI middleware: 400 for a URL path holding control, format or other invisible characters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hidden = invisible_characters(scope["path"]) if scope["type"] == "http" else []
        if not hidden:
            await self.app(scope, receive, send)
            return
        detail = f"the URL path holds invisible or control characters ({', '.join(hidden[:10])}); no name or id has any"
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
