"""The coverage map at `/coverage` (十分钟文化圈覆盖): a public skeleton.

Like the planner map, the page is public and empty: a browser sends no token on a page load, and the coverage
figures come from the private population raster, so they are for staff. The skeleton holds the map, the basemap
and catalogue facts the public may read anyway (the facility kinds, the public layers' styles and URLs);
geoplan-coverage.js asks for a token and fetches everything else from `/api/coverage…` with it.

Villages are coloured by coverage % in the classes of geoplan.analysis.coverage_classes (Fisher–Jenks natural
breaks), which the quarterly report's map uses too, so a village has the same colour on screen and on paper.
"""

from __future__ import annotations

from collections.abc import Collection

from geoplan.catalog import Catalog
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import REAL_LABEL, SYNTHETIC_LABEL
from web.maps.offline import OfflineMap, new_map

MAX_SITES = 50
"""The most new sites one request may ask for (the greedy's cost grows with k)."""

API = {
    "coverage": "/api/coverage",
    "villages": "/api/coverage/villages",
    "serviceAreas": "/api/coverage/service-areas",
    "gaps": "/api/coverage/gaps",
    "sites": "/api/coverage/suggested-sites",
    "table": "/api/coverage/table.",
}
MODES = ({"value": "network", "title": "沿路网步行"}, {"value": "euclidean", "title": "直线距离"})


def build_coverage_map(*, basemap: Basemap, catalog: Catalog, page_size: int, synthetic: Collection[str]) -> OfflineMap:
    """The empty map and the call into geoplan-coverage.js; the script creates its layer groups itself.
    `synthetic`: the layers that hold demo data now (geoplan.services.provenance.synthetic_now)."""
    m = new_map(basemap)
    facilities = catalog.get("culture_facilities")
    kind = facilities.field("kind")
    layers = {
        name: layer_config(catalog.get(name), page_size=page_size, synthetic=name in synthetic)
        for name in ("district", "culture_facilities")
        if name in catalog
    }
    config = page_config(
        basemap,
        layers,
        basemapNote=basemap.note_zh,
        api=API,
        modes=list(MODES),
        kinds=list(kind.allowed or ()),
        maxSites=MAX_SITES,
        syntheticLabel=SYNTHETIC_LABEL,
        realLabel=REAL_LABEL,
    )
    PageScript("coverageMap", {}, config).add_to(m)
    return m
