"""The ten-minute cultural-circle coverage engine: population raster + facilities + walking network -> coverage.

The model
---------
* **Cells.** Every population cell with people in it stands at its cell centre. A village receives each cell
  by the exact share of the cell's area that lies in the village: area(cell ∩ village) / area(cell ∩ all
  villages). Inside the villages' union that is the plain area fraction; at the district edge the people of a
  cell that lies partly outside every village are shared among the villages it touches (as the demo's zonal
  sums do), so the villages together hold the raster total. People in cells that touch no village are reported
  as `unassigned_population`. A raster in another CRS than EPSG:4547 is used as it is: its cell outlines and
  centres are transformed to EPSG:4547, so shares stay exact to the cells' outlines.
* **Rules.** Urban units (社区, villages.type == "community") use `CoverageRules.urban`, every other unit (村,
  virtual units) `CoverageRules.rural`. A cell split between an urban and a rural unit is judged by each
  unit's own rule for the share that unit holds. Default: walking at 4.5 km/h for 10 minutes (750 m).
* **Network mode.** Each cell centre and each facility is linked to the nearest point of the nearest walkable
  street (edge) if that street is within the access distance (`access_m`, default 200 m); see `linking.py`.
  The link is walked at the same speed and counted in the travel time. travel distance = cell's link + along
  its edge to one of the edge's ends + network distance + along the facility's edge + facility's link, or,
  when both joined the same edge, the direct walk along it; time = distance / speed, to the nearest facility,
  found for all facilities at once: every linked facility becomes a virtual source node joined to both ends
  of its edge, and one multi-source Dijkstra
  (`scipy.sparse.csgraph.dijkstra(..., indices=sources, min_only=True, limit=horizon)`) gives every node its
  distance and its nearest facility. A cell farther than `access_m` from every walkable street is not covered
  (it is counted in `off_network_population`); a facility farther than `access_m` from them serves nobody and
  is listed in `CoverageResult.facilities_off_network`.
* **Euclidean mode.** travel time = straight-line distance from the cell centre to the nearest facility / speed.
* **Covered** when the travel time is at most `minutes` (distance at most speed × time, to a micrometre).
* **Statistics per village**, population-weighted over its cell shares: `mean_minutes` over the cells that
  have a route (cells with no route, off the network or beyond `horizon_minutes`, are left out of the mean;
  `routed_population` says how many people the mean is over); `p90_minutes`, the smallest time within which
  90 % of the population lives, where cells with no route count as infinitely far (so it is inf when more
  than 10 % have none); `nearest_facility`, the facility that is nearest for the largest part of the
  population.

Everything is vectorised (shapely 2, numpy, scipy); there is no Python loop over cells or facilities.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from scipy.spatial import cKDTree

from geoplan.analysis.coverage_cells import CellShares, cell_shares
from geoplan.analysis.linking import Linker, Links, link_points, same_edge_nearest, source_distances
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.unit_groups import VIRTUAL_GROUP, group_of
from geoplan.crs import METRIC_CRS, crs_label
from geoplan.errors import CRSError, InputError
from geoplan.rasterdata import RasterData

__all__ = [
    "COVERAGE_COLUMNS",
    "CoverageResult",
    "CoverageRules",
    "CoverageSettings",
    "VirtualUnits",
    "compute_coverage",
    "district_total",
    "town_rollup",
    "village_coverage",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

Mode = Literal["network", "euclidean"]
VirtualUnits = Literal["separate", "in_towns"]
"""How a rollup places the virtual units (prisons, farms): in one group of their own (`separate`, the
default: never shown or judged as towns), or each under its own `town` value (`in_towns`, as the census
lists them)."""
URBAN_TYPE = "community"
_TOLERANCE_M = 1e-6

COVERAGE_COLUMNS = [
    "village_code",
    "village_name",
    "town",
    "type",
    "population",
    "covered_population",
    "coverage_pct",
    "mean_minutes",
    "p90_minutes",
    "nearest_facility",
    "routed_population",
    "off_network_population",
]
ROLLUP_COLUMNS = [
    "villages",
    "population",
    "covered_population",
    "coverage_pct",
    "mean_minutes",
    "routed_population",
    "off_network_population",
    "no_route_population",
    "no_route_pct",
]


@dataclass(frozen=True)
class CoverageSettings:
    """How one kind of unit is served: `minutes` of walking at `speed_kmh`, linked within `access_m`."""

    minutes: float = 10.0
    speed_kmh: float = 4.5
    access_m: float = 200.0
    mode: Mode = "network"
    horizon_minutes: float = 60.0
    """Network mode: the search stops here; farther cells count as having no route (never covered)."""

    def __post_init__(self) -> None:
        for name in ("minutes", "speed_kmh", "horizon_minutes"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"coverage setting {name} must be a positive number, not {value!r}")
        if not (isinstance(self.access_m, int | float) and math.isfinite(self.access_m) and self.access_m >= 0):
            raise InputError(f"coverage setting access_m must be a number >= 0, not {self.access_m!r}")
        if self.mode not in ("network", "euclidean"):
            raise InputError(f"coverage mode must be 'network' or 'euclidean', not {self.mode!r}")
        if self.horizon_minutes < self.minutes:
            raise InputError("coverage setting horizon_minutes must be at least minutes")

    @property
    def metres_per_minute(self) -> float:
        return self.speed_kmh * 1000.0 / 60.0

    @property
    def threshold_m(self) -> float:
        return self.metres_per_minute * self.minutes

    @property
    def horizon_m(self) -> float:
        return self.metres_per_minute * self.horizon_minutes


@dataclass(frozen=True)
class CoverageRules:
    """Settings for urban units (社区, type community) and for rural ones (村 and virtual units)."""

    urban: CoverageSettings = field(default_factory=CoverageSettings)
    rural: CoverageSettings = field(default_factory=CoverageSettings)


@dataclass(frozen=True)
class CellTimes:
    """Per populated cell, under one settings: minutes to the nearest facility (inf = no route)."""

    minutes: FloatArray
    facility: IntArray
    """Position of the nearest facility in the (filtered) facility table, -1 for none."""
    covered: BoolArray
    off_network: BoolArray
    facilities_off_network: BoolArray


@dataclass(frozen=True)
class CoverageResult:
    table: pd.DataFrame
    """One row per village, COVERAGE_COLUMNS."""
    cells: CellShares
    urban: CellTimes
    rural: CellTimes
    facility_ids: list[str]
    facilities_off_network: list[str]
    """Facility ids farther than access_m from the network under either rule (network mode)."""
    unassigned_population: float
    """People in cells that touch no village."""

    @property
    def unreachable_population(self) -> float:
        """People linked to the network with no route to any facility within the horizon (e.g. on a network part
        without a facility); with the people off the network they make up everyone without a route."""
        t = self.table
        return float((t["population"] - t["routed_population"] - t["off_network_population"]).clip(lower=0).sum())


# --------------------------------------------------------------------------------------------- the engine


def village_coverage(
    *,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rules: CoverageRules,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Coverage per village (COVERAGE_COLUMNS); see the module docstring for the model."""
    return compute_coverage(
        villages=villages, facilities=facilities, population=population, graph=graph, rules=rules, kinds=kinds
    ).table


def compute_coverage(
    *,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rules: CoverageRules,
    kinds: Sequence[str] | None = None,
    linker: Linker = "edge",
) -> CoverageResult:
    """The village table and the per-cell arrays behind it (for maps of gaps and for new-site studies).

    `linker="node"` is the earlier nearest-node linking, kept only to compare against (see `linking.py`)."""
    _check_inputs(villages, facilities)
    if graph is None and "network" in (rules.urban.mode, rules.rural.mode):
        raise InputError("network coverage needs the walking graph (build_walk_graph); pass graph=")
    village_geoms = metric_geoms(villages)
    facilities = facilities_of_kinds(facilities, kinds)
    fac_xy = facility_xy(facilities)
    facility_ids = [str(v) for v in facilities["facility_id"].to_numpy()]

    cells = cell_shares(population, village_geoms)
    urban = cell_times(cells.centres, fac_xy, graph, rules.urban, linker=linker)
    rural = (
        urban if rules.rural == rules.urban else cell_times(cells.centres, fac_xy, graph, rules.rural, linker=linker)
    )
    table = unit_type_table(villages, cells, urban=urban, rural=rural, facility_ids=facility_ids)
    off = urban.facilities_off_network | rural.facilities_off_network
    return CoverageResult(
        table=table,
        cells=cells,
        urban=urban,
        rural=rural,
        facility_ids=facility_ids,
        facilities_off_network=[facility_ids[i] for i in np.flatnonzero(off)],
        unassigned_population=cells.unassigned_population,
    )


def _check_inputs(villages: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> None:
    frames = {"villages": villages, "culture_facilities": facilities}
    for name, frame in frames.items():
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputError(f"layer '{name}' must be a GeoDataFrame, not {type(frame).__name__}")
        if frame.crs is None:
            raise CRSError(f"layer '{name}' has no CRS; set it first")
    a, b = CRS.from_user_input(villages.crs), CRS.from_user_input(facilities.crs)
    if not a.equals(b):
        raise CRSError(
            f"mixed coordinate systems: 'villages' is in {crs_label(a)} but 'culture_facilities' is in "
            f"{crs_label(b)}; bring every layer to one CRS first"
        )
    for column in ("village_code", "village_name", "town", "type"):
        if column not in villages.columns:
            raise InputError(f"layer 'villages' has no '{column}' field")
    for column in ("facility_id", "kind"):
        if column not in facilities.columns:
            raise InputError(f"layer 'culture_facilities' has no '{column}' field")


def facilities_of_kinds(facilities: gpd.GeoDataFrame, kinds: Sequence[str] | None) -> gpd.GeoDataFrame:
    """The facilities of the given kinds (all for None); an empty list is a mistake, not "no facility"."""
    if kinds is None:
        return facilities
    wanted = list(kinds)
    if not wanted:
        raise InputError("kinds is empty: name at least one facility kind, or pass None for all")
    return facilities[facilities["kind"].isin(wanted).to_numpy()]


def facility_xy(facilities: gpd.GeoDataFrame) -> NDArray[np.float64]:
    """Each facility's x/y in the metric CRS; every facility must be a non-empty Point."""
    return point_xy(facilities, "facility")


def point_xy(frame: gpd.GeoDataFrame, what: str) -> NDArray[np.float64]:
    """Each feature's x/y in the metric CRS; every one must be a non-empty Point (`what` names them)."""
    geoms = metric_geoms(frame)
    if len(geoms) and not np.all(shapely.get_type_id(geoms) == 0):
        raise InputError(f"every {what} must be a non-empty Point")
    xy = shapely.get_coordinates(geoms).reshape(-1, 2)
    if len(xy) != len(geoms):
        raise InputError(f"every {what} must be a non-empty Point")
    return np.asarray(xy, dtype=np.float64)


def metric_geoms(frame: gpd.GeoDataFrame) -> NDArray[np.object_]:
    series = frame.geometry
    if not CRS.from_user_input(frame.crs).equals(CRS.from_user_input(METRIC_CRS)):
        series = series.to_crs(METRIC_CRS)
    return np.asarray(series.to_numpy(), dtype=object)


_CELL_LINKS: OrderedDict[tuple[str, float, str], tuple[WalkGraph, Links]] = OrderedDict()
_CELL_LINKS_LOCK = threading.Lock()


def _linked_cells(graph: WalkGraph, centres: FloatArray, access_m: float, linker: Linker) -> Links:
    """The cell centres linked to `graph`, remembered for the last few (graph, centres) pairs: the same cells
    on the same (cached) graph are linked once for every quarter's indicators, not once per run."""
    points = np.ascontiguousarray(centres, dtype=np.float64)
    key = (hashlib.sha256(points.tobytes()).hexdigest(), float(access_m), str(linker))
    with _CELL_LINKS_LOCK:
        known = _CELL_LINKS.get(key)
    if known is not None and known[0] is graph:
        return known[1]
    links = link_points(graph, points, access_m=access_m, linker=linker)
    for array in (links.link_m, links.linked, links.edge, links.along, links.anchor, links.offset):
        array.flags.writeable = False
    with _CELL_LINKS_LOCK:
        _CELL_LINKS[key] = (graph, links)
        while len(_CELL_LINKS) > 4:
            _CELL_LINKS.popitem(last=False)
    return links


def cell_times(
    centres: FloatArray,
    fac_xy: FloatArray,
    graph: WalkGraph | None,
    settings: CoverageSettings,
    *,
    linker: Linker = "edge",
    cell_links: Links | None = None,
) -> CellTimes:
    """Minutes from every cell centre to its nearest facility under one settings.

    `cell_links`: the centres already linked to `graph` under `settings.access_m` (linking is the costly part
    for the cells, so a run over many services links them once)."""
    m = len(centres)
    if settings.mode == "euclidean":
        if len(fac_xy) == 0:
            dist, idx = np.full(m, np.inf), np.full(m, -1, dtype=np.intp)
        else:
            d, i = cKDTree(fac_xy).query(centres)
            dist, idx = np.asarray(d, dtype=np.float64), np.asarray(i, dtype=np.intp)
        return CellTimes(
            minutes=dist / settings.metres_per_minute,
            facility=idx,
            covered=dist <= settings.threshold_m + _TOLERANCE_M,
            off_network=np.zeros(m, dtype=bool),
            facilities_off_network=np.zeros(len(fac_xy), dtype=bool),
        )
    assert graph is not None
    horizon = settings.horizon_m
    facs = link_points(graph, fac_xy, access_m=settings.access_m, linker=linker)
    cells = cell_links if cell_links is not None else _linked_cells(graph, centres, settings.access_m, linker)
    node_dist, node_fac = source_distances(graph, facs, limit_m=horizon)
    node_dist, node_fac = np.r_[node_dist, np.inf], np.r_[node_fac, -1]  # anchor n_nodes: unlinked
    # per cell: in by either end of its edge, or straight along the edge to a facility on the same edge
    via = cells.offset + node_dist[cells.anchor]
    end = np.argmin(via, axis=1)
    total = via[np.arange(m), end]
    facility = node_fac[cells.anchor[np.arange(m), end]]
    direct, direct_fac = same_edge_nearest(cells, facs, limit_m=horizon)
    shorter = direct < total
    total[shorter], facility[shorter] = direct[shorter], direct_fac[shorter]
    beyond = ~(total <= horizon)
    total[beyond] = np.inf
    facility[beyond] = -1
    return CellTimes(
        minutes=total / settings.metres_per_minute,
        facility=facility,
        covered=total <= settings.threshold_m + _TOLERANCE_M,
        off_network=~cells.linked,
        facilities_off_network=~facs.linked,
    )


def network_distances(
    graph: WalkGraph, fac_xy: FloatArray, settings: CoverageSettings, *, linker: Linker = "edge"
) -> tuple[FloatArray, IntArray]:
    """Per network node: metres to the nearest facility (its link included) and that facility (-1: none),
    up to the search horizon (one multi-source Dijkstra, `linking.source_distances`)."""
    facs = link_points(graph, fac_xy, access_m=settings.access_m, linker=linker)
    return source_distances(graph, facs, limit_m=settings.horizon_m)


# --------------------------------------------------------------------------------------------- tables


def unit_type_table(
    villages: gpd.GeoDataFrame, cells: CellShares, *, urban: CellTimes, rural: CellTimes, facility_ids: list[str]
) -> pd.DataFrame:
    """The village table with each cell share taking its unit's rule: urban for communities, rural otherwise."""
    is_urban = (villages["type"].to_numpy() == URBAN_TYPE)[cells.village]

    def pick(urban_values: NDArray[np.generic], rural_values: NDArray[np.generic]) -> NDArray[np.generic]:
        return np.where(is_urban, urban_values[cells.cell], rural_values[cells.cell])

    return village_table(
        villages,
        cells,
        minutes=pick(urban.minutes, rural.minutes).astype(np.float64),
        covered=pick(urban.covered, rural.covered).astype(bool),
        off_network=pick(urban.off_network, rural.off_network).astype(bool),
        facility=pick(urban.facility, rural.facility).astype(np.intp),
        facility_ids=facility_ids,
    )


def village_table(
    villages: gpd.GeoDataFrame,
    cells: CellShares,
    *,
    minutes: FloatArray,
    covered: BoolArray,
    off_network: BoolArray,
    facility: IntArray,
    facility_ids: list[str],
) -> pd.DataFrame:
    """One row per village (COVERAGE_COLUMNS) from per-share cell values (`cells.cell` order)."""
    nv = len(villages)
    v, w = cells.village, cells.people
    population = np.bincount(v, weights=w, minlength=nv)
    covered_pop = np.bincount(v, weights=w * covered, minlength=nv)
    routed = np.isfinite(minutes)
    routed_pop = np.bincount(v, weights=w * routed, minlength=nv)
    time_sum = np.bincount(v, weights=w * np.where(routed, minutes, 0.0), minlength=nv)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(population > 0, 100.0 * covered_pop / population, np.nan)
        mean = np.where(routed_pop > 0, time_sum / routed_pop, np.nan)
    table = pd.DataFrame(
        {
            "village_code": villages["village_code"].astype(str).to_numpy(),
            "village_name": villages["village_name"].astype(str).to_numpy(),
            "town": villages["town"].astype(str).to_numpy(),
            "type": villages["type"].astype(str).to_numpy(),
            "population": population,
            "covered_population": covered_pop,
            "coverage_pct": pct,
            "mean_minutes": mean,
            "p90_minutes": _weighted_quantile(v, minutes, w, nv, 0.9),
            "nearest_facility": _dominant_facility(v, facility, w, nv, facility_ids),
            "routed_population": routed_pop,
            "off_network_population": np.bincount(v, weights=w * off_network, minlength=nv),
        }
    )
    return table[COVERAGE_COLUMNS]


def _weighted_quantile(group: IntArray, values: FloatArray, weights: FloatArray, n: int, q: float) -> FloatArray:
    """Per group, the smallest value within which a share q of the weight lies (NaN for a weightless group)."""
    out = np.full(n, np.nan)
    keep = weights > 0
    group, values, weights = group[keep], values[keep], weights[keep]
    if len(group) == 0:
        return out
    order = np.lexsort((values, group))
    group, values, weights = group[order], values[order], weights[order]
    cum = np.cumsum(weights)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    before = np.r_[0.0, cum][starts]
    totals = np.add.reduceat(weights, starts)
    ids = group[starts]
    within = cum - np.repeat(before, np.diff(np.r_[starts, len(group)]))
    target = np.repeat(totals * q * (1 - 1e-12), np.diff(np.r_[starts, len(group)]))
    hit = np.flatnonzero(within >= target)
    first_group, first_at = np.unique(group[hit], return_index=True)
    out[first_group] = values[hit[first_at]]
    out[ids[~np.isin(ids, first_group)]] = np.inf  # cannot happen with q < 1; kept for safety
    return out


def _dominant_facility(
    group: IntArray, facility: IntArray, weights: FloatArray, n: int, facility_ids: list[str]
) -> list[str | None]:
    """Per group, the facility nearest for the largest weight (None when no cell has one)."""
    out: list[str | None] = [None] * n
    has = facility >= 0
    if not has.any():
        return out
    frame = pd.DataFrame({"g": group[has], "f": facility[has], "w": weights[has]})
    sums = frame.groupby(["g", "f"], sort=True)["w"].sum().reset_index()
    best = sums.sort_values(["g", "w"], ascending=[True, False], kind="stable").drop_duplicates("g")
    for g, f in zip(best["g"].to_numpy(), best["f"].to_numpy(), strict=True):  # one per village
        out[int(g)] = facility_ids[int(f)]
    return out


def _rollup(frame: pd.DataFrame) -> dict[str, float]:
    population = float(frame["population"].sum())
    covered = float(frame["covered_population"].sum())
    routed = float(frame["routed_population"].sum())
    time_sum = float((frame["mean_minutes"].fillna(0.0) * frame["routed_population"]).sum())
    no_route = max(population - routed, 0.0)
    return {
        "villages": float(len(frame)),
        "population": population,
        "covered_population": covered,
        "coverage_pct": 100.0 * covered / population if population > 0 else math.nan,
        "mean_minutes": time_sum / routed if routed > 0 else math.nan,
        "routed_population": routed,
        "off_network_population": float(frame["off_network_population"].sum()),
        "no_route_population": no_route,
        "no_route_pct": 100.0 * no_route / population if population > 0 else math.nan,
    }


def town_rollup(table: pd.DataFrame, *, virtual_units: VirtualUnits = "separate") -> pd.DataFrame:
    """Per town: villages, population, covered population, coverage %, population-weighted mean minutes, and
    the people with no route (off the network or beyond the search) with their share.

    With `virtual_units="separate"` the virtual units (prisons, farms) form one row of their own, `town` ==
    `unit_groups.VIRTUAL_GROUP`, after the towns: they are not towns. Percentiles do not add up across
    villages, so the rollups carry none.
    """
    if virtual_units not in ("separate", "in_towns"):
        raise InputError(f"virtual_units must be separate or in_towns, not {virtual_units!r}")
    keys = group_of(table) if virtual_units == "separate" else table["town"].astype(str)
    rows = {town: _rollup(group) for town, group in table.groupby(keys.to_numpy(), sort=True)}
    order = sorted(rows, key=lambda town: (town == VIRTUAL_GROUP, town))
    out = pd.DataFrame.from_dict({town: rows[town] for town in order}, orient="index", columns=ROLLUP_COLUMNS)
    out.index.name = "town"
    out["villages"] = out["villages"].astype(int)
    return out.reset_index()


def district_total(table: pd.DataFrame) -> dict[str, float]:
    """The whole table rolled up (same fields as a town row)."""
    return _rollup(table)
