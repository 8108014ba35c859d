"""The project status flow as data: which status may follow which (layers/rules/project_status.yaml).

Planned (前期) → started (已开工) → under construction (在建) → completed (已完工), with suspension (暂缓)
possible on the way and a resumption from it. The table is checked against the catalogue when it is loaded,
so the flow and the layer's allowed statuses cannot drift apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from geoplan.catalog import Catalog
from geoplan.errors import InputError, StoreError

STATUS_FLOW_FILE = Path("rules") / "project_status.yaml"


@dataclass(frozen=True)
class StatusFlow:
    statuses: tuple[str, ...]
    titles_en: Mapping[str, str]
    transitions: Mapping[str, frozenset[str]]
    initial: str
    completed: str
    suspended: str
    rule_file: Mapping[str, str] | None = None
    """The file it was read from: name and SHA-256 (progress records name it in their audit entries)."""

    def allows(self, before: str, after: str) -> bool:
        """Whether `after` may follow `before` (staying put is always allowed)."""
        return before == after or after in self.transitions.get(before, frozenset())

    def check(self, before: str, after: str) -> None:
        if after not in self.statuses:
            raise InputError(f"unknown status {after!r}; use one of {', '.join(self.statuses)}")
        if not self.allows(before, after):
            nexts = sorted(self.transitions.get(before, frozenset()), key=self.statuses.index)
            allowed = ", ".join(nexts) if nexts else "none (it is final)"
            raise InputError(f"status {before} cannot change to {after}; allowed after {before}: {allowed}")


def default_status_flow_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / STATUS_FLOW_FILE


def status_flow_for(layers_dir: Path, catalog: Catalog) -> StatusFlow:
    """The flow in the layers folder (`STATUS_FLOW_FILE`), checked against the catalogue's projects layer."""
    return load_status_flow(default_status_flow_path(layers_dir), catalog)


def load_status_flow(path: Path, catalog: Catalog | None = None) -> StatusFlow:
    """Read and check the flow; with a catalogue, its statuses must equal the projects layer's allowed values."""
    try:
        data = Path(path).read_bytes()
        raw = yaml.safe_load(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StoreError(f"cannot read the status flow {path}: {exc}") from None
    stamp = {"name": Path(path).name, "sha256": hashlib.sha256(data).hexdigest()}
    flow = replace(status_flow_from_dict(raw, source=Path(path).name), rule_file=stamp)
    if catalog is not None and "projects" in catalog:
        allowed = catalog.get("projects").field("status").allowed or ()
        if set(allowed) != set(flow.statuses):
            raise StoreError(
                f"{Path(path).name}: statuses {', '.join(flow.statuses)} differ from the projects layer's "
                f"allowed values {', '.join(map(str, allowed))}"
            )
    return flow


def status_flow_from_dict(raw: Any, *, source: str = "status flow") -> StatusFlow:
    def fail(message: str) -> StoreError:
        return StoreError(f"{source}: {message}")

    if not isinstance(raw, dict):
        raise fail("expected a mapping with statuses and transitions")
    entries = raw.get("statuses")
    if not isinstance(entries, list) or not entries:
        raise fail("'statuses' must be a non-empty list")
    statuses = tuple(str(e["code"]) if isinstance(e, dict) else str(e) for e in entries)
    if len(set(statuses)) != len(statuses):
        raise fail("a status is listed twice")
    titles = {str(e["code"]): str(e.get("title_en", "")) for e in entries if isinstance(e, dict)}
    table = raw.get("transitions")
    if not isinstance(table, dict) or set(map(str, table)) != set(statuses):
        raise fail("'transitions' must have exactly one entry per status")
    transitions: dict[str, frozenset[str]] = {}
    for before, afters in table.items():
        targets = frozenset(str(a) for a in (afters or []))
        unknown = targets - set(statuses)
        if unknown:
            raise fail(f"transitions from {before} name unknown statuses {', '.join(sorted(unknown))}")
        transitions[str(before)] = targets
    roles = {}
    for role in ("initial", "completed", "suspended"):
        value = str(raw.get(role, ""))
        if value not in statuses:
            raise fail(f"'{role}' must be one of the statuses, not {value!r}")
        roles[role] = value
    if transitions[roles["completed"]]:
        raise fail("the completed status is final: nothing may follow it")
    return StatusFlow(
        statuses=statuses,
        titles_en=titles,
        transitions=transitions,
        initial=roles["initial"],
        completed=roles["completed"],
        suspended=roles["suspended"],
    )
