"""Fixtures shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest

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
