"""Ten-minute cultural-circle coverage computed for the web API, kept in memory and keyed by its inputs.

Coverage takes about a second on the demo store (the new-site search and the service areas each as much
again), so each answer is computed once per state of its inputs: the coverage rules (the rules file with the
request's overrides), the facility kinds counted, and the store version of villages, culture_facilities, roads
and the population raster. An edit through the API or an import with the CLI changes a version, so the next
request sees it; repeated requests are answered from memory. The versions are read *before* the data, so an
answer is never older than its key, and a computation never runs twice at once for the same key.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.analysis.coverage import CoverageResult, CoverageRules, compute_coverage, district_total, town_rollup
from geoplan.analysis.coverage_classes import CoverageClasses, classify_coverage
from geoplan.analysis.coverage_tables import no_route_words, village_output
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.service_areas import service_areas
from geoplan.analysis.siting import suggest_sites, uncovered_areas
from geoplan.analysis.unit_groups import group_of, type_zh
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.geojson import feature_strings
from geoplan.rasterdata import RasterData
from geoplan.services.coverage_inputs import (
    COVERAGE_LAYERS,
    coverage_inputs,
    coverage_versions,
    uses_network,
    walk_graph_for,
)
from geoplan.services.rule_files import default_coverage_rules_path, load_coverage_rules
from geoplan.storage import LayerStore
from web.computed_once import ComputedOnce, FileBacked

__all__ = ["COVERAGE_LAYERS", "CoverageCache", "CoverageQuery", "CoverageRun", "GeoLayer"]

DISPLAY_TOLERANCE_M = 2.0
"""Service areas and gaps are drawn, not measured, from the API: their outlines are simplified to 2 m (about a
pixel at street zoom) and their lon/lat rounded to DISPLAY_DECIMALS; their areas and populations are the
engine's, computed before. The service areas of the demo store shrink from 1.9 MB to a third."""
DISPLAY_DECIMALS = 6
"""Degrees to 1e-6, about 0.1 m."""


@dataclass(frozen=True)
class CoverageQuery:
    """What a coverage answer depends on besides the store: the rules and the facility kinds (None: all)."""

    rules: CoverageRules
    kinds: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CoverageRun:
    """One computed coverage and everything it was computed from; requests are answered from it."""

    digest: str
    """A short hash of the key: the ETag's base."""
    query: CoverageQuery
    versions: tuple[tuple[str, int], ...]
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    """The facilities counted (the kinds applied)."""
    population: RasterData
    graph: WalkGraph | None
    result: CoverageResult
    towns: pd.DataFrame
    total: dict[str, float]
    classes: CoverageClasses
    """Class breaks of the villages' coverage % (the map's choropleth and legend)."""


@dataclass(frozen=True)
class GeoLayer:
    """A computed layer, its serialised GeoJSON features (one per row), and the facts that go with it."""

    frame: gpd.GeoDataFrame
    features: list[str]
    extra: dict[str, Any]


class CoverageCache:
    """Coverage runs and the layers derived from them (villages, service areas, gaps, new sites), each built by
    one thread once per key. Blocking: call from a worker thread (run_in_threadpool)."""

    def __init__(self, store: LayerStore, layers_dir: Path, *, keep: int = 8) -> None:
        self._store = store
        self._layers_dir = Path(layers_dir)
        self._guard = threading.Lock()
        self._runs: ComputedOnce[CoverageRun] = ComputedOnce(keep=keep)
        self._layers: ComputedOnce[GeoLayer] = ComputedOnce(keep=keep * 6)  # a run has up to ~6 layers
        self._rules: FileBacked[CoverageRules] = FileBacked(load_coverage_rules)
        self.coverage_runs = 0
        """How many times coverage has been computed (for tests and logs)."""

    # ----------------------------------------------------------------------------------------- inputs

    def base_rules(self) -> CoverageRules:
        """The rules file (layers/rules/coverage.yaml), re-read when it changes: a rules edit needs no restart."""
        return self._rules.get(
            default_coverage_rules_path(self._layers_dir),
            missing=lambda path: InputError(f"coverage rules file {path} not found"),
        )

    def versions(self) -> tuple[tuple[str, int], ...]:
        return coverage_versions(self._store)

    # ----------------------------------------------------------------------------------------- coverage

    def run(self, query: CoverageQuery) -> CoverageRun:
        key = (query, self.versions())
        return self._runs.get(key, lambda: self._compute(key, query))

    def _compute(self, key: tuple[CoverageQuery, tuple[tuple[str, int], ...]], query: CoverageQuery) -> CoverageRun:
        with self._guard:  # two different keys may be computed at once
            self.coverage_runs += 1
        rules = query.rules
        inputs = coverage_inputs(self._store, network=uses_network(rules))
        kinds = list(query.kinds) if query.kinds is not None else None
        result = compute_coverage(**inputs.engine_args(), rules=rules, kinds=kinds)
        facilities = inputs.facilities
        if kinds is not None:
            facilities = facilities[facilities["kind"].isin(kinds).to_numpy()]
        return CoverageRun(
            digest=hashlib.sha256(repr(key).encode()).hexdigest()[:24],
            query=query,
            versions=key[1],
            villages=inputs.villages,
            facilities=facilities,
            population=inputs.population,
            graph=inputs.graph,
            result=result,
            towns=town_rollup(result.table),
            total=district_total(result.table),
            classes=classify_coverage(result.table["coverage_pct"].tolist()),
        )

    # ----------------------------------------------------------------------------------------- layers

    def villages(self, run: CoverageRun) -> GeoLayer:
        return self._layers.get((run.digest, "villages"), lambda: _village_layer(run))

    def service_areas(self, run: CoverageRun) -> GeoLayer:
        return self._layers.get((run.digest, "service-areas"), lambda: _service_area_layer(run))

    def gaps(self, run: CoverageRun) -> GeoLayer:
        return self._layers.get((run.digest, "gaps"), lambda: _gap_layer(run))

    def sites(self, run: CoverageRun, k: int) -> GeoLayer:
        """The candidates are the network nodes whatever the mode: a Euclidean study needs the graph too."""

        def build() -> GeoLayer:
            graph = run.graph if run.graph is not None else walk_graph_for(self._store)
            return _site_layer(run, k, graph)

        return self._layers.get((run.digest, "sites", k), build)


# --------------------------------------------------------------------------------------------- layer builders


def village_frame(run: CoverageRun) -> gpd.GeoDataFrame:
    """The engine's village table with each village's outline (EPSG:4490): the map layer's base."""
    return gpd.GeoDataFrame(run.result.table, geometry=run.villages.geometry.to_numpy(), crs=run.villages.crs)


def village_download(run: CoverageRun) -> gpd.GeoDataFrame:
    """The village table as a person reads it (`coverage_tables.village_output`: whole people, Chinese unit
    types, facility names, no route in words, P90 empty where undefined) with each outline, as `geoplan
    coverage -o` writes it."""
    names = dict(zip(run.facilities["facility_id"].astype(str), run.facilities["name"].astype(str), strict=True))
    readable = village_output(run.result.table, facility_names=names)
    return gpd.GeoDataFrame(readable, geometry=run.villages.geometry.to_numpy(), crs=run.villages.crs)


def nearest_facility_names(run: CoverageRun) -> pd.Series:
    """Each village's nearest facility by name (the table has its id), for the pages: people know 图书馆 names,
    not CF-0125. None where the village has no nearest facility. Indexed like the village table."""
    names = dict(zip(run.facilities["facility_id"].astype(str), run.facilities["name"].astype(str), strict=True))
    ids = run.result.table["nearest_facility"]
    return pd.Series([names.get(i) if isinstance(i, str) else None for i in ids], index=ids.index, dtype=object)


def with_words(frame: pd.DataFrame) -> pd.DataFrame:
    """A village table or town rollup with its people without a route (and their share) as numbers and words;
    a village table also gets its reporting group and its unit type in Chinese."""
    population = frame["population"].astype(np.float64)
    no_route = (population - frame["routed_population"].astype(np.float64)).clip(lower=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(population > 0, 100.0 * no_route / population, np.nan)
    words = [no_route_words(float(n), float(p)) for n, p in zip(no_route, population, strict=True)]
    out = frame.assign(no_route_population=no_route, no_route_pct=share, no_route_zh=words)
    if "type" in frame.columns:
        out = out.assign(group=group_of(frame), type_zh=type_zh(frame["type"]))
    return out


def _village_layer(run: CoverageRun) -> GeoLayer:
    frame = with_words(village_frame(run))
    frame["nearest_facility_name"] = nearest_facility_names(run).to_numpy()
    for column in ("mean_minutes", "p90_minutes"):  # inf (no route) is not JSON: null, like the API's table
        values = frame[column].to_numpy(dtype=np.float64)
        frame[column] = np.where(np.isfinite(values), values, np.nan)
    frame["class"] = pd.array(list(run.classes.classes), dtype="Int64")
    fields = [c for c in frame.columns if c != "geometry"]
    return GeoLayer(frame, feature_strings(frame, fields=fields, id_field="village_code"), {})


def _simplified(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`frame` (any CRS) for drawing: simplified, rounded, empty outlines left out, EPSG:4490."""
    metric = frame.to_crs(METRIC_CRS)
    geoms = np.asarray(metric.geometry.to_numpy(), dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = metric.iloc[np.flatnonzero(keep)].copy()
    out.geometry = shapely.simplify(geoms[keep], DISPLAY_TOLERANCE_M, preserve_topology=True)
    out = out.to_crs(STORE_CRS)
    out.geometry = shapely.transform(out.geometry.to_numpy(), lambda xy: np.round(xy, DISPLAY_DECIMALS))
    return out


def _service_area_layer(run: CoverageRun) -> GeoLayer:
    """One service area per facility and rule: one set when urban and rural units share a rule (`rule` all),
    else one per rule (`urban`, `rural`), since the same facility reaches farther under a longer rule."""
    rules = run.query.rules
    sets = [("all", rules.urban)] if rules.urban == rules.rural else [("urban", rules.urban), ("rural", rules.rural)]
    frames = []
    for name, settings in sets:
        areas = service_areas(graph=run.graph, facilities=run.facilities, settings=settings)
        areas.insert(0, "rule", name)
        frames.append(areas)
    areas = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=METRIC_CRS)
    off = sorted({str(i) for i in areas.loc[areas["off_network"].astype(bool), "facility_id"]})
    drawn = _simplified(areas)
    drawn["id"] = [f"{rule}:{fid}" for rule, fid in zip(drawn["rule"], drawn["facility_id"], strict=True)]
    fields = [c for c in drawn.columns if c not in ("geometry", "id")]
    return GeoLayer(drawn, feature_strings(drawn, fields=fields, id_field="id"), {"facilities_off_network": off})


def _gap_layer(run: CoverageRun) -> GeoLayer:
    gaps = uncovered_areas(run.result, run.population, run.villages)
    drawn = _simplified(gaps)
    fields = [c for c in drawn.columns if c != "geometry"]
    total = float(gaps["uncovered_population"].sum())
    return GeoLayer(
        drawn, feature_strings(drawn, fields=fields, id_field="village_code"), {"uncovered_population": total}
    )


def _site_layer(run: CoverageRun, k: int, graph: WalkGraph) -> GeoLayer:
    """The greedy new sites, each with the village it stands in (None outside every village)."""
    sites = suggest_sites(result=run.result, rules=run.query.rules, k=k, graph=graph)
    villages = run.villages.to_crs(sites.crs)
    hit_site, hit_village = villages.sindex.query(sites.geometry, predicate="intersects")
    first = pd.Series(hit_village, index=hit_site).groupby(level=0).min()  # a point on a shared edge: the first
    where = np.full(len(sites), -1, dtype=np.intp)
    where[first.index.to_numpy(dtype=np.intp)] = first.to_numpy(dtype=np.intp)
    for column in ("village_code", "village_name", "town"):
        values = villages[column].astype(object).to_numpy()
        sites[column] = [values[i] if i >= 0 else None for i in where]
    fields = [c for c in sites.columns if c != "geometry"]
    table = run.result.table
    population = float(table["population"].sum())
    covered = float(table["covered_population"].sum())
    extra = {
        "k": k,
        "baseline_covered_population": covered,
        "baseline_coverage_pct": 100.0 * covered / population if population > 0 else None,
    }
    return GeoLayer(sites, feature_strings(sites, fields=fields, id_field="site_id"), extra)
