"""Which layers of a store hold synthetic demo data now: the catalogue's flag, confirmed by the audit log.

`synthetic: true` in layers/*.yaml says the demo fills the layer with made-up data. Whether the store still
holds that data is a fact about the store: every write is in its audit log with its actor and mode. A layer's
contents date from its latest full write (`write:replace`, or `write:raster` for a raster); the writes after it
(`write:append`, `update`) add to them. So a layer is synthetic now when the catalogue marks it and `geoplan demo`
made any of what it holds:

- only the demo wrote it → `demo`;
- the demo's data with real rows appended or edited by someone else → `partly` (still synthetic: say so);
- a later replace by anyone else → `real`; nothing written → `empty`.

The answer is cached per store state (each layer's `layer_version`, one indexed query each), so pages and APIs
can ask on every request.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Literal

from geoplan.catalog import LayerDef
from geoplan.storage import LayerStore

DEMO_ACTOR = "geoplan demo"
"""The actor `geoplan demo` writes with (geoplan/commands/store.py)."""

Origin = Literal["demo", "partly", "real", "empty"]
SYNTHETIC_ORIGINS: frozenset[Origin] = frozenset({"demo", "partly"})
FULL_WRITES = frozenset({"write:replace", "write:raster"})
ADDING_WRITES = frozenset({"write:append", "update"})
_PAGE = 200
_KEEP = 64

ORIGIN_ZH: dict[Origin, str] = {
    "demo": "合成的演示数据",
    "partly": "部分为合成的演示数据",
    "real": "真实数据",
    "empty": "无数据",
}


@dataclass(frozen=True)
class LayerOrigin:
    """Where one layer's current contents come from."""

    name: str
    title_zh: str
    origin: Origin
    synthetic: bool
    """The catalogue marks the layer synthetic and the demo made some of what it holds now."""


def _origin(store: LayerStore, layer: str) -> Origin:
    """Walk the layer's audit entries, newest first, back to its latest full write."""
    actors: list[str] = []
    offset = 0
    while True:
        entries = store.audit_log(layer=layer, limit=_PAGE, offset=offset)
        for entry in entries:
            if entry.action in FULL_WRITES or entry.action in ADDING_WRITES:
                actors.append(entry.actor)
            if entry.action in FULL_WRITES:
                return _from_actors(actors)
        if len(entries) < _PAGE:
            return _from_actors(actors)
        offset += _PAGE


def _from_actors(actors: list[str]) -> Origin:
    demo = DEMO_ACTOR in actors
    other = any(actor != DEMO_ACTOR for actor in actors)
    if demo:
        return "partly" if other else "demo"
    return "real" if other else "empty"


_LOCK = threading.Lock()
# Per open store (weakly: a closed, dropped store takes its answers with it), per layer and version.
_ANSWERS: weakref.WeakKeyDictionary[LayerStore, dict[tuple[str, int], Origin]] = weakref.WeakKeyDictionary()


def known_synthetic(store: LayerStore, layer: LayerDef, version: int) -> bool | None:
    """Whether `layer` at `version` (its current `layer_version`, already known to the caller) holds demo data,
    if that is cached; None when it must be read (`is_synthetic`, off an event loop). Queries nothing."""
    if not layer.synthetic:
        return False
    with _LOCK:
        found = _ANSWERS.get(store, {}).get((layer.name, version))
    return None if found is None else found in SYNTHETIC_ORIGINS


def is_synthetic(store: LayerStore, layer: LayerDef, *, version: int | None = None) -> bool:
    """Whether `layer` holds synthetic demo data now; `version`: its current version when the caller has it."""
    return layer.synthetic and _cached_origin(store, layer.name, version) in SYNTHETIC_ORIGINS


def _cached_origin(store: LayerStore, layer: str, version: int | None = None) -> Origin:
    """The layer's origin at its current version; computed outside the lock (it only reads the log)."""
    key = (layer, store.layer_version(layer) if version is None else version)
    with _LOCK:
        found = _ANSWERS.get(store, {}).get(key)
    if found is not None:
        return found
    origin = _origin(store, layer)
    with _LOCK:
        answers = _ANSWERS.setdefault(store, {})
        answers[key] = origin
        if len(answers) > _KEEP:  # old versions of edited layers: forget the oldest
            del answers[next(iter(answers))]
    return origin


def layer_origins(store: LayerStore) -> tuple[LayerOrigin, ...]:
    """Every layer the catalogue marks synthetic, with where its contents come from, in catalogue order.

    Layers the catalogue does not mark synthetic are real whatever wrote them and are not listed. Costs one
    indexed version query per listed layer once the answers are cached.
    """
    origins = []
    for layer in store.catalog:
        if layer.synthetic:
            origin = _cached_origin(store, layer.name)
            origins.append(LayerOrigin(layer.name, layer.title_zh, origin, origin in SYNTHETIC_ORIGINS))
    return tuple(origins)


def synthetic_now(store: LayerStore) -> frozenset[str]:
    """The names of the layers that hold synthetic demo data now (wholly or partly)."""
    return frozenset(o.name for o in layer_origins(store) if o.synthetic)


def synthetic_layers(store: LayerStore) -> tuple[str, ...]:
    """`synthetic_now` in catalogue order."""
    return tuple(o.name for o in layer_origins(store) if o.synthetic)


def synthetic_titles(store: LayerStore, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The Chinese titles of the synthetic layers (of `names` only, when given), a 'partly' layer marked so."""
    return tuple(
        o.title_zh + ("（部分）" if o.origin == "partly" else "")
        for o in layer_origins(store)
        if o.synthetic and (names is None or o.name in names)
    )


def synthetic_banner(store: LayerStore, names: tuple[str, ...] | None = None, *, tail: str = "，非官方数据") -> str:
    """'示意数据 / synthetic：人口栅格、文化设施为合成的演示数据，非官方数据。' naming the synthetic layers (of `names`,
    in catalogue order); `tail` says what that means for the page. '' when none is synthetic."""
    titles = synthetic_titles(store, names)
    if not titles:
        return ""
    return f"示意数据 / synthetic：{'、'.join(titles)}为合成的演示数据{tail}。"


OSM_ID_PREFIX = "osm-"
"""The ids the OpenStreetMap import gives (geoplan/io/osm.py: osm-w<way>-<piece>, osm-r<relation>)."""


def from_openstreetmap(store: LayerStore, layer: LayerDef) -> bool:
    """Whether `layer`'s contents came from an OpenStreetMap import (its first feature has an OSM id), so a map
    drawing it must credit "© OpenStreetMap contributors" (ODbL). One feature read: the import replaces the layer
    whole, so its first row tells (an OSM extract appended to other data after its first row is not seen)."""
    if layer.id_field is None:
        return False
    first = next(store.read_batches(layer.name, rows=1), None)
    if first is None or first.empty:
        return False
    return str(first[layer.id_field].iloc[0]).startswith(OSM_ID_PREFIX)
