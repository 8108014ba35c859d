"""The scorecard's rows: whole people rounded half up, Chinese unit types, no NaN for an empty unit."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.analysis.coverage import CellTimes
from geoplan.analysis.coverage_cells import CellShares
from geoplan.analysis.life_circle_scorecard import SCORECARD_COLUMNS, scorecard, whole_people
from geoplan.analysis.life_circles import LifeCircleResult, ServiceCoverage
from geoplan.services.rule_files import load_life_circles
from tests.conftest import ROOT

RULES = load_life_circles(ROOT / "layers" / "rules" / "life_circles.yaml")


def _villages() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "village_code": ["A", "B", "C"],
            "village_name": ["甲社区", "乙村", "监狱"],
            "town": ["荷城街道", "杨和镇", "高明监狱"],
            "type": ["community", "village", "virtual"],
        },
        geometry=[shapely.box(0, 0, 1, 1)] * 3,
        crs="EPSG:4547",
    )


def _result() -> LifeCircleResult:
    table = pd.DataFrame(
        {
            "village_code": ["A", "B", "C"],
            "village_name": ["甲社区", "乙村", "监狱"],
            "town": ["荷城街道", "杨和镇", "高明监狱"],
            "type": ["community", "village", "virtual"],
            "population": [10.5, 7.49, 0.0],
            "covered_population": [2.5, 7.49, 0.0],
            "coverage_pct": [100 * 2.5 / 10.5, 100.0, np.nan],
        }
    )
    empty = np.zeros(0)
    cells = CellShares(empty.reshape(0, 2), empty, empty.astype(np.intp), empty.astype(np.intp), empty, 0.0)
    result = LifeCircleResult(cells=cells)  # the scorecard reads only the tables
    none = np.zeros(0, dtype=bool)
    times = CellTimes(empty, empty.astype(np.intp), none, none, none)
    result.services["kindergarten"] = ServiceCoverage(
        rule=RULES["kindergarten"], table=table, facility_ids=[], covered=none, urban=times, rural=times
    )
    return result


def test_rows_are_whole_people_with_chinese_types() -> None:
    rows = scorecard(_villages(), _result())
    assert list(rows.columns) == SCORECARD_COLUMNS
    assert list(rows["type"]) == ["社区", "村", "虚拟单位"]
    assert list(rows["population"]) == [11, 7, 0]  # half up, not truncated (10.5 -> 11) and not up (7.49 -> 7)
    assert list(rows["covered_population"]) == [3, 7, 0]
    assert list(rows["radius_m"]) == [300, 1000, 1000]  # urban rule for 社区, rural for the others
    assert rows["coverage_pct"].iloc[0] == round(100 * 2.5 / 10.5, 1)
    assert rows["coverage_pct"].isna().iloc[2]  # nobody there: no percentage, and no NaN written
    text = io.StringIO()
    rows.to_csv(text, index=False)
    assert "nan" not in text.getvalue().lower() and "inf" not in text.getvalue().lower()


def test_whole_people_rounds_half_up() -> None:
    values = pd.Series([0.5, 1.5, 2.4999, 1e6 + 0.5])
    assert list(whole_people(values)) == [1, 2, 2, 1_000_001]
