"""The indicator kinds of the project ledger: counts by status, task area and town, and overdue projects. Pure
functions of `Inputs`, like every kind (the enforcement cases are in `case_indicators`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geoplan.catalog import Catalog
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
    fixed_scopes,
    kind_frame,
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
)
"""The kinds computed from the project ledger."""
