"""The reference basemap's small layers from the store: district, town and village outlines and their names.

Every map page draws these under its own data (web/static/geoplan-basemap.js), so they are sent once, small:
outlines simplified in EPSG:4547 (metres) to what a screen shows at the zoom they are drawn at, coordinates
rounded to ~1 m, and each area's label point placed inside it (geoplan.analysis.labels) with a rank the page uses
to hide a lesser label that would overlap a greater one. Roads and water, which can be large with real
OpenStreetMap data, are not in here: the page draws them from the OGC vector tiles. Only public layers and public
name fields are read, so the document holds nothing an anonymous visitor could not fetch from the OGC API.

`credits` says where roads and water come from, so the page can credit OpenStreetMap (ODbL asks for
"© OpenStreetMap contributors") or mark them as synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely

from geoplan.access import Role, can_see_layer, visible_fields
from geoplan.analysis.labels import label_points
from geoplan.catalog import LayerDef
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.services.provenance import from_openstreetmap, is_synthetic
from geoplan.storage import LayerStore

AREA_LAYERS = ("district", "towns", "villages")
LINE_LAYERS = ("roads", "water", "waterways")
SIMPLIFY_M = {"district": 30.0, "towns": 30.0, "villages": 15.0}
"""Simplification tolerance per layer: below a pixel at the zoom the outline is first drawn (11 and 12)."""
DIGITS = 5
"""Decimal places of a degree kept: 1e-5° ≈ 1.1 m here."""

TOWN_KINDS = frozenset({"town", "subdistrict"})
# rank 1 wins over 2 over 3; min_zoom: the zoom from which the page shows the label at all.
TOWN_RANK, SPECIAL_RANK, VILLAGE_RANK = 1, 2, 3
MIN_ZOOM = {TOWN_RANK: 0, SPECIAL_RANK: 11, VILLAGE_RANK: 12}

Credit = Literal["osm", "synthetic", "real", "empty", "hidden"]


@dataclass(frozen=True)
class Label:
    name: str
    lon: float
    lat: float
    rank: int
    layer: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lon": self.lon,
            "lat": self.lat,
            "rank": self.rank,
            "minZoom": MIN_ZOOM[self.rank],
            "layer": self.layer,
        }


def name_field(layer: LayerDef) -> str | None:
    """The layer's public name field (`name` or `*_name`), None if it has none."""
    return next((f for f in visible_fields(layer, Role.PUBLIC) if f == "name" or f.endswith("_name")), None)


def public_layer(store: LayerStore, name: str) -> LayerDef | None:
    """The catalogue's vector layer `name` if the public may see it."""
    if name not in store.catalog:
        return None
    layer = store.catalog.get(name)
    return layer if layer.kind == "vector" and can_see_layer(layer, Role.PUBLIC) else None


def reference_versions(store: LayerStore) -> tuple[tuple[str, int], ...]:
    """The store versions the document is made from: its cache key and ETag."""
    names = [*AREA_LAYERS, *LINE_LAYERS]
    return tuple((name, store.layer_version(name)) for name in names if public_layer(store, name) is not None)


def _rounded(geometries: np.ndarray) -> np.ndarray:
    return shapely.transform(geometries, lambda xy: np.round(xy, DIGITS))


def _outlines(frame: gpd.GeoDataFrame, layer: str) -> tuple[np.ndarray, gpd.GeoSeries]:
    """(simplified outlines in degrees, the metric geometries for label placement)."""
    metric = frame.geometry.set_crs(STORE_CRS, allow_override=True).to_crs(METRIC_CRS)
    simplified = metric.simplify(SIMPLIFY_M[layer], preserve_topology=True).to_crs(STORE_CRS)
    return _rounded(np.asarray(simplified.values, dtype=object)), metric


def _rank(layer: str, row: Any) -> int:
    if layer == "villages":
        return VILLAGE_RANK
    return TOWN_RANK if str(row.get("kind", "town")) in TOWN_KINDS else SPECIAL_RANK


def _area_layer(store: LayerStore, layer: LayerDef) -> tuple[dict[str, Any], list[Label]]:
    frame = store.read(layer.name)
    field = name_field(layer)
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty].reset_index(drop=True)
    outlines, metric = _outlines(frame, layer.name)
    values = frame[field].tolist() if field else [None] * len(frame)
    names = ["" if value is None or value != value else str(value) for value in values]  # value != value: NaN
    features = [
        {"type": "Feature", "properties": {"name": name}, "geometry": shapely.geometry.mapping(geometry)}
        for name, geometry in zip(names, outlines, strict=True)
    ]
    labels: list[Label] = []
    if layer.name != "district" and len(frame):
        points = gpd.GeoSeries(label_points(np.asarray(metric.values, dtype=object)), crs=METRIC_CRS).to_crs(STORE_CRS)
        # Bigger areas first within a rank: when two villages collide the larger keeps its name.
        order = np.argsort(-metric.area.to_numpy(), kind="stable")
        for i in order:
            if names[i]:
                point = points.iloc[i]
                lon, lat = round(point.x, DIGITS), round(point.y, DIGITS)
                labels.append(Label(names[i], lon, lat, _rank(layer.name, frame.iloc[i]), layer.name))
    return {"type": "FeatureCollection", "features": features}, labels


def line_credit(store: LayerStore, layer: LayerDef) -> Credit:
    """Where a road or water layer's features come from, for the map's credit line."""
    if store.count(layer.name) == 0:
        return "empty"
    if from_openstreetmap(store, layer):
        return "osm"
    return "synthetic" if is_synthetic(store, layer) else "real"


def reference_document(store: LayerStore) -> dict[str, Any]:
    """The document of /basemap/reference.json (see the module's docstring)."""
    document: dict[str, Any] = {}
    labels: list[Label] = []
    for name in AREA_LAYERS:
        layer = public_layer(store, name)
        if layer is None:
            document[name] = {"type": "FeatureCollection", "features": []}
            continue
        document[name], found = _area_layer(store, layer)
        labels.extend(found)
    labels.sort(key=lambda label: label.rank)  # stable: each layer's size order stays within its rank
    document["labels"] = [label.to_json() for label in labels]
    credits: dict[str, Credit] = {}
    lines: dict[str, str] = {}
    for name in LINE_LAYERS:
        layer = public_layer(store, name)
        credits[name] = "hidden" if layer is None else line_credit(store, layer)
        if layer is not None:
            lines[name] = layer.title_zh
    document["credits"] = credits
    document["lines"] = lines
    return document
