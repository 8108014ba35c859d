"""The coverage tables a person reads: virtual units in one group, no route in words, whole people (small tables)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from geoplan.analysis.coverage import COVERAGE_COLUMNS, district_total, town_rollup
from geoplan.analysis.coverage_tables import VILLAGE_OUTPUT_COLUMNS, no_route_words, village_output, whole
from geoplan.errors import InputError


def _table() -> pd.DataFrame:
    """Five units: two in 甲镇, one in 乙镇, two virtual units (each its own `town` value, as in the census)."""
    rows = [
        # code, name, town, type, population, covered, mean, p90, nearest, routed, off network
        ("1", "一社区", "甲镇", "community", 1000.5, 900.25, 5.0, 9.0, "F1", 1000.5, 0.0),
        ("2", "二村", "甲镇", "village", 200.4, 50.5, 12.0, math.inf, "F2", 150.0, 50.4),
        ("3", "三村", "乙镇", "village", 300.0, 0.0, math.nan, math.inf, None, 0.0, 280.0),
        ("4", "监狱社区", "某监狱", "virtual", 100.0, 10.0, 20.0, 30.0, "F1", 95.0, 5.0),
        ("5", "林场生活区", "某林场", "virtual", 0.0, 0.0, math.nan, math.nan, None, 0.0, 0.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "village_code",
            "village_name",
            "town",
            "type",
            "population",
            "covered_population",
            "mean_minutes",
            "p90_minutes",
            "nearest_facility",
            "routed_population",
            "off_network_population",
        ],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["coverage_pct"] = np.where(
            frame["population"] > 0, 100 * frame["covered_population"] / frame["population"], np.nan
        )
    return frame[COVERAGE_COLUMNS]


def test_virtual_units_are_one_group_after_the_towns_and_in_the_district_total() -> None:
    table = _table()
    towns = town_rollup(table)
    assert list(towns["town"]) == ["乙镇", "甲镇", "虚拟单位"]
    virtual = towns.set_index("town").loc["虚拟单位"]
    assert virtual["villages"] == 2
    assert virtual["population"] == pytest.approx(100.0)
    assert virtual["covered_population"] == pytest.approx(10.0)
    assert virtual["no_route_population"] == pytest.approx(5.0)
    # the groups add up to the district, the virtual units included
    total = district_total(table)
    assert towns["population"].sum() == pytest.approx(total["population"]) == pytest.approx(1600.9)
    assert total["no_route_population"] == pytest.approx(50.4 + 300.0 + 5.0)
    assert total["no_route_pct"] == pytest.approx(100 * 355.4 / 1600.9)
    # as the census lists them: each virtual unit under its own town value
    listed = town_rollup(table, virtual_units="in_towns")
    assert list(listed["town"]) == ["乙镇", "某林场", "某监狱", "甲镇"]
    assert listed["population"].sum() == pytest.approx(1600.9)
    with pytest.raises(InputError):
        town_rollup(table, virtual_units="towns")  # type: ignore[arg-type]


def test_village_output_whole_people_words_and_names() -> None:
    table = _table()
    out = village_output(table, facility_names={"F1": "一号文化站", "F2": "二号文化室"})
    assert list(out.columns) == VILLAGE_OUTPUT_COLUMNS
    assert list(out["group"]) == ["甲镇", "甲镇", "乙镇", "虚拟单位", "虚拟单位"]
    assert list(out["type"]) == ["社区", "村", "村", "虚拟单位", "虚拟单位"]
    # half up: 1000.5 -> 1001, 900.25 -> 900, 200.4 -> 200, 50.5 -> 51
    assert list(out["population"]) == [1001, 200, 300, 100, 0]
    assert list(out["covered_population"]) == [900, 51, 0, 10, 0]
    assert list(out["no_route_population"]) == [0, 50, 300, 5, 0]
    assert out["no_route_pct"].iloc[1] == pytest.approx(round(100 * 50.4 / 200.4, 1))
    # an undefined P90 or mean is empty, never inf
    assert np.isnan(out["p90_minutes"].iloc[1]) and np.isnan(out["mean_minutes"].iloc[2])
    assert np.isfinite(out.select_dtypes("number").to_numpy(dtype=float)[~out.select_dtypes("number").isna()]).all()
    names = out["nearest_facility_name"]
    assert list(names[names.notna()]) == ["一号文化站", "二号文化室", "一号文化站"]
    assert list(names.isna()) == [False, False, True, False, True]
    assert out["note"].iloc[0] == ""
    assert out["note"].iloc[1] == "无路径 50 人（25.1%），P90 无定义"
    assert out["note"].iloc[3] == "无路径 5 人（5.0%）"
    assert out["note"].iloc[4] == "无人口"
    pd.testing.assert_frame_equal(table, _table())  # the input is not changed


def test_whole_and_words() -> None:
    assert [whole(v) for v in (0.5, 1.49, 2.5, math.nan, math.inf)] == [1, 1, 3, 0, 0]
    assert no_route_words(0.4, 100.0) == ""
    assert no_route_words(1234.5, 10_000.0) == "无路径 1,235 人（12.3%）"
    assert no_route_words(5.0, 0.0) == ""
