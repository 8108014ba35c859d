"""Life-circle coverage for every public service at once: one engine, cells computed once, searches shared.

Each service (a `ServiceRule`) is the coverage model of `coverage.py` applied to its own facilities and
radius: urban units (社区) use its urban radius, the others its rural one. A radius becomes a walking time
(radius / speed), so culture at 750 m and 4.5 km/h is exactly the ten-minute cultural circle.

What is shared across services, so a scorecard of many services costs little more than one:

* the cell shares (population cells cut by the villages) are computed once;
* the cell centres are linked to the network once per access distance;
* a network search (one multi-source Dijkstra) runs once per distinct (facilities, mode, distance): urban and
  rural rules with the same radius, and services that name the same facilities, share it.

Parks reach by size (`Reach.min_ha`): each size class is a search over the parks at least that large, and a
cell is covered when any class covers it; its minutes are those to the nearest qualifying park.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.analysis.coverage import (
    URBAN_TYPE,
    CellTimes,
    CoverageSettings,
    cell_times,
    facility_xy,
    metric_geoms,
    unit_type_table,
)
from geoplan.analysis.coverage_cells import BoolArray, CellShares, cell_shares
from geoplan.analysis.life_circle_rules import ServiceRule, UnitRule
from geoplan.analysis.linking import Links, link_points
from geoplan.analysis.network import WalkGraph
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = [
    "LifeCircleResult",
    "ServiceCoverage",
    "life_circle_coverage",
    "service_facilities",
]

SearchKey = tuple[str, tuple[str, ...], CoverageSettings]


@dataclass(frozen=True)
class ServiceCoverage:
    rule: ServiceRule
    table: pd.DataFrame
    """One row per village, COVERAGE_COLUMNS (as `compute_coverage`)."""
    facility_ids: list[str]
    covered: BoolArray
    urban: CellTimes
    rural: CellTimes
    """The cell times of urban and rural units' rules (size classes combined: the nearest qualifying)."""
    facilities_off_network: list[str] = field(default_factory=list)
    """Facilities too far from any street to serve anyone (as `CoverageResult.facilities_off_network`)."""
    """Per (village, cell) share of `LifeCircleResult.cells`: whether its people reach the service, by the
    rule of their unit (urban or rural). Completeness per circle combines these across services."""


@dataclass
class LifeCircleResult:
    cells: CellShares
    services: dict[str, ServiceCoverage] = field(default_factory=dict)
    searches: int = 0
    """Distinct network or straight-line searches run."""


def service_facilities(frame: gpd.GeoDataFrame, rule: ServiceRule) -> gpd.GeoDataFrame:
    """The features of `frame` that serve `rule` (every `where` field matching one of its values)."""
    keep = np.ones(len(frame), dtype=bool)
    for name, values in rule.where:
        if name not in frame.columns:
            raise InputError(f"layer '{rule.layer}' has no '{name}' field (life-circle service {rule.name})")
        keep &= frame[name].isin(values).to_numpy()
    return frame[keep]


def life_circle_coverage(
    *,
    villages: gpd.GeoDataFrame,
    layers: Mapping[str, gpd.GeoDataFrame],
    population: RasterData,
    graph: WalkGraph | None,
    rules: Mapping[str, ServiceRule],
) -> LifeCircleResult:
    """Coverage per village for every service in `rules`, their facility layers given by name in `layers`."""
    for column in ("village_code", "village_name", "town", "type"):
        if column not in villages.columns:
            raise InputError(f"layer 'villages' has no '{column}' field")
    if graph is None and any(r.mode == "network" for r in rules.values()):
        raise InputError("network life circles need the walking graph (build_walk_graph); pass graph=")
    cells = cell_shares(population, metric_geoms(villages))
    is_urban = (villages["type"].astype(str).to_numpy() == URBAN_TYPE)[cells.village]
    links: dict[float, Links] = {}
    searches: dict[SearchKey, CellTimes] = {}
    result = LifeCircleResult(cells=cells)

    def linked(access_m: float) -> Links:
        if access_m not in links:
            assert graph is not None
            links[access_m] = link_points(graph, cells.centres, access_m=access_m)
        return links[access_m]

    def times(rule: ServiceRule, unit: UnitRule, facilities: gpd.GeoDataFrame, ids: list[str]) -> CellTimes:
        """The unit's cell times: over its size classes, the nearest qualifying facility."""
        parts: list[CellTimes] = []
        for reach in unit.reaches:
            mask = np.ones(len(facilities), dtype=bool)
            if reach.min_ha is not None and rule.area_field is not None:
                mask = (facilities[rule.area_field].astype(float).fillna(-1.0) >= reach.min_ha).to_numpy()
            positions = np.flatnonzero(mask)
            settings = rule.settings(reach.radius_m)
            key: SearchKey = (rule.layer, tuple(ids[i] for i in positions), settings)
            if key not in searches:
                xy = facility_xy(facilities.iloc[positions])
                network = settings.mode == "network"
                one = cell_times(
                    cells.centres, xy, graph, settings, cell_links=linked(settings.access_m) if network else None
                )
                back = np.r_[positions, -1]  # subset position -> service position; -1 stays -1
                off = np.zeros(len(facilities), dtype=bool)  # per service position, as the tables index it
                off[positions] = one.facilities_off_network
                searches[key] = CellTimes(
                    minutes=one.minutes,
                    facility=back[one.facility].astype(np.intp),
                    covered=one.covered,
                    off_network=one.off_network,
                    facilities_off_network=off,
                )
            parts.append(searches[key])
        return parts[0] if len(parts) == 1 else _nearest_of(parts)

    for name, rule in rules.items():
        if rule.layer not in layers:
            raise InputError(f"life-circle service {name} needs layer '{rule.layer}'")
        facilities = service_facilities(layers[rule.layer], rule)
        if "facility_id" not in facilities.columns:
            raise InputError(f"layer '{rule.layer}' has no 'facility_id' field")
        ids = [str(v) for v in facilities["facility_id"].to_numpy()]
        urban = times(rule, rule.urban, facilities, ids)
        rural = urban if rule.rural == rule.urban else times(rule, rule.rural, facilities, ids)
        table = unit_type_table(villages, cells, urban=urban, rural=rural, facility_ids=ids)
        covered = np.where(is_urban, urban.covered[cells.cell], rural.covered[cells.cell]).astype(bool)
        off = urban.facilities_off_network | rural.facilities_off_network
        result.services[name] = ServiceCoverage(
            rule=rule,
            table=table,
            facility_ids=ids,
            covered=covered,
            urban=urban,
            rural=rural,
            facilities_off_network=[ids[i] for i in np.flatnonzero(off)],
        )
    result.searches = len(searches)
    return result


def _nearest_of(parts: list[CellTimes]) -> CellTimes:
    """Size classes combined: covered by any, minutes and facility of the nearest qualifying one."""
    minutes = np.vstack([p.minutes for p in parts])
    best = np.argmin(minutes, axis=0)
    cols = np.arange(minutes.shape[1])
    return CellTimes(
        minutes=minutes[best, cols],
        facility=np.vstack([p.facility for p in parts])[best, cols],
        covered=np.any(np.vstack([p.covered for p in parts]), axis=0),
        off_network=parts[0].off_network,
        facilities_off_network=np.any(np.vstack([p.facilities_off_network for p in parts]), axis=0),
    )
