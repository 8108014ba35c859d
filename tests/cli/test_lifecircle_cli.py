"""`geoplan lifecircle` end to end on the Gaoming demo store (the session's, read-only)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.analysis.life_circle_scorecard import SCORECARD_COLUMNS
from geoplan.analysis.life_circles import life_circle_coverage
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.services.rule_files import load_life_circles
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import ROOT
from tests.demo_layers import DemoLayers

RULES = load_life_circles(ROOT / "layers" / "rules" / "life_circles.yaml")


def test_every_service_one_row_per_village_whole_people(
    demo_store_path: Path, demo: DemoLayers, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "life.csv"
    capsys.readouterr()
    assert main(["lifecircle", "--store", str(demo_store_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text(encoding="utf-8-sig")
    assert "nan" not in text.lower() and "inf" not in text.lower()
    table = pd.read_csv(out, encoding="utf-8-sig", dtype={"village_code": str})
    assert list(table.columns) == [*SCORECARD_COLUMNS, "wkt"]
    assert len(table) == 81 * len(RULES)
    assert list(table["service"].unique()) == list(RULES)
    assert set(table["type"]) <= {"村", "社区", "虚拟单位"} and {"村", "社区"} <= set(table["type"])
    assert table["population"].dtype == np.int64 and table["covered_population"].dtype == np.int64
    assert (table["covered_population"] <= table["population"]).all()
    # against the engine directly: rounded half up, never truncated
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        public = store.read("public_facilities")
    finally:
        store.close()
    direct = (
        life_circle_coverage(
            villages=demo.villages,
            layers={"culture_facilities": demo.facilities, "public_facilities": public},
            population=demo.raster,
            graph=demo.graph,
            rules={"kindergarten": RULES["kindergarten"]},
        )
        .services["kindergarten"]
        .table
    )
    rows = table[table["service"] == "kindergarten"].reset_index(drop=True)
    assert list(rows["village_code"]) == list(direct["village_code"])
    assert (rows["population"] == np.floor(direct["population"] + 0.5).astype(int)).all()
    assert (rows["covered_population"] == np.floor(direct["covered_population"] + 0.5).astype(int)).all()
    assert np.abs(rows["population"] - direct["population"]).max() <= 0.5
    assert np.allclose(rows["coverage_pct"], direct["coverage_pct"].round(1), equal_nan=True)
    urban = rows["type"] == "社区"
    assert set(rows.loc[urban, "radius_m"]) == {300} and set(rows.loc[~urban, "radius_m"]) == {1000}
    assert set(rows["circle"]) == {5}
    # the printed district line of a service is the sum of its rows
    people = int(rows["population"].sum())
    assert f"{int(rows['covered_population'].sum()):,}" in printed and f"{people:,}" in printed
    assert "幼儿园" in printed and "文化设施" in printed


def test_chosen_services_to_xlsx_and_gpkg(demo_store_path: Path, tmp_path: Path) -> None:
    xlsx, gpkg = tmp_path / "two.xlsx", tmp_path / "two.gpkg"
    store = ["--store", str(demo_store_path)]
    assert main(["lifecircle", *store, "--services", "park,culture", "-o", str(xlsx)]) == 0
    assert main(["lifecircle", *store, "--services", "culture", "-o", str(gpkg)]) == 0
    book = pd.read_excel(xlsx, dtype={"village_code": str})
    assert list(book.columns[: len(SCORECARD_COLUMNS)]) == SCORECARD_COLUMNS
    assert list(book["service"].unique()) == ["park", "culture"] and len(book) == 2 * 81
    frame = gpd.read_file(gpkg)
    assert list(frame.columns) == [*SCORECARD_COLUMNS, "geometry"] and len(frame) == 81
    assert frame.geometry.notna().all() and frame.crs == "EPSG:4490"
    same = book[book["service"] == "culture"].reset_index(drop=True)
    assert (same["covered_population"].to_numpy() == frame["covered_population"].to_numpy()).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--services", "kindergarten,schools"], "unknown service(s) schools; choose from kindergarten"),
        (["--services", ","], "unknown service(s) (none given)"),
        (["-o", "x.shp"], "write .csv, .xlsx, .gpkg"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    demo_store_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lifecircle", "--store", str(demo_store_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_rules_file_exits_2(demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "life.yaml"
    rules.write_text("services: {kindergarten: {title_zh: 幼儿园, layer: public_facilities, circle: 7}}\n")
    assert main(["lifecircle", "--store", str(demo_store_path), "--rules", str(rules)]) == 2
    assert "life.yaml: kindergarten: missing urban, rural" in capsys.readouterr().err


def test_towns_completeness_centres_and_the_matrix(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = tmp_path / "matrix.xlsx"
    capsys.readouterr()
    assert main(["lifecircle", "--store", str(demo_store_path), "--matrix", str(matrix)]) == 0
    printed = capsys.readouterr().out
    assert "虚拟单位" in printed and "全区" in printed
    assert "佛山监狱" not in printed and "高明监狱" not in printed  # virtual units are no town
    assert "5 分钟（幼儿园、养老服务）" in printed
    assert "综合性文化服务中心" in printed and "of 77 villages and communities" in printed
    book = pd.read_excel(matrix, dtype={"village_code": str})
    assert len(book) == 81 and list(book.columns[6:]) == list(RULES)
    assert set(book.loc[book["type"] == "虚拟单位", "group"]) == {"虚拟单位"}
    assert main(["lifecircle", "--store", str(demo_store_path), "--matrix", str(tmp_path / "m.gpkg")]) == 2
