"""Illegal-construction cases (违法建设): the status flow with a date per status, and the indicator kinds (found,
closed, area demolished per quarter, open at the quarter's end) against hand counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf
from geoplan.monitoring.case_indicators import case_dates
from geoplan.monitoring.indicator_defs import IndicatorSet, parse_indicator_defs
from geoplan.monitoring.indicators import NO_DATA, Inputs
from geoplan.monitoring.indicators_table import evaluate

METRIC = "EPSG:4547"
X0, Y0 = 360_000.0, 2_530_000.0
DATE_FIELDS = ("found_on", "filed_on", "rectifying_on", "demolished_on", "legalised_on")


def _towns() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"town_code": ["1", "2"], "town_name": ["甲镇", "乙镇"], "kind": ["town", "town"]},
        geometry=[shapely.box(X0, Y0, X0 + 2000, Y0 + 1000), shapely.box(X0 + 2000, Y0, X0 + 4000, Y0 + 1000)],
        crs=METRIC,
    ).to_crs("EPSG:4490")


def _case(case_id: str, x: float, area: float, town: str | None = None, **dates: str) -> dict[str, Any]:
    reached = [f for f in DATE_FIELDS if dates.get(f)]
    status = {"found_on": "发现", "filed_on": "立案", "rectifying_on": "整改中"}.get(reached[-1]) if reached else None
    status = status or ("已拆除" if dates.get("demolished_on") else "已完善手续")
    return {
        "case_id": case_id,
        "town": town,
        "status": status,
        "area_m2": area,
        **{f: dates.get(f, "") for f in DATE_FIELDS},
        "geometry": shapely.MultiPolygon([shapely.box(X0 + x, Y0 + 400, X0 + x + 20, Y0 + 420)]),
    }


def _cases(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows, columns=["case_id", "town", "status", "area_m2", *DATE_FIELDS, "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=METRIC).to_crs("EPSG:4490")


def _definitions(catalog: Catalog) -> IndicatorSet:
    def one(ident: str, kind: str, unit: str, params: dict[str, str]) -> dict[str, Any]:
        return {
            "id": ident,
            "title_zh": ident,
            "title_en": ident,
            "unit": unit,
            "scopes": ["district", "town"],
            "kind": kind,
            "good_direction": "up",
            "params": params,
        }

    return parse_indicator_defs(
        {
            "indicators": [
                one("found", "case_count", "件", {"event": "found", "period": "quarter"}),
                one("closed", "case_count", "件", {"event": "closed", "period": "quarter"}),
                one("demolished", "case_area", "m2", {"event": "demolished", "period": "quarter"}),
                one("demolished_total", "case_area", "m2", {"event": "demolished", "period": "to_date"}),
                one("open", "case_count", "件", {"event": "open"}),
            ]
        },
        catalog=catalog,
        source="test",
    )


def _values(table: pd.DataFrame, indicator: str) -> dict[tuple[str, str], float]:
    rows = table[table["indicator"] == indicator]
    return {(s, k): float(v) for s, k, v in zip(rows["scope"], rows["scope_key"], rows["value"], strict=True)}


CASES = [
    # C1 in 甲镇 by location: found and demolished in 2019Q1
    _case("C1", 100, 120.0, found_on="2019-01-05", filed_on="2019-01-10", demolished_on="2019-03-31"),
    # C2 in 乙镇 by its field: found in 2019Q1, legalised in 2019Q2
    _case("C2", 500, 80.0, "乙镇", found_on="2019-02-01", filed_on="2019-02-03", legalised_on="2019-04-01"),
    # C3 in 乙镇 by location: found in 2019Q2, rectifying, demolished in 2019Q3
    _case(
        "C3",
        3000,
        300.0,
        found_on="2019-04-01",
        filed_on="2019-04-02",
        rectifying_on="2019-05-01",
        demolished_on="2019-07-01",
    ),
    # C4 in 甲镇: found in 2019Q3, still only filed
    _case("C4", 900, 50.0, found_on="2019-09-30", filed_on="2019-10-08"),
]


def test_counts_and_areas_per_quarter_follow_the_cases_dates(catalog: Catalog) -> None:
    layers = {"illegal_construction": _cases(CASES), "towns": _towns()}
    # (district, 甲镇, 乙镇) per indicator, at the end of each quarter (China time)
    expected = {
        datetime(2019, 3, 31, 15, 59, tzinfo=UTC): {
            "found": (2, 1, 1),
            "closed": (1, 1, 0),
            "demolished": (120, 120, 0),
            "demolished_total": (120, 120, 0),
            "open": (1, 0, 1),
        },
        datetime(2019, 6, 30, 15, 59, tzinfo=UTC): {
            "found": (1, 0, 1),
            "closed": (1, 0, 1),
            "demolished": (0, 0, 0),
            "demolished_total": (120, 120, 0),
            "open": (1, 0, 1),
        },
        datetime(2019, 9, 30, 15, 59, tzinfo=UTC): {
            "found": (1, 1, 0),
            "closed": (1, 0, 1),
            "demolished": (300, 0, 300),
            "demolished_total": (420, 120, 300),
            "open": (1, 1, 0),
        },
    }
    for moment, counts in expected.items():
        inputs = Inputs(layers=layers, as_of=AsOf(at=moment), catalog=catalog)
        table = evaluate(definitions=list(_definitions(catalog).indicators), inputs=inputs)
        for indicator, (district, first, second) in counts.items():
            values = _values(table, indicator)
            got = (values[("district", "")], values[("town", "甲镇")], values[("town", "乙镇")])
            assert got == (district, first, second), (moment, indicator)
    # 31 March 16:01 UTC is 1 April in China: C2 was legalised and C3 found that day, in the new quarter
    early = Inputs(layers=layers, as_of=AsOf(at=datetime(2019, 3, 31, 16, 1, tzinfo=UTC)), catalog=catalog)
    table = evaluate(definitions=list(_definitions(catalog).indicators), inputs=early)
    assert _values(table, "found")[("district", "")] == 1 and _values(table, "closed")[("district", "")] == 1


def test_an_empty_layer_reports_no_data(catalog: Catalog) -> None:
    inputs = Inputs(
        layers={"illegal_construction": _cases([]), "towns": _towns()},
        as_of=AsOf(at=datetime(2019, 6, 30, tzinfo=UTC)),
        catalog=catalog,
    )
    table = evaluate(definitions=list(_definitions(catalog).indicators), inputs=inputs)
    assert len(table) == 5 and table["value"].isna().all() and table["note"].str.startswith(NO_DATA).all()


@pytest.mark.parametrize(
    ("dates", "status", "message", "zh"),
    [
        ({"filed_on": "2019-01-02"}, "立案", "found (found_on) is missing", "缺少发现日期"),
        ({"found_on": "2019-13-01"}, "发现", "found_on '2019-13-01' is not a date", "不是 YYYY-MM-DD"),
        ({"found_on": "2019-02-01", "filed_on": "2019-01-02"}, "立案", "立案 on 2019-01-02 is before 发现", "早于"),
        ({"found_on": "2019-01-01", "demolished_on": "2019-03-01"}, "已拆除", "without a date for 立案", "缺少立案"),
        (
            {
                "found_on": "2019-01-01",
                "filed_on": "2019-01-02",
                "demolished_on": "2019-03-01",
                "legalised_on": "2019-03-02",
            },
            "已拆除",
            "either demolished or legalised",
            "不能既已拆除又已完善手续",
        ),
        (
            {
                "found_on": "2019-01-01",
                "filed_on": "2019-01-02",
                "rectifying_on": "2019-05-01",
                "demolished_on": "2019-03-01",
            },
            "已拆除",
            "before rectifying began",
            "结案日期早于整改日期",
        ),
        ({"found_on": "2019-01-01", "filed_on": "2019-01-02"}, "已拆除", "does not match its dates", "与日期不符"),
    ],
)
def test_cases_that_break_the_flow_are_refused(
    catalog: Catalog, dates: dict[str, str], status: str, message: str, zh: str
) -> None:
    record = {"case_id": "C9", "status": status, **{f: dates.get(f, "") for f in DATE_FIELDS}}
    with pytest.raises(InputError) as caught:
        case_dates(record)
    assert message in str(caught.value) and "C9" in str(caught.value) and zh in caught.value.zh
    row = {**_case("C9", 100, 10.0, found_on="2019-01-01"), **record}
    inputs = Inputs(
        layers={"illegal_construction": _cases([row]), "towns": _towns()},
        as_of=AsOf(at=datetime(2019, 6, 30, tzinfo=UTC)),
        catalog=catalog,
    )
    with pytest.raises(InputError, match="C9"):
        evaluate(definitions=list(_definitions(catalog).indicators), inputs=inputs)


def test_status_on_a_day_is_the_last_date_reached() -> None:
    dates = case_dates(CASES[2])
    assert [dates.status_on(datetime.fromisoformat(d).date()) for d in ("2019-03-31", "2019-04-01", "2019-04-30")] == [
        None,
        "发现",
        "立案",
    ]
    assert dates.status_on(datetime(2019, 5, 1).date()) == "整改中"
    assert dates.status_on(datetime(2019, 7, 1).date()) == "已拆除"
