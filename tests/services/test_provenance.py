"""Which layers are synthetic now: the catalogue's flag confirmed by who wrote what, on both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from geoplan.catalog import Catalog
from geoplan.rasterdata import RasterData
from geoplan.services.provenance import (
    DEMO_ACTOR,
    layer_origins,
    synthetic_banner,
    synthetic_layers,
    synthetic_now,
    synthetic_titles,
)
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from tests.factories import sample_frame

FACILITIES = "culture_facilities"


def _origin(store: LayerStore, name: str) -> str:
    return {o.name: o.origin for o in layer_origins(store)}[name]


def _raster(value: float) -> RasterData:
    return RasterData(
        np.full((3, 4), value, dtype="float32"), Affine(100, 0, 560000, 0, -100, 2540000), "EPSG:4547", -1
    )


def test_the_demo_then_a_real_replace(store: LayerStore) -> None:
    layer = store.catalog.get(FACILITIES)
    assert layer.synthetic
    assert _origin(store, FACILITIES) == "empty" and FACILITIES not in synthetic_now(store)
    store.write(FACILITIES, sample_frame(layer, 5), actor=DEMO_ACTOR)
    assert _origin(store, FACILITIES) == "demo" and FACILITIES in synthetic_now(store)
    # An edit of one feature by the web editor: the rest is still the demo's.
    edited = store.read(FACILITIES).iloc[[0]].assign(name="改名")
    store.update_features(FACILITIES, edited, actor="web:staff")
    assert _origin(store, FACILITIES) == "partly" and FACILITIES in synthetic_now(store)
    # A staff member's real rows appended to the demo's: partly synthetic, which is still synthetic.
    store.write(FACILITIES, sample_frame(layer, 2, start=100), mode="append", actor="cli:staff")
    assert _origin(store, FACILITIES) == "partly" and FACILITIES in synthetic_now(store)
    assert synthetic_titles(store, (FACILITIES,)) == ("文化设施（部分）",)
    # The real list replaces the layer: no longer synthetic, whatever the catalogue's flag says.
    store.write(FACILITIES, sample_frame(layer, 3, start=200), actor="cli:staff")
    assert _origin(store, FACILITIES) == "real" and FACILITIES not in synthetic_now(store)
    # ... until somebody runs the demo into the same store again.
    store.write(FACILITIES, sample_frame(layer, 5), actor=DEMO_ACTOR)
    assert FACILITIES in synthetic_now(store)


def test_rasters_follow_their_writes_too(store: LayerStore) -> None:
    store.write_raster("population", _raster(1.0), actor=DEMO_ACTOR)
    assert _origin(store, "population") == "demo"
    store.write_raster("population", _raster(2.0), actor="cli:analyst")
    assert _origin(store, "population") == "real"


def test_layers_the_catalogue_calls_real_are_never_synthetic(store: LayerStore) -> None:
    district = store.catalog.get("district")
    assert not district.synthetic
    store.write("district", sample_frame(district, 1), actor=DEMO_ACTOR)
    assert "district" not in synthetic_now(store)
    assert "district" not in {o.name for o in layer_origins(store)}


def test_long_histories_are_read_back_to_the_full_write(store: LayerStore) -> None:
    """More appends than one page of the audit log: the walk pages back to the demo's replace."""
    layer = store.catalog.get(FACILITIES)
    store.write(FACILITIES, sample_frame(layer, 1), actor=DEMO_ACTOR)
    for i in range(205):
        store.write(FACILITIES, sample_frame(layer, 1, start=1000 + i), mode="append", actor=DEMO_ACTOR)
    assert _origin(store, FACILITIES) == "demo"
    store.write(FACILITIES, sample_frame(layer, 1, start=5000), mode="append", actor="cli:staff")
    assert _origin(store, FACILITIES) == "partly"


def test_the_demo_store_and_a_replaced_copy(demo_store_path: Path, demo_store_copy: Path, catalog: Catalog) -> None:
    demo = GeoPackageStore(demo_store_path, catalog)
    try:
        # Every catalogue-synthetic layer the demo filled is synthetic now, and nothing else.
        filled = {
            layer.name
            for layer in catalog
            if layer.synthetic and (demo.has_raster(layer.name) if layer.kind == "raster" else demo.count(layer.name))
        }
        assert set(synthetic_layers(demo)) == filled and {"population", FACILITIES} <= filled
        # The demo really writes with DEMO_ACTOR (else nothing would be found synthetic above).
        assert {e.actor for e in demo.audit_log(layer=FACILITIES)} == {DEMO_ACTOR}
    finally:
        demo.close()
    copy = GeoPackageStore(demo_store_copy, catalog)
    try:
        layer = catalog.get(FACILITIES)
        copy.write(FACILITIES, sample_frame(layer, 3), actor="cli:staff")
        assert set(synthetic_layers(copy)) == filled - {FACILITIES}
        banner = synthetic_banner(copy)
        assert "人口栅格" in banner and "文化设施" not in banner
        assert synthetic_banner(copy, (FACILITIES,)) == ""
    finally:
        copy.close()


@pytest.mark.parametrize("names", [None, ("population", "culture_facilities")])
def test_banner_names_titles_in_catalogue_order(store: LayerStore, names: tuple[str, ...] | None) -> None:
    store.write_raster("population", _raster(1.0), actor=DEMO_ACTOR)
    store.write(FACILITIES, sample_frame(store.catalog.get(FACILITIES), 2), actor=DEMO_ACTOR)
    order = [layer.name for layer in store.catalog]
    titles = [store.catalog.get(n).title_zh for n in sorted(["population", FACILITIES], key=order.index)]
    assert synthetic_banner(store, names) == f"示意数据 / synthetic：{'、'.join(titles)}为合成的演示数据，非官方数据。"
