"""Must show (issue 17): on the demo, for every quarter 2017Q4–2020Q4, `geoplan indicators --quarter Q` answers
the village-checklist and the illegal-construction indicators, and they equal a plain pandas count over the raw
records (the checklist table read with sqlite3, the case layer read with geopandas, the items with yaml).

The demo writes its layers today; until it writes them with their history dates, the test dates the audit
entries of the layers these indicators read back to before the period (2017-06-30), as a demo that lived
through the period would have them. The checklist records carry their own recording times.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import yaml

from geoplan.cli import main
from geoplan.monitoring.ledger_quarters import Quarter, quarter_range
from tests.conftest import LAYERS_DIR

QUARTERS = [str(q) for q in quarter_range(Quarter(2017, 4), Quarter(2020, 4))]
CHECKLIST_IDS = [
    "village_five_good_share",
    "village_toilets_share",
    "village_roads_hardened_share",
    "village_refuse_collection_share",
    "village_service_station_share",
    "village_culture_centre_share",
]
CASE_IDS = ["illegal_cases_found", "illegal_cases_closed", "illegal_area_demolished", "illegal_cases_open"]
BACK_DATED = ("towns", "villages", "illegal_construction")


@pytest.fixture(scope="module")
def demo_history(tmp_path_factory: pytest.TempPathFactory, demo_store_path: Path) -> Path:
    path = tmp_path_factory.mktemp("task-areas") / "demo.gpkg"
    path.write_bytes(demo_store_path.read_bytes())
    with sqlite3.connect(path) as connection:
        marks = ",".join("?" * len(BACK_DATED))
        connection.execute(
            f"UPDATE geoplan_audit SET at = '2017-06-30T00:00:00+00:00' WHERE layer IN ({marks})", BACK_DATED
        )
    return path


@pytest.fixture(scope="module")
def answers(demo_history: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """`geoplan indicators --quarter Q -o table.csv` for every quarter of the period."""
    out_dir = tmp_path_factory.mktemp("answers")
    tables = {}
    for quarter in QUARTERS:
        output = out_dir / f"{quarter}.csv"
        only = ",".join([*CHECKLIST_IDS, *CASE_IDS])
        code = main(
            ["indicators", "--quarter", quarter, "--only", only, "-o", str(output), "--store", str(demo_history)]
        )
        assert code == 0, quarter
        tables[quarter] = pd.read_csv(output, keep_default_na=False, na_values=[""])
    return tables


def _quarter_days(quarter: str) -> tuple[date, date]:
    year, q = int(quarter[:4]), int(quarter[-1])
    first = date(year, 3 * q - 2, 1)
    following = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return first, following - timedelta(days=1)


def _values(table: pd.DataFrame, indicator: str) -> dict[tuple[str, str], float]:
    rows = table[table["indicator"] == indicator]
    keys = rows["scope_key"].fillna("").astype(str)
    return {(s, k): float(v) for s, k, v in zip(rows["scope"], keys, rows["value"], strict=True)}


def test_checklist_indicators_equal_a_count_of_the_records(
    demo_history: Path, answers: dict[str, pd.DataFrame]
) -> None:
    with sqlite3.connect(demo_history) as connection:
        records = pd.read_sql(
            "SELECT id, village_code, quarter, item, state, recorded_at FROM geoplan_village_checklist", connection
        )
    villages = gpd.read_file(demo_history, layer="villages")
    villages = villages[villages["type"] != "virtual"]
    items = yaml.safe_load((LAYERS_DIR / "rules" / "village_checklist.yaml").read_text(encoding="utf-8"))["items"]
    assert len(records) > len(villages) * len(items)  # a baseline per village and item, then the changes
    previous: dict[str, float] = {}
    first: dict[str, float] = {}
    for quarter in QUARTERS:
        last_day = _quarter_days(quarter)[1]
        end = pd.Timestamp(last_day + timedelta(days=1), tz="Asia/Shanghai")
        known = records[(records["quarter"] <= quarter) & (pd.to_datetime(records["recorded_at"], utc=True) < end)]
        latest = known.sort_values(["quarter", "id"]).groupby(["village_code", "item"]).tail(1)
        for item in items:
            states = latest[latest["item"] == item["code"]].set_index("village_code")["state"]
            done = villages["village_code"].map(states).eq(item["achieved"])
            got = _values(answers[quarter], f"village_{item['code']}_share")
            assert got[("district", "")] == pytest.approx(100.0 * done.mean(), abs=1e-9), (quarter, item["code"])
            per_town = done.groupby(villages["town"]).mean() * 100.0
            assert {k: v for (s, k), v in got.items() if s == "town"} == pytest.approx(per_town.to_dict(), abs=1e-9)
            assert got[("district", "")] >= previous.get(item["code"], 0.0)  # the demo's villages only improve
            previous[item["code"]] = got[("district", "")]
            first.setdefault(item["code"], got[("district", "")])
    assert all(previous[code] > share for code, share in first.items())  # every item improved over the period


def test_case_indicators_equal_a_count_of_the_cases(demo_history: Path, answers: dict[str, pd.DataFrame]) -> None:
    cases = gpd.read_file(demo_history, layer="illegal_construction")
    dates = {
        f: pd.to_datetime(cases[f].replace("", None)).dt.date for f in ("found_on", "demolished_on", "legalised_on")
    }
    closed = dates["demolished_on"].where(dates["demolished_on"].notna(), dates["legalised_on"])
    found_total = closed_total = 0
    for quarter in QUARTERS:
        first, last = _quarter_days(quarter)

        def within(day: pd.Series, first: date = first, last: date = last) -> pd.Series:
            return day.notna() & (day >= first) & (day <= last)

        def before_end(day: pd.Series, last: date = last) -> pd.Series:
            return day.notna() & (day <= last)

        expected = {
            "illegal_cases_found": within(dates["found_on"]).astype(float),
            "illegal_cases_closed": within(closed).astype(float),
            "illegal_area_demolished": cases["area_m2"].where(within(dates["demolished_on"]), 0.0),
            "illegal_cases_open": (before_end(dates["found_on"]) & ~before_end(closed)).astype(float),
        }
        for indicator, per_case in expected.items():
            got = _values(answers[quarter], indicator)
            assert got[("district", "")] == pytest.approx(per_case.sum(), abs=1e-6), (quarter, indicator)
            for town, value in per_case.groupby(cases["town"]).sum().items():
                assert got[("town", town)] == pytest.approx(value, abs=1e-6), (quarter, indicator, town)
        found_total += int(expected["illegal_cases_found"].sum())
        closed_total += int(expected["illegal_cases_closed"].sum())
    assert found_total == int((dates["found_on"] >= date(2017, 10, 1)).sum()) > 0
    assert 0 < closed_total < len(cases)


def test_demo_cases_cluster_in_village_industrial_areas(demo_history: Path) -> None:
    cases = gpd.read_file(demo_history, layer="illegal_construction")
    assert len(cases) >= 50
    hot = cases["hot_spot"].fillna("")
    assert hot.str.endswith("村级工业区").mean() > 0.6
    assert cases["note"].str.contains("示意数据").all()
    assert set(cases["status"]) <= {"发现", "立案", "整改中", "已拆除", "已完善手续"}
    assert {"已拆除", "已完善手续", "整改中"} <= set(cases["status"])  # both ways to close, and open cases
    villages = gpd.read_file(demo_history, layer="villages").set_index("village_code")
    metric = cases.to_crs("EPSG:4547")
    inside = [
        villages.loc[code, "geometry"].buffer(1e-6).covers(geom)
        for code, geom in zip(cases["village_code"], cases.geometry, strict=True)
    ]
    assert all(inside)
    assert (metric.geometry.area.round(1) - cases["area_m2"]).abs().max() < 0.2
