"""The one way coverage inputs are read from a store: now, as of a past moment, and the walking-graph cache.

The CLI, the web app, the indicator runner and the report all call `coverage_inputs`; the last test holds the
code to that (no other module reads the population raster or builds the walking graph from a store).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from geoplan.analysis.network import build_walk_graph
from geoplan.catalog import Catalog
from geoplan.monitoring.asof import AsOf
from geoplan.services.coverage_inputs import COVERAGE_LAYERS, coverage_inputs, coverage_versions, walk_graph_for
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import ROOT

BEFORE = "2026-01-01T00:00:00+00:00"
AFTER = "2026-06-01T00:00:00+00:00"


def _same_frame(actual: gpd.GeoDataFrame, expected: gpd.GeoDataFrame, key: str) -> None:
    a = actual.sort_values(key).reset_index(drop=True)
    e = expected.sort_values(key).reset_index(drop=True)
    assert list(a[key]) == list(e[key])
    assert shapely.equals_exact(a.geometry.to_numpy(), e.geometry.to_numpy(), tolerance=0).all()
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(e.drop(columns="geometry")))


def _walkable_road_ids(store: GeoPackageStore, catalog: Catalog, n: int) -> list[str]:
    roads = store.read("roads")
    walkable = roads[roads["walkable"].fillna(False).astype(bool).to_numpy()]
    return [str(v) for v in walkable[catalog.get("roads").id_field].iloc[:n]]


def test_current_inputs_are_the_store_layers_and_one_cached_graph(demo_store_copy: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        inputs = coverage_inputs(store, network=True)
        _same_frame(inputs.villages, store.read("villages"), "village_code")
        _same_frame(inputs.facilities, store.read("culture_facilities"), "facility_id")
        raster = store.read_raster("population")
        np.testing.assert_array_equal(inputs.population.array, raster.array)
        assert inputs.population.transform == raster.transform
        assert inputs.graph is not None
        assert inputs.graph is walk_graph_for(store)  # the cache: one graph per state of the roads
        assert coverage_inputs(store, network=False).graph is None

        versions = coverage_versions(store)
        store.delete_features("roads", _walkable_road_ids(store, catalog, 25), actor="test")
        assert coverage_versions(store) != versions  # a roads edit moves the cache key of every coverage run
        rebuilt = walk_graph_for(store)
        assert rebuilt is not inputs.graph
        independent = build_walk_graph(roads=store.read("roads"))
        assert rebuilt.n_edges == independent.n_edges < inputs.graph.n_edges
        np.testing.assert_array_equal(rebuilt.coords, independent.coords)
    finally:
        store.close()


def test_inputs_as_of_a_past_moment_are_the_layers_then(demo_store_copy: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        before = {name: store.read(name) for name in ("villages", "culture_facilities", "roads")}
        engine = side_table_engine(store.url)
        try:
            with engine.connect() as connection:
                last_demo_entry = connection.execute(text("SELECT max(id) FROM geoplan_audit")).scalar_one()
        finally:
            engine.dispose()
        facility_ids = [str(v) for v in before["culture_facilities"]["facility_id"].iloc[:5]]
        store.delete_features("culture_facilities", facility_ids, actor="test")
        store.delete_features("roads", _walkable_road_ids(store, catalog, 25), actor="test")
        engine = side_table_engine(store.url)
        try:
            with engine.begin() as connection:  # the demo was written in January, the edits in June
                connection.execute(
                    text("UPDATE geoplan_audit SET at = :at WHERE id <= :id"), {"at": BEFORE, "id": last_demo_entry}
                )
                connection.execute(
                    text("UPDATE geoplan_audit SET at = :at WHERE id > :id"), {"at": AFTER, "id": last_demo_entry}
                )
        finally:
            engine.dispose()

        march = AsOf(at=datetime(2026, 3, 1, tzinfo=UTC))
        then = coverage_inputs(store, network=True, as_of=march)
        _same_frame(then.villages, before["villages"], "village_code")
        _same_frame(then.facilities, before["culture_facilities"], "facility_id")
        assert then.graph is not None
        assert then.graph.n_edges == build_walk_graph(roads=before["roads"]).n_edges

        now = coverage_inputs(store, network=True)
        assert len(now.facilities) == len(before["culture_facilities"]) - 5
        assert now.graph is not None and now.graph.n_edges < then.graph.n_edges
    finally:
        store.close()


def test_no_other_module_gathers_coverage_inputs() -> None:
    """The population raster and the walking graph come from a store through `coverage_inputs` only."""
    gathering = re.compile(r"read_raster\(\s*(\"population\"|POPULATION)|build_walk_graph\(roads=(store|layer_as_of)")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("geoplan", "web")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "coverage_inputs.py" and gathering.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert set(COVERAGE_LAYERS) == {"villages", "culture_facilities", "roads", "population"}
