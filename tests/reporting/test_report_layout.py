"""The quarterly report as a reader sees it on A4: every text inside the page's margins, tables whose cells do
not run into each other, indicators named in Chinese, and maps with the web's classes, town names, a scale bar
and a legend beside the map.

Positions come from the PDF itself (pdftotext -bbox: every word's box in points), the coverage classes from the
web app's own answer (/api/coverage on the same store) and from mapclassify directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mapclassify
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from matplotlib.patches import Patch
from openpyxl import load_workbook
from PIL import Image

from geoplan.analysis.coverage_classes import PALETTES
from geoplan.catalog import Catalog
from geoplan.reporting.charts import Chart, Series
from geoplan.reporting.pdf_table import layout_table, text_width
from geoplan.reporting.report_data import ReportData, gather_report
from geoplan.reporting.report_html import render_html
from geoplan.reporting.report_maps import map_figure
from geoplan.reporting.report_mpl import rendering
from geoplan.reporting.report_pdf import page_plan, render_pdf
from geoplan.reporting.report_xlsx import render_xlsx
from geoplan.reporting.svg_charts import chart_svg, shortened
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.web.browser import browser
from tests.web.conftest import bearer, tokens_in
from web.app import create_app
from web.settings import WebSettings

__all__ = ["browser"]  # the fixture, imported so pytest finds it

PDFTOTEXT = shutil.which("pdftotext")
PDFTOPPM = shutil.which("pdftoppm")
INDICATORS = yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]
IDS = [item["id"] for item in INDICATORS]
MARGIN = 0.05
"""The report's left and right margin as a share of the page width (report_pdf.MARGIN, 10.5 mm)."""
LONG_KEY = "荷城街道城南片区（含" + "某某工业园" * 6 + "）" + "_RULE_IDENTIFIER_WITHOUT_ANY_SPACE_0123456789"
"""A scope key far wider than any column: a real rule or field value can be this long."""
TABLE_PAGES = ("指标总表", "镇街对比", "预警", "指标明细")


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class PdfPage:
    width: float
    height: float
    words: list[Word]

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words)


def pdf_words(pdf: Path) -> list[PdfPage]:
    assert PDFTOTEXT is not None, "pdftotext is missing (Debian: apt-get install poppler-utils)"
    out = subprocess.run([PDFTOTEXT, "-bbox", str(pdf), "-"], check=True, capture_output=True, timeout=120)
    pages = []
    for chunk in out.stdout.decode().split("<page ")[1:]:
        size = re.search(r'width="([\d.]+)" height="([\d.]+)"', chunk)
        assert size is not None
        words = [
            Word(t, float(a), float(b), float(c), float(d))
            for a, b, c, d, t in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', chunk
            )
        ]
        pages.append(PdfPage(float(size.group(1)), float(size.group(2)), words))
    return pages


@pytest.fixture(scope="module")
def store(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Any:
    path = tmp_path_factory.mktemp("layout") / "demo.gpkg"
    shutil.copy(demo_store_path, path)
    backend = GeoPackageStore(path, catalog)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def data(store: GeoPackageStore) -> ReportData:
    return gather_report(store, layers_dir=LAYERS_DIR)


@pytest.fixture(scope="module")
def long_data(data: ReportData) -> ReportData:
    """The same report with a very long scope key in every warning and in some detail rows."""
    warnings = data.warnings.copy()
    warnings["scope_key"] = LONG_KEY
    table = data.table.copy()
    table.loc[table.index[:5], "scope_key"] = LONG_KEY
    return replace(data, warnings=warnings, table=table)


def _pdf(report: ReportData, folder: Path) -> tuple[list[PdfPage], list[str]]:
    path = folder / "report.pdf"
    path.write_bytes(render_pdf(report))
    return pdf_words(path), [page.title for page in page_plan(report)]


@pytest.fixture(scope="module")
def pages(data: ReportData, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[PdfPage], list[str]]:
    return _pdf(data, tmp_path_factory.mktemp("pdf"))


@pytest.fixture(scope="module")
def long_pages(long_data: ReportData, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[PdfPage], list[str]]:
    return _pdf(long_data, tmp_path_factory.mktemp("pdf-long"))


def _outside(page: PdfPage) -> list[Word]:
    left, right = page.width * MARGIN - 0.5, page.width * (1 - MARGIN) + 0.5
    return [w for w in page.words if w.x0 < left or w.x1 > right or w.y0 < 0 or w.y1 > page.height]


def _overlaps(page: PdfPage) -> list[tuple[str, str]]:
    """Pairs of words whose boxes overlap by more than a point each way (a cell's text running into the next)."""
    found = []
    words = sorted(page.words, key=lambda w: w.x0)
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            if b.x0 >= a.x1 - 1.0:
                break
            if min(a.y1, b.y1) - max(a.y0, b.y0) > 1.0:
                found.append((a.text, b.text))
    return found


@pytest.mark.parametrize("which", ["pages", "long_pages"])
def test_no_text_crosses_the_margins_and_no_table_cell_runs_into_the_next(
    which: str, request: pytest.FixtureRequest
) -> None:
    pdf, titles = request.getfixturevalue(which)
    assert len(pdf) == len(titles)
    for number, (page, title) in enumerate(zip(pdf, titles, strict=True), start=1):
        assert page.width == pytest.approx(595.3, abs=0.5) and page.height == pytest.approx(841.9, abs=0.5)  # A4
        assert page.words, f"page {number} has no text"
        assert not _outside(page), f"page {number} ({title}): {[w.text for w in _outside(page)][:5]}"
        if title in TABLE_PAGES:
            assert not _overlaps(page), f"page {number} ({title}): {_overlaps(page)[:5]}"


def test_a_long_key_is_wrapped_whole_not_cut(long_pages: tuple[list[PdfPage], list[str]]) -> None:
    """The long key reaches the page in full (wrapped over lines), on the warnings and the detail pages."""
    pdf, titles = long_pages
    for wanted in ("预警", "指标明细"):
        page = next(p for p, t in zip(pdf, titles, strict=True) if t == wanted)
        first = next(w for w in page.words if w.text.startswith(LONG_KEY[:8]))
        column = sorted((w for w in page.words if abs(w.x0 - first.x0) < 1 and w.y0 >= first.y0), key=lambda w: w.y0)
        assert "".join(w.text for w in column).startswith(LONG_KEY), wanted
        assert len({round(w.y0) for w in column[:3]}) == 3  # over several lines of one cell


def test_the_warnings_pages_name_indicators_in_chinese_never_by_id(
    pages: tuple[list[PdfPage], list[str]], data: ReportData
) -> None:
    pdf, titles = pages
    text = "".join(p.text for p, t in zip(pdf, titles, strict=True) if t in ("预警", "指标明细"))
    warned = set(data.warnings["indicator"])
    assert warned, "the demo report has warnings"
    titles_zh = {item["id"]: item["title_zh"] for item in INDICATORS}
    for ident in warned:
        assert titles_zh[ident] in text
    assert not [ident for ident in IDS if ident in text]
    assert not re.search(r"\b(district|town|rule|task_area)\b", text)  # scopes too are Chinese


def test_the_html_warnings_name_indicators_in_chinese(data: ReportData) -> None:
    html = render_html(data).decode("utf-8")
    section = html.split('<table id="warnings">', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td>([^<]*)</td>", section)
    assert not [c for c in cells if c in IDS]
    assert {item["title_zh"] for item in INDICATORS if item["id"] in set(data.warnings["indicator"])} <= set(cells)


def _web_classes(store: GeoPackageStore) -> dict[str, Any]:
    token = tokens_in(store.url).staff
    with TestClient(create_app(WebSettings(store=store.url, layers_dir=LAYERS_DIR))) as client:
        response = client.get("/api/coverage", headers=bearer(token))
    assert response.status_code == 200
    classes: dict[str, Any] = response.json()["classes"]
    return classes


def test_the_coverage_maps_classes_and_colours_are_the_web_maps(data: ReportData, store: GeoPackageStore) -> None:
    villages = data.layers["villages"]
    pct = villages["coverage_pct"].to_numpy(dtype=float)
    reference = mapclassify.FisherJenks(pct[np.isfinite(pct)], k=5)  # independent of geoplan's wrapper
    web = _web_classes(store)
    assert web["upper"] == pytest.approx(list(reference.bins), abs=1e-6)
    figure = map_figure("coverage", data.layers)
    with rendering():
        figure.canvas.draw()  # type: ignore[attr-defined]
    legend = figure.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    colours = [
        "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in h.get_facecolor()[:3]))
        for h in legend.legend_handles
        if isinstance(h, Patch)
    ]
    k = len(web["upper"])
    assert colours[:k] == web["colors"] == list(PALETTES[5])
    for i, label in enumerate(labels[:k]):  # "lower – upper%（n 个）", as the web legend writes the range
        assert label == f"{web['lower'][i]:.1f} – {web['upper'][i]:.1f}%（{web['counts'][i]} 个）"


def test_the_legends_sit_beside_the_maps_not_on_them(data: ReportData) -> None:
    for kind in ("coverage", "projects"):
        figure = map_figure(kind, data.layers, size=(7.0, 5.2))
        with rendering():
            figure.canvas.draw()  # type: ignore[attr-defined]
            ax = figure.axes[0]
            legend = ax.get_legend()
            assert legend is not None
            box, frame = legend.get_window_extent(), ax.get_window_extent()
        assert box.x0 >= frame.x1, kind  # wholly right of the map's axes
        assert box.x1 <= figure.bbox.x1 + 1, kind  # and on the figure


def test_the_maps_page_names_the_towns_has_a_scale_bar_and_the_webs_colours(
    pages: tuple[list[PdfPage], list[str]], data: ReportData, tmp_path: Path
) -> None:
    pdf, titles = pages
    page = pdf[titles.index("专题地图")]
    towns = [str(t) for t in data.layers["towns"]["town_name"]]
    assert len(towns) == 8
    for town in towns:
        assert page.text.count(town) == 2, town  # on both maps
    assert sum(w.text == "km" for w in page.words) == 2 and sum(w.text == "北" for w in page.words) == 2
    assert PDFTOPPM is not None
    pdf_path = tmp_path / "maps.pdf"
    pdf_path.write_bytes(render_pdf(data))
    number = titles.index("专题地图") + 1
    prefix = tmp_path / "maps"
    subprocess.run(
        [PDFTOPPM, "-r", "50", "-f", str(number), "-l", str(number), "-png", str(pdf_path), str(prefix)],
        check=True,
        timeout=120,
    )
    rgb = np.asarray(Image.open(next(tmp_path.glob("maps*.png"))).convert("RGB"), dtype=int)
    yellow = (abs(rgb[..., 0] - 0xFF) < 6) & (abs(rgb[..., 1] - 0xFF) < 6) & (abs(rgb[..., 2] - 0xBF) < 10)
    assert yellow.sum() > 200  # the web's middle class (#ffffbf), which fixed classes never drew


def test_a_table_takes_natural_widths_when_they_fit_and_wraps_when_not() -> None:
    with rendering():
        narrow = layout_table(["a", "bb"], [["1", "2"]], width=200.0, height=100.0)
        assert narrow.width == pytest.approx(200.0) and len(narrow.lines) == 2
        assert all(len(cell) == 1 for row in narrow.lines for cell in row)
        long = "十分钟文化圈人口覆盖率" * 4
        wide = layout_table(["指标", "值"], [[long, "68.0%"]], width=150.0, height=300.0)
        assert wide.width == pytest.approx(150.0) and wide.font == 7.5
        lines = wide.lines[1][0]
        assert len(lines) > 1 and "".join(lines) == long
        assert max(text_width(line, wide.font) for line in lines) <= wide.widths[0]
        assert wide.lines[1][1] == ("68.0%",)  # the short column is not squeezed
        tall = layout_table(["x"], [[long]] * 30, width=150.0, height=120.0)
        assert tall.font < 7.5 and (tall.height <= 120.0 or tall.font == 5.0)


def test_rows_keyed_by_rule_show_the_rules_title_before_its_code(
    pages: tuple[list[PdfPage], list[str]], data: ReportData
) -> None:
    rules = yaml.safe_load((LAYERS_DIR / "rules" / "conflicts.yaml").read_text())["rules"]
    titles = {r["code"]: r["title_zh"] for r in rules}
    keyed = {str(k) for k in data.table.loc[data.table["scope"] == "rule", "scope_key"]}
    assert keyed and keyed <= set(titles)
    pdf, page_titles = pages
    text = re.sub(r"\s+", "", "".join(p.text for p, t in zip(pdf, page_titles, strict=True) if t == "指标明细"))
    for code in keyed:
        assert f"{titles[code]}（{code}）".replace(" ", "") in text, code


def test_the_workbooks_warnings_name_each_indicator(data: ReportData, tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(render_xlsx(data))
    rows = list(load_workbook(path)["预警"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert len(body) == len(data.warnings) > 0
    titles = {item["id"]: item["title_zh"] for item in INDICATORS}
    at = header.index("indicator")
    assert header[at + 1] == "title_zh"
    assert all(row[at + 1] == titles[str(row[at])] for row in body)


def _printed(browser: Any, html: bytes | str, folder: Path) -> list[PdfPage]:
    """The HTML as Chromium prints it (its own @page size and margins), as words with positions."""
    source = folder / "report.html"
    source.write_bytes(html if isinstance(html, bytes) else html.encode("utf-8"))
    tab = browser.new_page()
    try:
        tab.goto(source.as_uri())
        tab.pdf(path=str(folder / "printed.pdf"), prefer_css_page_size=True)
    finally:
        tab.close()
    return pdf_words(folder / "printed.pdf")


def test_the_html_report_prints_inside_its_margins_even_with_a_long_key(
    browser: Any, long_data: ReportData, tmp_path: Path
) -> None:
    printed = _printed(browser, render_html(long_data), tmp_path)
    assert len(printed) > 5
    left, right = 12 / 25.4 * 72 - 1.0, 595.3 - 12 / 25.4 * 72 + 1.0  # the template's @page margins: 12 mm
    for number, page in enumerate(printed, start=1):
        outside = [w.text for w in page.words if w.x0 < left or w.x1 > right]
        assert not outside, f"printed page {number}: {outside[:5]}"
    text = re.sub(r"\s+", "", "".join(p.text for p in printed))
    assert LONG_KEY in text  # wrapped in its cell, not cut: the table's copy is whole


def test_a_long_chart_category_is_shortened_with_its_whole_name_as_tooltip() -> None:
    assert shortened("荷城街道", 126.0) == "荷城街道"
    cut = shortened(LONG_KEY, 126.0)
    assert cut.endswith("…") and LONG_KEY.startswith(cut[:-1]) and len(cut) == 10  # 9 full-width + …: 10 × 12 px
    chart = Chart(
        id="c", title="t", unit="%", kind="bars", categories=(LONG_KEY,), series=(Series("全区", (50.0,), "#123456"),)
    )
    labels = [n for n in chart_svg(chart).walk() if n.tag == "text" and n.text == cut]
    assert len(labels) == 1 and [c.text for c in labels[0].children if c.tag == "title"] == [LONG_KEY]
