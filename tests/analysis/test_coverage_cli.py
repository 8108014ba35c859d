"""`geoplan coverage` and `geoplan suggest-sites` end to end on the Gaoming demo store (built once for this module)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.analysis.coverage import COVERAGE_COLUMNS, CoverageRules, compute_coverage, district_total
from geoplan.analysis.network import build_walk_graph
from geoplan.analysis.siting import SITE_COLUMNS
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.storage.gpkg import GeoPackageStore


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("coverage_cli") / "gaoming.gpkg"
    assert main(["demo", "--store", str(path)]) == 0
    return path


def test_coverage_prints_towns_and_total_and_writes_the_villages(
    demo_store: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "villages.gpkg"
    capsys.readouterr()
    assert main(["coverage", "--store", str(demo_store), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    store = GeoPackageStore(demo_store, catalog)
    try:
        villages = store.read("villages")
        direct = compute_coverage(
            villages=villages,
            facilities=store.read("culture_facilities"),
            population=store.read_raster("population"),
            graph=build_walk_graph(roads=store.read("roads")),
            rules=CoverageRules(),
        ).table
    finally:
        store.close()
    for town in ("荷城街道", "杨和镇", "明城镇", "更合镇"):
        assert town in printed
    total = district_total(direct)
    assert f"{total['covered_population']:,.0f} of {total['population']:,.0f} people covered" in printed
    below = int((direct["coverage_pct"] < 50).sum())
    assert f"{below} of {len(direct)} villages below 50 %" in printed
    written = gpd.read_file(out)
    assert written.crs == "EPSG:4490"
    assert list(written.columns) == [*COVERAGE_COLUMNS, "geometry"]
    assert list(written["village_code"]) == list(direct["village_code"])
    assert np.allclose(written["covered_population"], direct["covered_population"])
    assert written.geometry.notna().all()


def test_coverage_options_apply_to_every_unit(demo_store: Path, tmp_path: Path) -> None:
    default, wide, libraries = tmp_path / "default.csv", tmp_path / "wide.xlsx", tmp_path / "libraries.csv"
    store = ["--store", str(demo_store)]
    assert main(["coverage", *store, "--mode", "euclidean", "-o", str(default)]) == 0
    assert (
        main(["coverage", *store, "--mode", "euclidean", "--minutes", "20", "--speed-kmh", "5", "-o", str(wide)]) == 0
    )
    assert main(["coverage", *store, "--mode", "euclidean", "--kinds", "自助图书馆", "-o", str(libraries)]) == 0
    base = pd.read_csv(default, encoding="utf-8-sig")
    more = pd.read_excel(wide)
    fewer = pd.read_csv(libraries, encoding="utf-8-sig")
    assert list(base.columns[: len(COVERAGE_COLUMNS)]) == COVERAGE_COLUMNS
    assert more["covered_population"].sum() > base["covered_population"].sum() > fewer["covered_population"].sum()
    for kind in ("community", "village"):  # urban and rural units alike get the wider reach
        rows = base["type"] == kind
        assert more.loc[rows.to_numpy(), "covered_population"].sum() > base.loc[rows, "covered_population"].sum()


@pytest.mark.parametrize(
    "args",
    [
        ["coverage", "--mode", "driving"],
        ["coverage", "--minutes", "0"],
        ["coverage", "--minutes", "-5"],
        ["coverage", "--minutes", "ten"],
        ["coverage", "--speed-kmh", "nan"],
        ["coverage", "--access-m", "-1"],
        ["coverage", "-o", "villages.shp"],
        ["suggest-sites", "--k", "0"],
        ["suggest-sites", "--k", "2", "-o", "sites.xlsx"],
        ["suggest-sites", "--k", "2", "--mode", "bus"],
    ],
)
def test_bad_input_exits_2(demo_store: Path, tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture) -> None:
    args = [str(tmp_path / a) if a.endswith((".shp", ".xlsx")) else a for a in args]
    assert main([*args, "--store", str(demo_store)]) == 2
    assert "error" in capsys.readouterr().err.lower()


def test_suggest_sites_prints_and_writes_the_sites(
    demo_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, table = tmp_path / "sites.geojson", tmp_path / "sites.csv"
    capsys.readouterr()
    assert main(["suggest-sites", "--k", "3", "--store", str(demo_store), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    sites = gpd.read_file(out)
    assert sites.crs.is_geographic  # GeoJSON: longitude/latitude (GDAL reports it as WGS 84)
    assert list(sites.columns) == [*SITE_COLUMNS, "geometry"]
    assert list(sites["rank"]) == [1, 2, 3]
    gains = sites["gain_population"].to_numpy()
    assert np.all(gains > 0) and np.all(np.diff(gains) <= 0)
    for site, gain in zip(sites["site_id"], gains, strict=True):
        assert site in printed
        assert f"{gain:,.0f}" in printed
    assert "3 site(s) written" in printed
    assert main(["suggest-sites", "--k", "3", "--store", str(demo_store), "-o", str(table)]) == 0
    again = pd.read_csv(table, encoding="utf-8-sig")
    assert list(again["site_id"]) == list(sites["site_id"])
