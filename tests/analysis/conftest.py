"""Fixtures shared by the analysis tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from tests.analysis.demo_layers import DemoLayers, read_demo_layers


@pytest.fixture(scope="session")
def demo(demo_store_path: Path, catalog: Catalog) -> DemoLayers:
    """The demo store's coverage inputs, read and the graph built once per session (a few seconds each time).

    Shared by every module: tests only read them (the analysis functions promise not to mutate their inputs,
    and test_coverage checks that promise). A module that needs them otherwise overrides `demo` and asks for
    this one by the same name (pytest's fixture overriding), as test_siting does for metric coordinates.
    """
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        return read_demo_layers(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A real dask LocalCluster of two single-threaded workers (threads, to start fast; the CLI tests start
    worker processes themselves). A module may override it, as test_overlap_partitioned does for 1 and 2."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as connected,
    ):
        yield connected
