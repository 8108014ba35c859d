"""The public project map at `/`: projects coloured by task area over the district outline.

Only the skeleton is built here (map, empty groups, legend, the call into the page script); the projects are
fetched by the browser from the OGC API, where anonymous callers get public fields only.
"""

from __future__ import annotations

from collections.abc import Collection

from geoplan.catalog import LayerDef
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import Legend, legend_entry
from web.maps.offline import OfflineMap, new_group, new_map
from web.maps.style import layer_style

PERMALINK_PARAM = "project"
"""`/?project=GM-2024-001` or `/#project=GM-2024-001` opens that project."""


def build_project_map(
    *, projects: LayerDef, district: LayerDef, basemap: Basemap, page_size: int, synthetic: Collection[str]
) -> OfflineMap:
    """`synthetic`: the layers that hold demo data now (geoplan.services.provenance.synthetic_now)."""
    m = new_map(basemap)
    district_group = new_group(m, district.title_zh)
    project_group = new_group(m, projects.title_zh)
    entries = [
        legend_entry(layer, layer_style(layer), synthetic=layer.name in synthetic) for layer in (projects, district)
    ]
    Legend(entries, note=basemap.note_zh).add_to(m)
    config = page_config(
        basemap,
        {
            "projects": layer_config(projects, page_size=page_size, synthetic=projects.name in synthetic),
            "district": layer_config(district, page_size=page_size, synthetic=district.name in synthetic),
        },
        permalinkParam=PERMALINK_PARAM,
    )
    PageScript("projectMap", {"district": district_group, "projects": project_group}, config).add_to(m)
    return m
