"""Life-circle indicator kinds: per-service population coverage and completeness per circle.

Every service of rules/life_circles.yaml is computed in ONE engine run per evaluation
(`life_circles.life_circle_coverage` over all services: cells once, one search per distinct facilities, mode and
distance), memoised on the `Inputs`; each indicator then reads its service's rows. People are whole
(`life_circle_scorecard.whole_people` per village) and a town or district share is the sum of those village rows,
so the indicators agree with the scorecard a reader sees. Virtual units (prisons, farms) are never a town: they
count in the district only (`unit_groups.group_of`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from geoplan.analysis import life_circles
from geoplan.analysis.life_circle_matrix import completeness
from geoplan.analysis.life_circle_rules import CIRCLES
from geoplan.analysis.life_circle_scorecard import scorecard
from geoplan.analysis.unit_groups import VIRTUAL_GROUP, group_of
from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.indicators import (
    Inputs,
    Kind,
    Needs,
    _check_virtual_units,
    _virtual_units,
    check_keys,
    fixed_scopes,
    kind_frame,
    no_data,
)

__all__ = [
    "LIFE_CIRCLE_KINDS",
    "check_service",
    "life_circle_completeness",
    "life_circle_coverage",
    "life_circle_result",
    "life_circle_scorecard",
]

NO_POPULATION = "no population"
_MEMO_RESULT = ("life_circles", "result")
_MEMO_CARD = ("life_circles", "scorecard")


def life_circle_result(inputs: Inputs) -> life_circles.LifeCircleResult:
    """The engine's result for every service of the rules, computed once per `Inputs`."""

    def run() -> life_circles.LifeCircleResult:
        rules = inputs.life_circle_rules
        if not rules:
            raise InputError("the life-circle indicators need the life-circle rules (rules/life_circles.yaml)")
        if inputs.population is None:
            raise InputError("the life-circle indicators need the population raster")
        return life_circles.life_circle_coverage(
            villages=inputs.layer("villages"),
            layers={name: inputs.layer(name) for name in sorted({r.layer for r in rules.values()})},
            population=inputs.population,
            graph=inputs.graph,
            rules=rules,
        )

    return inputs.memoised(_MEMO_RESULT, run)


def life_circle_scorecard(inputs: Inputs) -> pd.DataFrame:
    """`scorecard` of the shared result, with each unit's reporting group (its town, or 虚拟单位)."""

    def card() -> pd.DataFrame:
        villages = inputs.layer("villages")
        table = scorecard(villages, life_circle_result(inputs))
        groups = dict(zip(villages["village_code"].astype(str), group_of(villages), strict=True))
        return table.assign(group=table["village_code"].astype(str).map(groups).to_numpy())

    return inputs.memoised(_MEMO_CARD, card)


def _share_rows(
    frame: pd.DataFrame, part: str, scopes: Sequence[str], params: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """District and per-town rows of 100 × sum(part) / sum(population) over village rows (whole people). Virtual
    units get no town row, unless `virtual_units: in_towns` (as for the coverage kinds) makes each its own."""
    in_towns = _virtual_units(params or {}) == "in_towns"
    rows: list[tuple[str, str, float, float, str]] = []

    def add(scope: str, key: str, sel: pd.DataFrame) -> None:
        people, reached = float(sel["population"].sum()), float(sel[part].sum())
        value = 100.0 * reached / people if people > 0 else math.nan
        rows.append((scope, key, value, math.nan, "" if people > 0 else NO_POPULATION))

    if "district" in scopes:
        add("district", "", frame)
    if "town" in scopes:
        keys = (frame["town"] if in_towns else frame["group"]).astype(str)
        for town in dict.fromkeys(keys):
            if in_towns or town != VIRTUAL_GROUP:
                add("town", town, frame[(keys == town).to_numpy()])
    return kind_frame(rows)


def life_circle_coverage(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """Population coverage (%) of one life-circle service: covered people / people, district and per town."""
    if not len(inputs.layer("villages")):
        return no_data("villages")
    service = str(params["service"])
    if service not in inputs.life_circle_rules:
        raise InputError(
            f"unknown life-circle service {service!r}; the services are: {', '.join(inputs.life_circle_rules)}"
        )
    card = life_circle_scorecard(inputs)
    return _share_rows(card[card["service"] == service], "covered_population", scopes, params)


def life_circle_completeness(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The share (%) of the people who reach every service of a circle (the services whose circle it is, as
    `life_circle_matrix.completeness` defines it, so the /lifecircle page and the indicator agree): the
    district and per town, on the shared result."""
    villages = inputs.layer("villages")
    if not len(villages):
        return no_data("villages")
    circle = int(params["circle"])
    frame = inputs.memoised(
        ("life_circles", "completeness"), lambda: completeness(villages, life_circle_result(inputs))
    )
    chosen = frame[frame["circle"] == circle]
    if not len(chosen):
        return kind_frame([("district", "", math.nan, math.nan, f"no life-circle service of circle {circle}")])
    groups = dict(zip(villages["village_code"].astype(str), villages["town"].astype(str), strict=True))
    chosen = chosen.assign(town=chosen["village_code"].astype(str).map(groups).to_numpy())
    return _share_rows(chosen, "complete_population", scopes, params)


def _needs(_: Mapping[str, Any]) -> Needs:
    return Needs(layers=frozenset({"villages"}), life_circles=True)


def check_service(params: Mapping[str, Any], services: Sequence[str]) -> list[str]:
    """A `service` parameter against the services of the life-circle rules (naming the valid ones)."""
    service = params.get("service")
    if isinstance(service, str) and service and service not in services:
        return [
            f"service {service!r} is not a service of the life-circle rules; the services are: {', '.join(services)}"
        ]
    return []


def _check_coverage(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["service", "virtual_units"], required=["service"]) + _check_virtual_units(params)
    service = params.get("service")
    if "service" in params and (not isinstance(service, str) or not service.strip()):
        problems.append(f"service must be the name of a life-circle service, not {service!r}")
    return problems


def _check_completeness(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["circle", "virtual_units"], required=["circle"]) + _check_virtual_units(params)
    circle = params.get("circle")
    if "circle" in params and (isinstance(circle, bool) or circle not in CIRCLES):
        problems.append(f"circle must be one of {', '.join(map(str, CIRCLES))} (minutes), not {circle!r}")
    return problems


LIFE_CIRCLE_KINDS: tuple[Kind, ...] = (
    Kind(
        "life_circle_coverage",
        life_circle_coverage,
        "percent",
        fixed_scopes("district", "town"),
        _needs,
        _check_coverage,
        "population share within a life-circle service's radius (rules/life_circles.yaml)",
    ),
    Kind(
        "life_circle_completeness",
        life_circle_completeness,
        "percent",
        fixed_scopes("district", "town"),
        _needs,
        _check_completeness,
        "population share reaching every service of a life circle (5, 10 or 15 minutes)",
    ),
)
"""The life-circle kinds (one engine run per evaluation for all of them)."""
