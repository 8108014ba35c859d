"""The site-check report (合规性审查报告) as a reader sees it: its source named in Chinese, and a map with the
place around the site whatever the verdict (roads, town and district boundaries, town names, a locator map, a
scale bar and a north arrow), never a map filled edge to edge by one control layer.

The expected roads, towns and coverage are found here with geopandas on the demo store, not with the code under
test.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely

from geoplan.analysis.compliance import ComplianceReport
from geoplan.analysis.compliance_site import REQUEST_BODY, site_from_frame
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS
from geoplan.reporting.compliance_html import render_html
from geoplan.reporting.compliance_svg import FULL_FRAME, SiteMap, site_map
from geoplan.services.compliance import SiteContext, check_site_in_store, layer_colours, site_context
from geoplan.services.rule_files import default_rules_path, load_rules
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR


@pytest.fixture(scope="module")
def store(demo_store_path: Path, catalog: Catalog) -> Any:
    backend = GeoPackageStore(demo_store_path, catalog)  # read-only: a check and its context write nothing
    yield backend
    backend.close()


def _check(store: GeoPackageStore, site: gpd.GeoDataFrame, source: str) -> ComplianceReport:
    rules = load_rules(default_rules_path(LAYERS_DIR), store.catalog)
    frame = site_from_frame(site, source=source).frame
    return check_site_in_store(store, frame, rules=rules, source=source)


@pytest.fixture(scope="module")
def passing(store: GeoPackageStore) -> tuple[ComplianceReport, gpd.GeoDataFrame]:
    """The smallest demo project whose check passes without any hit: the case whose map showed nothing."""
    projects = gpd.read_file(store.url, layer="projects")
    projects = projects[projects.geometry.geom_type.str.endswith("Polygon")]
    order = projects.to_crs(METRIC_CRS).area.sort_values().index
    for index in order:
        site = projects.loc[[index], ["name", "geometry"]]
        report = _check(store, site, "site.geojson")
        if report.verdict == "pass":
            return report, site
    raise AssertionError("the demo has a project that passes")


@pytest.fixture(scope="module")
def context(store: GeoPackageStore, passing: tuple[ComplianceReport, gpd.GeoDataFrame]) -> SiteContext:
    return site_context(store, passing[0].site_geometry)


@pytest.fixture(scope="module")
def drawn(store: GeoPackageStore, passing: tuple[ComplianceReport, gpd.GeoDataFrame], context: SiteContext) -> SiteMap:
    return site_map(passing[0], layer_colours=layer_colours(store.catalog), context=context)


def _frame_box(drawn: SiteMap, site: shapely.Geometry) -> shapely.Geometry:
    """The map's extent in metres, from its centre (the site's extent's) and its span."""
    minx, miny, maxx, maxy = site.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w = drawn.span_m / 2
    half_h = half_w * drawn.height / drawn.width
    return shapely.box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def test_the_pass_case_map_shows_the_roads_and_the_town_around_the_site(
    store: GeoPackageStore, passing: tuple[ComplianceReport, gpd.GeoDataFrame], drawn: SiteMap
) -> None:
    report, _ = passing
    box = _frame_box(drawn, report.site_geometry)
    roads = gpd.read_file(store.url, layer="roads").to_crs(METRIC_CRS)
    margin = 10.0 * drawn.span_m / drawn.width  # the map clips 10 drawing units beyond its edge
    minx, miny, maxx, maxy = box.bounds
    in_view = roads[roads.intersects(shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin))]
    assert len(in_view) >= 3, "the demo site has streets around it"
    road_paths = [s for s in drawn.context if s.stroke == "#b4b4b4"]
    assert len(road_paths) == len(in_view)
    towns = gpd.read_file(store.url, layer="towns").to_crs(METRIC_CRS)
    home = towns[towns.contains(report.site_geometry.centroid)]["town_name"].tolist()
    assert len(home) == 1
    assert home[0] in [label.text for label in drawn.labels]
    assert drawn.inset is not None
    x, y = drawn.inset.site
    assert 0 <= x <= drawn.inset.width and 0 <= y <= drawn.inset.height  # the site's dot is on the locator map


def _covering(report: ComplianceReport, drawn: SiteMap) -> list[str]:
    box = _frame_box(drawn, report.site_geometry)
    return [
        layer.layer
        for layer in report.touched_layers
        if any(shapely.intersection(g, box).area >= FULL_FRAME * box.area for g in layer.geometries)
    ]


def test_no_layer_fills_the_whole_map(store: GeoPackageStore) -> None:
    """A passing site deep inside the development boundary: the boundary is outlined, not a coloured box."""
    colours = layer_colours(store.catalog)
    projects = gpd.read_file(store.url, layer="projects")
    projects = projects[projects.geometry.geom_type.str.endswith("Polygon")]
    found = 0
    for index in projects.index[:20]:
        report = _check(store, projects.loc[[index], ["name", "geometry"]], "site.geojson")
        drawn = site_map(report, layer_colours=colours)
        assert all(s.fill_opacity <= 0.12 for s in drawn.touched)
        for layer in _covering(report, drawn):
            found += 1
            shapes = [s for s in drawn.touched if s.fill == colours[layer]]
            assert shapes and all(s.fill_opacity == 0.0 for s in shapes), layer
            assert any(f"（{layer}，" in e.label and "覆盖整个图幅" in e.label for e in drawn.legend), layer
    assert found, "some demo site lies wholly inside a control layer"


def test_the_scale_bar_measures_the_map(drawn: SiteMap) -> None:
    metres = float(re.sub(r"[^\d.]", "", drawn.scale.label)) * (1000 if "km" in drawn.scale.label else 1)
    assert drawn.scale.length == pytest.approx(metres * drawn.width / drawn.span_m, rel=1e-6)
    assert drawn.span_m / 10 <= metres <= drawn.span_m / 4  # 1, 2 or 5 × 10^k m, about a quarter of the map


def test_the_html_names_the_source_in_chinese_and_draws_the_context(
    passing: tuple[ComplianceReport, gpd.GeoDataFrame], context: SiteContext, store: GeoPackageStore
) -> None:
    report, _ = passing
    posted = replace(report, site_source=REQUEST_BODY)
    html = render_html(posted, layer_colours=layer_colours(store.catalog), context=context)
    assert "request body" not in html and "网页提交的选址范围" in html
    assert posted.to_dict()["site"]["source"] == REQUEST_BODY  # the API's machine value stays
    assert posted.to_dict()["site"]["source_label"].startswith("网页提交的选址范围")
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "北" in svg and 'class="inset"' in svg and "位置示意" in svg
    assert re.findall(r'<text class="town-label"[^>]*>([^<]+)</text>', svg)
    assert "道路" in html and "镇街界" in html
    uploaded = render_html(report, layer_colours=layer_colours(store.catalog), context=context)
    assert "选址文件 site.geojson" in uploaded


@pytest.mark.postgis
def test_the_context_is_the_same_from_postgis(
    store: GeoPackageStore, passing: tuple[ComplianceReport, gpd.GeoDataFrame], context: SiteContext, postgis_url: str
) -> None:
    """The same district, towns and nearby roads read from a PostGIS store holding the same layers."""
    from geoplan.storage.postgis import PostGISStore

    postgis = PostGISStore(postgis_url, store.catalog)
    postgis.init()
    try:
        for name in ("district", "towns", "roads"):
            postgis.write(name, store.read(name), actor="test:context")
        there = site_context(postgis, passing[0].site_geometry)
    finally:
        postgis.close()
    assert [name for name, _ in there.towns] == [name for name, _ in context.towns]
    assert len(there.roads) == len(context.roads) > 0
    assert there.district is not None and context.district is not None
    assert there.district.area == pytest.approx(context.district.area, rel=1e-9)
