"""Where coverage is missing, and where new facilities would close the most of it (issue 5, new-site study).

* `uncovered_areas`: the populated cells that the coverage result leaves uncovered, cut to each village and
  dissolved into one (multi)polygon per village, with the uncovered population (EPSG:4490).
* `suggest_sites`: greedy maximum coverage. The still-uncovered (village, cell) shares are the rows and the
  candidate sites the columns of a sparse boolean matrix "this site would cover this share", built under the
  same model as `compute_coverage` (each share judged by its village's rule; cells and candidates linked to the
  nearest point of the nearest street). In network mode the matrix comes from `reach.cell_facility_pairs` (one
  bounded Dijkstra from the candidates' edge ends, in chunks); in Euclidean mode from a KD-tree ball query. The greedy
  picks, K times, the candidate that newly covers the most people, and reports each pick's marginal gain and
  the cumulative coverage.
* `self_service_library_coverage`: per town, the share of the population within reach of a 自助图书馆.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.spatial import cKDTree

from geoplan.analysis.coverage import (
    URBAN_TYPE,
    CoverageResult,
    CoverageRules,
    CoverageSettings,
    VirtualUnits,
    compute_coverage,
    point_xy,
    town_rollup,
)
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.reach import cell_facility_pairs
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.rasterdata import RasterData

__all__ = [
    "SELF_SERVICE_LIBRARY",
    "SITE_COLUMNS",
    "UNCOVERED_COLUMNS",
    "self_service_library_coverage",
    "suggest_sites",
    "uncovered_areas",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

SELF_SERVICE_LIBRARY = "自助图书馆"
UNCOVERED_COLUMNS = ["village_code", "village_name", "town", "type", "cells", "uncovered_population"]
SITE_COLUMNS = [
    "rank",
    "site_id",
    "gain_population",
    "cumulative_covered_population",
    "cumulative_coverage_pct",
]
_TOLERANCE_M = 1e-6  # as in coverage.py


def _share_status(result: CoverageResult) -> tuple[BoolArray, BoolArray]:
    """Per (village, cell) share: is its village urban, and is the share covered under its village's rule."""
    cells = result.cells
    is_urban = (result.table["type"].to_numpy() == URBAN_TYPE)[cells.village]
    covered = np.where(is_urban, result.urban.covered[cells.cell], result.rural.covered[cells.cell])
    return is_urban, covered.astype(bool)


# --------------------------------------------------------------------------------------------- uncovered areas


def uncovered_areas(result: CoverageResult, population: RasterData, villages: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Per village with uncovered people: its uncovered populated cells (cut to the village), dissolved, EPSG:4490.

    `result` must come from `compute_coverage` on these `villages` and this `population` raster.
    """
    if len(villages) != len(result.table):
        raise InputError("the villages do not match the coverage result (different number of rows)")
    cells = result.cells
    _, covered = _share_status(result)
    open_ = np.flatnonzero(~covered & (cells.people > 0))
    t = population.transform
    half_w, half_h = abs(t.a) / 2.0, abs(t.e) / 2.0
    village_geoms = villages.geometry.to_crs(METRIC_CRS).to_numpy()
    table = result.table
    village_of = cells.village[open_]
    order = np.argsort(village_of, kind="stable")
    present, starts = np.unique(village_of[order], return_index=True)
    rows: list[dict[str, object]] = []
    geoms: list[object] = []
    for v, members in zip(present.tolist(), np.split(open_[order], starts[1:]), strict=True):
        centres = cells.centres[cells.cell[members]]
        boxes = shapely.box(
            centres[:, 0] - half_w, centres[:, 1] - half_h, centres[:, 0] + half_w, centres[:, 1] + half_h
        )
        geom = shapely.intersection(shapely.coverage_union_all(boxes), village_geoms[v])  # grid cells: a coverage
        record = table.iloc[v]
        rows.append(
            {
                "village_code": record["village_code"],
                "village_name": record["village_name"],
                "town": record["town"],
                "type": record["type"],
                "cells": len(members),
                "uncovered_population": float(cells.people[members].sum()),
            }
        )
        geoms.append(geom)
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=UNCOVERED_COLUMNS), geometry=geoms, crs=METRIC_CRS)
    return out.to_crs(STORE_CRS)


# --------------------------------------------------------------------------------------------- site suggestions


def _candidate_points(graph: WalkGraph | None, candidates: gpd.GeoDataFrame | None) -> tuple[FloatArray, list[str]]:
    """Candidate coordinates in EPSG:4547 and their ids (network nodes by default: `node-<index>`)."""
    if candidates is None:
        if graph is None:
            raise InputError("without candidates, the sites are chosen among the network nodes: pass graph=")
        return graph.coords, [f"node-{i}" for i in range(graph.n_nodes)]
    if not isinstance(candidates, gpd.GeoDataFrame) or candidates.crs is None:
        raise InputError("candidates must be a GeoDataFrame of points with a CRS")
    xy = point_xy(candidates, "candidate site")
    if "site_id" in candidates.columns:
        ids = [str(v) for v in candidates["site_id"].to_numpy()]
    else:
        ids = [str(v) for v in candidates.index]
    return np.asarray(xy, dtype=np.float64), ids


def _network_pairs(
    graph: WalkGraph, centres: FloatArray, cand_xy: FloatArray, settings: CoverageSettings
) -> tuple[IntArray, IntArray]:
    """(row, candidate) pairs where the candidate, as a facility, would cover the cell at that row's centre:
    the same linking and travel distance as `compute_coverage` (`reach.cell_facility_pairs`)."""
    if graph.n_nodes == 0 or len(centres) == 0 or len(cand_xy) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    pairs = cell_facility_pairs(centres, cand_xy, graph, settings)
    return pairs.cell, pairs.facility


def _euclidean_pairs(centres: FloatArray, cand_xy: FloatArray, settings: CoverageSettings) -> tuple[IntArray, IntArray]:
    if len(centres) == 0 or len(cand_xy) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    pairs = cKDTree(centres).sparse_distance_matrix(
        cKDTree(cand_xy), settings.threshold_m + _TOLERANCE_M, output_type="ndarray"
    )
    return np.asarray(pairs["i"], dtype=np.intp), np.asarray(pairs["j"], dtype=np.intp)


def suggest_sites(
    *,
    result: CoverageResult,
    rules: CoverageRules,
    k: int,
    graph: WalkGraph | None = None,
    candidates: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Greedily the `k` candidate sites that newly cover the most still-uncovered people (fewer when no
    candidate adds anyone). `result` is the current coverage under the same `rules`; candidates are the network
    nodes by default, or the given points (ids from a `site_id` column, else the index). One row per site:
    SITE_COLUMNS, EPSG:4490 points.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive whole number, not {k!r}")
    if graph is None and "network" in (rules.urban.mode, rules.rural.mode):
        raise InputError("network site suggestions need the walking graph: pass graph=")
    cand_xy, cand_ids = _candidate_points(graph, candidates)
    cells = result.cells
    is_urban, covered = _share_status(result)
    open_ = ~covered & (cells.people > 0)
    row_list: list[IntArray] = []
    col_list: list[IntArray] = []
    groups = [(is_urban, rules.urban), (~is_urban, rules.rural)]
    if rules.urban == rules.rural:
        groups = [(np.ones(len(is_urban), dtype=bool), rules.urban)]
    for members, settings in groups:
        shares = np.flatnonzero(open_ & members)
        centres = cells.centres[cells.cell[shares]]
        if settings.mode == "euclidean":
            r, c = _euclidean_pairs(centres, cand_xy, settings)
        else:
            assert graph is not None
            r, c = _network_pairs(graph, centres, cand_xy, settings)
        row_list.append(shares[r])
        col_list.append(c)
    rows, cols = np.concatenate(row_list), np.concatenate(col_list)
    n_rows, n_cands = len(cells.people), len(cand_xy)
    cover = sparse.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n_rows, n_cands))
    cover.sum_duplicates()
    cover.data[:] = 1.0
    weights = np.where(open_, cells.people, 0.0)
    gains = np.asarray(cover.T @ weights, dtype=np.float64).ravel()
    by_cand = cover.tocsc()
    population = float(result.table["population"].sum())
    reached = float(result.table["covered_population"].sum())
    picks: list[int] = []
    picked_gain: list[float] = []
    cumulative: list[float] = []
    remaining = weights.copy()
    for _ in range(min(k, n_cands)):
        best = int(np.argmax(gains)) if n_cands else -1
        if best < 0 or gains[best] <= 0:
            break
        newly = by_cand.indices[by_cand.indptr[best] : by_cand.indptr[best + 1]]
        newly = newly[remaining[newly] > 0]
        gain = float(remaining[newly].sum())
        # take the newly covered rows' weight off every candidate that also covers them
        delta = np.zeros(n_rows)
        delta[newly] = remaining[newly]
        gains -= np.asarray(cover.T @ delta, dtype=np.float64).ravel()
        gains[best] = 0.0
        remaining[newly] = 0.0
        reached += gain
        picks.append(best)
        picked_gain.append(gain)
        cumulative.append(reached)
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(picks) + 1),
            "site_id": [cand_ids[i] for i in picks],
            "gain_population": picked_gain,
            "cumulative_covered_population": cumulative,
            "cumulative_coverage_pct": [100.0 * c / population if population > 0 else np.nan for c in cumulative],
        },
        columns=SITE_COLUMNS,
    )
    xy = cand_xy[np.asarray(picks, dtype=np.intp)].reshape(-1, 2)
    frame = gpd.GeoDataFrame(table, geometry=shapely.points(xy), crs=METRIC_CRS)
    return frame.to_crs(STORE_CRS)


# --------------------------------------------------------------------------------------------- 自助图书馆


def self_service_library_coverage(
    *,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    population: RasterData,
    graph: WalkGraph | None,
    rules: CoverageRules,
    virtual_units: VirtualUnits = "separate",
) -> pd.DataFrame:
    """Per town: the population within reach of a 自助图书馆 (town_rollup columns, virtual units as there)."""
    result = compute_coverage(
        villages=villages,
        facilities=facilities,
        population=population,
        graph=graph,
        rules=rules,
        kinds=[SELF_SERVICE_LIBRARY],
    )
    return town_rollup(result.table, virtual_units=virtual_units)
