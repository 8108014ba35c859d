"""The plan period as data (layers/plan.yaml): parsed and checked; the default moment, overdue and target years
follow it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
import yaml

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.indicator_defs import load_indicator_defs
from geoplan.monitoring.ledger import ledger_table
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.plan_period import chosen_moment, load_plan, plan_from_dict
from geoplan.services.indicators import chosen_for, quarters_with_data
from geoplan.storage import LayerStore
from tests.conftest import LAYERS_DIR
from tests.factories import sample_frame

PLAN = LAYERS_DIR / "plan.yaml"


def _raw(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(PLAN.read_text(encoding="utf-8"))
    raw["plan"].update(changes)
    return raw


def test_the_shipped_plan_is_the_guides_plan() -> None:
    plan = load_plan(PLAN)
    assert (str(plan.start), str(plan.end), str(plan.monitored_until)) == ("2017Q3", "2019Q4", "2020Q4")
    assert plan.milestone_years == (2018, 2019, 2020)
    assert [str(q) for q in plan.quarters()][:2] == ["2017Q3", "2017Q4"] and len(plan.quarters()) == 14
    assert "三年行动计划" in plan.title_zh


def test_the_shipped_indicator_targets_fall_due_in_milestone_years(catalog: Any) -> None:
    plan = load_plan(PLAN)
    definitions = load_indicator_defs(LAYERS_DIR / "indicators.yaml", catalog=catalog)
    pairs = [(d.id, t.year) for d in definitions for t in d.targets]
    assert any(year is not None for _, year in pairs)
    assert plan.stray_target_years(pairs) == []
    assert plan.stray_target_years([("x", 2030), ("y", None)]) == [
        "indicator x: target year 2030 is not a milestone year of the plan (2018, 2019, 2020)"
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": "2017-07"}, "start must be a quarter YYYYQn"),
        ({"end": "2017Q1"}, "end 2017Q1 is before start 2017Q3"),
        ({"monitored_until": "2019Q2"}, "monitored_until 2019Q2 is before end 2019Q4"),
        ({"milestones": [{"year": 2030, "title_zh": "远期"}]}, "milestone 1: year 2030 lies outside the plan"),
        ({"milestones": [{"year": 2018, "title_zh": "a"}, {"year": 2018, "title_zh": "b"}]}, "two milestones"),
        ({"milestones": [{"year": "2018", "title_zh": "a"}]}, "year must be a whole year"),
        ({"milestones": []}, "milestones must be a non-empty list"),
        ({"title_zh": ""}, "title_zh must be a non-empty text"),
        ({"ends": "2019Q4"}, "unknown key(s) ends"),
    ],
)
def test_a_wrong_plan_is_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        plan_from_dict(_raw(**changes), source="plan.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("plan.yaml: ")
    assert caught.value.zh is not None and caught.value.zh.startswith("plan.yaml：行动计划期设置有误")


def test_the_default_moment_is_now_during_the_plan_and_its_last_quarter_after_it() -> None:
    plan = load_plan(PLAN)
    during = datetime(2019, 5, 20, 4, 0, tzinfo=UTC)
    assert plan.default_as_of(now=during).current and plan.default_as_of(now=during).at == during
    after = plan.default_as_of(now=datetime(2026, 12, 6, tzinfo=UTC))
    assert not after.current and after.quarter == Quarter(2020, 4)
    assert after.iso == "2020-12-31T15:59:59+00:00"  # the quarter's last second in Beijing time
    last_day = datetime(2020, 12, 31, 15, 0, tzinfo=UTC)  # still in 2020Q4 in Beijing: now
    assert plan.default_as_of(now=last_day).current
    # a quarter or date given wins; without a plan the default is now
    assert chosen_moment(None, "2018Q2", plan=plan, now=after.at).quarter == Quarter(2018, 2)
    assert chosen_moment(None, None, plan=None, now=during).current


def _project(end_year: int) -> dict[str, Any]:
    return {
        "project_id": "P1",
        "name": "示例项目",
        "task_area": "基础设施一体化",
        "start_year": 2018,
        "end_year": end_year,
        "status": "在建",
        "progress_pct": 60.0,
        **{k: True for k in ("assured_planning", "assured_land", "assured_funds", "assured_schedule", "assured_unit")},
    }


def test_overdue_is_judged_no_later_than_the_plans_last_quarter() -> None:
    """A project due in 2022 and unfinished at the plan's end is not overdue at 2020Q4, and not at 2026Q4 either:
    after the plan its records stop, and it is judged at the plan's last quarter."""
    plan = load_plan(PLAN)
    projects = pd.DataFrame([_project(2022), {**_project(2019), "project_id": "P2"}])
    records = pd.DataFrame(
        columns=["record_id", "project_id", "quarter", "status", "progress_pct", "problems", "responsible_unit"]
    )
    judged = plan.judged_quarter(Quarter(2026, 4))
    assert judged == Quarter(2020, 4) and plan.judged_quarter(Quarter(2019, 1)) == Quarter(2019, 1)
    at_plan_end = ledger_table(projects=projects, records=records, as_of_quarter=str(judged))
    assert at_plan_end["overdue"].tolist() == [False, True]
    at_2026 = ledger_table(projects=projects, records=records, as_of_quarter="2026Q4")
    assert at_2026["overdue"].tolist() == [True, True]  # what judging against today would say


def test_the_plans_last_quarter_is_the_default_only_where_the_store_holds_data_by_then(
    store: LayerStore, catalog: Catalog
) -> None:
    """A store filled today (a fresh import after the plan) shows now; one with the plan's history, 2020Q4."""
    plan = load_plan(PLAN)
    later = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    store.write("towns", sample_frame(catalog.get("towns"), 1))  # today
    assert chosen_for(store, plan, now=later).current
    assert store.audit_log(limit=1)[0].at > "2021"  # nothing by the end of 2020Q4
    store.write("villages", sample_frame(catalog.get("villages"), 1), at=datetime(2018, 3, 1, tzinfo=UTC))
    moment = chosen_for(store, plan, now=later)
    assert not moment.current and moment.quarter == Quarter(2020, 4)
    assert quarters_with_data(store, plan, now=later) == [f"{y}Q{q}" for y in (2018, 2019, 2020) for q in (1, 2, 3, 4)]
    assert chosen_for(store, plan, quarter="2019Q1", now=later).quarter == Quarter(2019, 1)  # asked: as asked
