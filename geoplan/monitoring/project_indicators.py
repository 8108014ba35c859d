"""The indicator kinds of the project ledger and the enforcement cases: counts by status, task area and town,
overdue projects, and cases opened, cleared and open. Pure functions of `Inputs`, like every kind."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from geoplan.analysis.summary import NO_TOWN
from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.indicators import (
    COMPLETED_STATUS,
    KEY_SEPARATOR,
    PROJECT_SCOPES,
    TOWN_SEPARATOR,
    Inputs,
    Kind,
    Needs,
    allowed_values,
    check_allowed_values,
    check_keys,
    first_containing,
    fixed_scopes,
    kind_frame,
    layer_needs,
    no_data,
    scope_keys,
    text_or_none,
    town_names,
)
from geoplan.monitoring.ledger_quarters import Quarter

# --------------------------------------------------------------------------------------------- projects


def _projects_table(inputs: Inputs) -> pd.DataFrame:
    """project_id, task_area, town, status, progress_pct, end_year, overdue: from the ledger when given."""
    if inputs.ledger is not None:
        table = inputs.ledger
        return pd.DataFrame(
            {
                "task_area": table["task_area"].astype(object),
                "town": table["town"].astype(object),
                "status": table["status"].astype(object),
                "overdue": table["overdue"].astype(bool),
            }
        )
    projects = inputs.layer("projects")
    as_of = inputs.as_of.quarter
    overdue = [
        as_of >= Quarter.last_of(int(end)) and float(progress) < 100.0 and status != COMPLETED_STATUS
        for end, progress, status in zip(
            projects["end_year"], projects["progress_pct"], projects["status"], strict=True
        )
    ]
    return pd.DataFrame(
        {
            "task_area": projects["task_area"].astype(object),
            "town": projects["town"].astype(object),
            "status": projects["status"].astype(object),
            "overdue": np.asarray(overdue, dtype=bool),
        }
    )


def _split_towns(value: Any) -> list[str]:
    text = text_or_none(value)
    return [] if text is None else [part.strip() for part in text.split(TOWN_SEPARATOR) if part.strip()]


def _count_rows(table: pd.DataFrame, scopes: Sequence[str], inputs: Inputs) -> pd.DataFrame:
    """Counts of the table's projects for every scope key (zeros included); a project spanning towns counts
    in each of them."""
    task_areas = scope_keys(allowed_values(inputs.catalog, "projects", "task_area"), list(table["task_area"]))
    statuses = scope_keys(allowed_values(inputs.catalog, "projects", "status"), list(table["status"]))
    exploded = [(town, row.status, row.task_area) for row in table.itertuples() for town in _split_towns(row.town)]
    towns = scope_keys(town_names(inputs), [t for t, _, _ in exploded])
    rows: list[tuple[str, str, float, float, str]] = []

    def add(scope: str, key: str, count: int) -> None:
        rows.append((scope, key, float(count), math.nan, ""))

    if "district" in scopes:
        add("district", "", len(table))
    if "status" in scopes:
        for s in statuses:
            add("status", s, int((table["status"] == s).sum()))
    if "task_area" in scopes:
        for a in task_areas:
            add("task_area", a, int((table["task_area"] == a).sum()))
    if "town" in scopes:
        for t in towns:
            add("town", t, sum(1 for town, _, _ in exploded if town == t))
    if "task_area_status" in scopes:
        for a in task_areas:
            for s in statuses:
                count = int(((table["task_area"] == a) & (table["status"] == s)).sum())
                add("task_area_status", f"{a}{KEY_SEPARATOR}{s}", count)
    if "town_status" in scopes:
        for t in towns:
            for s in statuses:
                add(
                    "town_status", f"{t}{KEY_SEPARATOR}{s}", sum(1 for town, st, _ in exploded if town == t and st == s)
                )
    return kind_frame(rows)


def project_count(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The number of projects (of `statuses`, default all) in the district, per status, task area and town,
    and per task area and status or town and status (scope keys "A|B")."""
    table = _projects_table(inputs)
    if "statuses" in params:
        table = table[table["status"].isin(list(params["statuses"])).to_numpy()]
    return _count_rows(table, scopes, inputs)


def project_overdue(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The number of overdue projects: the end year is over (its fourth quarter reached) and progress is below
    100 % and the project is not completed (the ledger's rule)."""
    table = _projects_table(inputs)
    return _count_rows(table[table["overdue"].to_numpy()], scopes, inputs)


def _project_needs(_: Mapping[str, Any]) -> Needs:
    return Needs(layers=frozenset({"projects", "towns"}), ledger=True)


def _check_project_count(params: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = check_keys(params, ["statuses"])
    if "statuses" in params and "projects" in catalog:
        problems += check_allowed_values(params["statuses"], catalog.get("projects").field("status"), "statuses")
    return problems


# --------------------------------------------------------------------------------------------- cases

CASES = "illegal_construction"
CASE_EVENTS = ("opened", "cleared", "open")


def _case_date(value: Any, case: str, what: str) -> date | None:
    text = text_or_none(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{CASES} case {case}: {what} {value!r} is not a date YYYY-MM-DD") from None


def case_count(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """Illegal-construction cases (违法建设) by their own dates, as of the moment's local date: `opened` (opened
    by then), `cleared` (cleared by then) or `open` (opened and not yet cleared), in the district and per town
    (the case's town field, or else the town polygon holding the point)."""
    cases = inputs.layer(CASES)
    if not len(cases):
        return no_data(CASES)
    day = inputs.as_of.local_date
    event = str(params["event"])
    towns = inputs.layers.get("towns")
    located: list[str | None] = [None] * len(cases)
    if towns is not None and len(towns):
        where = first_containing(np.asarray(cases.geometry.values, dtype=object), np.asarray(towns.geometry.values))
        names = [str(t) for t in towns["town_name"]]
        located = [names[i] if i >= 0 else None for i in where]
    counted: list[str] = []
    for record, place in zip(cases.to_dict("records"), located, strict=True):
        case = str(record["case_id"])
        opened = _case_date(record["opened"], case, "opened")
        cleared = _case_date(record.get("cleared"), case, "cleared")
        if opened is None:
            raise InputError(f"{CASES} case {case}: the opened date is missing")
        if cleared is not None and cleared < opened:
            raise InputError(f"{CASES} case {case}: cleared {cleared} is before opened {opened}")
        is_cleared = cleared is not None and cleared <= day
        hit = {"opened": opened <= day, "cleared": is_cleared, "open": opened <= day and not is_cleared}[event]
        if hit:
            counted.append(text_or_none(record.get("town")) or place or NO_TOWN)
    rows: list[tuple[str, str, float, float, str]] = []
    if "district" in scopes:
        rows.append(("district", "", float(len(counted)), math.nan, ""))
    if "town" in scopes:
        for town in scope_keys(town_names(inputs), counted):
            rows.append(("town", town, float(counted.count(town)), math.nan, ""))
    return kind_frame(rows)


def _check_case_count(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["event"], required=["event"])
    if "event" in params and params["event"] not in CASE_EVENTS:
        problems.append(f"event must be one of {', '.join(CASE_EVENTS)}, not {params['event']!r}")
    return problems


PROJECT_KINDS: tuple[Kind, ...] = (
    Kind(
        "project_count",
        project_count,
        "count",
        fixed_scopes(*PROJECT_SCOPES),
        _project_needs,
        _check_project_count,
        "number of projects",
    ),
    Kind(
        "project_overdue",
        project_overdue,
        "count",
        fixed_scopes(*PROJECT_SCOPES),
        _project_needs,
        lambda params, _: check_keys(params, []),
        "number of overdue projects",
    ),
    Kind(
        "case_count",
        case_count,
        "count",
        fixed_scopes("district", "town"),
        layer_needs(CASES, "towns"),
        _check_case_count,
        "illegal-construction cases by their dates",
    ),
)
"""The kinds computed from the project ledger and the enforcement cases."""
