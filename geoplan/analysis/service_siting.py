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

import geopandas as gpd

from geoplan.analysis.coverage import CoverageResult, CoverageRules
from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.life_circles import life_circle_coverage
from geoplan.analysis.network import WalkGraph
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
    result = life_circle_coverage(
        villages=villages, layers={rule.layer: layer}, population=population, graph=graph, rules={rule.name: rule}
    )
    service = result.services[rule.name]
    return CoverageResult(
        table=service.table,
        cells=result.cells,
        urban=service.urban,
        rural=service.rural,
        facility_ids=service.facility_ids,
        facilities_off_network=service.facilities_off_network,
        unassigned_population=result.cells.unassigned_population,
    )
