"""The 多规合一 conflict engine: rule table + layers -> conflict patches (差异图斑), one per feature pair.

For an intersection rule a patch is A ∩ B for one feature A and one feature B; for a difference rule it is
A − ∪{B intersecting A} for one feature A. Each patch is cleaned by the sliver rule (`slivers`), measured in
EPSG:4547 (planar) and on the ellipsoid, placed in a town and a village, and keyed by a stable id.

The work is vectorised with shapely 2: an STRtree query yields every candidate pair at once, and the overlay,
the sliver rule and the reprojection run on chunks of pairs in a thread pool. Shapely's vectorised functions
release the GIL, so the chunks of one run use every core given (`workers`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from geoplan.analysis.areas import to_store_with_areas, transform
from geoplan.analysis.rules import NOT_EXEMPT, ConflictRule, exemption_index, filter_mask, layers_of
from geoplan.analysis.slivers import OverlapSettings, merge_parts, polygon_parts, surviving_parts
from geoplan.catalog import Catalog
from geoplan.crs import METRIC_CRS, STORE_CRS, crs_label
from geoplan.errors import CRSError, InputError

__all__ = [
    "PATCH_COLUMNS",
    "PATCH_DTYPES",
    "OverlapSettings",
    "exemption_columns",
    "find_conflicts",
    "locate_points",
    "patch_id",
]

log = logging.getLogger(__name__)

GeomArray = NDArray[np.object_]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

PATCH_COLUMNS = [
    "patch_id",
    "rule",
    "severity",
    "exempt",
    "exempt_basis",
    "layer_a",
    "id_a",
    "layer_b",
    "id_b",
    "area_m2",
    "area_ellipsoid_m2",
    "town",
    "village_code",
    "geometry",
]
TOWN_NAME_FIELD = "town_name"
VILLAGE_CODE_FIELD = "village_code"
PATCH_DTYPES = {"area_m2": "float64", "area_ellipsoid_m2": "float64", "exempt": "bool"}
"""The patch columns whose dtype is not object (for empty tables)."""
_CHUNK_PAIRS = 4096
"""Pairs per pool task: big enough to amortise the task, small enough to balance two or more cores."""


@dataclass(frozen=True)
class _Layer:
    """One input layer, ready for the rules: ids and EPSG:4547 geometries, attributes for the filters."""

    frame: pd.DataFrame
    ids: NDArray[np.str_]
    geoms: GeomArray


@dataclass(frozen=True)
class _Job:
    """One rule with both sides filtered: what every chunk of its pairs needs."""

    rule: ConflictRule
    ids_a: NDArray[np.str_]
    geoms_a: GeomArray
    ids_b: NDArray[np.str_]
    geoms_b: GeomArray
    settings: OverlapSettings
    keys_a: list[bytes]
    """Each A feature's part of its patch ids' keys, built once per rule (ids are hashed in the workers)."""
    keys_b: list[bytes]


@dataclass(frozen=True)
class _Pieces:
    """Surviving patches of one chunk: source positions in A (and B), ids, geometries and areas."""

    a: IntArray
    b: IntArray | None
    patch_ids: list[str]
    stored: GeomArray
    area: FloatArray
    area_ellipsoid: FloatArray


def exemption_columns(rule: ConflictRule, index: NDArray[np.intp]) -> tuple[NDArray[np.bool_], pd.Series]:
    """The `exempt` and `exempt_basis` columns of patches whose A features match the rule's exemptions
    `index` (from `rules.exemption_index`): the basis reads "title：basis", None where not exempt."""
    texts = [f"{e.title_zh}：{e.basis}" for e in rule.exempt]
    basis = pd.Series([texts[i] if i != NOT_EXEMPT else None for i in index.tolist()], dtype=object)
    return np.asarray(index != NOT_EXEMPT, dtype=bool), basis


def patch_id(rule: str, layer_a: str, id_a: str, layer_b: str, id_b: str | None) -> str:
    """The stable id of a patch: 16 hex digits of BLAKE2b-64 over the rule and the two features' identities,
    the UTF-8 key `rule|layer_a|layer_b|len(id_a):id_a|len(id_b):id_b` (`-` in place of B for a difference rule).

    It depends on nothing else (not row order, not geometry), so a patch keeps its id, and its planner's mark,
    across re-runs and edits of other features. Ids are length-prefixed, so no id can imitate another key.
    """
    return _digest(_keys_a(rule, layer_a, layer_b, [id_a])[0], _key_b(id_b))


def _keys_a(rule: str, layer_a: str, layer_b: str, ids: Sequence[str]) -> list[bytes]:
    return [f"{rule}|{layer_a}|{layer_b}|{len(i)}:{i}|".encode() for i in ids]


def _key_b(id_b: str | None) -> bytes:
    return b"-" if id_b is None else f"{len(id_b)}:{id_b}".encode()


def _digest(key_a: bytes, key_b: bytes) -> str:
    return hashlib.blake2b(key_a + key_b, digest_size=8).hexdigest()


def find_conflicts(
    *,
    layers: Mapping[str, gpd.GeoDataFrame],
    catalog: Catalog,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    towns: gpd.GeoDataFrame | None = None,
    villages: gpd.GeoDataFrame | None = None,
    workers: int = 2,
) -> gpd.GeoDataFrame:
    """Conflict patches of every rule: one row per (rule, feature A, feature B) pair, columns `PATCH_COLUMNS`.

    All frames must share one CRS (they are measured in EPSG:4547); the patches come back in EPSG:4490.
    `id_b` is None for difference rules; `town` / `village_code` are those whose polygon holds the patch's
    point on surface (None outside them all). Inputs are never modified.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, not {workers!r}")
    same = [rule.code for rule in rules if rule.layer_a == rule.layer_b]
    if same:
        raise InputError(f"rule(s) {', '.join(same)} compare a layer with itself; give two different layers")
    needed = layers_of(rules)
    missing = [name for name in needed if name not in layers]
    if missing:
        raise InputError(f"the rules need layer(s) {', '.join(missing)}, which were not given")
    frames = {name: layers[name] for name in needed}
    admin = {"towns": towns, "villages": villages}
    source_crs = _common_crs({**frames, **{k: v for k, v in admin.items() if v is not None}})
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="overlap") as pool:
        prepared = {name: _prepare(frame, name, catalog, source_crs, pool) for name, frame in frames.items()}
        parts = [_run_rule(rule, prepared, settings, pool) for rule in rules]
        patches = pd.concat(parts, ignore_index=True) if parts else _empty_frame()
        stored = np.asarray(patches["geometry"].to_numpy(), dtype=object)
        locating = towns is not None or villages is not None
        points = _map_chunks(pool, len(stored), lambda s: shapely.point_on_surface(stored[s])) if locating else stored
        patches["town"] = pd.Series(locate_points(points, towns, TOWN_NAME_FIELD, source_crs), dtype=object)
        patches["village_code"] = pd.Series(
            locate_points(points, villages, VILLAGE_CODE_FIELD, source_crs), dtype=object
        )
    geometry = patches.pop("geometry")
    result = gpd.GeoDataFrame(patches, geometry=gpd.GeoSeries(geometry.to_numpy(), crs=STORE_CRS))
    return result[PATCH_COLUMNS]


# --------------------------------------------------------------------------------------------- inputs


def _common_crs(frames: Mapping[str, gpd.GeoDataFrame]) -> CRS:
    """The one CRS every frame is in; mixing (or leaving one unset) is refused rather than guessed."""
    found: dict[str, CRS] = {}
    for name, frame in frames.items():
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputError(f"layer '{name}' must be a GeoDataFrame, not {type(frame).__name__}")
        if frame.crs is None:
            raise CRSError(f"layer '{name}' has no CRS; set it (the store's is {STORE_CRS})")
        found[name] = CRS.from_user_input(frame.crs)
    if not found:
        return CRS.from_user_input(STORE_CRS)
    first_name, first = next(iter(found.items()))
    for name, crs in found.items():
        if not crs.equals(first):
            raise CRSError(
                f"mixed coordinate systems: '{first_name}' is in {crs_label(first)} but '{name}' is in "
                f"{crs_label(crs)}; bring every layer to one CRS first"
            )
    return first


def _chunks(n: int, size: int = _CHUNK_PAIRS) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _map_chunks(pool: Executor, n: int, work: Callable[[slice], NDArray[Any]], dtype: type = object) -> NDArray[Any]:
    pieces = list(pool.map(work, _chunks(n)))
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=dtype)


def _prepare(frame: gpd.GeoDataFrame, name: str, catalog: Catalog, source_crs: CRS, pool: Executor) -> _Layer:
    """Ids checked for presence and uniqueness (patch ids are built from them), geometry in EPSG:4547."""
    id_field = catalog.get(name).id_field
    if id_field is None or id_field not in frame.columns:
        raise InputError(f"layer '{name}' has no id column '{id_field}'")
    ids = frame[id_field]
    if ids.isna().any():
        raise InputError(f"layer '{name}': {int(ids.isna().sum())} feature(s) without an id")
    ids_text = ids.astype(str).to_numpy(dtype=str)
    if len(np.unique(ids_text)) != len(ids_text):
        raise InputError(f"layer '{name}': duplicate ids in '{id_field}'")
    raw = np.asarray(frame.geometry.to_numpy(), dtype=object)
    if not source_crs.equals(CRS.from_user_input(METRIC_CRS)):
        wkt = source_crs.to_wkt()
        raw = _map_chunks(pool, len(raw), lambda s: transform(raw[s], wkt, METRIC_CRS))
    usable = _map_chunks(pool, len(raw), lambda s: shapely.is_valid(raw[s]) | shapely.is_missing(raw[s]), bool)
    geoms = _repaired(raw, ~usable, name)
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name)).reset_index(drop=True)
    return _Layer(frame=attributes, ids=ids_text, geoms=geoms)


def _repaired(geoms: GeomArray, broken: NDArray[np.bool_], name: str) -> GeomArray:
    """Invalid polygons (self-touching rings, reprojection kinks) are made valid, as geopandas.overlay does."""
    invalid = np.flatnonzero(broken)
    if not len(invalid):
        return geoms
    log.warning("layer '%s': %d invalid geometr(y/ies) repaired with make_valid", name, len(invalid))
    fixed = geoms.copy()
    parts, index = polygon_parts(shapely.make_valid(geoms[invalid]))
    fixed[invalid] = None
    if len(parts):
        kept, compact = np.unique(index, return_inverse=True)
        fixed[invalid[kept]] = shapely.multipolygons(parts, indices=compact)
    return fixed


# --------------------------------------------------------------------------------------------- rules


def _run_rule(
    rule: ConflictRule, prepared: Mapping[str, _Layer], settings: OverlapSettings, pool: Executor
) -> pd.DataFrame:
    layer_a, layer_b = prepared[rule.layer_a], prepared[rule.layer_b]
    rows_a = np.flatnonzero(filter_mask(layer_a.frame, rule.filter_a))
    rows_b = np.flatnonzero(filter_mask(layer_b.frame, rule.filter_b))
    ids_a, ids_b = layer_a.ids[rows_a], layer_b.ids[rows_b]
    job = _Job(
        rule=rule,
        ids_a=ids_a,
        geoms_a=layer_a.geoms[rows_a],
        ids_b=ids_b,
        geoms_b=layer_b.geoms[rows_b],
        settings=settings,
        keys_a=_keys_a(rule.code, rule.layer_a, rule.layer_b, ids_a.tolist()),
        keys_b=[_key_b(i) for i in ids_b.tolist()] if rule.relation == "intersection" else [],
    )
    pieces = _intersections(job, pool) if rule.relation == "intersection" else _differences(job, pool)
    order = np.lexsort((pieces.b, pieces.a)) if pieces.b is not None else np.argsort(pieces.a, kind="stable")
    b_ids: list[str | None] = [None] * len(order) if pieces.b is None else job.ids_b[pieces.b[order]].tolist()
    exempt, basis = exemption_columns(rule, exemption_index(layer_a.frame.iloc[rows_a], rule)[pieces.a[order]])
    return pd.DataFrame(
        {
            "patch_id": np.asarray(pieces.patch_ids, dtype=object)[order],
            "rule": rule.code,
            "severity": rule.severity,
            "exempt": exempt,
            "exempt_basis": basis,
            "layer_a": rule.layer_a,
            "id_a": pd.Series(job.ids_a[pieces.a[order]].tolist(), dtype=object),
            "layer_b": rule.layer_b,
            "id_b": pd.Series(b_ids, dtype=object),
            "area_m2": pieces.area[order],
            "area_ellipsoid_m2": pieces.area_ellipsoid[order],
            "geometry": pieces.stored[order],
        }
    )


def _pairs(a: GeomArray, b: GeomArray, pool: Executor) -> tuple[IntArray, IntArray]:
    """Every (A, B) pair whose geometries intersect, ordered by A; the tree is queried by chunks in the pool."""
    tree = shapely.STRtree(b)
    chunks = _chunks(len(a))

    def query(chunk: slice) -> NDArray[np.intp]:
        found = tree.query(a[chunk], predicate="intersects")
        found[0] += chunk.start
        return np.asarray(found, dtype=np.intp)

    found = np.concatenate(list(pool.map(query, chunks)), axis=1)
    by_a = np.lexsort((found[1], found[0]))
    return found[0][by_a], found[1][by_a]


def _intersections(job: _Job, pool: Executor) -> _Pieces:
    """A ∩ B for every intersecting pair, computed chunk by chunk in the pool.

    Where one feature covers the other (farmland inside a boundary) the pair's patch is the smaller feature
    itself: a prepared-geometry test, far cheaper than an overlay against a large polygon.
    """
    a, b = job.geoms_a, job.geoms_b
    if not len(a) or not len(b):
        return _no_pieces(with_b=True)
    ia, ib = _pairs(a, b, pool)
    box_a, box_b = shapely.bounds(a), shapely.bounds(b)
    a_inside = _covered(a, b, ia, ib, box_a, box_b)
    b_inside = _covered(b, a, ib, ia, box_b, box_a) & ~a_inside

    def work(chunk: slice) -> _Pieces:
        pa, pb = ia[chunk], ib[chunk]
        inside_a, inside_b = a_inside[chunk], b_inside[chunk]
        overlay = ~(inside_a | inside_b)
        raw = np.empty(len(pa), dtype=object)
        raw[inside_a] = a[pa[inside_a]]
        raw[inside_b] = b[pb[inside_b]]
        raw[overlay] = shapely.intersection(a[pa[overlay]], b[pb[overlay]])
        return _finish(job, raw, pa, pb)

    return _gather(list(pool.map(work, _chunks(len(ia)))), with_b=True)


def _differences(job: _Job, pool: Executor) -> _Pieces:
    """A − ∪B for every A, where ∪B unions only the B features that intersect that A.

    An A covered by a single B leaves nothing; an A meeting one B needs no union; the rest union their B
    features in buckets of similar group size (a padded 2-D array reduced along its rows).
    """
    a, b = job.geoms_a, job.geoms_b
    if not len(a):
        return _no_pieces(with_b=False)
    if len(b):
        ia, ib = _pairs(a, b, pool)
    else:
        ia, ib = np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    covered = np.unique(ia[_covered(a, b, ia, ib, shapely.bounds(a), shapely.bounds(b))])
    keep = ~np.isin(ia, covered)
    ia, ib = ia[keep], ib[keep]
    alone = np.setdiff1d(np.setdiff1d(np.arange(len(a)), ia), covered)  # all of A lies outside B
    groups, starts, sizes = np.unique(ia, return_index=True, return_counts=True)
    tasks: list[Callable[[], _Pieces]] = [
        partial(_finish, job, a[alone[s]], alone[s], None) for s in _chunks(len(alone))
    ]
    single = np.flatnonzero(sizes == 1)
    for s in _chunks(len(single)):
        rows = groups[single[s]]
        tasks.append(partial(_subtract_one, job, b[ib[starts[single[s]]]], rows))
    several = np.flatnonzero(sizes > 1)
    bucket_of = np.ceil(np.log2(sizes[several])).astype(int)
    for bucket in np.unique(bucket_of):
        members = several[bucket_of == bucket]
        for s in _chunks(len(members), max(64, _CHUNK_PAIRS // int(2**bucket))):
            rows = members[s]
            tasks.append(partial(_subtract, job, ib, groups[rows], starts[rows], sizes[rows]))
    return _gather(list(pool.map(lambda task: task(), tasks)), with_b=False)


def _subtract_one(job: _Job, b_each: GeomArray, rows: IntArray) -> _Pieces:
    return _finish(job, shapely.difference(job.geoms_a[rows], b_each), rows, None)


def _subtract(job: _Job, ib: IntArray, rows: IntArray, starts: IntArray, sizes: IntArray) -> _Pieces:
    width = int(sizes.max())
    padded = np.full((len(rows), width), None, dtype=object)
    columns = np.arange(width)
    filled = columns[None, :] < sizes[:, None]
    padded[filled] = job.geoms_b[ib[(starts[:, None] + columns[None, :])[filled]]]
    unions = shapely.union_all(padded, axis=1)
    return _finish(job, shapely.difference(job.geoms_a[rows], unions), rows, None)


def _covered(
    inner: GeomArray, outer: GeomArray, ii: IntArray, io: IntArray, box_inner: FloatArray, box_outer: FloatArray
) -> NDArray[np.bool_]:
    """For each pair, whether outer[io] covers inner[ii] (so inner ∩ outer is inner, inner − outer is empty).

    Only pairs whose boxes nest are tested, against prepared copies of the outer geometries: preparing the
    caller's own objects would change them under any other thread using them. The test runs in the calling
    thread, as GEOS builds a prepared geometry's indexes lazily.
    """
    result = np.zeros(len(ii), dtype=bool)
    if not len(ii):
        return result
    box_in, box_out = box_inner[ii], box_outer[io]
    nested = np.flatnonzero(
        (box_in[:, 0] >= box_out[:, 0])
        & (box_in[:, 1] >= box_out[:, 1])
        & (box_in[:, 2] <= box_out[:, 2])
        & (box_in[:, 3] <= box_out[:, 3])
    )
    if not len(nested):
        return result
    containers = np.unique(io[nested])
    copies = outer.copy()
    copies[containers] = shapely.transform(outer[containers], lambda coords: coords)  # new objects, same shape
    shapely.prepare(copies[containers])
    result[nested] = shapely.covers(copies[io[nested]], inner[ii[nested]])
    return result


def _finish(job: _Job, raw: GeomArray, pa: IntArray, pb: IntArray | None) -> _Pieces:
    """The sliver rule, then ids, stored geometry and both areas of what survives (in a worker)."""
    parts, source, planar = surviving_parts(raw, job.settings)
    stored_parts, ellipsoidal = to_store_with_areas(parts)
    survivors, stored, part_of = merge_parts(stored_parts, source)
    pa = pa[survivors]
    pb = None if pb is None else pb[survivors]
    keys_a, keys_b = job.keys_a, job.keys_b
    if pb is None:
        none = _key_b(None)
        patch_ids = [_digest(keys_a[i], none) for i in pa.tolist()]
    else:
        patch_ids = [_digest(keys_a[i], keys_b[j]) for i, j in zip(pa.tolist(), pb.tolist(), strict=True)]
    return _Pieces(
        a=pa,
        b=pb,
        patch_ids=patch_ids,
        stored=stored,
        area=_sums(part_of, planar, len(survivors)),
        area_ellipsoid=_sums(part_of, ellipsoidal, len(survivors)),
    )


def _sums(group: IntArray, values: FloatArray, n: int) -> FloatArray:
    return np.asarray(np.bincount(group, weights=values, minlength=n), dtype="float64")


def _no_pieces(*, with_b: bool) -> _Pieces:
    empty_int = np.empty(0, dtype=np.intp)
    empty_geom = np.empty(0, dtype=object)
    empty_float = np.empty(0, dtype="float64")
    return _Pieces(empty_int, empty_int if with_b else None, [], empty_geom, empty_float, empty_float)


def _gather(pieces: list[_Pieces], *, with_b: bool) -> _Pieces:
    if not pieces:
        return _no_pieces(with_b=with_b)
    return _Pieces(
        a=np.concatenate([p.a for p in pieces]),
        b=np.concatenate([p.b for p in pieces if p.b is not None]) if with_b else None,
        patch_ids=[i for p in pieces for i in p.patch_ids],
        stored=np.concatenate([p.stored for p in pieces]),
        area=np.concatenate([p.area for p in pieces]),
        area_ellipsoid=np.concatenate([p.area_ellipsoid for p in pieces]),
    )


# --------------------------------------------------------------------------------------------- places


def locate_points(points: GeomArray, units: gpd.GeoDataFrame | None, field: str, source_crs: CRS) -> list[str | None]:
    """For each point, the `field` of the unit polygon covering it (ties on shared edges: the smallest value)."""
    if units is None or not len(points):
        return [None] * len(points)
    if field not in units.columns:
        raise InputError(f"the administrative layer has no '{field}' column")
    polygons = transform(np.asarray(units.geometry.to_numpy(), dtype=object), source_crs.to_wkt(), STORE_CRS)
    names = units[field].astype(object).to_numpy()
    ip, iu = shapely.STRtree(polygons).query(points, predicate="intersects")
    rank = pd.Series(names[iu]).astype(str).rank(method="dense").to_numpy()
    order = np.lexsort((rank, ip))
    ip, iu = ip[order], iu[order]
    first = np.r_[True, ip[1:] != ip[:-1]] if len(ip) else np.empty(0, dtype=bool)
    located = np.full(len(points), None, dtype=object)
    located[ip[first]] = names[iu[first]]
    return [None if pd.isna(value) else str(value) for value in located]


def _empty_frame() -> pd.DataFrame:
    columns = [c for c in PATCH_COLUMNS if c not in ("town", "village_code", "geometry")]
    frame = pd.DataFrame({c: pd.Series(dtype=PATCH_DTYPES.get(c, object)) for c in columns})
    frame["geometry"] = pd.Series(dtype=object)
    return frame
