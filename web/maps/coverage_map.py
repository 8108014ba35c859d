"""The coverage map at `/coverage` (十分钟文化圈覆盖): a public skeleton, and the class breaks of its choropleth.

Like the planner map, the page is public and empty: a browser sends no token on a page load, and the coverage
figures come from the private population raster, so they are for staff. The skeleton holds the map, the basemap
and catalogue facts the public may read anyway (the facility kinds, the public layers' styles and URLs);
geoplan-coverage.js asks for a token and fetches everything else from `/api/coverage…` with it.

Villages are coloured by coverage % in classes from mapclassify's Fisher–Jenks natural breaks (the optimal
grouping of the villages' own values, deterministic, unlike k-means based schemes): the same breaks go to the
legend and to every village's `class`, so the map and the legend cannot disagree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geoplan.catalog import Catalog
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config
from web.maps.legend import REAL_LABEL, SYNTHETIC_LABEL
from web.maps.offline import OfflineMap, new_map

SCHEME = "FisherJenks"
CLASSES = 5
# ColorBrewer RdYlGn, per number of classes: red = few people covered, green = most.
PALETTES: dict[int, tuple[str, ...]] = {
    1: ("#a6d96a",),
    2: ("#d7191c", "#1a9641"),
    3: ("#fc8d59", "#ffffbf", "#91cf60"),
    4: ("#d7191c", "#fdae61", "#a6d96a", "#1a9641"),
    5: ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"),
}
NO_PEOPLE_COLOR = "#bdbdbd"
"""A village without people has no coverage %: grey, outside the classes."""
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


@dataclass(frozen=True)
class CoverageClasses:
    """Class breaks of the villages' coverage %: class i holds lower[i] < pct <= upper[i] (the first class
    includes its lower bound, the smallest value), as mapclassify bins them."""

    scheme: str
    upper: tuple[float, ...]
    lower: tuple[float, ...]
    colors: tuple[str, ...]
    counts: tuple[int, ...]
    classes: tuple[int | None, ...]
    """Per value given, its class (None for a missing value: a village without people)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "k": len(self.upper),
            "upper": list(self.upper),
            "lower": list(self.lower),
            "colors": list(self.colors),
            "counts": list(self.counts),
            "noDataColor": NO_PEOPLE_COLOR,
        }


def classify_coverage(values: Sequence[float | None], *, k: int = CLASSES) -> CoverageClasses:
    """Fisher–Jenks classes of the finite values (at most `k`, fewer when there are fewer distinct values)."""
    array = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    finite = np.isfinite(array)
    distinct = np.unique(array[finite])
    classes: list[int | None] = [None] * len(array)
    if len(distinct) == 0:
        return CoverageClasses(SCHEME, (), (), (), (), tuple(classes))
    n_classes = min(k, len(distinct))
    if n_classes == 1:
        upper = [float(distinct[0])]
        bins = np.zeros(int(finite.sum()), dtype=np.intp)
    else:
        import mapclassify  # imported on first use: it takes seconds (scikit-learn)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Numba not installed": the pure-Python path is fast enough for 81 values
            found = mapclassify.FisherJenks(array[finite], k=n_classes)
        upper = [float(b) for b in found.bins]
        bins = np.asarray(found.yb, dtype=np.intp)
    for position, cls in zip(np.flatnonzero(finite).tolist(), bins.tolist(), strict=True):
        classes[position] = int(cls)
    counts = np.bincount(bins, minlength=len(upper))
    return CoverageClasses(
        scheme=SCHEME,
        upper=tuple(upper),
        lower=(float(distinct[0]), *upper[:-1]),
        colors=PALETTES[len(upper)],
        counts=tuple(int(c) for c in counts),
        classes=tuple(classes),
    )


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
