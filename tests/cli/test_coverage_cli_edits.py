"""Adding and moving a cultural facility with the CLI changes `geoplan coverage` on the next run.

The facility is placed on the walking network in the least-covered village; the expected effect is checked
against compute_coverage on the edited store, and the other villages may only gain.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geoplan.analysis.coverage import CoverageRules
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.storage.gpkg import GeoPackageStore
from tests.demo_layers import DemoLayers, read_demo_layers


def _coverage_csv(store: Path, out: Path) -> pd.DataFrame:
    assert main(["coverage", "--store", str(store), "-o", str(out)]) == 0
    return pd.read_csv(out, dtype={"village_code": str}).set_index("village_code")


def _site_in(village: str, store: Path, catalog: Catalog) -> tuple[float, float]:
    """The network node inside the village nearest its people's weighted centre, as lon/lat."""
    layers = _layers(store, catalog)
    villages = layers.villages.to_crs(METRIC_CRS).set_index("village_code")
    graph, population = layers.graph, layers.raster
    outline = villages.loc[village, "geometry"]
    rows, cols = np.nonzero(population.array > 0)
    t = population.transform
    cx, cy = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    mine = shapely.contains_xy(outline, cx, cy)
    weights = population.array[rows, cols][mine].astype(float)
    assert weights.sum() > 0, f"no populated cell centre in {village}"
    centre = np.array([np.average(cx[mine], weights=weights), np.average(cy[mine], weights=weights)])
    inside = np.flatnonzero(shapely.contains_xy(outline, graph.coords[:, 0], graph.coords[:, 1]))
    assert len(inside), f"the demo has no network node in {village}"
    x, y = graph.coords[inside[np.argmin(np.linalg.norm(graph.coords[inside] - centre, axis=1))]]
    point = gpd.GeoSeries([shapely.Point(x, y)], crs=METRIC_CRS).to_crs(STORE_CRS).iloc[0]
    return float(point.x), float(point.y)


def _facility_file(path: Path, lon: float, lat: float) -> Path:
    feature = {
        "type": "Feature",
        "properties": {"facility_id": "CLI-NEW-1", "name": "新建文化室", "kind": "文化站", "capacity": 200},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False), "utf-8")
    return path


def _layers(store: Path, catalog: Catalog) -> DemoLayers:
    """The edited store's coverage inputs, read afresh (the session's `demo` is the unedited store)."""
    backend = GeoPackageStore(store, catalog)
    try:
        return read_demo_layers(backend)
    finally:
        backend.close()


def _direct(store: Path, catalog: Catalog) -> pd.DataFrame:
    """The engine's table, people in whole persons as the CSV gives them (rounded half up)."""
    table = _layers(store, catalog).coverage(CoverageRules()).table.set_index("village_code")
    table["covered_population"] = np.floor(table["covered_population"] + 0.5).astype(np.int64)
    return table


def test_adding_then_moving_a_facility_changes_the_next_coverage_run(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    before = _coverage_csv(demo_store_copy, tmp_path / "before.csv")
    populated = before[before["population"] > 1000]
    first, second = populated.sort_values("coverage_pct").index[:2]

    lon, lat = _site_in(first, demo_store_copy, catalog)
    added = _facility_file(tmp_path / "new.geojson", lon, lat)
    assert main(["import", "culture_facilities", str(added), "--mode", "append", "--store", str(demo_store_copy)]) == 0
    after_add = _coverage_csv(demo_store_copy, tmp_path / "after_add.csv")
    assert after_add.loc[first, "covered_population"] > before.loc[first, "covered_population"] + 1.0
    assert (after_add["covered_population"] >= before["covered_population"] - 1e-6).all()
    assert (after_add["covered_population"] == _direct(demo_store_copy, catalog)["covered_population"]).all()

    # move it: export the layer, shift the new facility into the second village, import the whole layer back
    exported = tmp_path / "facilities.geojson"
    assert main(["export", "culture_facilities", str(exported), "--store", str(demo_store_copy)]) == 0
    collection = json.loads(exported.read_text("utf-8"))
    lon2, lat2 = _site_in(second, demo_store_copy, catalog)
    moved = [f for f in collection["features"] if f["properties"]["facility_id"] == "CLI-NEW-1"]
    assert len(moved) == 1
    moved[0]["geometry"]["coordinates"] = [lon2, lat2]
    exported.write_text(json.dumps(collection, ensure_ascii=False), "utf-8")
    assert (
        main(["import", "culture_facilities", str(exported), "--mode", "replace", "--store", str(demo_store_copy)]) == 0
    )
    after_move = _coverage_csv(demo_store_copy, tmp_path / "after_move.csv")
    assert after_move.loc[first, "covered_population"] == pytest.approx(before.loc[first, "covered_population"])
    assert after_move.loc[second, "covered_population"] > before.loc[second, "covered_population"] + 1.0
    assert (after_move["covered_population"] == _direct(demo_store_copy, catalog)["covered_population"]).all()
