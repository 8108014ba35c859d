"""One public layer on a map (`/layers/{name}`), over the district outline for orientation."""

from __future__ import annotations

from typing import Any

import folium

from geoplan.catalog import LayerDef
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import Legend, legend_entry
from web.maps.offline import OfflineMap, new_group, new_map
from web.maps.style import layer_style


def build_layer_map(*, layer: LayerDef, district: LayerDef, basemap: Basemap, page_size: int) -> OfflineMap:
    m = new_map(basemap)
    groups: dict[str, folium.FeatureGroup] = {}
    layers: dict[str, dict[str, Any]] = {}
    entries = [legend_entry(layer, layer_style(layer))]
    if layer.name != district.name:  # the outline goes underneath
        groups["district"] = new_group(m, district.title_zh)
        layers["district"] = layer_config(district, page_size=page_size)
        entries.append(legend_entry(district, layer_style(district)))
    groups["layer"] = new_group(m, layer.title_zh)
    layers["layer"] = layer_config(layer, page_size=page_size)
    Legend(entries, note=basemap.note_zh).add_to(m)
    PageScript("layerMap", groups, page_config(basemap, layers)).add_to(m)
    return m
