"""A folium Map that loads nothing from another host.

folium's Map links Leaflet, jQuery, Bootstrap, Font Awesome and awesome-markers from five CDNs. Our pages need
only Leaflet, vendored into /static/vendor by scripts/install_web_assets.sh, so the map works on an offline
intranet and visitors' browsers contact no third party (tiles only when an outside basemap is configured).
The scale bar is metric only (folium's control_scale adds miles), drawn by geoplan-basemap.js.
"""

from __future__ import annotations

from typing import Any

import folium

from web.maps.basemap import Basemap
from web.maps.basemap_script import BasemapScript

VENDOR_URL = "/static/vendor"
LEAFLET_JS = f"{VENDOR_URL}/leaflet/leaflet.js"
VECTORGRID_JS = f"{VENDOR_URL}/leaflet-vectorgrid/Leaflet.VectorGrid.bundled.min.js"
LEAFLET_CSS = f"{VENDOR_URL}/leaflet/leaflet.css"

# Gaoming's centre and a zoom that shows the whole district (~938 km²) until the outline has loaded.
GAOMING_CENTER = (22.84, 112.70)
GAOMING_ZOOM = 11


class OfflineMap(folium.Map):
    """folium.Map with only the vendored Leaflet: the class lists replace folium's CDN defaults."""

    # Leaflet.VectorGrid with it on every map: the reference basemap draws roads and water from vector tiles, and
    # the layer and planner pages their big layers (one link, whichever of them a page uses).
    default_js = [("leaflet", LEAFLET_JS), ("leaflet_vectorgrid", VECTORGRID_JS)]  # noqa: RUF012  (folium's own)
    default_css = [("leaflet_css", LEAFLET_CSS)]  # noqa: RUF012


def new_map(basemap: Basemap) -> OfflineMap:
    """An empty map over Gaoming with the basemap's tile layers and the reference basemap's script. SVG, not
    canvas, so every feature is one DOM element the page script (and the browser tests) can address.
    """
    m = OfflineMap(
        location=GAOMING_CENTER,
        zoom_start=GAOMING_ZOOM,
        tiles=None,
        control_scale=False,
        position="absolute",
        # Half zoom steps: at whole steps the district, fitted clear of the legend and the controls, often drops a
        # level and fills a quarter of the map.
        zoom_snap=0.5,
    )
    for source in basemap.tiles:
        options: dict[str, Any] = {}
        if source.bounds is not None:
            west, south, east, north = source.bounds
            options["bounds"] = [[south, west], [north, east]]
        folium.TileLayer(
            tiles=source.url,
            attr=source.attribution,
            name=source.name,
            subdomains=source.subdomains or "abc",  # folium needs a value; a template without {s} ignores it
            min_zoom=source.min_zoom,
            max_zoom=source.max_zoom,
            max_native_zoom=source.max_native_zoom,
            overlay=source.overlay,
            control=False,
            **options,
        ).add_to(m)
    BasemapScript(basemap).add_to(m)
    return m


def new_group(m: folium.Map, name: str) -> folium.FeatureGroup:
    """An empty layer group on the map: a container the page script fills with fetched features."""
    group = folium.FeatureGroup(name=name, control=False)
    group.add_to(m)
    return group
