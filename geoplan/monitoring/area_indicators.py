"""Area indicator kinds: the sponge-city compliant share of the built-up area, and the area of a polygon layer
per value of a field (e.g. 三旧改造 zones per status), both dissolved so overlaps count once, in EPSG:4547."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geoplan.analysis.overlap import filter_mask
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, ellipsoidal_area_m2
from geoplan.monitoring.indicators import (
    SPECIAL_TOWN_KIND,
    Inputs,
    Kind,
    Needs,
    _check_virtual_units,
    _metric,
    _pct,
    _union,
    _virtual_units,
    allowed_values,
    check_keys,
    fixed_scopes,
    kind_frame,
    no_data,
    scope_keys,
)

__all__ = ["AREA_KINDS", "area_by_field", "sponge_share"]


def _selection(params: Mapping[str, Any], key: str) -> tuple[str, tuple[tuple[str, tuple[Any, ...]], ...]]:
    spec = params[key]
    where = spec.get("where") or {}
    return str(spec["layer"]), tuple(
        (name, tuple(v if isinstance(v, list | tuple) else [v])) for name, v in where.items()
    )


def sponge_share(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The sponge-city compliant share (%) of the built-up area: area(compliant ∩ built-up) / area(built-up),
    both dissolved (overlaps count once), measured in EPSG:4547, for the district and within each town polygon.
    Built-up area and compliance are selections of layers (`built_up`, `compliant`: layer and `where`)."""
    built_layer, built_where = _selection(params, "built_up")
    good_layer, good_where = _selection(params, "compliant")
    built_frame, good_frame = inputs.layer(built_layer), inputs.layer(good_layer)
    if not len(built_frame):
        return no_data(built_layer)
    built = _union(_metric(built_frame[filter_mask(built_frame, built_where)]))
    good = _union(_metric(good_frame[filter_mask(good_frame, good_where)])).intersection(built)
    rows: list[tuple[str, str, float, float, str]] = []

    def add(scope: str, key: str, whole: float, part: float) -> None:
        rows.append((scope, key, _pct(part, whole), math.nan, "" if whole > 0 else "no built-up area"))

    if "district" in scopes:
        add("district", "", built.area, good.area)
    if "town" in scopes:
        towns = inputs.layer("towns")
        if _virtual_units(params) == "separate" and "kind" in towns.columns:
            towns = towns[towns["kind"].astype(str) != SPECIAL_TOWN_KIND]  # prisons and farms: no town row
        for name, town in zip(towns["town_name"], _metric(towns), strict=True):
            add("town", str(name), built.intersection(town).area, good.intersection(town).area)
    return kind_frame(rows)


def _sponge_needs(params: Mapping[str, Any]) -> Needs:
    layers = {"towns"}
    for key in ("built_up", "compliant"):
        spec = params.get(key)
        if isinstance(spec, Mapping) and isinstance(spec.get("layer"), str):
            layers.add(spec["layer"])
    return Needs(layers=frozenset(layers))


def _check_selection(spec: Any, key: str, catalog: Catalog) -> list[str]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("layer"), str):
        return [f"{key} must be a mapping with a polygon 'layer' and an optional 'where' {{field: value(s)}}"]
    problems = [f"{key}: unknown key {k!r} (known: layer, where)" for k in spec if k not in ("layer", "where")]
    name = spec["layer"]
    if name not in catalog or catalog.get(name).geometry != "MultiPolygon":
        return [*problems, f"{key}: {name!r} is not a polygon layer of the catalogue"]
    layer = catalog.get(name)
    where = spec.get("where") or {}
    if not isinstance(where, Mapping):
        return [*problems, f"{key}.where must be a mapping {{field: value(s)}}"]
    for field_name, value in where.items():
        if field_name not in layer.field_names:
            problems.append(f"{key}.where: layer {name} has no field {field_name!r}")
            continue
        field_def = layer.field(field_name)
        for v in value if isinstance(value, list) else [value]:
            if field_def.type == "boolean" and not isinstance(v, bool):
                problems.append(f"{key}.where.{field_name}: use true or false, not {v!r}")
            elif field_def.allowed is not None and v not in field_def.allowed:
                problems.append(f"{key}.where.{field_name}: {v!r} is not an allowed value")
    return problems


def _check_sponge(params: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = check_keys(params, ["built_up", "compliant", "virtual_units"], required=["built_up", "compliant"])
    problems += _check_virtual_units(params)
    for key in ("built_up", "compliant"):
        if key in params:
            problems += _check_selection(params[key], key, catalog)
    return problems


# --------------------------------------------------------------------------------------------- area by field


def area_by_field(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The area (planar and ellipsoidal m²) of a polygon layer's features per value of one field (e.g. renewal
    zones by status), each group dissolved in EPSG:4547 so overlaps count once; every allowed value gets a row."""
    layer_name, field_name = str(params["layer"]), str(params["field"])
    frame = inputs.layer(layer_name)
    geoms = _metric(frame)
    rows: list[tuple[str, str, float, float, str]] = []

    def add(scope: str, key: str, chosen: np.ndarray) -> None:
        merged = _union(chosen)
        back = gpd.GeoSeries([merged], crs=METRIC_CRS).to_crs(STORE_CRS).to_numpy()
        rows.append((scope, key, float(merged.area), float(ellipsoidal_area_m2(back)[0]), ""))

    if "district" in scopes:
        add("district", "", geoms)
    if field_name in scopes:
        values = frame[field_name].astype(object)
        present = values.notna().to_numpy()
        for key in scope_keys(
            allowed_values(inputs.catalog, layer_name, field_name), sorted(set(values.dropna().astype(str)))
        ):
            add(field_name, key, geoms[(values.astype(str) == key).to_numpy() & present])
    return kind_frame(rows)


def _check_area_by_field(params: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = check_keys(params, ["layer", "field"], required=["layer", "field"])
    name, field_name = params.get("layer"), params.get("field")
    if isinstance(name, str) and name in catalog and catalog.get(name).geometry == "MultiPolygon":
        if field_name not in catalog.get(name).field_names:
            problems.append(f"layer {name} has no field {field_name!r}")
    elif "layer" in params:
        problems.append(f"layer {name!r} is not a polygon layer of the catalogue")
    return problems


AREA_KINDS: tuple[Kind, ...] = (
    Kind(
        "sponge_share",
        sponge_share,
        "percent",
        fixed_scopes("district", "town"),
        _sponge_needs,
        _check_sponge,
        "compliant share of the built-up area",
    ),
    Kind(
        "area_by_field",
        area_by_field,
        "area",
        lambda params: ("district", str(params.get("field", ""))),
        lambda params: Needs(layers=frozenset({str(params.get("layer", ""))})),
        _check_area_by_field,
        "area of a polygon layer per value of a field",
    ),
)
