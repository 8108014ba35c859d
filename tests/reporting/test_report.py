"""The quarterly report (geoplan report) on the Gaoming demo store, after a snapshot and an edit that adds a
cultural facility where it raises coverage (tests/monitoring/uncovered.py):

- the workbook opens with openpyxl and holds every indicator of layers/indicators.yaml (read here with yaml, not
  with geoplan) with the values the indicator service gives, and the change since the snapshot as read from the
  snapshot table with sqlite3;
- the PDF renders to pages with pdftoppm (poppler-utils): as many as its layout says, none blank, its text
  searchable for every indicator id, the maps page coloured;
- the HTML holds every indicator and loads nothing from anywhere (no script, no http(s) source or link), and
  user-facing text is escaped;
- the CLI writes the file by suffix and refuses bad input with exit 2.
Small checks of the SVG tree and the charts use hand-made tables.
"""

from __future__ import annotations

import math
import re
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from openpyxl import load_workbook
from PIL import Image

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.monitoring.asof import as_of_now
from geoplan.monitoring.indicator_defs import load_indicator_defs, parse_indicator_defs
from geoplan.monitoring.snapshots import Snapshot
from geoplan.reporting.charts import overview_charts, progress_chart, trend_chart
from geoplan.reporting.formatting import met_label, met_or_none, number_or_none, plain, value_text
from geoplan.reporting.report_data import ReportData, gather_report
from geoplan.reporting.report_html import render_html
from geoplan.reporting.report_pdf import SUMMARY_ROWS_PER_PAGE, TRENDS_PER_PAGE, page_count, render_pdf
from geoplan.reporting.report_xlsx import render_xlsx
from geoplan.reporting.svg import Node, el
from geoplan.reporting.svg_charts import chart_svg, nice_ceiling
from geoplan.services import provenance
from geoplan.services.indicators import IndicatorRun, compute_indicators, record_snapshot
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.monitoring.uncovered import facility_feature, uncovered_site

PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")
_ITEMS = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
INDICATOR_IDS = [item["id"] for item in _ITEMS]
LIFE_CIRCLE_IDS = [item["id"] for item in _ITEMS if item["kind"].startswith("life_circle_")]
TREND_IDS = [i for i in INDICATOR_IDS if i not in LIFE_CIRCLE_IDS]
"""Indicators with a trend chart of their own (the life-circle group shares two)."""
HOSTILE = "<script>alert(1)</script>"


# --------------------------------------------------------------------------------------------- the store


@pytest.fixture(scope="module")
def store_path(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "demo.gpkg"
    shutil.copy(demo_store_path, path)
    return path


@pytest.fixture(scope="module")
def store(store_path: Path, catalog: Catalog) -> Any:
    backend = GeoPackageStore(store_path, catalog)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def snapshot(store: GeoPackageStore) -> Snapshot:
    """A snapshot, then a new cultural facility: the report's changes are against this snapshot."""
    shot = record_snapshot(store, layers_dir=LAYERS_DIR, actor="test:report")
    lon, lat, _ = uncovered_site(store)
    feature = facility_feature(lon, lat)
    properties = {**feature["properties"], "village_code": None}
    frame = gpd.GeoDataFrame([properties], geometry=[shapely.Point(lon, lat)], crs="EPSG:4490")
    store.write("culture_facilities", frame, mode="append", actor="test:report")
    return shot


@pytest.fixture(scope="module")
def data(store: GeoPackageStore, snapshot: Snapshot) -> ReportData:
    return gather_report(store, layers_dir=LAYERS_DIR)


@pytest.fixture(scope="module")
def service(store: GeoPackageStore, data: ReportData) -> IndicatorRun:
    """The indicator service's own answer for the same state (computed again, not taken from the report)."""
    return compute_indicators(store, layers_dir=LAYERS_DIR)


def _snapshot_values(path: Path, snapshot_id: int) -> dict[tuple[str, str, str], float | None]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT indicator, scope, scope_key, value FROM geoplan_indicator_values WHERE snapshot_id = ?",
            (snapshot_id,),
        ).fetchall()
    return {(str(i), str(s), str(k)): v for i, s, k, v in rows}


def _same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)


def _service_rows(run: IndicatorRun) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(str(r["indicator"]), str(r["scope"]), str(r["scope_key"])): r for r in run.table.to_dict("records")}


# --------------------------------------------------------------------------------------------- the data


def test_the_report_compares_with_the_snapshot_and_sees_the_new_facility(
    data: ReportData, snapshot: Snapshot, store_path: Path
) -> None:
    assert data.previous is not None and data.previous.id == snapshot.id
    assert data.snapshots[-1].id == snapshot.id  # after the demo's own 2017Q4–2020Q4
    assert [s.quarter for s in data.snapshots[:-1]] == [f"{y}Q{q}" for y in range(2017, 2021) for q in range(1, 5)][3:]
    before = _snapshot_values(store_path, snapshot.id)[("culture_coverage", "district", "")]
    row = data.table[(data.table["indicator"] == "culture_coverage") & (data.table["scope"] == "district")].iloc[0]
    assert before is not None and row["value"] > before  # the new facility covers people nobody reached
    assert row["previous_value"] == before
    assert row["change"] == pytest.approx(row["value"] - before, rel=1e-12)


def test_the_village_map_adds_up_to_the_coverage_indicator(data: ReportData, service: IndicatorRun) -> None:
    villages = data.layers["villages"]
    district = service.table[
        (service.table["indicator"] == "culture_coverage") & (service.table["scope"] == "district")
    ]
    covered = float(villages["covered_population"].sum())
    people = float(villages["covered_base_population"].sum())
    assert 100 * covered / people == pytest.approx(float(district["value"].iloc[0]), rel=1e-9)
    assert len(data.layers["projects"]) > 0 and len(data.layers["towns"]) == 8


# --------------------------------------------------------------------------------------------- xlsx


def test_the_workbook_holds_every_indicator_with_the_service_values(
    data: ReportData, service: IndicatorRun, snapshot: Snapshot, store_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(render_xlsx(data))
    book = load_workbook(path)
    assert book.sheetnames == ["概要", "指标", "明细", "镇街对比", "生活圈", "历史", "预警", "图表", "地图"]

    summary = book["指标"]
    assert [row[0] for row in summary.iter_rows(min_row=2, values_only=True)] == INDICATOR_IDS

    sheet = book["明细"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, values, strict=True)) for values in sheet.iter_rows(min_row=2, values_only=True)]
    expected = _service_rows(service)
    assert {r["indicator"] for r in rows} == set(INDICATOR_IDS)
    assert len(rows) == len(expected)
    recorded = _snapshot_values(store_path, snapshot.id)
    for row in rows:
        key = (row["indicator"], row["scope"], row["scope_key"] or "")
        want = expected[key]
        assert _same(row["value"], want["value"]), key
        assert _same(row["value_ellipsoid"], want["value_ellipsoid"]), key
        assert _same(row["target"], want["target"]), key
        assert row["target_met"] == want["target_met"], key
        assert row["unit"] == want["unit"], key
        before = recorded.get(key)
        assert _same(row["previous_value"], before), key
        if before is not None and want["value"] == want["value"]:
            assert row["change"] == pytest.approx(want["value"] - before, rel=1e-9, abs=1e-9), key

    assert len(book["图表"]._charts) >= 3  # progress, coverage and sponge share (and the share trends)
    assert len(book["地图"]._images) == 2
    towns = book["镇街对比"]
    column = [c.value for c in towns["A"][1:]]
    listed = column[: column.index(None)]  # the towns, down to the blank row before the indicator ids
    assert listed[:4] == ["荷城街道", "杨和镇", "明城镇", "更合镇"]  # the towns layer's order
    # prisons and farms are no town: listed only where the data puts a project (云勇林场 holds one)
    holding = {key for _, scope, key in expected if scope == "town"}
    assert set(listed[4:]) <= holding - {"荷城街道", "杨和镇", "明城镇", "更合镇"}
    assert "高明监狱" not in listed and "佛山监狱" not in listed
    town_header = [str(c.value) for c in towns[1]]
    assert not any("步行覆盖率" in h or "服务齐全" in h for h in town_header)  # the group has its own sheet

    # 生活圈: one row per life-circle indicator, 全区 and the four towns (virtual units never), the service's values
    circles = book["生活圈"]
    header = [c.value for c in circles[1]]
    assert header[3:8] == ["全区（%）", "荷城街道（%）", "杨和镇（%）", "明城镇（%）", "更合镇（%）"]
    listed = [row for row in circles.iter_rows(min_row=2, values_only=True) if row[0] in LIFE_CIRCLE_IDS]
    assert [row[0] for row in listed] == LIFE_CIRCLE_IDS
    for row in listed:
        for key, value in zip(("", "荷城街道", "杨和镇", "明城镇", "更合镇"), row[3:8], strict=True):
            scope = "town" if key else "district"
            assert _same(value, expected[(str(row[0]), scope, key)]["value"]), (row[0], key)


# --------------------------------------------------------------------------------------------- pdf


@pytest.fixture(scope="module")
def pdf_pages(data: ReportData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    if PDFTOPPM is None:
        pytest.skip("pdftoppm is missing (Debian: apt-get install poppler-utils)")
    folder = tmp_path_factory.mktemp("pdf")
    pdf = folder / "report.pdf"
    pdf.write_bytes(render_pdf(data))
    subprocess.run([PDFTOPPM, "-r", "40", "-png", str(pdf), str(folder / "page")], check=True, timeout=300)
    return pdf, sorted(folder.glob("page-*.png"))


def test_the_pdf_renders_to_the_planned_number_of_pages_none_blank(
    pdf_pages: tuple[Path, list[Path]], data: ReportData, service: IndicatorRun
) -> None:
    _, pages = pdf_pages
    expected = page_count(
        indicators=len(INDICATOR_IDS),
        trends=len(TREND_IDS) + 2,  # one each, and one for every service and one for the completeness
        snapshots=len(data.snapshots),
        warnings=len(data.warnings),
        rows=len(service.table),
        life_circles=len(LIFE_CIRCLE_IDS),
    )
    assert len(pages) == expected
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=float)
        body = pixels[: int(len(pixels) * 0.93)]  # above the footer, which every page has
        assert pixels.std() > 5, f"{page.name} looks blank"
        assert (body < 200).mean() > 0.005, f"{page.name} has (almost) nothing above its footer"


def test_the_pdf_maps_page_is_drawn_in_colour(pdf_pages: tuple[Path, list[Path]], data: ReportData) -> None:
    """The maps page (after the summary, the charts and the trends) holds the choropleth's classes."""
    _, pages = pdf_pages
    summary = math.ceil(len(INDICATOR_IDS) / SUMMARY_ROWS_PER_PAGE)
    maps = pages[summary + 1 + math.ceil(len(data.trends) / TRENDS_PER_PAGE)]
    rgb = np.asarray(Image.open(maps).convert("RGB"), dtype=int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)  # the "< 50 %" class, #d7191c
    assert red.sum() > 500


def test_the_pdf_text_names_every_indicator(pdf_pages: tuple[Path, list[Path]], data: ReportData) -> None:
    if PDFTOTEXT is None:
        pytest.skip("pdftotext is missing (Debian: apt-get install poppler-utils)")
    pdf, _ = pdf_pages
    text = subprocess.run([PDFTOTEXT, str(pdf), "-"], check=True, capture_output=True, timeout=120).stdout.decode()
    for ident in INDICATOR_IDS:
        assert ident in re.sub(r"\s+", "", text), ident  # the summary table may wrap a long id
    assert "十分钟文化圈人口覆盖率" in text  # the CJK font is embedded and its text extractable
    assert "公共服务生活圈（人口覆盖率，%）" in text and "幼儿园5分钟步行覆盖率" in text  # the section


# --------------------------------------------------------------------------------------------- html


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value is not None:
                self.urls.append((tag, name, value))


def test_the_html_holds_every_indicator_and_loads_nothing(data: ReportData, service: IndicatorRun) -> None:
    html = render_html(data).decode("utf-8")
    parser = _Sources()
    parser.feed(html)
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    for tag, name, value in parser.urls:
        assert not re.match(r"^\s*(https?:|//)", value, re.I), (tag, name, value)
        assert tag == "img" and value.startswith("data:image/png;base64,"), (tag, name, value[:40])
    assert len([u for u in parser.urls if u[0] == "img"]) == 2  # the two maps
    assert "default-src 'none'" in html and "@page { size: A4" in html
    for ident in INDICATOR_IDS:
        assert f'<tr data-indicator="{ident}">' in html, ident
    titles = {d.id: d.title_zh for d in service.definitions}
    assert all(title in html for title in titles.values())
    # the overview charts, one trend each, and the life-circle group's two (every service; completeness)
    assert parser.tags.count("svg") == 3 + len(TREND_IDS) + 2
    assert 'id="life-circles"' in html
    section = html[html.index('id="life-circles"') : html.index("</table>", html.index('id="life-circles"'))]
    assert "高明监狱" not in section and "佛山监狱" not in section  # virtual units are never towns
    rows = _service_rows(service)
    for ident in LIFE_CIRCLE_IDS:
        district = rows[(ident, "district", "")]["value"]
        assert f'<tr data-indicator="{ident}">' in section and f"{float(district):,.1f}" in section, ident
    # The coverage value as the summary shows it, from the service's number.
    value = service.table[(service.table["indicator"] == "culture_coverage") & (service.table["scope"] == "district")]
    assert f"{float(value['value'].iloc[0]):,.1f}%" in html


def test_indicator_titles_reach_the_html_as_text(store: GeoPackageStore, catalog: Catalog, tmp_path: Path) -> None:
    raw = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())
    chosen = [dict(i) for i in raw["indicators"] if i["id"] in ("renewal_area", "projects_overdue")]
    chosen[0]["title_zh"] = f"{HOSTILE}三旧改造"
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump({"indicators": chosen}, allow_unicode=True), encoding="utf-8")
    definitions = load_indicator_defs(path, catalog=catalog)
    report = gather_report(store, layers_dir=LAYERS_DIR, definitions=definitions, maps=False)
    html = render_html(report).decode("utf-8")
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;三旧改造" in html
    assert render_xlsx(report)[:2] == b"PK"  # the other writers take such titles too
    assert render_pdf(report)[:5] == b"%PDF-"


# --------------------------------------------------------------------------------------------- the CLI


def test_the_cli_writes_the_report_by_suffix_and_refuses_bad_input(
    store_path: Path, tmp_path: Path, snapshot: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "cli.gpkg"
    shutil.copy(store_path, copy)
    out = tmp_path / "report.html"
    # Without --quarter: today is past the demo plan's monitoring, so its last quarter, and the report says so.
    assert main(["report", "--store", str(copy), "-o", str(out)]) == 0
    assert "2020Q4 季度监测报告" in out.read_text(encoding="utf-8")
    shown = re.sub(r"\s+", "", capsys.readouterr().out)
    assert "reporting2020Q4,theplan'slastmonitoredquarter" in shown and "reportof2020Q4" in shown
    now = str(as_of_now().quarter)
    assert main(["report", "--store", str(copy), "--quarter", now, "-o", str(out)]) == 0
    assert f"changes against snapshot {snapshot.id}" in capsys.readouterr().out

    assert main(["report", "--store", str(copy), "-o", str(tmp_path / "report.docx")]) == 2
    assert ".docx" in capsys.readouterr().err
    assert main(["report", "--store", str(copy), "--quarter", "2099Q1", "-o", str(out)]) == 2
    assert "has not begun" in capsys.readouterr().err
    assert main(["report", "--store", str(copy), "--quarter", "2017Q2", "-o", str(out)]) == 2
    assert "did not exist yet" in capsys.readouterr().err  # the demo's history begins on 2017-07-01
    assert main(["report", "--store", str(tmp_path / "missing.gpkg"), "-o", str(out)]) == 2


# --------------------------------------------------------------------------------------------- svg and charts


def test_the_svg_tree_refuses_anything_executable_and_escapes_text() -> None:
    with pytest.raises(ValueError):
        el("script", {})
    with pytest.raises(ValueError):
        el("rect", {"onload": "alert(1)"})
    with pytest.raises(ValueError):
        el("a", {"href": "https://example.org"})
    with pytest.raises(ValueError):
        Node("g", (("style", "fill:red"),))
    node = el("svg", {"viewBox": "0 0 10 10"}, el("text", {"x": 1.0, "data-value": "1"}, text=HOSTILE))
    assert HOSTILE not in node.to_svg() and "&lt;script&gt;" in node.to_svg()
    assert node.to_json()["children"][0] == {"tag": "text", "attrs": {"x": "1", "data-value": "1"}, "text": HOSTILE}


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0.0, 0.3, 1.0, 3.0, 9.45, 22.0, 101.0, 951.0)] == [
        1.0,
        0.5,
        1.0,
        5.0,
        10.0,
        25.0,
        200.0,
        1000.0,
    ]


def test_a_missing_cell_reads_the_same_everywhere() -> None:
    """None, pandas' NA and NaN (of any float width) are one "no value" in the JSON, the workbook and the text."""
    missing = [None, pd.NA, math.nan, np.float64("nan"), np.float32("nan")]
    assert [plain(v) for v in missing] == [None] * 5
    assert [number_or_none(v) for v in missing] == [None] * 5
    assert [met_or_none(v) for v in missing] == [None] * 5
    assert {value_text(v, "%") for v in missing} == {"无数据"} and {met_label(v) for v in missing} == {"—"}
    # numpy scalars come out as the Python value they hold (JSON and openpyxl take no numpy types)
    for value, expected in ((np.int64(3), 3), (np.float32(0.5), 0.5), (np.bool_(False), False), ("x", "x")):
        out = plain(value)
        assert out == expected and type(out) is type(expected)
    assert number_or_none(np.int64(7)) == 7.0 and met_or_none(np.bool_(True)) is True and met_or_none(0.0) is False


def _hand_table() -> pd.DataFrame:
    rows = [
        ("sponge_share", "town", "乙镇", 30.0, 80.0, ">=", 2030.0, False),
        ("sponge_share", "town", "甲镇", 85.0, 80.0, ">=", 2030.0, True),
        ("sponge_share", "town", "丙场", math.nan, 80.0, ">=", 2030.0, None),
        ("projects_by_status", "task_area_status", "A|在建", 2.0, math.nan, "", math.nan, None),
        ("projects_by_status", "task_area_status", "A|已完工", 1.0, math.nan, "", math.nan, None),
        ("projects_by_status", "task_area_status", "B|在建", 0.0, math.nan, "", math.nan, None),
        ("projects_by_status", "task_area_status", "B|已完工", 4.0, math.nan, "", math.nan, None),
    ]
    frame = pd.DataFrame(
        rows, columns=["indicator", "scope", "scope_key", "value", "target", "target_op", "target_year", "target_met"]
    )
    frame["target_met"] = frame["target_met"].astype(object)
    return frame


def test_charts_take_their_numbers_and_targets_from_the_table(catalog: Catalog) -> None:
    raw = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
    definitions = parse_indicator_defs(
        {"indicators": [i for i in raw if i["id"] in ("sponge_share", "projects_by_status")]}, catalog=catalog
    ).indicators
    table = _hand_table()
    progress = progress_chart(table, definitions)
    assert progress is not None
    assert progress.categories == ("A", "B") and [s.name for s in progress.series] == ["在建", "已完工"]
    assert [s.values for s in progress.series] == [(2.0, 0.0), (1.0, 4.0)]

    charts = overview_charts(table, definitions, year=2026, towns=["甲镇", "乙镇"])
    sponge = next(c for c in charts if c.id == "sponge")
    assert sponge.categories == ("甲镇", "乙镇", "丙场")  # the towns layer's order, then the others
    assert sponge.series[0].values == (85.0, 30.0, None) and sponge.series[0].met == (True, False, None)
    assert [(t.value, t.applies) for t in sponge.targets] == [(20.0, True)]  # the plan's only one, past: it holds

    svg = chart_svg(sponge)
    bars = [n for n in svg.walk() if n.tag == "rect" and ("class", "gp-bar") in n.attrs]
    assert [(dict(b.attrs)["data-category"], dict(b.attrs)["data-value"], dict(b.attrs)["fill"]) for b in bars] == [
        ("甲镇", "85.0", "#1a9641"),
        ("乙镇", "30.0", "#d7191c"),
    ]
    targets = [dict(n.attrs)["data-value"] for n in svg.walk() if ("class", "gp-target") in n.attrs]
    assert targets == ["20.0"]


def test_a_trend_has_one_point_per_snapshot_with_its_value(catalog: Catalog) -> None:
    raw = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
    definition = parse_indicator_defs(
        {"indicators": [i for i in raw if i["id"] == "culture_coverage"]}, catalog=catalog
    ).indicators[0]
    history = pd.DataFrame(
        {
            "snapshot_id": [3, 3, 7, 7],
            "indicator": ["culture_coverage"] * 4,
            "scope": ["district", "town", "district", "town"],
            "scope_key": ["", "甲镇", "", "甲镇"],
            "value": [60.0, 50.0, 61.5, 52.0],
        }
    )
    chart = trend_chart(definition, history, [(3, "2026Q3"), (7, "2026Q4")], year=2026)
    assert chart.categories == ("2026Q3 #3", "2026Q4 #7")
    assert [s.name for s in chart.series] == ["全区"] and chart.series[0].values == (60.0, 61.5)
    points = [dict(n.attrs) for n in chart_svg(chart).walk() if ("class", "gp-point") in n.attrs]
    assert [(p["data-snapshot"], p["data-value"]) for p in points] == [("2026Q3 #3", "60.0"), ("2026Q4 #7", "61.5")]


def test_the_report_names_the_synthetic_layers_by_their_titles(
    data: ReportData, store: GeoPackageStore, pdf_pages: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    """Every format says which layers are demo data, as a reader names them, from the store's audit log."""
    expected = provenance.synthetic_titles(store)
    assert data.synthetic == provenance.synthetic_layers(store) and data.synthetic_titles == expected
    assert "人口栅格" in expected and "文化设施（部分）" in expected and "区界" not in expected  # one facility is real
    html = render_html(data).decode("utf-8")
    assert "、".join(expected) in html and "culture_facilities" not in html.split("<body", 1)[1][:4000]
    path = tmp_path / "report.xlsx"
    path.write_bytes(render_xlsx(data))
    cells = [str(c.value) for row in load_workbook(path)["概要"].iter_rows() for c in row]
    assert "、".join(expected) in cells
    if PDFTOTEXT is None:
        pytest.skip("pdftotext is missing (Debian: apt-get install poppler-utils)")
    text = subprocess.run([PDFTOTEXT, str(pdf_pages[0]), "-"], check=True, capture_output=True, timeout=120).stdout
    assert expected[0] in re.sub(r"\s+", "", text.decode())


def test_every_time_on_the_report_is_beijing_time(data: ReportData, snapshot: Snapshot, tmp_path: Path) -> None:
    """The page states its times once, in Beijing time (UTC+8, computed here apart), and never UTC beside them."""
    from datetime import datetime, timedelta

    def beijing(stored: str) -> str:
        return (datetime.fromisoformat(stored) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")

    html = render_html(data).decode("utf-8")
    text = re.sub(r"<[^>]+>", " ", html.split("<body", 1)[1])
    assert "北京时间" in text and "UTC" not in text and "+00:00" not in text
    assert beijing(data.generated_at) in text
    assert data.previous is not None and data.previous.id == snapshot.id
    assert f"截至 {beijing(snapshot.as_of)}（北京时间）" in text
    assert data.as_of_local == beijing(data.as_of.iso)

    path = tmp_path / "times.xlsx"
    path.write_bytes(render_xlsx(data))
    book = load_workbook(path)
    overview = {row[0]: row[1] for row in book["概要"].iter_rows(min_row=3, values_only=True) if row[0]}
    assert overview["生成时间（北京时间）"] == beijing(data.generated_at)
    assert overview["数据截至（北京时间）"] == beijing(data.as_of.iso)
    assert str(overview["数据截至（ISO 8601）"]).endswith("+08:00")
    cells = [str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row if v is not None]
    assert not [c for c in cells if "UTC" in c or "+00:00" in c]
