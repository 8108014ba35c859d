"""New sites for any life-circle service (`geoplan suggest-sites --service`), checked on the demo store.

The gains are recounted independently: the site is added to the facility layer as a facility of the service and
the coverage recomputed by the life-circle engine (`life_circles.life_circle_coverage`), another path than the
one the sites were chosen on.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.life_circles import life_circle_coverage
from geoplan.analysis.network import WalkGraph, build_walk_graph
from geoplan.analysis.service_siting import new_site_rules, service_coverage
from geoplan.analysis.siting import suggest_sites
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.rasterdata import RasterData
from geoplan.services.rule_files import load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

Demo = tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RasterData, WalkGraph, dict[str, ServiceRule]]


@pytest.fixture(scope="module")
def demo_services(demo_store_path: Path, catalog: Catalog) -> Demo:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        villages, public = store.read("villages"), store.read("public_facilities")
        raster, roads = store.read_raster("population"), store.read("roads")
    finally:
        store.close()
    rules = load_life_circles(LAYERS_DIR / "rules" / "life_circles.yaml", catalog)
    return villages, public, raster, build_walk_graph(roads=roads), rules


def _covered(demo: Demo, service: str, public: gpd.GeoDataFrame) -> float:
    villages, _, raster, graph, rules = demo
    result = life_circle_coverage(
        villages=villages,
        layers={"public_facilities": public},
        population=raster,
        graph=graph,
        rules={service: rules[service]},
    )
    return float(result.services[service].table["covered_population"].sum())


def _with_site(public: gpd.GeoDataFrame, point: shapely.Point, service: str) -> gpd.GeoDataFrame:
    """`public` with one more facility of `service` at `point` (EPSG:4490), large enough for any size class."""
    row = public.iloc[[0]].copy()
    row["facility_id"] = "NEW-1"
    row["service"] = service
    if "area_ha" in row.columns:
        row["area_ha"] = 5.0
    row = row.set_geometry([point], crs=public.crs)
    return gpd.GeoDataFrame(pd.concat([public, row], ignore_index=True), crs=public.crs)


@pytest.mark.parametrize("service", ["kindergarten", "park"])
def test_service_coverage_is_the_life_circle_engines(demo_services: Demo, service: str) -> None:
    villages, public, raster, graph, rules = demo_services
    mine = service_coverage(villages=villages, layer=public, population=raster, graph=graph, rule=rules[service])
    theirs = life_circle_coverage(
        villages=villages,
        layers={"public_facilities": public},
        population=raster,
        graph=graph,
        rules={service: rules[service]},
    )
    pd.testing.assert_frame_equal(mine.table, theirs.services[service].table)


def test_the_first_sites_gain_equals_a_recount_with_the_site_added(demo_services: Demo) -> None:
    villages, public, raster, graph, rules = demo_services
    service = "kindergarten"  # urban 300 m, rural 1,000 m: both rules at work
    rule = rules[service]
    result = service_coverage(villages=villages, layer=public, population=raster, graph=graph, rule=rule)
    sites = suggest_sites(result=result, rules=new_site_rules(rule), k=2, graph=graph)
    assert list(sites["rank"]) == [1, 2]
    before = _covered(demo_services, service, public)
    assert float(result.table["covered_population"].sum()) == pytest.approx(before, rel=1e-12)
    first = sites.geometry.iloc[0]
    after = _covered(demo_services, service, _with_site(public, first, service))
    assert sites["gain_population"].iloc[0] > 0
    assert after - before == pytest.approx(sites["gain_population"].iloc[0], rel=1e-6)
    assert sites["cumulative_covered_population"].iloc[0] == pytest.approx(after, rel=1e-9)
    assert sites["gain_population"].iloc[1] <= sites["gain_population"].iloc[0]


def test_the_command_names_the_service_and_refuses_unknown_ones(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sites.csv"
    store = ["--store", str(demo_store_path)]
    capsys.readouterr()
    assert main(["suggest-sites", "--service", "clinic", "--k", "2", *store, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "卫生服务 (clinic)" in " ".join(printed.split())
    written = pd.read_csv(out, encoding="utf-8-sig")
    assert list(written["rank"]) == [1, 2] and (written["gain_population"] > 0).all()
    assert main(["suggest-sites", "--service", "nursery", "--k", "2", *store]) == 2
    message = capsys.readouterr().err
    assert "nursery" in message and "kindergarten" in message and "clinic" in message
    assert main(["suggest-sites", "--service", "clinic", "--k", "2", "--minutes", "5", *store]) == 2
