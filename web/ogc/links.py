"""The base of every absolute link the OGC API writes.

Links end up in clients' caches and in other systems, so a forged Host header must not be able to point them
elsewhere. The rule, in order:
1. `GEOPLAN_PUBLIC_URL` when set: nothing in the request counts.
2. X-Forwarded-Proto / X-Forwarded-Host, only when the direct peer is in `GEOPLAN_TRUSTED_PROXIES`.
3. The Host header when its host name is in `GEOPLAN_ALLOWED_HOSTS` (default localhost, 127.0.0.1).
4. Otherwise the address the server itself is bound to (uvicorn's `server`), 127.0.0.1 for a wildcard bind.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request

from web.settings import WebSettings

_WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def _host_name(host: str) -> str:
    """`example.org:8000` -> `example.org`; `[::1]:8000` -> `::1`."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _valid_host(host: str) -> bool:
    return bool(host) and all(c.isalnum() or c in ".-:[]_" for c in host)


def site_root(request: Request, settings: WebSettings) -> str:
    """scheme://host[:port][/prefix] without a trailing slash."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme = request.url.scheme
    peer = request.client.host if request.client else ""
    if peer and peer in settings.trusted_proxies:
        forwarded_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        forwarded_proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded_proto in ("http", "https"):
            scheme = forwarded_proto
        if _valid_host(forwarded_host):
            return f"{scheme}://{forwarded_host}"
    host = request.headers.get("host", "")
    if _valid_host(host) and _host_name(host) in settings.allowed_hosts:
        return f"{scheme}://{host}"
    server = request.scope.get("server")
    if not server:
        return f"{scheme}://127.0.0.1"
    bind, port = server[0] or "", server[1]
    bind = "127.0.0.1" if bind in _WILDCARD_BINDS else bind
    bind = f"[{bind}]" if ":" in bind else bind
    default_port = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    return f"{scheme}://{bind}" if port is None or default_port else f"{scheme}://{bind}:{port}"


def ogc_base(request: Request, settings: WebSettings) -> str:
    return site_root(request, settings) + "/ogc"


def self_url(request: Request, settings: WebSettings, *, drop: tuple[str, ...] = (), **overrides: object) -> str:
    """This request's URL on the safe base, with some query parameters replaced and those in `drop` left out."""
    params = {k: v for k, v in request.query_params.items() if k not in drop}
    params.update({k: str(v) for k, v in overrides.items()})
    path = request.url.path
    root = site_root(request, settings)
    query = urlencode(params)
    return f"{root}{path}" + (f"?{query}" if query else "")
