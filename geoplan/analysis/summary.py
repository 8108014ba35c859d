"""Conflict patches summed up: the two tables a planner reads first (by rule, by town), for the CLI and the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

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


_EXEMPT_COLUMNS = ["rule", "patches", "area_m2", "area_ellipsoid_m2"]


@dataclass(frozen=True)
class OverlapSummary:
    """`by_rule`: rule, title, severity, patches, area_m2, area_ellipsoid_m2 (every rule, zero rows too).
    `by_town`: town, patches, area_m2, area_ellipsoid_m2, and one column of patch counts per severity.
    Both count only patches that are not exempt; `exempt` has the exempt ones by rule (rule, patches, area_m2,
    area_ellipsoid_m2; only rules with some), which are listed but never part of a total."""

    by_rule: pd.DataFrame
    by_town: pd.DataFrame
    exempt: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_EXEMPT_COLUMNS))

    @property
    def exempt_patches(self) -> int:
        return int(self.exempt["patches"].sum())

    @property
    def exempt_area_m2(self) -> float:
        return float(self.exempt["area_m2"].sum())

    @property
    def exempt_area_ellipsoid_m2(self) -> float:
        return float(self.exempt["area_ellipsoid_m2"].sum())


def summarise(patches: pd.DataFrame, *, rules: Sequence[ConflictRule] = ()) -> OverlapSummary:
    """Count and total area (planar and ellipsoidal) of the patches by rule and by town.

    Given the rules, every rule gets a row, so "0 patches" is stated rather than left to be inferred. Exempt
    patches (column `exempt`) are counted apart, in `exempt`.
    """
    missing = [c for c in _NEEDED if c not in patches.columns]
    if missing:
        raise InputError(f"not a conflict patch table: missing column(s) {', '.join(missing)}")
    spared = exempt_mask(patches)
    data = pd.DataFrame(patches.loc[~spared, list(_NEEDED)]).copy()
    exempt = pd.DataFrame(patches.loc[spared, list(_NEEDED)]).groupby("rule", sort=False).agg(**_TOTALS)
    exempt = _in_rule_order(exempt.reset_index()[_EXEMPT_COLUMNS], rules)
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
    return OverlapSummary(by_rule=by_rule, by_town=by_town, exempt=exempt)


SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


def by_severity(patches: pd.DataFrame) -> pd.DataFrame:
    """The patches high first, then medium, then low, each by area (largest first; ties by patch id): the order
    a planner reads them in. A copy with a fresh index; `exempt` plays no part (the list shows it)."""
    if not len(patches):
        return patches.copy()
    rank = patches["severity"].map(SEVERITY_RANK).fillna(len(SEVERITY_RANK)).to_numpy()
    order = np.lexsort((patches["patch_id"].astype(str).to_numpy(), -patches["area_m2"].to_numpy(), rank))
    return patches.iloc[order].reset_index(drop=True)


def exempt_mask(patches: pd.DataFrame) -> NDArray[np.bool_]:
    """Which patches a rule's exemption spares (none when the table has no `exempt` column)."""
    if "exempt" not in patches.columns:
        return np.zeros(len(patches), dtype=bool)
    return np.asarray(patches["exempt"].fillna(False).to_numpy(dtype=bool), dtype=bool)


def _in_rule_order(frame: pd.DataFrame, rules: Sequence[ConflictRule]) -> pd.DataFrame:
    rank = {rule.code: position for position, rule in enumerate(rules)}
    order = sorted(range(len(frame)), key=lambda i: rank.get(str(frame["rule"].iloc[i]), len(rank)))
    out = frame.iloc[order].reset_index(drop=True)
    out["patches"] = out["patches"].astype(int)
    return out


def combine(parts: Sequence[OverlapSummary], *, rules: Sequence[ConflictRule] = ()) -> OverlapSummary:
    """The summary of several patch tables from their summaries (counts and areas add up), as `summarise` of
    their concatenation would give it: what a run that never holds all its patches reports."""
    columns = ["patches", "area_m2", "area_ellipsoid_m2"]
    if not parts:
        return summarise(pd.DataFrame(columns=list(_NEEDED)), rules=rules)
    exempt = pd.concat([part.exempt for part in parts], ignore_index=True)
    exempt = _in_rule_order(exempt.groupby("rule", sort=False)[columns].sum().reset_index(), rules)
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
    return OverlapSummary(
        by_rule=by_rule, by_town=by_town[["town", *columns, "high", "medium", "low"]], exempt=exempt[_EXEMPT_COLUMNS]
    )
