"""The 多规合一 patch tables computed for the web API, kept in memory and keyed by everything they depend on.

The overlay takes about a second on the demo store, so each patch table is computed once: the key is the rules,
the sliver thresholds, the store version of every layer the rules and the town/village lookup read, and the
newest mark. An edit or a mark changes the key, so the next request sees it; a computation never runs twice at
once for the same key.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.analysis.summary import by_severity
from geoplan.beijing_time import api_time
from geoplan.errors import InputError, NotFoundError
from geoplan.geojson import feature_strings
from geoplan.services.overlap import ADMIN_LAYERS, LOOKUP_SETTINGS
from geoplan.services.overlap import run_overlaps as compute_overlaps
from geoplan.services.overlap_marks import Mark, MarkRegistry, attach_marks, mark_registry
from geoplan.services.rule_files import default_rules_path, rules_for
from geoplan.storage import LayerStore
from web.computed_once import ComputedOnce, FileBacked

GEOJSON = "application/geo+json"
DEFAULTS = OverlapSettings()


@dataclass(frozen=True)
class PatchTable:
    """One computed, marked and serialised patch table: requests are answered from it until its key changes."""

    digest: str
    """A short hash of the key: the ETag's base."""
    rules: tuple[ConflictRule, ...]
    settings: OverlapSettings
    frame: gpd.GeoDataFrame
    """The patches with their marks and rule titles: high severity first, then by area (largest first)."""
    features: list[str]
    """One serialised GeoJSON Feature per row of `frame`."""
    rows: dict[str, int]
    """patch_id -> row."""


class OverlapCache:
    """Patch tables keyed by their inputs' state; each is computed once, however many requests ask at once.

    Two levels: the overlay itself (seconds, keyed by rules, thresholds and layer versions) and the table with
    the current marks attached and serialised (milliseconds, keyed additionally by the newest mark), so a mark
    never re-runs the overlay. The state is read *before* the data, so a table is never older than its key.
    Blocking: call from a worker thread (run_in_threadpool).
    """

    def __init__(self, store: LayerStore, layers_dir: Path, *, workers: int = 2, keep: int = 8) -> None:
        self._store = store
        self._layers_dir = Path(layers_dir)
        self._workers = workers
        self._guard = threading.Lock()
        self._overlays: ComputedOnce[gpd.GeoDataFrame] = ComputedOnce(keep=keep)
        self._tables: ComputedOnce[PatchTable] = ComputedOnce(keep=keep)
        self._rules: FileBacked[tuple[ConflictRule, ...]] = FileBacked(
            lambda _: tuple(rules_for(self._store.catalog, self._layers_dir))
        )
        # Opened now, not on first use: it creates the marks table, and a CREATE TABLE while GDAL is reading the
        # same GeoPackage makes those reads fail ("malformed database schema"). At start-up nothing is reading.
        self._registry = mark_registry(store)
        self.overlay_runs = 0
        """How many times the overlay has run (for tests and logs)."""

    # ----------------------------------------------------------------------------------------- inputs

    def rules(self) -> tuple[ConflictRule, ...]:
        """The rule table, re-read when its file changes (a rules edit needs no restart)."""
        return self._rules.get(
            default_rules_path(self._layers_dir), missing=lambda path: InputError(f"rules file {path} not found")
        )

    def registry(self) -> MarkRegistry:
        return self._registry

    def marks_stamp(self) -> int:
        """The newest mark's row id: every new mark changes it."""
        return self.registry().latest_id()

    def _layer_versions(self, rules: tuple[ConflictRule, ...]) -> tuple[tuple[str, int], ...]:
        catalog = self._store.catalog
        names = [*layers_of(rules), *(n for n in ADMIN_LAYERS if n in catalog)]
        return tuple((name, self._store.layer_version(name)) for name in names)

    # ----------------------------------------------------------------------------------------- tables

    def table(self, settings: OverlapSettings = DEFAULTS) -> PatchTable:
        rules = self.rules()
        overlay_key = (rules, settings, self._layer_versions(rules))
        key = (overlay_key, self.marks_stamp())
        return self._tables.get(key, lambda: self._build(key, rules, settings))

    def find(self, patch_id: str, settings: OverlapSettings = DEFAULTS) -> tuple[PatchTable, int]:
        """The patch in the table for `settings`, or else in the table of every patch with any area (a patch
        the thresholds drop can still be opened and marked, as `mark_patch` allows)."""
        for candidate in (settings, LOOKUP_SETTINGS):
            found = self.table(candidate)
            if patch_id in found.rows:
                return found, found.rows[patch_id]
        raise NotFoundError(f"no conflict patch {patch_id!r}")

    def history(self, patch_id: str) -> list[Mark]:
        return self.registry().history(patch_id)

    def _build(
        self, key: tuple[Hashable, int], rules: tuple[ConflictRule, ...], settings: OverlapSettings
    ) -> PatchTable:
        patches = self._overlays.get(key[0], lambda: self._overlay(rules, settings))
        # High first, then by area: the order the list is read in (the engine's order only keeps runs comparable).
        frame = _with_titles(by_severity(attach_marks(patches, self.registry().current())), rules)
        # the mark's time as every answer gives times: Beijing time with its offset (also in the downloads)
        frame["mark_at"] = pd.Series([api_time(v) for v in frame["mark_at"]], index=frame.index, dtype=object)
        fields = [c for c in frame.columns if c != "geometry"]
        return PatchTable(
            digest=hashlib.sha256(repr(key).encode()).hexdigest()[:24],
            rules=rules,
            settings=settings,
            frame=frame,
            features=feature_strings(frame, fields=fields, id_field="patch_id"),
            rows={str(pid): i for i, pid in enumerate(frame["patch_id"])},
        )

    def _overlay(self, rules: tuple[ConflictRule, ...], settings: OverlapSettings) -> gpd.GeoDataFrame:
        with self._guard:  # two different keys may be built at once
            self.overlay_runs += 1
        return compute_overlaps(self._store, rules=rules, settings=settings, workers=self._workers, with_marks=False)

    def close(self) -> None:
        self._registry.close()


def _with_titles(frame: gpd.GeoDataFrame, rules: tuple[ConflictRule, ...]) -> gpd.GeoDataFrame:
    """The rule's Chinese and English title on every patch, after its severity: a patch reads on its own."""
    titles = {r.code: (r.title_zh, r.title_en) for r in rules}
    out = frame.copy()
    at = list(out.columns).index("severity") + 1
    out.insert(at, "rule_title", pd.Series([titles[c][0] for c in out["rule"]], index=out.index, dtype=object))
    out.insert(at + 1, "rule_title_en", pd.Series([titles[c][1] for c in out["rule"]], index=out.index, dtype=object))
    return out
