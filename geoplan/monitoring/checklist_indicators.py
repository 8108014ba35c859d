"""The indicator kind of the village checklist (镇村发展现代化): the share of villages with an item achieved.

Reads `Inputs.checklist` (`village_checklist.checklist_state` as of the moment's quarter: one row per village,
virtual units left out, and item). Pure, like every kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.indicators import Inputs, Kind, Needs, check_keys, fixed_scopes, kind_frame, no_data, scope_keys

__all__ = ["CHECKLIST_KINDS", "village_checklist_share"]


def village_checklist_share(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """% of villages and communities (not virtual units) whose item is in its achieved state as of the quarter,
    in the district and per town."""
    state = inputs.checklist
    if state is None:
        raise InputError("the village checklist was not given")
    if not len(inputs.layer("villages")):
        return no_data("villages")
    item = str(params["item"])
    rows_of = state[state["item"] == item]
    if not len(rows_of) and len(state):
        raise InputError(f"unknown checklist item {item!r}", zh=f"未知的检查项“{item}”。")

    def value(part: pd.DataFrame) -> float:
        return 100.0 * float(part["achieved"].sum()) / len(part) if len(part) else math.nan

    rows: list[tuple[str, str, float, float, str]] = []
    if "district" in scopes:
        rows.append(("district", "", value(rows_of), math.nan, ""))
    if "town" in scopes:
        for town in scope_keys(None, list(pd.unique(rows_of["town"].astype(str)))):
            part = rows_of[rows_of["town"].astype(str) == town]
            rows.append(("town", town, value(part), math.nan, ""))
    return kind_frame(rows)


def _check(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["item"], required=["item"])
    if "item" in params and not (isinstance(params["item"], str) and params["item"]):
        problems.append("item must be the code of a checklist item (layers/rules/village_checklist.yaml)")
    return problems


CHECKLIST_KINDS: tuple[Kind, ...] = (
    Kind(
        "village_checklist_share",
        village_checklist_share,
        "percent",
        fixed_scopes("district", "town"),
        lambda _: Needs(layers=frozenset({"villages"}), checklist=True),
        _check,
        "share of villages with a checklist item achieved",
    ),
)
"""The kinds computed from the village checklist."""
