"""Capacity check: the two-step floating catchment area method (2SFCA) for facilities with a `capacity`.

Coverage asks "is a facility within ten minutes?"; this asks "is there enough of it?". With the capacity S_j of
facility j in visits per day (`culture_facilities.capacity`, 人次/日):

1. **Supply ratio.** R_j = S_j / P_j, where P_j is the population within the threshold of j: every (village,
   cell) share whose cell j reaches under that village's rule (urban or rural), exactly as `compute_coverage`
   links cells and facilities (cell link + network distance + facility link, or the straight line).
2. **Accessibility.** A_c = Σ R_j over the facilities j that reach the share, reported per 1,000 residents
   (visits per day per 1,000 people, so the figures read like "beds per 1,000"). Per village: the
   population-weighted mean of A over its shares, and the people (and share) whose A is below `norm`.

There is no national norm for cultural-facility capacity per resident, so the default `norm` is the district's
own supply: total capacity / total population × 1000 (a share below it means "less than an even share").
Facilities without a capacity are left out of both steps and listed in `facilities_without_capacity`; a
facility whose catchment holds nobody gets R_j = 0 (it serves no one under the model).

Both steps are sparse matrix products over one (share × facility) reach matrix built by `reach.py` (one
bounded Dijkstra from the facilities' nodes); there is no Python loop over cells or facilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from geoplan.analysis.coverage import (
    URBAN_TYPE,
    CoverageRules,
    _check_inputs,
    facilities_of_kinds,
    facility_xy,
    metric_geoms,
)
from geoplan.analysis.coverage_cells import cell_shares
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.reach import cell_facility_pairs
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = [
    "ACCESSIBILITY_COLUMNS",
    "FACILITY_RATIO_COLUMNS",
    "PER_PEOPLE",
    "CapacityResult",
    "capacity_accessibility",
    "town_accessibility",
]

FloatArray = NDArray[np.float64]

PER_PEOPLE = 1000.0
"""Accessibility is reported per this many residents."""
ACCESSIBILITY_COLUMNS = ["village_code", "accessibility", "below_norm_population", "below_norm_pct"]
FACILITY_RATIO_COLUMNS = ["facility_id", "capacity", "catchment_population", "supply_ratio"]


@dataclass(frozen=True)
class CapacityResult:
    table: pd.DataFrame
    """One row per village (in the villages' order): ACCESSIBILITY_COLUMNS."""
    facilities: pd.DataFrame
    """One row per facility with a capacity: FACILITY_RATIO_COLUMNS (supply_ratio per PER_PEOPLE residents)."""
    norm: float
    """Accessibility below this counts as below the norm (per PER_PEOPLE residents)."""
    facilities_without_capacity: list[str]
    facilities_off_network: list[str]
    share_accessibility: FloatArray
    """Per (village, cell) share of `cell_shares`: its accessibility (for maps and checks)."""


def capacity_accessibility(
    *,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rules: CoverageRules,
    kinds: Sequence[str] | None = None,
    norm: float | None = None,
) -> CapacityResult:
    """2SFCA accessibility per village (see the module docstring); `norm` None = the district's own supply."""
    if norm is not None and (isinstance(norm, bool) or not math.isfinite(norm) or norm < 0):
        raise InputError(f"the accessibility norm must be a number >= 0, not {norm!r}")
    _check_inputs(villages, facilities)
    if "capacity" not in facilities.columns:
        raise InputError("layer 'culture_facilities' has no 'capacity' field")
    if graph is None and "network" in (rules.urban.mode, rules.rural.mode):
        raise InputError("network capacity check needs the walking graph (build_walk_graph); pass graph=")
    facilities = facilities_of_kinds(facilities, kinds)

    capacity = pd.to_numeric(facilities["capacity"], errors="coerce").to_numpy(dtype=np.float64)
    ids = [str(v) for v in facilities["facility_id"].to_numpy()]
    has = np.isfinite(capacity)
    if np.any(capacity[has] < 0):
        raise InputError("a facility capacity must be >= 0")
    without = [ids[i] for i in np.flatnonzero(~has)]
    served = facilities[has]
    served_ids = [ids[i] for i in np.flatnonzero(has)]
    cap = capacity[has]

    fac_xy = facility_xy(served)

    cells = cell_shares(population, metric_geoms(villages))
    is_urban = (villages["type"].to_numpy() == URBAN_TYPE)[cells.village]
    n_shares, n_cells, k = len(cells.people), len(cells.values), len(fac_xy)

    # (share × facility) reach: each share takes its village's rule's (cell × facility) row
    reach = sparse.csr_matrix((n_shares, k), dtype=np.float64)
    off_network = np.zeros(k, dtype=bool)
    groups = [(np.ones(n_shares, dtype=bool), rules.urban)]
    if rules.urban != rules.rural:
        groups = [(is_urban, rules.urban), (~is_urban, rules.rural)]
    for members, settings in groups:
        pairs = cell_facility_pairs(cells.centres, fac_xy, graph, settings)
        if settings.mode == "network":
            off_network |= pairs.facilities_off_network
        by_cell = pairs.matrix(n_cells, k)
        pick = sparse.diags(members.astype(np.float64))
        reach = reach + pick @ by_cell[cells.cell]
    reach = reach.tocsr()
    reach.data[:] = 1.0

    people = cells.people
    catchment = np.asarray(reach.T @ people, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(catchment > 0, cap / catchment, 0.0) * PER_PEOPLE
    access = np.asarray(reach @ ratio, dtype=np.float64).ravel()

    total_population = float(people.sum())
    if norm is None:
        norm = float(cap.sum()) / total_population * PER_PEOPLE if total_population > 0 else 0.0
    nv = len(villages)
    village_pop = np.bincount(cells.village, weights=people, minlength=nv)
    weighted = np.bincount(cells.village, weights=people * access, minlength=nv)
    below = np.bincount(cells.village, weights=people * (access < norm), minlength=nv)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "village_code": villages["village_code"].astype(str).to_numpy(),
                "accessibility": np.where(village_pop > 0, weighted / village_pop, np.nan),
                "below_norm_population": below,
                "below_norm_pct": np.where(village_pop > 0, 100.0 * below / village_pop, np.nan),
            },
            columns=ACCESSIBILITY_COLUMNS,
        )
    ratios = pd.DataFrame(
        {"facility_id": served_ids, "capacity": cap, "catchment_population": catchment, "supply_ratio": ratio},
        columns=FACILITY_RATIO_COLUMNS,
    )
    return CapacityResult(
        table=table,
        facilities=ratios,
        norm=float(norm),
        facilities_without_capacity=without,
        facilities_off_network=[served_ids[i] for i in np.flatnonzero(off_network)],
        share_accessibility=access,
    )


def town_accessibility(table: pd.DataFrame) -> pd.DataFrame:
    """Per town: population-weighted accessibility and the people below the norm.

    `table` holds, per village, `town` and `population` (the coverage table) and the ACCESSIBILITY_COLUMNS.
    """
    pop = table["population"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame(
        {
            "town": table["town"].to_numpy(),
            "population": pop,
            "weighted": pop * table["accessibility"].fillna(0.0).to_numpy(dtype=np.float64),
            "below": table["below_norm_population"].to_numpy(dtype=np.float64),
        }
    )
    sums = frame.groupby("town", sort=True)[["population", "weighted", "below"]].sum()
    people = sums["population"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame(
            {
                "town": sums.index.to_numpy(),
                "accessibility": np.where(people > 0, sums["weighted"].to_numpy() / people, np.nan),
                "below_norm_population": sums["below"].to_numpy(),
                "below_norm_pct": np.where(people > 0, 100.0 * sums["below"].to_numpy() / people, np.nan),
            }
        )
    return out
