"""One public layer on a map (`/layers/{name}`), over the district outline for orientation.

A small layer is fetched whole, as the project map is. A large one (more features than
`WebSettings.max_features_whole_layer`) would mean megabytes of GeoJSON and tens of thousands of SVG paths, so
the page script loads it by the map's view instead: one `bbox` request per view, nothing below a minimum zoom.
The server tells the page the feature count and the limits; the page script decides (geoplan-map.js, layerMap).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import folium

from geoplan.catalog import LayerDef
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config, tiles_url
from web.maps.legend import Legend, legend_entry
from web.maps.offline import OfflineMap, new_group, new_map
from web.maps.style import layer_style
from web.settings import WebSettings

Extent = tuple[float, float, float, float]
"""minLon, minLat, maxLon, maxLat (CGCS2000 ≈ WGS84)."""


@dataclass(frozen=True)
class LargeLayerPolicy:
    """When a layer is too large to load whole, and how the page loads it by view instead."""

    max_features_whole_layer: int = 5_000
    min_zoom: int = 13
    view_limit: int = 2_000
    view_padding: float = 0.1
    """Fraction of the view's width and height added on each side, so a short pan needs no new request."""

    @classmethod
    def from_settings(cls, settings: WebSettings) -> LargeLayerPolicy:
        # One view request is one OGC page: the server would cap a larger limit anyway.
        return cls(
            max_features_whole_layer=settings.max_features_whole_layer,
            min_zoom=settings.large_layer_min_zoom,
            view_limit=min(settings.large_layer_view_limit, settings.max_page_size),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "maxFeaturesWholeLayer": self.max_features_whole_layer,
            "minZoom": self.min_zoom,
            "viewLimit": self.view_limit,
            "viewPadding": self.view_padding,
        }


def build_layer_map(
    *,
    layer: LayerDef,
    district: LayerDef,
    basemap: Basemap,
    page_size: int,
    feature_count: int,
    extent: Extent | None,
    policy: LargeLayerPolicy,
    synthetic: Collection[str],
) -> OfflineMap:
    """`synthetic`: the layers that hold demo data now (geoplan.services.provenance.synthetic_now)."""
    m = new_map(basemap)
    groups: dict[str, folium.FeatureGroup] = {}
    layers: dict[str, dict[str, Any]] = {}
    entries = [legend_entry(layer, layer_style(layer), synthetic=layer.name in synthetic)]
    if layer.name != district.name:  # the outline goes underneath
        groups["district"] = new_group(m, district.title_zh)
        layers["district"] = layer_config(district, page_size=page_size, synthetic=district.name in synthetic)
        entries.append(legend_entry(district, layer_style(district), synthetic=district.name in synthetic))
    groups["layer"] = new_group(m, layer.title_zh)
    # The count and extent are facts about the whole layer (already public through /layers and /ogc), not data.
    layers["layer"] = {
        **layer_config(layer, page_size=page_size, synthetic=layer.name in synthetic),
        "featureCount": feature_count,
        "extent": list(extent) if extent is not None else None,
        "tilesUrl": tiles_url(layer),
    }
    Legend(entries, note=basemap.note_zh).add_to(m)
    PageScript("layerMap", groups, page_config(basemap, layers, largeLayer=policy.to_json())).add_to(m)
    return m
