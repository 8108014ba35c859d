"""Bringing data into the store: read a file, validate it against the catalogue, write it all or nothing.

The CLI, the demo loader and (later) the web upload all go through `import_frame`, so every way in applies the
same rules and leaves the store untouched when anything is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import shapely

from geoplan.errors import InputError, Problem
from geoplan.io import DEFAULT_MAX_BYTES, read_file, write_file
from geoplan.io.column_map import load_column_map
from geoplan.io.osm import is_osm_file
from geoplan.services.road_import import ROADS, node_roads, read_osm_layer
from geoplan.storage import LayerStore, WriteMode
from geoplan.validation import ValidationResult, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: how many features landed, what was repaired, what was ignored."""

    layer: str
    source: str
    written: int
    mode: WriteMode
    repairs: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def district_outline(store: LayerStore) -> shapely.Geometry | None:
    """The district as one geometry, or None while the store holds no district yet."""
    if "district" not in store.catalog or store.count("district") == 0:
        return None
    return shapely.union_all(store.read("district").geometry.values)


def prepare_frame(
    store: LayerStore,
    layer: str,
    frame: gpd.GeoDataFrame,
    *,
    source: str,
    mode: WriteMode = "replace",
    strict: bool = False,
    refuse_unknown: bool = False,
) -> ValidationResult:
    """Validate `frame` (in EPSG:4490) for `layer` against the catalogue, the district and, when appending,
    the ids already stored. Raises ValidationFailed listing every problem; touches nothing. `refuse_unknown`
    makes properties the layer does not define a problem instead of a warning."""
    definition = store.catalog.get(layer)
    existing_ids: set[str] | None = None
    if mode == "append" and definition.id_field:
        existing_ids = {str(v) for v in store.read(layer)[definition.id_field]}
    return validate(
        frame,
        definition,
        source=source,
        district=district_outline(store) if definition.must_lie_in_district else None,
        existing_ids=existing_ids,
        strict=strict,
        refuse_unknown=refuse_unknown,
    )


def import_frame(
    store: LayerStore,
    layer: str,
    frame: gpd.GeoDataFrame,
    *,
    source: str,
    mode: WriteMode = "replace",
    strict: bool = False,
    actor: str = "system",
) -> ImportReport:
    """Validate `frame` (already in EPSG:4490) for `layer` and write it. Raises before touching the store."""
    result = prepare_frame(store, layer, frame, source=source, mode=mode, strict=strict)
    written = store.write(layer, result.frame, mode=mode, actor=actor)
    log.info("%s: wrote %d feature(s) to %s (%s)", source, written, layer, mode)
    return ImportReport(layer, source, written, mode, list(result.repairs), list(result.warnings))


def import_file(
    store: LayerStore,
    layer: str,
    path: Path,
    *,
    crs: str | None = None,
    mode: WriteMode = "replace",
    strict: bool = False,
    actor: str = "system",
    max_bytes: int | None = None,
    columns: Path | None = None,
) -> ImportReport:
    """Read `path`, validate it for `layer` and write it; the store is unchanged if any step fails.

    `columns` names a column map (geoplan.io.column_map) for a .csv/.xlsx table with its own headers."""
    definition = store.catalog.get(layer)  # an unknown layer is reported before the file is read
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    notes: list[Problem] = []
    if is_osm_file(path):
        if columns is not None:
            raise InputError(f"{path.name}: a column map applies to .csv and .xlsx tables, not to OpenStreetMap")
        frame, notes = read_osm_layer(layer, path, district=district_outline(store), max_bytes=limit)
    elif columns is None:
        frame = read_file(path, crs=crs, max_bytes=limit)
    else:
        cmap = load_column_map(columns, definition)
        prepare = cmap.prepare(path.name)
        frame = read_file(path, crs=crs, layer=cmap.sheet, max_bytes=limit, header_row=cmap.header_row, prepare=prepare)
    if layer == ROADS and not is_osm_file(path) and definition.id_field is not None:
        frame, notes = node_roads(frame, id_field=definition.id_field)
    report = import_frame(store, layer, frame, source=path.name, mode=mode, strict=strict, actor=actor)
    return replace(report, warnings=[*notes, *report.warnings])


def export_layer(store: LayerStore, layer: str, path: Path) -> int:
    """Write a stored vector layer to a file (format by suffix); returns the feature count."""
    frame = store.read(layer)
    write_file(frame, path, layer_name=layer)
    return len(frame)


def load_layers(
    store: LayerStore,
    layers: dict[str, gpd.GeoDataFrame],
    *,
    actor: str,
    strict: bool = True,
    on_layer: Callable[[str], None] | None = None,
) -> list[ImportReport]:
    """Replace several layers (the district first, so the others are checked against it)."""
    ordered = sorted(layers, key=lambda name: (name != "district", store.catalog.names.index(name)))
    reports = []
    for name in ordered:
        if on_layer is not None:
            on_layer(name)
        reports.append(import_frame(store, name, layers[name], source=f"{name} (demo)", strict=strict, actor=actor))
    return reports
