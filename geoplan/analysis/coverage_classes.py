"""The class breaks and colours of the village coverage choropleth, shared by the web coverage map and the
quarterly report's map, so a village has the same colour on screen and on paper.

Villages are classed by coverage % with mapclassify's Fisher–Jenks natural breaks (the optimal grouping of the
villages' own values, deterministic, unlike k-means based schemes): the same breaks go to the legend and to every
village's class, so a map and its legend cannot disagree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CLASSES",
    "NO_PEOPLE_COLOR",
    "NO_PEOPLE_LABEL",
    "PALETTES",
    "SCHEME",
    "STEPS",
    "CoverageClasses",
    "classify_coverage",
    "step_classes",
]

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
NO_PEOPLE_LABEL = "无人口"
STEPS = (20.0, 40.0, 60.0, 80.0, 100.0)
"""Fixed class bounds (upper, %) for maps that compare services: natural breaks differ per service, so the same
colour would mean different coverage on two services of one page (the life-circle map and its heat table)."""
STEP_SCHEME = "Steps20"


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

    def color_of(self, index: int) -> str:
        """The colour of the index-th value given (grey for a village without people)."""
        cls = self.classes[index]
        return NO_PEOPLE_COLOR if cls is None else self.colors[cls]

    def labels(self) -> tuple[str, ...]:
        """Each class as the web legend writes it: "lower – upper%" (one decimal)."""
        return tuple(f"{low:.1f} – {high:.1f}%" for low, high in zip(self.lower, self.upper, strict=True))


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


def step_classes(values: Sequence[float | None], *, upper: Sequence[float] = STEPS) -> CoverageClasses:
    """Fixed classes: class i holds upper[i-1] < pct <= upper[i], the first from 0 (mapclassify's
    UserDefined binning), the same colours as the natural breaks of as many classes."""
    bounds = tuple(float(u) for u in upper)
    if not bounds or list(bounds) != sorted(set(bounds)):
        raise ValueError("upper bounds must be increasing")
    array = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    finite = np.isfinite(array)
    bins = np.minimum(np.searchsorted(np.asarray(bounds), array[finite], side="left"), len(bounds) - 1)
    classes: list[int | None] = [None] * len(array)
    for position, cls in zip(np.flatnonzero(finite).tolist(), bins.tolist(), strict=True):
        classes[position] = int(cls)
    counts = np.bincount(bins.astype(np.intp), minlength=len(bounds))
    return CoverageClasses(
        scheme=STEP_SCHEME,
        upper=bounds,
        lower=(0.0, *bounds[:-1]),
        colors=PALETTES[len(bounds)],
        counts=tuple(int(c) for c in counts),
        classes=tuple(classes),
    )
