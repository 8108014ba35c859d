"""What the page script is told: the folium map, its empty layer groups, and a JSON config per page.

folium builds the skeleton; the behaviour lives in web/static/geoplan-map.js. This element is the one inline
call that connects them, e.g. `GeoplanMap.projectMap(map_1a2b, {projects: feature_group_3c4d}, {...})`, so
the script never has to guess folium's generated variable names. The config goes through Jinja's `tojson`,
which escapes <, >, & and ' for HTML; it holds catalogue facts only (titles, public field labels, colours,
data URLs), never user data: the features themselves are fetched from the OGC API.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import folium
from folium.elements import MacroElement
from folium.template import Template

from geoplan.access import Role, visible_fields
from geoplan.catalog import LayerDef
from web.maps.basemap import Basemap
from web.maps.style import layer_style

Entry = Literal["projectMap", "layerMap", "plannerMap", "coverageMap", "lifecircleMap"]


def layer_config(layer: LayerDef, *, page_size: int, synthetic: bool) -> dict[str, Any]:
    """A layer as the page script sees it. Only fields the public may read are listed, so a popup cannot show
    a private field even if one ever reached the browser. `synthetic`: whether it holds demo data now.
    """
    fields = visible_fields(layer, Role.PUBLIC)
    label_field = next((f for f in fields if f == "name" or f.endswith("_name")), layer.id_field)
    return {
        "name": layer.name,
        "title": layer.title_zh,
        "synthetic": synthetic,
        "geometry": layer.geometry,
        "idField": layer.id_field,
        "labelField": label_field,
        "fields": [{"name": name, "label": layer.field(name).title_zh or name} for name in fields],
        "url": f"/ogc/collections/{layer.name}/items?limit={page_size}",
        "itemsUrl": f"/ogc/collections/{layer.name}/items",
        "style": layer_style(layer).to_json(),
    }


def tiles_url(layer: LayerDef) -> str:
    """The layer's vector tile URL template for Leaflet: OGC API – Tiles paths are zoom/row/column."""
    return f"/ogc/collections/{layer.name}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"


def page_config(basemap: Basemap, layers: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"displayCrs": basemap.display_crs, "basemap": basemap.kind, "layers": layers, **extra}


class PageScript(MacroElement):
    """The inline call that starts the page script. Add it to the map last, after the groups it names."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
GeoplanMap.{{ this.entry }}({{ this._parent.get_name() }}, {
{%- for key, group in this.groups.items() %}{{ key|tojson }}: {{ group.get_name() }}, {% endfor -%}
}, {{ this.config|tojson }});
{% endmacro %}
"""
    )

    def __init__(self, entry: Entry, groups: dict[str, folium.FeatureGroup], config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "PageScript"
        if entry not in get_args(Entry):
            raise ValueError(f"unknown page script entry {entry!r}")
        self.entry = entry
        self.groups = groups
        self.config = config
