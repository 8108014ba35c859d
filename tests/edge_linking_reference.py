"""An independent reference for linking to the nearest street: the links really split the streets in a networkx
graph. Shares no code with the engine (geoplan.analysis.linking / network / reach).

Every walkable line is one street from its first to its last point (end points rounded to the centimetre are
the junctions). Each point (a cell centre, a facility) is linked to the street nearest to it by plain shapely
distances over the streets within reach (first found wins a tie), if that distance is at most `access_m`; the
street is then cut at the point's projection: a real node on the street, joined to the point's own node by an
edge of the link's length, the street's pieces between consecutive cuts weighted by their length along the
street. Distances are networkx Dijkstra on that graph.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely


def _junction(xy: tuple[float, ...]) -> tuple[str, float, float]:
    return ("junction", round(xy[0], 2), round(xy[1], 2))


class SplitNetwork:
    """The streets of `lines` with every point of `points` linked in as a node ("point", i)."""

    def __init__(self, lines: Sequence[shapely.LineString], points: np.ndarray, access_m: float) -> None:
        self.lines = list(lines)
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        self.link = np.full(len(points), math.inf)
        self.street = np.full(len(points), -1)
        self.along = np.zeros(len(points))
        tree = shapely.STRtree(self.lines)
        for i, (x, y) in enumerate(points):
            p = shapely.Point(x, y)
            best, best_d = -1, math.inf
            for j in sorted(tree.query(p, predicate="dwithin", distance=access_m).tolist()):
                d = self.lines[j].distance(p)
                if d < best_d:
                    best, best_d = j, d
            if best >= 0 and best_d <= access_m:
                self.link[i], self.street[i] = best_d, best
                self.along[i] = self.lines[best].project(p)
        self.linked = self.street >= 0
        self.graph = nx.Graph()
        cuts: dict[int, list[tuple[float, object]]] = {}
        for i in np.flatnonzero(self.linked).tolist():
            cuts.setdefault(int(self.street[i]), []).append((float(self.along[i]), ("cut", i)))
        for j, line in enumerate(self.lines):
            coords = list(line.coords)
            stops = [(0.0, _junction(coords[0])), *sorted(cuts.get(j, []), key=lambda c: c[0])]
            stops.append((line.length, _junction(coords[-1])))
            for (s0, a), (s1, b) in itertools.pairwise(stops):
                self._edge(a, b, max(s1 - s0, 0.0))
        for i in np.flatnonzero(self.linked).tolist():
            self._edge(("point", i), ("cut", i), float(self.link[i]))

    def _edge(self, a: object, b: object, w: float) -> None:
        if a == b:
            return
        # parallel pieces between the same two nodes: the shorter counts
        if not self.graph.has_edge(a, b) or self.graph[a][b]["weight"] > w:
            self.graph.add_edge(a, b, weight=w)

    def nearest_source(self, sources: Iterable[int], targets: Iterable[int], cutoff: float) -> np.ndarray:
        """Per target point: metres to the nearest source point (inf when unlinked or beyond cutoff)."""
        origins = {("point", int(i)) for i in sources if self.linked[i]}
        lengths = nx.multi_source_dijkstra_path_length(self.graph, origins, cutoff=cutoff) if origins else {}
        return np.array([lengths.get(("point", int(t)), math.inf) for t in targets])

    def from_source(self, source: int, targets: Iterable[int], cutoff: float) -> np.ndarray:
        """Metres from one source point to each target point (inf when unlinked or beyond cutoff)."""
        if not self.linked[source]:
            return np.array([math.inf for _ in targets])
        lengths = nx.single_source_dijkstra_path_length(self.graph, ("point", int(source)), cutoff=cutoff)
        return np.array([lengths.get(("point", int(t)), math.inf) for t in targets])


def walkable_lines(roads: gpd.GeoDataFrame) -> list[shapely.LineString]:
    """The LineString parts of a roads frame's walkable rows (already in the metric CRS)."""
    out: list[shapely.LineString] = []
    for geom, ok in zip(roads.geometry, roads["walkable"], strict=True):
        if not ok or geom is None or geom.is_empty:
            continue
        out.extend(g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "LineString" and not g.is_empty)
    return out
