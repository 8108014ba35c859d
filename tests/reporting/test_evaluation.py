"""The plan-end evaluation (geoplan evaluate) on the Gaoming demo store, checked against independent reckonings:

- the projects per task area and outcome equal a count made here in a plain loop over the progress table read
  with sqlite3 and the projects read with geopandas (the rules of `project_outcomes` restated, not called);
- every indicator at the start, the plan's end and the end of the monitoring equals `compute_indicators` at
  those quarters and the snapshot table (sqlite3); each milestone verdict equals a comparison made here with the
  targets read from layers/indicators.yaml with yaml;
- the conflicts resolved are the set difference of the patch ids found by the overlap engine on the layers as of
  the start and the end, and the conflict indicators' areas add up to the patches counted;
- the coverage maps' villages add up to the coverage indicator then and now;
- the three formats agree: the workbook read back with openpyxl, the HTML parsed, the PDF's text (pdftotext);
  the PDF's cover and map pages render (pdftoppm) in colour;
- the CLI writes by suffix and refuses a bad suffix and a store without data for the plan.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import sqlite3
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import yaml
from openpyxl import load_workbook
from PIL import Image

from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.rules import layers_of
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.monitoring.asof import as_of_quarter, layer_as_of
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.reporting.evaluation_data import EvaluationData, gather_evaluation
from geoplan.reporting.evaluation_html import render_evaluation_html
from geoplan.reporting.evaluation_pdf import page_plan, render_evaluation_pdf
from geoplan.reporting.evaluation_xlsx import render_evaluation_xlsx
from geoplan.services.indicators import compute_indicators
from geoplan.services.rule_files import rules_for
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")
PLAN = yaml.safe_load((LAYERS_DIR / "plan.yaml").read_text(encoding="utf-8"))["plan"]
ITEMS = {item["id"]: item for item in yaml.safe_load((LAYERS_DIR / "indicators.yaml").read_text())["indicators"]}
START, END, FINAL = (Quarter.parse(PLAN[k]) for k in ("start", "end", "monitored_until"))
OUTCOME_ZH = {
    "finished_on_time": "按期完成",
    "finished_late": "逾期完成",
    "late": "逾期未完成",
    "not_started": "未开工",
    "in_progress": "推进中",
}


# --------------------------------------------------------------------------------------------- the store


@pytest.fixture(scope="module")
def store_path(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evaluation") / "demo.gpkg"
    shutil.copy(demo_store_path, path)
    return path


@pytest.fixture(scope="module")
def store(store_path: Path, catalog: Catalog) -> Any:
    backend = GeoPackageStore(store_path, catalog)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def data(store: GeoPackageStore) -> EvaluationData:
    return gather_evaluation(store, layers_dir=LAYERS_DIR)


@pytest.fixture(scope="module")
def xlsx(data: EvaluationData) -> Any:
    return load_workbook(io.BytesIO(render_evaluation_xlsx(data)))


@pytest.fixture(scope="module")
def html(data: EvaluationData) -> str:
    return render_evaluation_html(data).decode("utf-8")


@pytest.fixture(scope="module")
def pdf(data: EvaluationData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evaluation-pdf") / "evaluation.pdf"
    path.write_bytes(render_evaluation_pdf(data))
    return path


# --------------------------------------------------------------------------------------------- projects


def _independent_outcomes(store_path: Path, quarter: Quarter) -> dict[str, tuple[str, str, bool]]:
    """project_id -> (task area, outcome, stalled), from the raw tables: the records recorded by the quarter's
    end for quarters up to it, the highest id of a project's quarter counting."""
    moment = as_of_quarter(quarter)
    with sqlite3.connect(store_path) as connection:
        raw = connection.execute(
            "SELECT id, project_id, quarter, progress_pct, status, recorded_at FROM geoplan_project_progress"
        ).fetchall()
    latest: dict[tuple[str, str], tuple[int, float, str]] = {}
    for rid, pid, q, progress, status, recorded in raw:
        if q > str(quarter) or np.datetime64(recorded.replace("+00:00", "")) > np.datetime64(
            moment.at.replace(tzinfo=None)
        ):
            continue
        if (pid, q) not in latest or rid > latest[(pid, q)][0]:
            latest[(pid, q)] = (rid, float(progress), str(status))
    projects = gpd.read_file(store_path, layer="projects")
    before = str(Quarter.from_index(quarter.index - 2))
    out = {}
    for project in projects.itertuples():
        pid = str(project.project_id)
        mine = sorted((q, v) for (p, q), v in latest.items() if p == pid)
        if quarter.year < int(project.start_year):
            status, progress = "前期", 0.0
        elif mine:
            status, progress = mine[-1][1][2], mine[-1][1][1]
        else:
            status, progress = "前期", 0.0
        done = [q for q, (_, p, s) in mine if s == "已完工" or p >= 100.0]
        earlier = [v[1] for q, v in mine if q <= before]
        progress_before = earlier[-1] if earlier else 0.0
        due = f"{int(project.end_year)}Q4"
        finished = status == "已完工" or progress >= 100.0
        started = status != "前期" or progress > 0.0
        if finished:
            outcome = "finished_on_time" if (done[0] if done else str(quarter)) <= due else "finished_late"
        elif str(quarter) >= due:
            outcome = "late"
        elif not started:
            outcome = "not_started"
        else:
            outcome = "in_progress"
        out[pid] = (str(project.task_area), outcome, started and not finished and progress <= progress_before)
    return out


def test_projects_per_task_area_equal_an_independent_count(data: EvaluationData, store_path: Path) -> None:
    expected = _independent_outcomes(store_path, FINAL)
    assert set(data.outcomes["project_id"]) == set(expected)
    counts = Counter((area, outcome) for area, outcome, _ in expected.values())
    stalled = Counter(area for area, _, s in expected.values() if s)
    table = data.outcome_counts
    for area in {a for a, _, _ in expected.values()}:
        for outcome in OUTCOME_ZH:
            assert table.loc[area, outcome] == counts[(area, outcome)], (area, outcome)
        assert table.loc[area, "stalled"] == stalled[area]
        assert table.loc[area, "total"] == sum(1 for a, _, _ in expected.values() if a == area)
    assert table.loc["合计", "total"] == len(expected)
    # the names listed per area and outcome are those projects
    names = dict(zip(data.outcomes["project_id"], data.outcomes["name"], strict=True))
    for area, outcome in counts:
        assert sorted(data.projects_of(area, outcome)) == sorted(
            names[p] for p, (a, o, _) in expected.items() if (a, o) == (area, outcome)
        )
    # the demo holds every kind of finding the evaluation is for
    assert all(table.loc["合计", o] > 0 for o in OUTCOME_ZH) and table.loc["合计", "stalled"] > 0
    # finished = the indicator service's completed count at the end of the monitoring
    completed = _district_values(data, "projects_completed")[-1]
    assert table.loc["合计", "finished_on_time"] + table.loc["合计", "finished_late"] == completed


# --------------------------------------------------------------------------------------------- indicators


def _district_values(data: EvaluationData, ident: str) -> tuple[float | None, ...]:
    return next(i.values for i in data.indicators if i.definition.id == ident)


def _snapshot_district(path: Path, quarter: Quarter) -> dict[str, float | None]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT v.indicator, v.value FROM geoplan_indicator_values v JOIN geoplan_indicator_snapshots s "
            "ON s.id = v.snapshot_id WHERE s.quarter = ? AND v.scope = 'district' ORDER BY s.id",
            (str(quarter),),
        ).fetchall()
    return {str(i): v for i, v in rows}


def test_indicators_at_start_and_end_equal_the_service_and_the_snapshots(
    data: EvaluationData, store: GeoPackageStore, store_path: Path
) -> None:
    assert [str(m.quarter) for _, m in data.moments] == [str(START), str(END), str(FINAL)]
    assert [i.definition.id for i in data.indicators] == list(ITEMS)
    for column, quarter in enumerate((START, END, FINAL)):
        run = compute_indicators(store, layers_dir=LAYERS_DIR, as_of=as_of_quarter(quarter))
        district = run.table[run.table["scope"] == "district"]
        service = dict(zip(district["indicator"], district["value"], strict=True))
        snapshot = _snapshot_district(store_path, quarter) if quarter != START else {}
        for item in data.indicators:
            ident = item.definition.id
            if ident not in service:
                assert not item.headline and item.values[column] is None
                continue
            assert item.values[column] == pytest.approx(service[ident], rel=1e-12, abs=1e-12), (ident, quarter)
            if ident in snapshot:  # the demo's snapshot of that quarter recorded the same
                assert item.values[column] == pytest.approx(snapshot[ident], rel=1e-9, abs=1e-9), (ident, quarter)


def _expected_verdict(item: dict[str, Any], year: int, value: float | None) -> str:
    due = [t for t in item.get("targets") or [] if t.get("year") == year] or [
        t for t in item.get("targets") or [] if t.get("year") is None
    ]
    if not due:
        return "无目标"
    if value is None:
        return "无数据"
    target = due[0]
    met = value >= target["value"] if target["comparison"] == ">=" else value <= target["value"]
    return "达标" if met else "未达标"


def test_milestone_verdicts_equal_an_independent_comparison(data: EvaluationData, store: GeoPackageStore) -> None:
    years = [m["year"] for m in PLAN["milestones"]]
    assert [m.year for m, _ in data.milestones] == years
    judged = Counter()
    for year in years:
        quarter = min(Quarter(year, 4), FINAL)
        run = compute_indicators(store, layers_dir=LAYERS_DIR, as_of=as_of_quarter(quarter))
        for item in data.indicators:
            verdict = next(v for v in item.verdicts if v.milestone.year == year)
            assert verdict.quarter == quarter
            rows = run.table[run.table["indicator"] == item.definition.id]
            district = rows[rows["scope"] == "district"]
            if len(district):
                value = district["value"].iloc[0]
                value = None if value is None or math.isnan(value) else float(value)
                assert verdict.label == _expected_verdict(ITEMS[item.definition.id], year, value), (item, year)
            else:  # judged on its rows: all met, none met, or k of n
                states = [_expected_verdict(ITEMS[item.definition.id], year, float(v)) for v in rows["value"]]
                if "达标" in states and "未达标" in states:
                    assert verdict.label == f"部分达标（{states.count('达标')}/{len(states)}）"
                else:
                    assert verdict.label == (states[0] if states else "无数据")
            judged[verdict.label] += 1
    assert judged["未达标"] > 0 and judged["无目标"] > 0  # the demo misses the 2019 culture coverage target


# --------------------------------------------------------------------------------------------- conflicts, coverage


def test_conflicts_resolved_are_the_patches_gone_by_the_end(data: EvaluationData, store: GeoPackageStore) -> None:
    rules = rules_for(store.catalog, LAYERS_DIR)
    found = {}
    for quarter in (START, FINAL):
        moment = as_of_quarter(quarter)
        patches = find_conflicts(
            layers={name: layer_as_of(store, name, moment) for name in layers_of(rules)},
            catalog=store.catalog,
            rules=rules,
            settings=OverlapSettings(),
        )
        found[quarter] = patches
    before, after = (set(found[q]["patch_id"]) for q in (START, FINAL))
    assert sorted(data.conflicts.ids("resolved")) == sorted(before - after)
    assert sorted(data.conflicts.ids("new")) == sorted(after - before)
    assert sorted(data.conflicts.ids("remaining")) == sorted(before & after)
    assert before - after, "the demo resolves conflicts over the plan"
    # the conflict indicators count the same patches (exempt ones left out): open + marked = all at each moment
    for column, quarter in ((0, START), (2, FINAL)):
        frame = found[quarter]
        counted = frame[~frame["exempt"].fillna(False).astype(bool)]
        hectares = float(counted["area_m2"].sum()) / 10_000
        indicator = sum(
            _district_values(data, i)[column] or 0.0 for i in ("conflict_area_open", "conflict_area_resolved")
        )
        assert indicator == pytest.approx(hectares, rel=1e-9)


def test_the_coverage_maps_add_up_to_the_indicator_then_and_now(data: EvaluationData) -> None:
    coverage = _district_values(data, "culture_coverage")
    for layers, value in ((data.start_layers, coverage[0]), (data.final.layers, coverage[-1])):
        villages = layers["villages"]
        share = 100.0 * villages["covered_population"].sum() / villages["covered_base_population"].sum()
        assert share == pytest.approx(value, rel=1e-9)
    changes = data.villages
    for start, end, change in zip(
        changes["coverage_start"], changes["coverage_end"], changes["change_pp"], strict=True
    ):
        assert change == pytest.approx(end - start)
    assert (changes["change_pp"] > 0).sum() > 0


# --------------------------------------------------------------------------------------------- the formats agree


class _Rows(HTMLParser):
    """The text of each table row carrying `attribute`, by the attribute's value."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute, self.rows, self._key, self._cells = attribute, {}, None, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._key = dict(attrs).get(self.attribute)
            self._cells = []
        elif tag == "td" and self._key is not None:
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._key is not None:
            self.rows[self._key] = [c.strip() for c in self._cells]
            self._key = None

    def handle_data(self, text: str) -> None:
        if self._key is not None and self._cells:
            self._cells[-1] += text


def _html_rows(html: str, attribute: str) -> dict[str, list[str]]:
    parser = _Rows(attribute)
    parser.feed(html)
    return parser.rows


def test_the_workbook_holds_the_same_numbers(data: EvaluationData, xlsx: Any) -> None:
    areas = {
        row[0]: row[1:]
        for row in xlsx["任务领域"].iter_rows(min_row=2, max_row=len(data.task_areas) + 2, values_only=True)
    }
    for area in [*data.task_areas, "合计"]:
        assert list(areas[area][:7]) == [int(v) for v in data.outcome_counts.loc[area]]
    sheet = xlsx["指标"]
    header = [c.value for c in sheet[1]]
    assert header[3:6] == [f"计划起点（{START}）", f"计划期末（{END}）", f"评估截至（{FINAL}）"]
    by_id = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    for item in data.indicators:
        row = by_id[item.definition.id]
        if item.headline:
            assert list(row[3:6]) == pytest.approx(list(item.values))
        for i, verdict in enumerate(item.verdicts):
            assert row[8 + 2 * i] == verdict.label
    patches = {row[0]: row for row in xlsx["冲突图斑"].iter_rows(min_row=9, values_only=True) if row[0]}
    assert sorted(p for p, row in patches.items() if row[6] == "已化解") == sorted(data.conflicts.ids("resolved"))
    assert len(xlsx["村覆盖率"]["A"]) == len(data.villages) + 1
    assert len(xlsx["地图"]._images) == 3
    assert len(xlsx["趋势"]._charts) == len(data.trends)
    cells = [c for ws in xlsx.worksheets for row in ws.iter_rows(values_only=True) for c in row]
    assert not any(isinstance(c, float) and not math.isfinite(c) for c in cells)
    assert not any(isinstance(c, str) and c.strip().lower() in ("nan", "none", "inf") for c in cells)


def test_the_html_holds_the_same_numbers_and_loads_nothing(data: EvaluationData, html: str, xlsx: Any) -> None:
    areas = _html_rows(html, "data-area")
    for area in [*data.task_areas, "合计"]:
        assert areas[area][1:] == [str(int(v)) for v in data.outcome_counts.loc[area]]
    indicators = _html_rows(html, "data-indicator")
    assert set(indicators) == set(ITEMS)
    sheet = {row[0]: row for row in xlsx["指标"].iter_rows(min_row=2, values_only=True)}
    for ident, cells in indicators.items():
        # a milestone's cell: the verdict, then the target as the workbook writes it (none without a target)
        targets, verdicts = sheet[ident][-6::2], sheet[ident][-5::2]
        assert cells[-3:] == [v + ("" if t == "无目标" else t) for t, v in zip(targets, verdicts, strict=True)]
    patches = _html_rows(html, "data-patch")
    assert sorted(p for p, cells in patches.items() if cells[6] == "已化解") == sorted(data.conflicts.ids("resolved"))
    assert len(_html_rows(html, "data-project")) == len(data.outcomes)
    assert len(_html_rows(html, "data-village")) == len(data.villages)
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count('src="data:image/png;base64,') == 3 and html.count("<svg") == len(data.trends)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|svg)[\s\S]*?</\1>", " ", html))
    assert not re.search(r"\b(nan|NaN|None|inf)\b", text)


def test_the_pdf_holds_the_same_and_renders_its_cover_and_maps(data: EvaluationData, pdf: Path, tmp_path: Path) -> None:
    assert PDFTOPPM is not None and PDFTOTEXT is not None, "needs poppler-utils (pdftoppm, pdftotext)"
    plan = page_plan(data)
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    pages = text.split("\f")
    assert len([p for p in pages if p.strip()]) == len(plan)
    cover = re.sub(r"[ \t]+", " ", pages[0])
    for area in [*data.task_areas, "合计"]:
        numbers = " ".join(str(int(v)) for v in data.outcome_counts.loc[area])
        assert f"{area} {numbers}" in cover, area
    assert data.title in cover.replace("\n", "") or data.plan.title_zh in cover
    # ids may wrap inside their cell: read the text in reading order, without any white space
    raw = subprocess.run([PDFTOTEXT, str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    listed = re.sub(r"\s+", "", raw)
    assert [i for i in ITEMS if i not in listed] == []
    assert [p for p in data.conflicts.ids("resolved") if p not in listed] == []
    assert not re.search(r"\b(nan|NaN|None|inf)\b", text)
    maps = next(n for n, page in enumerate(plan, start=1) if page.title == "变化地图")
    for number in (1, maps):
        stem = tmp_path / f"page{number}"
        subprocess.run(
            [PDFTOPPM, "-r", "50", "-png", "-f", str(number), "-l", str(number), "-singlefile", str(pdf), str(stem)],
            check=True,
        )
        pixels = np.asarray(Image.open(f"{stem}.png").convert("RGB")).astype(int)
        assert (pixels < 250).any(axis=2).mean() > 0.01, number  # not blank
        if number == maps:
            colour = (pixels.max(axis=2) - pixels.min(axis=2)) > 60
            assert colour.mean() > 0.02  # the maps are drawn in colour (most villages: grey, unchanged)


# --------------------------------------------------------------------------------------------- the CLI


def test_the_cli_writes_the_evaluation_and_refuses_bad_input(
    store_path: Path, tmp_path: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "cli.gpkg"
    shutil.copy(store_path, copy)
    out = tmp_path / "evaluation.xlsx"
    assert main(["evaluate", "--store", str(copy), "-o", str(out)]) == 0
    book = load_workbook(out)
    assert book["概要"]["A1"].value.endswith("实施评估")
    shown = re.sub(r"\s+", "", capsys.readouterr().out)
    assert "44projects" in shown and "conflictpatchesresolved" in shown

    # `geoplan snapshot` without --quarter: today is past the plan, so its last monitored quarter, said so
    assert main(["snapshot", "--store", str(copy)]) == 0
    shown = re.sub(r"\s+", "", capsys.readouterr().out)
    assert f"recording{FINAL},theplan'slastmonitoredquarter" in shown and f"of{FINAL}(asof2020-12-3123:59:59" in shown

    assert main(["evaluate", "--store", str(copy), "-o", str(tmp_path / "evaluation.docx")]) == 2
    assert ".docx" in capsys.readouterr().err
    empty = tmp_path / "empty.gpkg"
    backend = GeoPackageStore(empty, catalog)
    backend.init()
    backend.close()
    assert main(["evaluate", "--store", str(empty), "-o", str(out)]) == 2
    assert "no data for the plan period" in re.sub(r"\s+", " ", capsys.readouterr().err)
