"""Who may see and change what. Roles are ordered: public < staff < planner < admin.

Anonymous users are `public`: they see only the layers and fields the catalogue marks public. The decision lives
here, in one place, so the API, the map pages and exports cannot disagree about it.
"""

from __future__ import annotations

from enum import IntEnum

from geoplan.catalog import Catalog, LayerDef
from geoplan.errors import InputError


class Role(IntEnum):
    PUBLIC = 0
    STAFF = 1
    PLANNER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls if r is not cls.PUBLIC)
            raise InputError(f"unknown role {text!r}; use one of: {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def can_see_layer(layer: LayerDef, role: Role) -> bool:
    return layer.public or role >= Role.STAFF


def visible_layers(catalog: Catalog, role: Role) -> list[LayerDef]:
    return [layer for layer in catalog if can_see_layer(layer, role)]


def visible_fields(layer: LayerDef, role: Role) -> list[str]:
    """Field names a role may read; public users get only fields marked public."""
    if role >= Role.STAFF:
        return layer.field_names
    return layer.public_fields


def can_edit(role: Role) -> bool:
    """Writes (edits, uploads, marks) need at least a staff token."""
    return role >= Role.STAFF
