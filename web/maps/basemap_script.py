"""The inline call that starts the basemap script on every map page: `GeoplanMap.basemap(map, {...})`.

new_map adds it before any page script, so the reference layers sit in their own panes below whatever the page
draws, and no page script needs to know about the background (web/static/geoplan-basemap.js).
"""

from __future__ import annotations

from folium.elements import JSCSSMixin
from folium.template import Template

from web.maps.basemap import Basemap

BASEMAP_JS = "/static/geoplan-basemap.js"


class BasemapScript(JSCSSMixin):
    """Links geoplan-basemap.js and calls it (Leaflet.VectorGrid, which it uses for the reference's roads and water
    and for a vector tile package, comes with every map: offline.OfflineMap)."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
GeoplanMap.basemap({{ this._parent.get_name() }}, {{ this.config|tojson }});
{% endmacro %}
"""
    )

    def __init__(self, basemap: Basemap) -> None:
        super().__init__()
        self._name = "BasemapScript"
        self.config = basemap.script_config()
        # Instance lists: JSCSSMixin's add_js_link would change the class's shared list.
        self.default_js = [("geoplan_basemap", BASEMAP_JS)]
        self.default_css = []
