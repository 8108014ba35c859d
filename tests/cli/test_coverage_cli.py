"""`geoplan coverage` and `geoplan suggest-sites` end to end on the Gaoming demo store (the session's, read-only)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.analysis.coverage import (
    CoverageRules,
    CoverageSettings,
    district_total,
)
from geoplan.analysis.coverage_tables import VILLAGE_OUTPUT_COLUMNS, whole
from geoplan.analysis.siting import SITE_COLUMNS
from geoplan.cli import main
from tests.demo_layers import DemoLayers


def test_coverage_prints_towns_and_total_and_writes_the_villages(
    demo_store_path: Path, demo: DemoLayers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "villages.gpkg"
    capsys.readouterr()
    assert main(["coverage", "--store", str(demo_store_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    direct = demo.coverage(CoverageRules()).table
    for town in ("荷城街道", "杨和镇", "明城镇", "更合镇", "虚拟单位"):
        assert town in printed
    # the virtual units are one group, never a town of their own
    for unit in ("高明监狱", "佛山监狱", "云勇林场", "对川茶场"):
        assert unit not in printed.split("虚拟单位：")[0]
    assert "nan" not in printed and "inf" not in printed
    total = district_total(direct)
    assert f"{whole(total['covered_population']):,} of {whole(total['population']):,} people covered" in printed
    no_route = total["population"] - total["routed_population"]
    assert f"{whole(no_route):,} 人（{100 * no_route / total['population']:.1f}%）" in printed
    below = int((direct["coverage_pct"] < 50).sum())
    assert f"{below} of {len(direct)} villages below 50 %" in printed
    written = gpd.read_file(out)
    assert written.crs == "EPSG:4490"
    assert list(written.columns) == [*VILLAGE_OUTPUT_COLUMNS, "geometry"]
    assert list(written["village_code"]) == list(direct["village_code"])
    assert list(written["covered_population"]) == [whole(v) for v in direct["covered_population"]]
    assert set(written["type"]) == {"社区", "村", "虚拟单位"}
    assert written.geometry.notna().all()


def test_coverage_options_apply_to_every_unit(demo_store_path: Path, tmp_path: Path) -> None:
    default, wide, libraries = tmp_path / "default.csv", tmp_path / "wide.xlsx", tmp_path / "libraries.csv"
    store = ["--store", str(demo_store_path)]
    assert main(["coverage", *store, "--mode", "euclidean", "-o", str(default)]) == 0
    assert (
        main(["coverage", *store, "--mode", "euclidean", "--minutes", "20", "--speed-kmh", "5", "-o", str(wide)]) == 0
    )
    assert main(["coverage", *store, "--mode", "euclidean", "--kinds", "自助图书馆", "-o", str(libraries)]) == 0
    base = pd.read_csv(default, encoding="utf-8-sig")
    more = pd.read_excel(wide)
    fewer = pd.read_csv(libraries, encoding="utf-8-sig")
    assert list(base.columns[: len(VILLAGE_OUTPUT_COLUMNS)]) == VILLAGE_OUTPUT_COLUMNS
    assert more["covered_population"].sum() > base["covered_population"].sum() > fewer["covered_population"].sum()
    for kind in ("社区", "村"):  # urban and rural units alike get the wider reach
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
def test_bad_input_exits_2(
    demo_store_path: Path, tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture
) -> None:
    args = [str(tmp_path / a) if a.endswith((".shp", ".xlsx")) else a for a in args]
    assert main([*args, "--store", str(demo_store_path)]) == 2
    assert "error" in capsys.readouterr().err.lower()


def test_suggest_sites_prints_and_writes_the_sites(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, table = tmp_path / "sites.geojson", tmp_path / "sites.csv"
    capsys.readouterr()
    assert main(["suggest-sites", "--k", "3", "--store", str(demo_store_path), "-o", str(out)]) == 0
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
    assert main(["suggest-sites", "--k", "3", "--store", str(demo_store_path), "-o", str(table)]) == 0
    again = pd.read_csv(table, encoding="utf-8-sig")
    assert list(again["site_id"]) == list(sites["site_id"])


# ------------------------------------------------------------------------------------------ rules files, capacity

RURAL_WIDER = """
urban: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}
rural: {mode: network, minutes: 15, speed_kmh: 5, access_m: 250}
"""


def test_coverage_reads_urban_and_rural_rules_from_a_file(
    demo_store_path: Path, demo: DemoLayers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_file = tmp_path / "coverage.yaml"
    rules_file.write_text(RURAL_WIDER, encoding="utf-8")
    out = tmp_path / "villages.csv"
    capsys.readouterr()
    assert main(["coverage", "--store", str(demo_store_path), "--rules", str(rules_file), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    title = " ".join(printed.split())  # the table title may wrap
    assert "(urban: network, 10 min at 4.5 km/h, access 200 m; rural: network, 15 min at 5 km/h, access 250 m)" in title
    written = pd.read_csv(out, encoding="utf-8-sig")
    urban = CoverageSettings()
    rural = CoverageSettings(minutes=15, speed_kmh=5, access_m=250)
    direct = demo.coverage(CoverageRules(urban=urban, rural=rural)).table
    assert list(written["covered_population"]) == [whole(v) for v in direct["covered_population"]]
    default = demo.coverage(CoverageRules()).table
    rural_rows = (direct["type"] != "community").to_numpy()
    # the rural rule reaches farther, the urban one is the default: only rural units gain
    assert written.loc[rural_rows, "covered_population"].sum() > default.loc[rural_rows, "covered_population"].sum()
    urban_default = [whole(v) for v in default.loc[~rural_rows, "covered_population"]]
    assert list(written.loc[~rural_rows, "covered_population"]) == urban_default
    # an explicit option overrides both rules of the file
    both = tmp_path / "both.csv"
    assert (
        main(
            [
                "coverage",
                "--store",
                str(demo_store_path),
                "--rules",
                str(rules_file),
                "--minutes",
                "15",
                "-o",
                str(both),
            ]
        )
        == 0
    )
    same = demo.coverage(
        CoverageRules(urban=CoverageSettings(minutes=15), rural=CoverageSettings(minutes=15, speed_kmh=5, access_m=250))
    ).table
    again = pd.read_csv(both, encoding="utf-8-sig")["covered_population"]
    assert list(again) == [whole(v) for v in same["covered_population"]]


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("urban: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}\n", "coverage"),
        (RURAL_WIDER.replace("access_m: 250", "acess_m: 250"), "coverage"),
        (RURAL_WIDER.replace("minutes: 15", "minutes: -15"), "suggest-sites"),
    ],
)
def test_a_bad_rules_file_exits_2(
    demo_store_path: Path, tmp_path: Path, text: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_file = tmp_path / "coverage.yaml"
    rules_file.write_text(text, encoding="utf-8")
    extra = ["--k", "1"] if command == "suggest-sites" else []
    assert main([command, *extra, "--store", str(demo_store_path), "--rules", str(rules_file)]) == 2
    assert "coverage.yaml" in capsys.readouterr().err


def test_suggest_sites_takes_the_rules_file(demo_store_path: Path, demo: DemoLayers, tmp_path: Path) -> None:
    from geoplan.analysis.siting import suggest_sites

    rules_file = tmp_path / "coverage.yaml"
    rules_file.write_text(RURAL_WIDER, encoding="utf-8")
    out = tmp_path / "sites.csv"
    assert (
        main(["suggest-sites", "--k", "2", "--store", str(demo_store_path), "--rules", str(rules_file), "-o", str(out)])
        == 0
    )
    rules = CoverageRules(urban=CoverageSettings(), rural=CoverageSettings(minutes=15, speed_kmh=5, access_m=250))
    result = demo.coverage(rules)
    direct = suggest_sites(result=result, rules=rules, k=2, graph=demo.graph)
    written = pd.read_csv(out, encoding="utf-8-sig")
    assert list(written["site_id"]) == list(direct["site_id"])
    assert np.allclose(written["gain_population"], direct["gain_population"])


def test_suggest_sites_in_euclidean_mode_still_picks_network_nodes(
    demo_store_path: Path, demo: DemoLayers, tmp_path: Path
) -> None:
    """The candidates are the network's nodes in either mode, so a Euclidean study loads the graph too."""
    from geoplan.analysis.siting import suggest_sites

    out = tmp_path / "sites.csv"
    assert (
        main(["suggest-sites", "--k", "2", "--mode", "euclidean", "--store", str(demo_store_path), "-o", str(out)]) == 0
    )
    flat = CoverageSettings(mode="euclidean")
    rules = CoverageRules(urban=flat, rural=flat)
    direct = suggest_sites(result=demo.coverage(rules), rules=rules, k=2, graph=demo.graph)
    written = pd.read_csv(out, encoding="utf-8-sig")
    assert list(written["site_id"]) == list(direct["site_id"])
    assert np.allclose(written["gain_population"], direct["gain_population"])
    assert (written["gain_population"] > 0).all()


def test_coverage_with_capacity_adds_the_accessibility_columns(
    demo_store_path: Path, demo: DemoLayers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoplan.analysis.capacity import ACCESSIBILITY_COLUMNS, capacity_accessibility

    out = tmp_path / "villages.xlsx"
    capsys.readouterr()
    assert main(["coverage", "--store", str(demo_store_path), "--capacity", "--norm", "80", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    direct = capacity_accessibility(
        villages=demo.villages,
        facilities=demo.facilities,
        population=demo.raster,
        graph=demo.graph,
        rules=CoverageRules(),
        norm=80.0,
    )
    written = pd.read_excel(out)
    n = len(VILLAGE_OUTPUT_COLUMNS)
    assert list(written.columns[:n]) == VILLAGE_OUTPUT_COLUMNS
    added = [c for c in ACCESSIBILITY_COLUMNS if c != "village_code"]
    assert list(written.columns[n : n + len(added)]) == added
    assert np.allclose(written["accessibility"], direct.table["accessibility"], equal_nan=True)
    assert list(written["below_norm_population"]) == [whole(v) for v in direct.table["below_norm_population"]]
    assert "access /1000" in printed and "below norm %" in printed
    people = demo.coverage(CoverageRules()).table["population"].sum()
    share = 100.0 * direct.table["below_norm_population"].sum() / people
    assert f"{share:.1f} % of people below the norm of 80.0" in printed
    # without --capacity the table keeps its columns, and --norm alone is refused
    plain = tmp_path / "plain.csv"
    assert main(["coverage", "--store", str(demo_store_path), "-o", str(plain)]) == 0
    assert "accessibility" not in pd.read_csv(plain, encoding="utf-8-sig").columns
    assert main(["coverage", "--store", str(demo_store_path), "--norm", "80"]) == 2
