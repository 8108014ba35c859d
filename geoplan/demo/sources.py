"""The real inputs of the demo: district outline, NBS town and village codes, town seats, census total.

Everything else in the demo is synthesised around these; they are read once, checked against SHA256SUMS
(a mismatch is logged, not fatal: production may swap in the official outline) and projected to EPSG:4547.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.demo.geometry import GEO_CRS, METRIC_CRS, reproject, reproject_xy, to_multipolygon
from geoplan.errors import UnreadableFileError

log = logging.getLogger(__name__)

DISTRICT_FILE = "gaoming_district_datav_wgs84.geojson"
TOWNS_FILE = "gaoming_towns_nbs2023.csv"
VILLAGES_FILE = "gaoming_villages_nbs2023.csv"
PLACES_FILE = "gaoming_places_geonames_wgs84.geojson"
CENSUS_FILE = "foshan_districts_census2020_ghsl.csv"
DISTRICT_CODE = "440608"


@dataclass(frozen=True)
class Sources:
    """The real data, in lon/lat (CGCS2000, numbers as published in WGS84) and in EPSG:4547."""

    district_ll: shapely.MultiPolygon
    district: shapely.MultiPolygon
    district_name: str
    towns: pd.DataFrame  # town_code, town_name (NBS order)
    villages: pd.DataFrame  # village_code, village_name, type, town_code, town_name (NBS order)
    seats_ll: dict[str, tuple[float, float]]  # town_code -> (lon, lat) from GeoNames
    seats: dict[str, tuple[float, float]]  # town_code -> (x, y) in EPSG:4547
    population: int
    urban_share: float


def _check_sums(sources_dir: Path) -> None:
    sums = sources_dir / "SHA256SUMS"
    if not sums.exists():
        log.warning("no SHA256SUMS in %s: demo sources are unverified", sources_dir)
        return
    for line in sums.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = sources_dir / name.strip().lstrip("*")
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            log.warning("%s differs from SHA256SUMS: the demo is built from modified sources", path.name)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UnreadableFileError(f"demo source missing: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_sources(sources_dir: Path) -> Sources:
    """Read and project the real inputs."""
    _check_sums(sources_dir)
    path = sources_dir / DISTRICT_FILE
    if not path.exists():
        raise UnreadableFileError(f"demo source missing: {path}")
    # The file says WGS84; at map scale CGCS2000 lon/lat are the same numbers, so relabel, don't transform.
    district_gdf = gpd.read_file(path).set_crs(GEO_CRS, allow_override=True)
    # keep the published vertices untouched: union only if the outline comes in several features
    geoms = district_gdf.geometry.values
    district_ll = to_multipolygon(geoms[0] if len(geoms) == 1 else shapely.union_all(geoms))
    district = to_multipolygon(reproject(np.asarray([district_ll]), GEO_CRS, METRIC_CRS)[0])
    towns = _read_csv(sources_dir / TOWNS_FILE)
    towns = towns[towns["district_code"] == DISTRICT_CODE][["town_code", "town_name"]].reset_index(drop=True)
    villages = _read_csv(sources_dir / VILLAGES_FILE)
    villages = villages[villages["district_code"] == DISTRICT_CODE]
    villages = villages[["village_code", "village_name", "type", "town_code", "town_name"]].reset_index(drop=True)
    places = gpd.read_file(sources_dir / PLACES_FILE)
    seats_ll: dict[str, tuple[float, float]] = {}
    seats: dict[str, tuple[float, float]] = {}
    for code, geom in zip(places["town_code_nbs2023"], places.geometry, strict=True):
        lon, lat = float(geom.x), float(geom.y)
        seats_ll[str(code)] = (lon, lat)
        xy = reproject_xy(np.array([[lon, lat]]), GEO_CRS, METRIC_CRS)[0]
        seats[str(code)] = (float(xy[0]), float(xy[1]))
    census = _read_csv(sources_dir / CENSUS_FILE)
    row = census[census["CODE"] == DISTRICT_CODE]
    if row.empty:
        raise UnreadableFileError(f"{CENSUS_FILE}: no row for {DISTRICT_CODE}")
    name = str(district_gdf["name"].iloc[0]) if "name" in district_gdf else str(row["NAME"].iloc[0])
    return Sources(
        district_ll=district_ll,
        district=district,
        district_name=name,
        towns=towns,
        villages=villages,
        seats_ll=seats_ll,
        seats=seats,
        population=int(row["POPU"].iloc[0]),
        urban_share=float(row["POPU_URB"].iloc[0]),
    )
