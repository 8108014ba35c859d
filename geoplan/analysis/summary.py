"""Conflict patches summed up: the two tables a planner reads first (by rule, by town), for the CLI and the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from geoplan.analysis.rules import ConflictRule
from geoplan.errors import InputError

NO_TOWN = "（镇街外）"
"""The town label of patches outside every town polygon (never silently dropped from the totals)."""
_NEEDED = ("rule", "severity", "town", "area_m2", "area_ellipsoid_m2")
_TOTALS = {
    "patches": ("rule", "size"),
    "area_m2": ("area_m2", "sum"),
    "area_ellipsoid_m2": ("area_ellipsoid_m2", "sum"),
}


@dataclass(frozen=True)
class OverlapSummary:
    """`by_rule`: rule, title, severity, patches, area_m2, area_ellipsoid_m2 (every rule, zero rows too).
    `by_town`: town, patches, area_m2, area_ellipsoid_m2, and one column of patch counts per severity."""

    by_rule: pd.DataFrame
    by_town: pd.DataFrame


def summarise(patches: pd.DataFrame, *, rules: Sequence[ConflictRule] = ()) -> OverlapSummary:
    """Count and total area (planar and ellipsoidal) of the patches by rule and by town.

    Given the rules, every rule gets a row, so "0 patches" is stated rather than left to be inferred.
    """
    missing = [c for c in _NEEDED if c not in patches.columns]
    if missing:
        raise InputError(f"not a conflict patch table: missing column(s) {', '.join(missing)}")
    data = pd.DataFrame(patches[list(_NEEDED)]).copy()
    data["town"] = data["town"].astype(object).where(data["town"].notna(), NO_TOWN)
    by_rule = data.groupby("rule", sort=False).agg(**_TOTALS).reset_index()
    titles = {rule.code: rule.title_zh for rule in rules}
    severities = {rule.code: rule.severity for rule in rules}
    severities.update(zip(data["rule"], data["severity"], strict=True))
    order = list(titles) + [code for code in by_rule["rule"] if code not in titles]
    by_rule = by_rule.set_index("rule").reindex(order).reset_index()
    by_rule["patches"] = by_rule["patches"].fillna(0).astype(int)
    by_rule[["area_m2", "area_ellipsoid_m2"]] = by_rule[["area_m2", "area_ellipsoid_m2"]].fillna(0.0)
    by_rule.insert(1, "title", [titles.get(code, "") for code in by_rule["rule"]])
    by_rule.insert(2, "severity", [severities.get(code, "") for code in by_rule["rule"]])
    by_town = data.groupby("town").agg(**_TOTALS)
    counts = data.pivot_table(index="town", columns="severity", values="rule", aggfunc="size", fill_value=0)
    for severity in ("high", "medium", "low"):
        by_town[severity] = counts[severity] if severity in counts.columns else 0
    by_town = by_town.sort_values("area_m2", ascending=False).reset_index()
    by_town[["patches", "high", "medium", "low"]] = by_town[["patches", "high", "medium", "low"]].astype(int)
    return OverlapSummary(by_rule=by_rule, by_town=by_town)


def combine(parts: Sequence[OverlapSummary], *, rules: Sequence[ConflictRule] = ()) -> OverlapSummary:
    """The summary of several patch tables from their summaries (counts and areas add up), as `summarise` of
    their concatenation would give it: what a run that never holds all its patches reports."""
    columns = ["patches", "area_m2", "area_ellipsoid_m2"]
    if not parts:
        return summarise(pd.DataFrame(columns=list(_NEEDED)), rules=rules)
    by_rule = pd.concat([part.by_rule for part in parts], ignore_index=True)
    by_rule = by_rule.groupby(["rule", "title", "severity"], sort=False, dropna=False)[columns].sum().reset_index()
    titles = {rule.code: rule.title_zh for rule in rules}
    order = list(titles) + [code for code in by_rule["rule"] if code not in titles]
    by_rule = by_rule.set_index("rule").loc[[code for code in order if code in set(by_rule["rule"])]].reset_index()
    by_town = pd.concat([part.by_town for part in parts], ignore_index=True)
    by_town = by_town.groupby("town")[[*columns, "high", "medium", "low"]].sum()
    by_town = by_town.sort_values("area_m2", ascending=False).reset_index()
    counts = ["patches", "high", "medium", "low"]
    by_town[counts] = by_town[counts].astype(int)
    by_rule["patches"] = by_rule["patches"].astype(int)
    return OverlapSummary(by_rule=by_rule, by_town=by_town[["town", *columns, "high", "medium", "low"]])
