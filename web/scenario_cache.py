"""Scenario diffs for the web API, each side kept in memory and keyed by everything it depends on.

A diff runs the overlaps, the life circles and the indicators on the live layers and on the scenario (tens of
seconds on the demo). Each side is an `Analyses` keyed by `services.indicators.state_key` of the store it ran on:
every layer's version, the newest mark, the definitions and the rule files. On the live store that is the live
state; on a scenario view the edited layers' versions are negative numbers made from the scenario's edits, so a
scenario's side is reused until it or the live layers change, and the live side is shared by every scenario. A
scenario without edits has the live key, and so the live side. The state is read before the data, so an answer is
never older than its key; a side is never computed twice at once (web.computed_once).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from geoplan.services.indicators import definitions_for, state_key
from geoplan.services.rule_files import rules_for
from geoplan.services.scenario_diff import Analyses, ScenarioDiff, analyse, compare
from geoplan.services.scenarios import open_view
from geoplan.storage import LayerStore
from web.computed_once import ComputedOnce

__all__ = ["ScenarioDiffCache"]


class ScenarioDiffCache:
    """Blocking: call from a worker thread (run_in_threadpool)."""

    def __init__(self, store: LayerStore, layers_dir: Path, *, keep: int = 6) -> None:
        self._store = store
        self._layers_dir = Path(layers_dir)
        self._sides: ComputedOnce[Analyses] = ComputedOnce(keep=keep)
        self._diffs: ComputedOnce[ScenarioDiff] = ComputedOnce(keep=keep)

    @property
    def computations(self) -> int:
        """How many sides were analysed (for tests and logs)."""
        return self._sides.builds

    def _side(self, store: LayerStore) -> tuple[str, Analyses]:
        key = state_key(store, layers_dir=self._layers_dir, definitions=definitions_for(store, self._layers_dir))
        rules = rules_for(store.catalog, self._layers_dir)
        return key, self._sides.get(key, lambda: analyse(store, rules=rules, layers_dir=self._layers_dir))

    def diff(self, name: str) -> tuple[str, ScenarioDiff]:
        """The scenario `name` against live now, and a digest of both sides' keys (the ETag's base)."""
        view = open_view(self._store, name)
        live_key, live = self._side(self._store)
        draft_key, draft = self._side(view)
        digest = hashlib.sha256(f"{view.name}|{live_key}|{draft_key}".encode()).hexdigest()[:24]
        return digest, self._diffs.get(digest, lambda: compare(view.name, live=live, draft=draft))
