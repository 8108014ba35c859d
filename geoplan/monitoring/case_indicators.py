"""The illegal-construction cases (违法建设, 城市管理精细化): the status flow and the indicator kinds.

A case is a polygon (the illegal structure's footprint) with its area and a date per status it has reached:
found (发现) → filed (立案) → rectifying (整改中) → closed, either demolished (已拆除) or legalised (已完善手续).
A case's status on a day is the last status whose date is on or before that day, so the layer as it is now
answers for every quarter before. The kinds count cases whose date of an event falls in the as-of quarter (or
up to the as-of date), the open cases on the as-of date, and the area (the case's recorded `area_m2`) of the
cases demolished. Pure functions of `Inputs`, like every kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geoplan.analysis.summary import NO_TOWN
from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.indicators import (
    Inputs,
    Kind,
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

__all__ = ["CASES", "CASE_FLOW", "CASE_KINDS", "CaseDates", "case_dates", "case_status_on"]

CASES = "illegal_construction"
CASE_FLOW: tuple[tuple[str, str], ...] = (
    ("发现", "found_on"),
    ("立案", "filed_on"),
    ("整改中", "rectifying_on"),
    ("已拆除", "demolished_on"),
    ("已完善手续", "legalised_on"),
)
"""Status -> the field holding the date it was reached, in the order of the flow (the last two both close)."""
CLOSING = ("已拆除", "已完善手续")
EVENTS = {"found": "found_on", "filed": "filed_on", "demolished": "demolished_on", "legalised": "legalised_on"}
COUNT_EVENTS = (*EVENTS, "closed", "open")
PERIODS = ("quarter", "to_date")


class CaseDates:
    """One case's dates by status (None where not reached), checked against the flow."""

    def __init__(self, case: str, dates: Mapping[str, date | None]) -> None:
        self.case = case
        self.dates = dict(dates)

    @property
    def closed_on(self) -> date | None:
        return self.dates["已拆除"] or self.dates["已完善手续"]

    def status_on(self, day: date) -> str | None:
        """The last status reached on or before the day; None before the case was found."""
        reached = [(when, i) for i, (status, _) in enumerate(CASE_FLOW) if (when := self.dates[status]) and when <= day]
        return CASE_FLOW[max(reached)[1]][0] if reached else None


def _date(value: Any, case: str, field: str) -> date | None:
    text = text_or_none(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{CASES} case {case}: {field} {value!r} is not a date YYYY-MM-DD",
            zh=f"违法建设案件 {case}：{field} “{value}”不是 YYYY-MM-DD 格式的日期。",
        ) from None


def case_dates(record: Mapping[str, Any]) -> CaseDates:
    """A case's dates, refused with a clear message when they break the flow: found is required; filed needs
    found, rectifying needs filed, closing needs filed; dates never go back; demolished and legalised exclude
    each other; the status is the one of the last date."""
    case = str(record.get("case_id"))
    dates = {status: _date(record.get(field), case, field) for status, field in CASE_FLOW}

    def fail(message: str, zh: str) -> InputError:
        return InputError(f"{CASES} case {case}: {message}", zh=f"违法建设案件 {case}：{zh}")

    if dates["发现"] is None:
        raise fail("the date found (found_on) is missing", "缺少发现日期。")
    if dates["已拆除"] and dates["已完善手续"]:
        raise fail("a case is either demolished or legalised, not both", "不能既已拆除又已完善手续。")
    needs = {"立案": "发现", "整改中": "立案", "已拆除": "立案", "已完善手续": "立案"}
    for status, before in needs.items():
        when, earlier = dates[status], dates[before]
        if when is None:
            continue
        if earlier is None:
            raise fail(f"{status} on {when} without a date for {before}", f"有{status}日期但缺少{before}日期。")
        if when < earlier:
            raise fail(f"{status} on {when} is before {before} on {earlier}", f"{status}日期早于{before}日期。")
    if dates["整改中"] and (closed := dates["已拆除"] or dates["已完善手续"]) and closed < dates["整改中"]:
        raise fail(f"closed on {closed} before rectifying began", "结案日期早于整改日期。")
    out = CaseDates(case, dates)
    latest = out.status_on(date.max)
    given = text_or_none(record.get("status"))
    if given is not None and given != latest:
        raise fail(
            f"status {given} does not match its dates (they say {latest})",
            f"状态“{given}”与日期不符（应为{latest}）。",
        )
    return out


def case_status_on(record: Mapping[str, Any], day: date) -> str | None:
    return case_dates(record).status_on(day)


def _quarter_start(inputs: Inputs) -> date:
    q = inputs.as_of.quarter
    return date(q.year, 3 * (q.q - 1) + 1, 1)


def _located(inputs: Inputs) -> list[str]:
    """Each case's town: its town field, else the town polygon holding its representative point."""
    cases = inputs.layer(CASES)
    towns = inputs.layers.get("towns")
    places: list[str | None] = [None] * len(cases)
    if towns is not None and len(towns):
        points = shapely.point_on_surface(np.asarray(cases.geometry.values, dtype=object))
        where = first_containing(points, np.asarray(towns.geometry.values))
        names = [str(t) for t in towns["town_name"]]
        places = [names[i] if i >= 0 else None for i in where]
    return [
        text_or_none(record.get("town")) or place or NO_TOWN
        for record, place in zip(cases.to_dict("records"), places, strict=True)
    ]


def _hits(inputs: Inputs, params: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(town, area_m2) of every case the event counts as of the moment."""
    cases = inputs.layer(CASES)
    day = inputs.as_of.local_date
    first = _quarter_start(inputs) if params.get("period", "quarter") == "quarter" else date.min
    event = str(params["event"])
    out = []
    for record, town in zip(cases.to_dict("records"), _located(inputs), strict=True):
        dates = case_dates(record)
        if event == "open":
            hit = (
                dates.dates["发现"] is not None
                and dates.dates["发现"] <= day
                and not (dates.closed_on and dates.closed_on <= day)
            )
        else:
            when = dates.closed_on if event == "closed" else dates.dates[_status_of(EVENTS[event])]
            hit = when is not None and first <= when <= day
        if hit:
            area = float(record.get("area_m2") or 0.0)
            out.append((town, area if math.isfinite(area) else 0.0))
    return out


def _status_of(field: str) -> str:
    return next(status for status, name in CASE_FLOW if name == field)


def _rows(inputs: Inputs, scopes: Sequence[str], hits: list[tuple[str, float]], *, area: bool) -> pd.DataFrame:
    rows: list[tuple[str, str, float, float, str]] = []
    towns = [t for t, _ in hits]

    def total(town: str | None) -> float:
        chosen = [a if area else 1.0 for t, a in hits if town is None or t == town]
        return float(sum(chosen))

    if "district" in scopes:
        rows.append(("district", "", total(None), math.nan, ""))
    if "town" in scopes:
        for town in scope_keys(town_names(inputs), towns):
            rows.append(("town", town, total(town), math.nan, ""))
    return kind_frame(rows)


def case_count(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """Cases by event: found / filed / demolished / legalised / closed (either) in the as-of quarter (period
    "quarter", up to the as-of date) or up to the as-of date ("to_date"); or `open` (found and not closed on the
    as-of date). In the district and per town."""
    if not len(inputs.layer(CASES)):
        return no_data(CASES)
    return _rows(inputs, scopes, _hits(inputs, params), area=False)


def case_area(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The recorded area (area_m2, m²) of the cases an event counts (as `case_count`), e.g. area demolished."""
    if not len(inputs.layer(CASES)):
        return no_data(CASES)
    return _rows(inputs, scopes, _hits(inputs, params), area=True)


def _check(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["event", "period"], required=["event"])
    if "event" in params and params["event"] not in COUNT_EVENTS:
        problems.append(f"event must be one of {', '.join(COUNT_EVENTS)}, not {params['event']!r}")
    if "period" in params and params["period"] not in PERIODS:
        problems.append(f"period must be one of {', '.join(PERIODS)}, not {params['period']!r}")
    return problems


CASE_KINDS: tuple[Kind, ...] = (
    Kind(
        "case_count",
        case_count,
        "count",
        fixed_scopes("district", "town"),
        layer_needs(CASES, "towns"),
        _check,
        "illegal-construction cases by event and quarter",
    ),
    Kind(
        "case_area",
        case_area,
        "area",
        fixed_scopes("district", "town"),
        layer_needs(CASES, "towns"),
        _check,
        "area of illegal-construction cases by event and quarter",
    ),
)
"""The kinds computed from the illegal-construction cases."""
