"""Life-circle coverage of every public service, computed for the web API, kept in memory and keyed by its inputs.

The whole scorecard (every village and service) takes about a second on the demo store, so it is computed once
per state of its inputs: the life-circle rules file (layers/rules/life_circles.yaml, re-read when it changes)
and the store versions of villages, public_facilities, culture_facilities, roads and the population raster. An
edit through the API or an import with the CLI changes a version, so the next request sees it. The versions are
read *before* the data, so an answer is never older than its key; a computation never runs twice at once for
the same key (web.computed_once).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geoplan.analysis.coverage_classes import CoverageClasses, step_classes
from geoplan.analysis.culture_centres import culture_centres
from geoplan.analysis.life_circle_matrix import (
    completeness,
    completeness_rollup,
    missing_services,
    service_rollup,
    village_matrix,
)
from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.life_circle_scorecard import scorecard
from geoplan.analysis.life_circles import LifeCircleResult, life_circle_coverage, service_facilities
from geoplan.analysis.network import ROADS_LAYER
from geoplan.analysis.unit_groups import group_of
from geoplan.errors import InputError
from geoplan.geojson import feature_strings
from geoplan.services.coverage_inputs import FACILITIES, POPULATION, VILLAGES, life_circle_inputs
from geoplan.services.rule_files import DEFAULT_LIFE_CIRCLES_FILE, load_life_circles
from geoplan.storage import LayerStore
from web.computed_once import ComputedOnce, FileBacked
from web.coverage_cache import GeoLayer

__all__ = ["LIFE_CIRCLE_LAYERS", "MISSING_BELOW_PCT", "LifeCircleCache", "LifeCircleRun", "scorecard_frame"]

PUBLIC_FACILITIES = "public_facilities"
LIFE_CIRCLE_LAYERS = (VILLAGES, PUBLIC_FACILITIES, FACILITIES, ROADS_LAYER, POPULATION)
"""Every layer the scorecard depends on: a change to any of them changes the answer."""
MISSING_BELOW_PCT = 50.0
"""A service is missing for a village when it reaches fewer than half of its people (the CLI's "villages < 50 %")."""

VersionKey = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class LifeCircleRun:
    """One computed scorecard and everything it was computed from; requests are answered from it."""

    digest: str
    """A short hash of the key: the ETag's base."""
    versions: VersionKey
    rules: dict[str, ServiceRule]
    villages: gpd.GeoDataFrame
    layers: dict[str, gpd.GeoDataFrame]
    result: LifeCircleResult
    card: pd.DataFrame
    """The scorecard: one row per village and service (life_circle_scorecard.SCORECARD_COLUMNS)."""
    groups: pd.Series
    """Each village's reporting group (its town, or 虚拟单位), aligned with `villages`."""
    matrix: pd.DataFrame
    rollup: pd.DataFrame
    completeness: pd.DataFrame
    completeness_rollup: pd.DataFrame
    missing: pd.DataFrame
    centres: pd.DataFrame

    def facilities(self, service: str) -> gpd.GeoDataFrame:
        """The facilities that serve `service` (its rule's layer and filter)."""
        rule = self.rules[service]
        return service_facilities(self.layers[rule.layer], rule)

    def classes(self, service: str) -> CoverageClasses:
        """The choropleth classes of the villages' coverage of `service` (village order)."""
        rows = self.card[self.card["service"] == service]
        return step_classes([None if pd.isna(v) else float(v) for v in rows["coverage_pct"]])


class LifeCircleCache:
    """Scorecard runs and the per-service layers derived from them, each built by one thread once per key.
    Blocking: call from a worker thread (run_in_threadpool)."""

    def __init__(self, store: LayerStore, layers_dir: Path, *, keep: int = 4) -> None:
        self._store = store
        self._layers_dir = Path(layers_dir)
        self._guard = threading.Lock()
        self._runs: ComputedOnce[LifeCircleRun] = ComputedOnce(keep=keep)
        self._layers: ComputedOnce[GeoLayer] = ComputedOnce(keep=keep * 24)  # two layers per service
        self._rules: FileBacked[dict[str, ServiceRule]] = FileBacked(lambda p: load_life_circles(p, store.catalog))
        self.runs = 0
        """How many times the scorecard has been computed (for tests and logs)."""

    def rules(self) -> dict[str, ServiceRule]:
        """The rules file, re-read when it changes: a rules edit needs no restart."""
        return self._rules.get(
            self._layers_dir / DEFAULT_LIFE_CIRCLES_FILE,
            missing=lambda path: InputError(
                f"life-circle rules file {path.name} not found", zh="未找到生活圈规则文件（rules/life_circles.yaml）。"
            ),
        )

    def versions(self) -> VersionKey:
        return tuple((name, self._store.layer_version(name)) for name in LIFE_CIRCLE_LAYERS)

    def run(self) -> LifeCircleRun:
        versions = self.versions()
        rules = self.rules()
        key = (tuple(rules.items()), versions)
        return self._runs.get(key, lambda: self._compute(key, rules, versions))

    def _compute(self, key: object, rules: dict[str, ServiceRule], versions: VersionKey) -> LifeCircleRun:
        with self._guard:  # a rules edit and a layer edit may be computed at once
            self.runs += 1
        network = any(rule.mode == "network" for rule in rules.values())
        names = sorted({rule.layer for rule in rules.values()} | {FACILITIES})  # culture centres need it
        villages, layers, population, graph = life_circle_inputs(self._store, names, network=network)
        result = life_circle_coverage(villages=villages, layers=layers, population=population, graph=graph, rules=rules)
        card = scorecard(villages, result)
        complete = completeness(villages, result)
        return LifeCircleRun(
            digest=hashlib.sha256(repr(key).encode()).hexdigest()[:24],
            versions=versions,
            rules=rules,
            villages=villages,
            layers=layers,
            result=result,
            card=card,
            groups=group_of(villages),
            matrix=village_matrix(card),
            rollup=service_rollup(card),
            completeness=complete,
            completeness_rollup=completeness_rollup(complete),
            missing=missing_services(
                card, titles={name: rule.title_zh for name, rule in rules.items()}, below_pct=MISSING_BELOW_PCT
            ),
            centres=culture_centres(villages=villages, facilities=layers[FACILITIES]),
        )

    # ----------------------------------------------------------------------------------------- layers

    def villages(self, run: LifeCircleRun, service: str) -> GeoLayer:
        return self._layers.get((run.digest, "villages", service), lambda: _village_layer(run, service))

    def facilities(self, run: LifeCircleRun, service: str) -> GeoLayer:
        return self._layers.get((run.digest, "facilities", service), lambda: _facility_layer(run, service))


# --------------------------------------------------------------------------------------------- layer builders


def scorecard_frame(run: LifeCircleRun) -> gpd.GeoDataFrame:
    """The scorecard with each row's village outline (EPSG:4490), as `geoplan lifecircle -o` writes it."""
    geoms = run.villages.set_index(run.villages["village_code"].astype(str)).geometry
    return gpd.GeoDataFrame(
        run.card, geometry=geoms.loc[run.card["village_code"].astype(str)].to_numpy(), crs=run.villages.crs
    )


def _village_layer(run: LifeCircleRun, service: str) -> GeoLayer:
    """The villages with their coverage of `service`, in whole people, and their choropleth class."""
    rows = run.card[run.card["service"] == service].reset_index(drop=True)
    classes = run.classes(service)
    frame = gpd.GeoDataFrame(
        {
            "village_code": rows["village_code"].astype(str).to_numpy(),
            "village_name": rows["village_name"].to_numpy(),
            "town": rows["town"].to_numpy(),
            "type": rows["type"].to_numpy(),
            "group": run.groups.to_numpy(),
            "population": rows["population"].to_numpy(),
            "covered_population": rows["covered_population"].to_numpy(),
            "coverage_pct": rows["coverage_pct"].astype(object).to_numpy(),
            "class": pd.array(list(classes.classes), dtype="Int64").astype(object),
        },
        geometry=run.villages.geometry.to_numpy(),
        crs=run.villages.crs,
    )
    fields = [c for c in frame.columns if c != "geometry"]
    return GeoLayer(frame, feature_strings(frame, fields=fields, id_field="village_code"), {})


def _facility_layer(run: LifeCircleRun, service: str) -> GeoLayer:
    """The facilities of `service` as points: id, name, kind and town."""
    facilities = run.facilities(service)
    frame = gpd.GeoDataFrame(
        {
            "facility_id": facilities["facility_id"].astype(str).to_numpy(),
            "name": facilities["name"].astype(str).to_numpy(),
            "kind": facilities["kind"].astype(str).to_numpy() if "kind" in facilities else None,
            "town": facilities["town"].astype(object).to_numpy() if "town" in facilities else None,
        },
        geometry=facilities.geometry.to_numpy(),
        crs=facilities.crs,
    ).to_crs(run.villages.crs)
    fields = [c for c in frame.columns if c != "geometry"]
    return GeoLayer(frame, feature_strings(frame, fields=fields, id_field="facility_id"), {})
