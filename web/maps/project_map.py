"""The public project map at `/`: projects coloured by task area over the district outline.

Only the skeleton is built here (map, empty groups, legend, the call into the page script); the projects are
fetched by the browser from the OGC API, where anonymous callers get public fields only.
"""

from __future__ import annotations

from geoplan.catalog import LayerDef
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import Legend, legend_entry
from web.maps.offline import OfflineMap, new_group, new_map
from web.maps.style import layer_style

PERMALINK_PARAM = "project"
"""`/?project=GM-2024-001` or `/#project=GM-2024-001` opens that project."""


def build_project_map(*, projects: LayerDef, district: LayerDef, basemap: Basemap, page_size: int) -> OfflineMap:
    m = new_map(basemap)
    district_group = new_group(m, district.title_zh)
    project_group = new_group(m, projects.title_zh)
    entries = [legend_entry(projects, layer_style(projects)), legend_entry(district, layer_style(district))]
    Legend(entries, note=basemap.note_zh).add_to(m)
    config = page_config(
        basemap,
        {
            "projects": layer_config(projects, page_size=page_size),
            "district": layer_config(district, page_size=page_size),
        },
        permalinkParam=PERMALINK_PARAM,
    )
    PageScript("projectMap", {"district": district_group, "projects": project_group}, config).add_to(m)
    return m
