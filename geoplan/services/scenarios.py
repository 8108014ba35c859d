"""Scenarios (规划方案): draft edits of the live layers, seen and analysed as a store, then adopted or discarded.

The calls a command or a router makes, each on an open live store:

- `create_scenario`, `list_scenarios`, `get_scenario`, `scenario_edits`: the scenarios kept in the store's side
  tables (`scenario_store`), each with its author (and token) for the API to show it to its author only;
- `add_features` (new features, or with `replace` replacements of existing ones) and `remove_features`: edits
  validated as an import is (`validation.validate`, strict), against the live layers with the scenario applied;
- `open_view`: the scenario as a read-only store (`scenario_view.ScenarioView`) for any service;
- `stale_features`: the scenario's features that changed live since they were drafted;
- `adopt_scenario`: every edit in one transaction, validated again and audited, refused (ConflictError naming
  the features) when a feature it edits changed live since it was drafted; `discard_scenario` drops it.

Only the features a scenario edits decide whether it is stale: edits of other features of the same layers since
its base versions do not stop an adoption, since the scenario's edits still apply to exactly the features they were
drafted against, and a busy layer (projects are edited daily) would otherwise make every scenario unadoptable.
The report of an adoption names the layers that moved since the base, and the diff is always against live now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from geoplan.catalog import Catalog, LayerDef
from geoplan.errors import ConflictError, CRSError, InputError, NotFoundError, ValidationFailed
from geoplan.io import DEFAULT_MAX_BYTES, read_file
from geoplan.services.ingest import district_outline
from geoplan.services.scenario_store import (
    OP_TITLES,
    EditOp,
    FeatureEdit,
    Record,
    Scenario,
    adoption_statements,
    scenario_registry,
)
from geoplan.services.scenario_view import ScenarioView, feature_records, records_frame
from geoplan.storage import LayerStore, require_initialised
from geoplan.storage.base import EditBatches, FeatureReader, LayerEdits
from geoplan.validation import validate

__all__ = [
    "AdoptReport",
    "EditReport",
    "StaleFeature",
    "add_features",
    "add_file",
    "adopt_scenario",
    "create_scenario",
    "discard_scenario",
    "get_scenario",
    "list_scenarios",
    "open_view",
    "remove_features",
    "scenario_edits",
    "scenario_layer",
    "stale_features",
]

REASON_TITLES = {
    "changed": "现状中已被修改",
    "deleted": "现状中已被删除",
    "created": "现状中已新增同编号要素",
}


@dataclass(frozen=True)
class EditReport:
    """What one `add_features` / `remove_features` call changed in the scenario."""

    scenario: str
    layer: str
    ops: dict[str, int]
    """Net edits by kind after the call, for these features: create, replace, delete (and `dropped`: created
    features deleted again, so no edit is left)."""
    repairs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StaleFeature:
    """A feature the scenario edits that changed live since it was drafted: `reason` changed, deleted, created."""

    layer: str
    feature_id: str
    reason: str

    def describe(self) -> str:
        return f"{self.layer} {self.feature_id} ({self.reason} live)"

    def describe_zh(self) -> str:
        return f"{self.layer} {self.feature_id}（{REASON_TITLES[self.reason]}）"


@dataclass(frozen=True)
class AdoptReport:
    """An adopted scenario: features written per layer, and the layers whose other features changed since base."""

    scenario: str
    written: dict[str, int]
    moved_layers: list[str]


# --------------------------------------------------------------------------------------------- the scenarios


def create_scenario(store: LayerStore, name: str, *, author: str, token: str | None = None) -> Scenario:
    """A new empty scenario of `author` (the actor, e.g. "planner:li"; `token`: the name of the token used)."""
    require_initialised(store)
    registry = scenario_registry(store)
    try:
        return registry.create(name, author=author, token=token)
    finally:
        registry.close()


def list_scenarios(store: LayerStore, *, author: str | None = None) -> list[Scenario]:
    """Every scenario, or one author's, oldest first."""
    registry = scenario_registry(store)
    try:
        return registry.all(author=author)
    finally:
        registry.close()


def get_scenario(store: LayerStore, name: str) -> Scenario:
    """The scenario of that name (NotFoundError, in English and Chinese, when there is none)."""
    registry = scenario_registry(store)
    try:
        return registry.get(name)
    finally:
        registry.close()


def scenario_edits(store: LayerStore, name: str) -> tuple[Scenario, list[FeatureEdit]]:
    """The scenario and its net edits, in the order they were made."""
    registry = scenario_registry(store)
    try:
        scenario = registry.get(name)
        return scenario, registry.edits(scenario)
    finally:
        registry.close()


def open_view(store: LayerStore, name: str) -> ScenarioView:
    """The scenario as a read-only store: live layers with its edits applied (nothing is copied)."""
    scenario, edits = scenario_edits(store, name)
    return ScenarioView(store, edits, name=scenario.name)


def scenario_layer(store: LayerStore, layer: str) -> LayerDef:
    """The layer, if a scenario can edit it: a vector layer of the catalogue with an id field."""
    if layer not in store.catalog:
        names = ", ".join(store.catalog.names)
        raise NotFoundError(f"no layer {layer!r}; layers: {names}", zh=f"没有图层“{layer}”（现有图层：{names}）。")
    definition = store.catalog.get(layer)
    if definition.kind != "vector" or definition.id_field is None:
        raise InputError(
            f"layer {layer!r} cannot be edited in a scenario: only vector layers with an id field can",
            zh=f"图层“{layer}”不能在方案中编辑：只有带编号字段的矢量图层可以。",
        )
    return definition


# --------------------------------------------------------------------------------------------- edits


def add_features(
    store: LayerStore,
    name: str,
    layer: str,
    frame: gpd.GeoDataFrame,
    *,
    actor: str,
    replace: bool = False,
    source: str = "request body",
    refuse_unknown: bool = False,
) -> EditReport:
    """Add new features to the scenario (ids not yet in the layer as the scenario sees it), or with `replace`
    replacements of features it has. Validated strictly, as an import, before anything is stored; properties the
    layer does not define are dropped with a warning, or with `refuse_unknown` (the API's GeoJSON) refused."""
    definition = scenario_layer(store, layer)
    id_field = definition.id_field
    assert id_field is not None
    registry = scenario_registry(store)
    try:
        scenario = registry.get(name)
        prior = {e.feature_id: e for e in registry.edits(scenario, layer)}
        view = ScenarioView(store, registry.edits(scenario), name=scenario.name)
        seen = {str(v) for v in view.read(layer)[id_field]}
        result = validate(
            frame,
            definition,
            source=source,
            district=district_outline(view) if definition.must_lie_in_district else None,
            existing_ids=None if replace else seen,
            strict=True,
            refuse_unknown=refuse_unknown,
        )
        records = feature_records(definition, result.frame)
        ids = [str(r["properties"][id_field]) for r in records]
        if replace:
            _require_present(definition, ids, seen)
        bases = _live_records(store, definition, [i for i in ids if i not in prior])
        edits = []
        for feature_id, record in zip(ids, records, strict=True):
            before = prior.get(feature_id)
            op: EditOp
            if before is None:
                op, base = ("replace", bases[feature_id]) if replace else ("create", None)
            elif before.op == "create":
                op, base = "create", None
            else:  # a replaced or deleted live feature: it stays a replacement of the feature it was drafted on
                op, base = "replace", before.base
            edits.append(FeatureEdit(layer, feature_id, op, record, base))
        registry.put_edits(scenario, layer, base_version=store.layer_version(layer), edits=edits, actor=actor)
    finally:
        registry.close()
    return EditReport(scenario.name, layer, _count_ops(edits), [str(p) for p in result.repairs])


def add_file(
    store: LayerStore,
    name: str,
    layer: str,
    path: Path,
    *,
    actor: str,
    replace: bool = False,
    crs: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> EditReport:
    """`add_features` with the features of a file (any format `geoplan import` reads; `crs` when it has none)."""
    scenario_layer(store, layer)  # an unknown layer is named before the file is read
    get_scenario(store, name)
    try:
        frame = read_file(path, crs=crs, max_bytes=max_bytes)
    except InputError as exc:
        if exc.zh or isinstance(exc, ValidationFailed):
            raise
        zh = (
            f"文件“{path.name}”的坐标系有问题：请用 --crs 指明（如 EPSG:4547、gcj02）。"
            if isinstance(exc, CRSError)
            else f"文件“{path.name}”无法读取：不存在、格式不对、已损坏或不是受支持的地理数据文件。"
        )
        raise type(exc)(str(exc), zh=zh) from None
    return add_features(store, name, layer, frame, actor=actor, replace=replace, source=path.name)


def remove_features(store: LayerStore, name: str, layer: str, ids: Sequence[str], *, actor: str) -> EditReport:
    """Delete features in the scenario: live ones become deletions, ones the scenario created are forgotten."""
    definition = scenario_layer(store, layer)
    id_field = definition.id_field
    assert id_field is not None
    wanted = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
    if not wanted:
        raise InputError("name the ids of the features to delete", zh="请指明要删除的要素编号。")
    registry = scenario_registry(store)
    try:
        scenario = registry.get(name)
        prior = {e.feature_id: e for e in registry.edits(scenario, layer)}
        view = ScenarioView(store, registry.edits(scenario), name=scenario.name)
        _require_present(definition, wanted, {str(v) for v in view.read(layer)[id_field]})
        bases = _live_records(store, definition, [i for i in wanted if i not in prior])
        edits, dropped = [], []
        for feature_id in wanted:
            before = prior.get(feature_id)
            if before is not None and before.op == "create":
                dropped.append(feature_id)
            else:
                base = bases[feature_id] if before is None else before.base
                edits.append(FeatureEdit(layer, feature_id, "delete", None, base))
        registry.put_edits(
            scenario, layer, base_version=store.layer_version(layer), edits=edits, dropped=dropped, actor=actor
        )
    finally:
        registry.close()
    return EditReport(scenario.name, layer, {**_count_ops(edits), "dropped": len(dropped)})


def _count_ops(edits: Sequence[FeatureEdit]) -> dict[str, int]:
    return {op: sum(e.op == op for e in edits) for op in OP_TITLES}


def _require_present(layer: LayerDef, ids: Sequence[str], present: set[str]) -> None:
    missing = [i for i in ids if i not in present]
    if missing:
        shown = ", ".join(missing[:10])
        raise NotFoundError(
            f"layer {layer.name!r} has no feature with {layer.id_field} {shown} (in this scenario)",
            zh=f"图层“{layer.name}”（按本方案）中没有编号为 {shown} 的要素。",
        )


def _live_records(store: LayerStore, layer: LayerDef, ids: Sequence[str]) -> dict[str, Record]:
    """The live features of these ids as scenario records (the base an edit is drafted against)."""
    if not ids:
        return {}
    assert layer.id_field is not None
    live = store.read(layer.name)
    found = live[live[layer.id_field].astype(str).isin(set(ids)).to_numpy()]
    return {str(r["properties"][layer.id_field]): r for r in feature_records(layer, found)}


# --------------------------------------------------------------------------------------------- staleness, adoption


def stale_features(store: LayerStore, name: str) -> list[StaleFeature]:
    """The features the scenario edits that changed live since they were drafted (empty: it can be adopted)."""
    _, edits = scenario_edits(store, name)
    return _stale(store.catalog, edits, lambda layer, ids: _read_ids(store, layer, ids))


def _read_ids(store: LayerStore, layer: str, ids: list[str]) -> gpd.GeoDataFrame:
    definition = store.catalog.get(layer)
    assert definition.id_field is not None
    live = store.read(layer)
    return live[live[definition.id_field].astype(str).isin(set(ids)).to_numpy()]


def _stale(catalog: Catalog, edits: Sequence[FeatureEdit], reader: FeatureReader) -> list[StaleFeature]:
    found: list[StaleFeature] = []
    by_layer: dict[str, list[FeatureEdit]] = {}
    for edit in edits:
        by_layer.setdefault(edit.layer, []).append(edit)
    for layer, layer_edits in by_layer.items():
        definition = catalog.get(layer)
        current = feature_records(definition, reader(layer, [e.feature_id for e in layer_edits]))
        now = {str(r["properties"][definition.id_field]): r for r in current}
        for edit in layer_edits:
            live = now.get(edit.feature_id)
            if edit.op == "create":
                if live is not None:
                    found.append(StaleFeature(layer, edit.feature_id, "created"))
            elif live is None:
                found.append(StaleFeature(layer, edit.feature_id, "deleted"))
            elif live != edit.base:
                found.append(StaleFeature(layer, edit.feature_id, "changed"))
    return found


def _stale_error(name: str, stale: Sequence[StaleFeature]) -> ConflictError:
    shown, shown_zh = "; ".join(s.describe() for s in stale[:20]), "；".join(s.describe_zh() for s in stale[:20])
    more = f" (and {len(stale) - 20} more)" if len(stale) > 20 else ""
    return ConflictError(
        f"scenario {name!r} is stale: {len(stale)} feature(s) it edits changed live since it was drafted: "
        f"{shown}{more}. Nothing was adopted; redraw these edits and adopt again.",
        zh=f"方案“{name}”所依据的现状已变化，有 {len(stale)} 个要素与现状冲突：{shown_zh}。"
        "未采纳任何修改；请按现状重新编辑这些要素后再采纳。",
        features=[(s.layer, s.feature_id, s.reason) for s in stale],
    )


def adopt_scenario(store: LayerStore, name: str, *, actor: str) -> AdoptReport:
    """Apply every edit of the scenario to the live layers in ONE transaction and drop the scenario in it too:
    validated again (strict), audited (each layer's changes, and `scenario:adopt`), refused with the features
    named when any it edits changed live since it was drafted (checked inside the transaction)."""
    if not isinstance(store, EditBatches):
        raise InputError(f"the store {store.url} cannot apply edits of several layers at once")
    scenario, edits = scenario_edits(store, name)
    if not edits:
        raise InputError(
            f"scenario {name!r} has no edits to adopt; discard it instead",
            zh=f"方案“{name}”没有任何修改，无可采纳；可将其放弃。",
        )
    view = ScenarioView(store, edits, name=scenario.name)
    batches = [_layer_edits(view, layer, [e for e in edits if e.layer == layer]) for layer in view.edited_layers]
    moved = [layer for layer, base in sorted(scenario.bases.items()) if store.layer_version(layer) != base]

    def guard(reader: FeatureReader) -> None:
        stale = _stale(store.catalog, edits, reader)
        if stale:
            raise _stale_error(scenario.name, stale)

    detail = {
        "mode": "scenario",
        "ids": [scenario.name],
        "scenario": scenario.name,
        "author": scenario.author,
        "bases": scenario.bases,
        "layers": {b.layer: _count_ops([e for e in edits if e.layer == b.layer]) for b in batches},
    }
    written = store.apply_edits(
        batches, actor=actor, guard=guard, after=adoption_statements(scenario, actor=actor, detail=detail)
    )
    return AdoptReport(scenario.name, written, moved)


def _layer_edits(view: ScenarioView, layer: str, edits: Sequence[FeatureEdit]) -> LayerEdits:
    """One layer's edits as a store batch, the features validated again as an import is (strict)."""
    definition = view.catalog.get(layer)
    district = district_outline(view) if definition.must_lie_in_district else None

    def checked(op: str) -> gpd.GeoDataFrame | None:
        records = [e.feature for e in edits if e.op == op and e.feature is not None]
        if not records:
            return None
        frame = records_frame(definition, records)
        source = f"scenario {view.name} ({layer})"
        return validate(frame, definition, source=source, district=district, strict=True).frame

    deletes = tuple(e.feature_id for e in edits if e.op == "delete")
    return LayerEdits(layer, creates=checked("create"), replaces=checked("replace"), deletes=deletes)


def discard_scenario(store: LayerStore, name: str, *, actor: str) -> None:
    """Drop the scenario and its edits (audited as `scenario:discard`); the live layers are untouched."""
    registry = scenario_registry(store)
    try:
        registry.discard(registry.get(name), actor=actor)
    finally:
        registry.close()
