"""Request dependencies: the store and catalogue opened in the lifespan, and the caller's role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from geoplan.access import Role, can_see_layer
from geoplan.catalog import Catalog, LayerDef
from geoplan.services.tokens import TokenRegistry
from geoplan.storage import LayerStore
from web.settings import WebSettings


@dataclass(frozen=True)
class Caller:
    """Who is asking: anonymous callers are the public."""

    role: Role
    name: str = "anonymous"

    @property
    def actor(self) -> str:
        return f"{self.role.label}:{self.name}"


def get_settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def get_store(request: Request) -> LayerStore:
    store: LayerStore = request.app.state.store
    return store


def get_catalog(request: Request) -> Catalog:
    return get_store(request).catalog


def get_caller(request: Request) -> Caller:
    """A valid bearer token gives its role; no header is the public; a bad or revoked token is refused."""
    header = request.headers.get("authorization")
    if not header:
        return Caller(Role.PUBLIC)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "use 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
    registry: TokenRegistry = request.app.state.tokens
    info = registry.verify(token.strip())
    if info is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return Caller(info.role, info.name)


def require_role(minimum: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets through callers of at least `minimum`: 401 without a token, 403 below the role."""

    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if caller.role is Role.PUBLIC:
            raise HTTPException(401, "this needs a token", headers={"WWW-Authenticate": "Bearer"})
        if caller.role < minimum:
            raise HTTPException(403, f"this needs the {minimum.label} role; your token is {caller.role.label}")
        return caller

    return check


StoreDep = Annotated[LayerStore, Depends(get_store)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]


def visible_vector_layer(catalog: Catalog, role: Role, name: str, *, what: str) -> LayerDef:
    """The vector layer `name` if `role` may see it; 404 alike for unknown, hidden and raster layers, so nobody
    learns which private layers exist. `what` names it in the message ("collection", "layer")."""
    if name not in catalog:
        raise HTTPException(404, f"no {what} '{name}'")
    layer = catalog.get(name)
    if layer.kind != "vector" or not can_see_layer(layer, role):
        raise HTTPException(404, f"no {what} '{name}'")
    return layer
