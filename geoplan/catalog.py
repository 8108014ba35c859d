"""The layer catalogue: layer definitions read from layers/*.yaml.

Layers are data, not code: a new plan layer is a new YAML file. Every store table, every import validation and
every public/private decision is derived from these definitions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from geoplan.errors import NotFoundError, StoreError

FieldType = Literal["string", "integer", "float", "boolean"]
GeometryType = Literal["MultiPolygon", "MultiLineString", "Point"]
LayerKind = Literal["vector", "raster"]

FIELD_TYPES: tuple[str, ...] = ("string", "integer", "float", "boolean")
GEOMETRY_TYPES: tuple[str, ...] = ("MultiPolygon", "MultiLineString", "Point")
# Names end up as SQL identifiers in two databases: keep them plain.
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_COLUMNS = frozenset({"fid", "geom", "geometry"})
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class FieldDef:
    """One attribute of a layer."""

    name: str
    type: FieldType
    title_zh: str = ""
    required: bool = False
    public: bool = False
    allowed: tuple[Any, ...] | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class LayerDef:
    """One layer: its schema, geometry type, style and provenance."""

    name: str
    title_zh: str
    title_en: str
    kind: LayerKind
    geometry: GeometryType | None
    id_field: str | None
    fields: tuple[FieldDef, ...]
    synthetic: bool
    public: bool
    description: str = ""
    """For the data's users and the OGC API (English)."""
    description_zh: str = ""
    """What the public pages show: required (in Chinese) for a public layer."""
    group: str = ""
    style: dict[str, Any] = field(default_factory=dict)
    raster: dict[str, Any] = field(default_factory=dict)
    must_lie_in_district: bool = True
    edit_role: str = "planner"
    """The least role that may change this layer (web edits and uploads): staff, planner or admin."""

    def field(self, name: str) -> FieldDef:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"layer '{self.name}' has no field '{name}'")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def public_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.public]

    @property
    def required_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


class Catalog:
    """All layer definitions, by name, in file order."""

    def __init__(self, layers: list[LayerDef]) -> None:
        self._layers = {layer.name: layer for layer in layers}

    def __iter__(self) -> Iterator[LayerDef]:
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, name: object) -> bool:
        return name in self._layers

    def get(self, name: str) -> LayerDef:
        try:
            return self._layers[name]
        except KeyError:
            known = ", ".join(sorted(self._layers))
            raise NotFoundError(f"unknown layer '{name}'; the catalogue has: {known}") from None

    @property
    def names(self) -> list[str]:
        return list(self._layers)

    def vector_layers(self) -> list[LayerDef]:
        return [layer for layer in self if layer.kind == "vector"]

    def raster_layers(self) -> list[LayerDef]:
        return [layer for layer in self if layer.kind == "raster"]


def load_catalog(layers_dir: Path) -> Catalog:
    """Read every *.yaml in `layers_dir` (sorted by an optional `order`, then by file name)."""
    files = sorted(layers_dir.glob("*.yaml"))
    if not files:
        raise StoreError(f"no layer definitions (*.yaml) in {layers_dir}")
    parsed = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        if not isinstance(raw, dict) or "name" not in raw:
            continue  # other YAML files (rules, settings) live here too
        parsed.append((raw.get("order", 1000), path.name, _layer_from_dict(raw, path)))
    parsed.sort(key=lambda item: (item[0], item[1]))
    return Catalog([layer for _, _, layer in parsed])


def _layer_from_dict(raw: dict[str, Any], path: Path) -> LayerDef:
    def fail(message: str) -> StoreError:
        return StoreError(f"{path.name}: {message}")

    name = raw["name"]
    if not _IDENTIFIER.match(name):
        raise fail(f"layer name '{name}' must be lower-case letters, digits and underscores")
    kind = raw.get("kind", "vector")
    if kind not in ("vector", "raster"):
        raise fail(f"kind must be vector or raster, not {kind!r}")
    geometry = raw.get("geometry")
    if kind == "vector" and geometry not in GEOMETRY_TYPES:
        raise fail(f"geometry must be one of {', '.join(GEOMETRY_TYPES)}, not {geometry!r}")
    fields = tuple(_field_from_dict(f, fail) for f in raw.get("fields", []))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise fail("duplicate field names")
    id_field = raw.get("id_field")
    if id_field is not None and id_field not in names:
        raise fail(f"id_field '{id_field}' is not one of its fields")
    public = bool(raw.get("public", False))
    description_zh = str(raw.get("description_zh", "")).strip()
    # The public pages are read by residents: a public layer describes itself in Chinese.
    if public and not _CJK.search(description_zh):
        raise fail("a public layer needs description_zh, a description in Chinese for the public pages")
    return LayerDef(
        name=name,
        title_zh=raw.get("title_zh", name),
        title_en=raw.get("title_en", name),
        kind=kind,
        geometry=geometry if kind == "vector" else None,
        id_field=id_field,
        fields=fields,
        synthetic=bool(raw.get("synthetic", False)),
        public=public,
        description=raw.get("description", ""),
        description_zh=description_zh,
        group=raw.get("group", ""),
        style=dict(raw.get("style", {})),
        raster=dict(raw.get("raster", {})),
        must_lie_in_district=bool(raw.get("must_lie_in_district", True)),
        edit_role=_edit_role(raw.get("edit_role", "planner"), fail),
    )


def _edit_role(value: Any, fail: Any) -> str:
    if value not in ("staff", "planner", "admin"):
        raise fail(f"edit_role must be staff, planner or admin, not {value!r}")
    return str(value)


def _field_from_dict(raw: dict[str, Any], fail: Any) -> FieldDef:
    name = raw.get("name", "")
    if not _IDENTIFIER.match(name) or name in RESERVED_COLUMNS:
        raise fail(f"field name {name!r} is not a plain identifier or is reserved")
    ftype = raw.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise fail(f"field '{name}': type must be one of {', '.join(FIELD_TYPES)}")
    allowed = raw.get("allowed")
    return FieldDef(
        name=name,
        type=ftype,
        title_zh=raw.get("title_zh", ""),
        required=bool(raw.get("required", False)),
        public=bool(raw.get("public", False)),
        allowed=tuple(allowed) if allowed is not None else None,
        max_length=raw.get("max_length", 500 if ftype == "string" else None),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        description=raw.get("description", ""),
    )
