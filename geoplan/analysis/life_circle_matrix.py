"""The life-circle scorecard read across: villages × services, group totals, completeness per circle, gaps.

All of it starts from `life_circle_scorecard.scorecard` (whole people per village and service), so a town or
district figure is the sum of the rows a reader sees. Virtual units (prisons, farms) form their own group
(`unit_groups`), never a town, and count in the district.

Completeness of a circle is the share of a unit's people who reach every service of that circle (the services
whose `circle` in the rules is that circle). It is computed per (village, cell) share, so a person counts only
when the same person reaches them all, not when each service separately covers enough. The circles are not
nested here: a 15-minute score does not ask for the 5-minute services, which have their own score.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.analysis.life_circle_rules import CIRCLES
from geoplan.analysis.life_circle_scorecard import whole_people
from geoplan.analysis.life_circles import LifeCircleResult
from geoplan.analysis.unit_groups import DISTRICT, VIRTUAL_GROUP, group_of

__all__ = [
    "COMPLETENESS_COLUMNS",
    "circle_services",
    "completeness",
    "completeness_rollup",
    "missing_services",
    "service_rollup",
    "village_matrix",
]

_UNIT = ["village_code", "village_name", "town", "type"]
COMPLETENESS_COLUMNS = [
    "village_code",
    "village_name",
    "group",
    "circle",
    "services",
    "population",
    "complete_population",
    "completeness_pct",
]


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def _group_order(groups: pd.Series) -> list[str]:
    """Towns in the order they first appear, then the virtual units."""
    seen = list(dict.fromkeys(str(g) for g in groups))
    return [g for g in seen if g != VIRTUAL_GROUP] + ([VIRTUAL_GROUP] if VIRTUAL_GROUP in seen else [])


def village_matrix(card: pd.DataFrame) -> pd.DataFrame:
    """One row per village (village_code, village_name, town, type, group, population) and one coverage_pct
    column per service, services in scorecard order; <NA> where a unit has nobody."""
    services = list(dict.fromkeys(card["service"]))
    first = card[card["service"] == services[0]]
    out = first[[*_UNIT, "population"]].reset_index(drop=True)
    out.insert(4, "group", group_of(out).to_numpy())
    for service in services:
        rows = card[card["service"] == service].set_index("village_code")["coverage_pct"]
        out[service] = rows.reindex(out["village_code"]).to_numpy()
        out[service] = out[service].astype("Float64")
    return out


def service_rollup(card: pd.DataFrame) -> pd.DataFrame:
    """Per group (towns, then 虚拟单位) and the district (全区), per service: population, covered_population and
    coverage_pct, sums of the scorecard's whole-people rows."""
    data = card.assign(group=group_of(card).to_numpy())
    rows: list[dict[str, object]] = []
    for service, part in data.groupby("service", sort=False):
        for group in [*_group_order(data["group"]), DISTRICT]:
            sel = part if group == DISTRICT else part[part["group"] == group]
            people, covered = int(sel["population"].sum()), int(sel["covered_population"].sum())
            rows.append(
                {
                    "group": group,
                    "service": service,
                    "population": people,
                    "covered_population": covered,
                    "coverage_pct": _pct(covered, people),
                }
            )
    out = pd.DataFrame(rows)
    out["coverage_pct"] = out["coverage_pct"].astype("Float64")
    return out


def circle_services(result: LifeCircleResult) -> dict[int, list[str]]:
    """Per circle (5, 10, 15) that has a service: the services of that circle, in rule order."""
    out: dict[int, list[str]] = {}
    for circle in CIRCLES:
        names = [name for name, s in result.services.items() if s.rule.circle == circle]
        if names:
            out[circle] = names
    return out


def completeness(villages: gpd.GeoDataFrame, result: LifeCircleResult) -> pd.DataFrame:
    """COMPLETENESS_COLUMNS: per village and circle, the people who reach every service the circle needs."""
    cells = result.cells
    n = len(villages)
    population = whole_people(pd.Series(np.bincount(cells.village, weights=cells.people, minlength=n)))
    groups = group_of(villages).to_numpy()
    parts = []
    for circle, names in circle_services(result).items():
        every = np.logical_and.reduce([result.services[name].covered for name in names])
        complete = np.bincount(cells.village, weights=np.where(every, cells.people, 0.0), minlength=n)
        whole = whole_people(pd.Series(complete))
        parts.append(
            pd.DataFrame(
                {
                    "village_code": villages["village_code"].astype(str).to_numpy(),
                    "village_name": villages["village_name"].astype(str).to_numpy(),
                    "group": groups,
                    "circle": circle,
                    "services": "、".join(names),
                    "population": population.to_numpy(),
                    "complete_population": whole.to_numpy(),
                    "completeness_pct": pd.array(
                        [_pct(float(c), float(p)) for c, p in zip(complete, population, strict=True)],
                        dtype="Float64",
                    ),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[COMPLETENESS_COLUMNS]


def completeness_rollup(frame: pd.DataFrame) -> pd.DataFrame:
    """`completeness` summed per group (towns, then 虚拟单位) and the district: group, circle, population,
    complete_population, completeness_pct."""
    rows: list[dict[str, object]] = []
    for circle, part in frame.groupby("circle", sort=True):
        for group in [*_group_order(frame["group"]), DISTRICT]:
            sel = part if group == DISTRICT else part[part["group"] == group]
            people, complete = int(sel["population"].sum()), int(sel["complete_population"].sum())
            rows.append(
                {
                    "group": group,
                    "circle": int(str(circle)),
                    "population": people,
                    "complete_population": complete,
                    "completeness_pct": _pct(complete, people),
                }
            )
    out = pd.DataFrame(rows)
    out["completeness_pct"] = out["completeness_pct"].astype("Float64")
    return out


def missing_services(card: pd.DataFrame, *, titles: Mapping[str, str], below_pct: float = 50.0) -> pd.DataFrame:
    """Per village, the services that reach fewer than `below_pct` % of its people ("missing for most of its
    people"): village_code, village_name, service, title_zh, coverage_pct, uncovered_population; within a
    village the most uncovered people first. Units with nobody lack nothing."""
    low = card[card["coverage_pct"].notna() & (card["coverage_pct"].fillna(100.0) < below_pct)]
    out = pd.DataFrame(
        {
            "village_code": low["village_code"].to_numpy(),
            "village_name": low["village_name"].to_numpy(),
            "service": low["service"].to_numpy(),
            "title_zh": [titles.get(str(s), str(s)) for s in low["service"]],
            "coverage_pct": low["coverage_pct"].to_numpy(),
            "uncovered_population": (low["population"] - low["covered_population"]).to_numpy(dtype=np.int64),
        }
    )
    order = {code: i for i, code in enumerate(dict.fromkeys(card["village_code"]))}
    out["_v"] = out["village_code"].map(order)
    out = out.sort_values(["_v", "uncovered_population", "service"], ascending=[True, False, True], kind="stable")
    return out.drop(columns="_v").reset_index(drop=True)
