"""Importing a walking network: an OpenStreetMap extract, or a surveyed centre-line layer noded on the way in.

Both end in `ingest.import_frame`, so validation, all-or-nothing writes, the audit log and provenance are the
same as for any other file; what this adds is the step from raw lines to a network whose pieces meet at shared
end points.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd

from geoplan.analysis.noding import node_lines
from geoplan.errors import InputError, Problem
from geoplan.io.osm import read_osm_roads, read_osm_water

log = logging.getLogger(__name__)

ROADS = "roads"
OSM_LAYERS = ("roads", "water", "waterways")
"""Layers an OpenStreetMap extract can fill."""


def read_osm_layer(
    layer: str, path: Path, *, district: object, max_bytes: int | None
) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """The features of `layer` from an OSM extract, clipped to `district`, with notes for the import report."""
    if layer not in OSM_LAYERS:
        raise InputError(
            f"{path.name}: an OpenStreetMap extract fills the layers {', '.join(OSM_LAYERS)}, not {layer!r}"
        )
    if layer == ROADS:
        frame, notes = read_osm_roads(path, district=district, max_bytes=max_bytes)
    else:
        frame, notes = read_osm_water(path, kind=layer, district=district, max_bytes=max_bytes)
    return frame, [Problem(note) for note in notes]


def node_roads(frame: gpd.GeoDataFrame, *, id_field: str) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Surveyed centre lines cut where walkable lines cross without a shared vertex; the count is reported."""
    if "walkable" not in frame.columns or id_field not in frame.columns:
        return frame, []  # validation names the missing field
    result = node_lines(lines=frame, id_field=id_field)
    note = (
        f"noded on import: {result.added_nodes} node(s) added where walkable lines crossed without a shared "
        f"vertex; {result.split_lines} line(s) split"
    )
    log.info(note)
    return result.frame, [Problem(note)]
