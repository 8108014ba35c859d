"""The life-circle map at `/lifecircle` (社区生活圈): a public skeleton, like the coverage map.

The page is public and empty: the figures come from the private population raster, so geoplan-lifecircle.js asks
for a staff token and fetches everything from `/api/lifecircle…` with it. The skeleton holds the map, the basemap
and the catalogue facts the public may read anyway (the district outline's style and URL).

Villages are coloured by coverage % in fixed 20 % steps (geoplan.analysis.coverage_classes.step_classes), the
same on the map and in the heat table, so one colour means the same coverage for every service.
"""

from __future__ import annotations

from collections.abc import Collection

from geoplan.catalog import Catalog
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import REAL_LABEL, SYNTHETIC_LABEL
from web.maps.offline import OfflineMap, new_map

API = {
    "summary": "/api/lifecircle",
    "villages": "/api/lifecircle/villages",
    "facilities": "/api/lifecircle/facilities",
    "matrix": "/api/lifecircle/matrix",
    "village": "/api/lifecircle/villages/",
    "table": "/api/lifecircle/table.",
}


def build_lifecircle_map(
    *, basemap: Basemap, catalog: Catalog, page_size: int, synthetic: Collection[str]
) -> OfflineMap:
    """The empty map and the call into geoplan-lifecircle.js; the script creates its layer groups itself.
    `synthetic`: the layers that hold demo data now (geoplan.services.provenance.synthetic_now)."""
    m = new_map(basemap)
    layers = {
        name: layer_config(catalog.get(name), page_size=page_size, synthetic=name in synthetic)
        for name in ("district",)
        if name in catalog
    }
    config = page_config(
        basemap,
        layers,
        basemapNote=basemap.note_zh,
        api=API,
        syntheticLabel=SYNTHETIC_LABEL,
        realLabel=REAL_LABEL,
    )
    PageScript("lifecircleMap", {}, config).add_to(m)
    return m
