"""Indicator tables computed for the web API, kept in memory and keyed by everything they depend on.

Computing every indicator takes several seconds on the demo store (two coverage runs and the conflict overlay),
so each table is computed once per state: the key is `services.indicators.state_key` (every layer's store
version, the newest mark, the progress records, the definitions and rule files) and the moment ("now" or an
earlier instant). An edit changes the key, so the next request sees it. A second request for the same key waits for
the first and reuses its answer (web/computed_once.py).
"""

from __future__ import annotations

from pathlib import Path

from geoplan.monitoring.asof import AsOf
from geoplan.monitoring.indicator_defs import IndicatorSet
from geoplan.services.indicators import IndicatorRun, compute_indicators, definitions_for, state_key
from geoplan.storage import LayerStore
from web.computed_once import ComputedOnce


class IndicatorCache:
    """Blocking: call from a worker thread (run_in_threadpool)."""

    def __init__(self, store: LayerStore, layers_dir: Path, *, keep: int = 8) -> None:
        self.store = store
        self._layers_dir = Path(layers_dir)
        self._runs: ComputedOnce[IndicatorRun] = ComputedOnce(keep=keep)

    @property
    def computations(self) -> int:
        """How many times the indicators were computed (for tests and logs)."""
        return self._runs.builds

    def definitions(self) -> IndicatorSet:
        return definitions_for(self.store, self._layers_dir)

    def run(self, as_of: AsOf) -> IndicatorRun:
        """Every indicator as of `as_of`. The state is read before the data, so an answer is never older than
        its key."""
        definitions = self.definitions()
        key = (
            state_key(self.store, layers_dir=self._layers_dir, definitions=definitions),
            "now" if as_of.current else as_of.iso,
        )
        return self._runs.get(
            key,
            lambda: compute_indicators(self.store, layers_dir=self._layers_dir, as_of=as_of, definitions=definitions),
        )
