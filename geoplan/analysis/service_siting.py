"""New sites for any life-circle service: its coverage today as a `CoverageResult`, for `siting.suggest_sites`.

A life-circle service (`life_circle_rules.ServiceRule`) reaches its urban radius from urban units (社区) and its
rural radius from the others, as `life_circles.life_circle_coverage` computes it. The greedy siting engine
(`siting.suggest_sites`) takes the current coverage and the rules a new site is judged by; this module builds
both for one service, so the siting engine serves every service unchanged.

Services whose reach depends on the facility's size (parks: 500 m from 0.5 ha, 300 m from 0.2 ha) are covered
today by the nearest qualifying facility of any size class; a new site is judged at the largest radius, that
is, planned at a size that serves farthest.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np

from geoplan.analysis.coverage import (
    CellTimes,
    CoverageResult,
    CoverageRules,
    cell_times,
    facility_xy,
    metric_geoms,
    unit_type_table,
)
from geoplan.analysis.coverage_cells import cell_shares
from geoplan.analysis.life_circle_rules import ServiceRule, UnitRule
from geoplan.analysis.life_circles import service_facilities
from geoplan.analysis.linking import Links, link_points
from geoplan.analysis.network import WalkGraph
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = ["new_site_rules", "service_coverage"]


def new_site_rules(rule: ServiceRule) -> CoverageRules:
    """The rules a new site of the service is judged by: its urban and rural radius (the largest size class)."""
    return CoverageRules(urban=rule.settings(rule.urban.radius_m), rural=rule.settings(rule.rural.radius_m))


def service_coverage(
    *,
    villages: gpd.GeoDataFrame,
    layer: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rule: ServiceRule,
) -> CoverageResult:
    """The service's coverage per village today (`layer` is its facility layer, filtered here by the rule)."""
    if graph is None and rule.mode == "network":
        raise InputError("network coverage needs the walking graph (build_walk_graph); pass graph=")
    facilities = service_facilities(layer, rule)
    if "facility_id" not in facilities.columns:
        raise InputError(f"layer '{rule.layer}' has no 'facility_id' field")
    ids = [str(v) for v in facilities["facility_id"].to_numpy()]
    cells = cell_shares(population, metric_geoms(villages))
    links: Links | None = None
    if rule.mode == "network":
        assert graph is not None
        links = link_points(graph, cells.centres, access_m=rule.access_m)

    def times(unit: UnitRule) -> CellTimes:
        parts = []
        for reach in unit.reaches:
            positions = np.arange(len(facilities))
            if reach.min_ha is not None and rule.area_field is not None:
                size = facilities[rule.area_field].astype(float).fillna(-1.0).to_numpy()
                positions = np.flatnonzero(size >= reach.min_ha)
            one = cell_times(
                cells.centres,
                facility_xy(facilities.iloc[positions]),
                graph,
                rule.settings(reach.radius_m),
                cell_links=links,
            )
            back = np.r_[positions, -1]  # subset position -> service position; -1 stays -1
            off = np.zeros(len(facilities), dtype=bool)
            off[positions] = one.facilities_off_network
            parts.append(
                dataclasses.replace(one, facility=back[one.facility].astype(np.intp), facilities_off_network=off)
            )
        if len(parts) == 1:
            return parts[0]
        minutes = np.vstack([p.minutes for p in parts])
        best, columns = np.argmin(minutes, axis=0), np.arange(minutes.shape[1])
        return dataclasses.replace(
            parts[0],
            minutes=minutes[best, columns],
            facility=np.vstack([p.facility for p in parts])[best, columns],
            covered=np.any(np.vstack([p.covered for p in parts]), axis=0),
            facilities_off_network=np.any(np.vstack([p.facilities_off_network for p in parts]), axis=0),
        )

    urban = times(rule.urban)
    rural = urban if rule.rural == rule.urban else times(rule.rural)
    table = unit_type_table(villages, cells, urban=urban, rural=rural, facility_ids=ids)
    off = urban.facilities_off_network | rural.facilities_off_network
    return CoverageResult(
        table=table,
        cells=cells,
        urban=urban,
        rural=rural,
        facility_ids=ids,
        facilities_off_network=[ids[i] for i in np.flatnonzero(off)],
        unassigned_population=cells.unassigned_population,
    )
