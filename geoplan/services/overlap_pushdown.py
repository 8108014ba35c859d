"""The 多规合一 conflict engine pushed down to PostGIS: one set-based statement per rule, streamed in batches.

For tables too big to read into memory. The database does the heavy half: each rule side is re-projected to
EPSG:4547 and repaired once into a temporary table with a GiST index, the join of A with B runs through that
index (ST_Intersects in metres), and so does the overlay, with the in-memory engine's own shortcuts (a feature
covered by the other side is the patch itself; a difference against one B needs no union;
ST_Difference(A, ST_Union(B…)) grouped per A).
The raw pieces come back through a server-side cursor, `batch_size` rows at a time, and each batch is finished
in Python with the very functions `overlap.find_conflicts` uses: the sliver rule (`slivers.surviving_parts`:
its convex shortcut is proven equal to the buffer only in GEOS-through-shapely, and a second SQL copy of the
rule would have to be kept equal by hand), both areas (`areas.to_store_with_areas`), the patch id
(`overlap.patch_id`) and the town and village. So the two paths share one definition of every number, and
memory stays bounded by the batch (plus the small administrative layers).

Rows are ordered as the in-memory engine orders them (by rule, then by A and B in store order), so the
concatenated batches equal `find_conflicts` row for row up to floating-point noise of the two GEOS / PROJ builds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2 import Geometry
from pyproj import CRS
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import OperationalError
from sqlalchemy.types import NullType

from geoplan.analysis.areas import to_store_with_areas
from geoplan.analysis.overlap import (
    PATCH_COLUMNS,
    PATCH_DTYPES,
    TOWN_NAME_FIELD,
    VILLAGE_CODE_FIELD,
    OverlapSettings,
    exemption_columns,
    locate_points,
    patch_id,
)
from geoplan.analysis.rules import NOT_EXEMPT, ConflictRule, Filter
from geoplan.analysis.slivers import merge_parts, surviving_parts
from geoplan.crs import STORE_CRS
from geoplan.errors import InputError, StoreError
from geoplan.services.overlap import with_current_marks
from geoplan.storage import LayerStore, require_initialised
from geoplan.storage.postgis import PostGISStore

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "find_all_conflicts_in_database",
    "find_conflicts_in_database",
    "run_overlaps_in_database",
]

DEFAULT_BATCH_SIZE = 5000
METRIC_SRID = 4547
_ADMIN = (("towns", TOWN_NAME_FIELD), ("villages", VILLAGE_CODE_FIELD))


def find_conflicts_in_database(
    *,
    store: PostGISStore,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    batch_size: int = DEFAULT_BATCH_SIZE,
    locate: bool = True,
) -> Iterator[gpd.GeoDataFrame]:
    """Conflict patches of every rule, computed in the store's database, as GeoDataFrames of at most
    `batch_size` rows with the columns `PATCH_COLUMNS` (EPSG:4490; a batch never mixes rules; empty batches
    are not yielded).

    The patches, their ids, areas and places are those `overlap.find_conflicts` gives for the same layers.
    With `locate`, the towns and villages layers (small) are read once to place each patch.
    """
    if not isinstance(store, PostGISStore):
        raise InputError("the push-down needs a PostGIS store (a postgresql:// URL)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    same = [rule.code for rule in rules if rule.layer_a == rule.layer_b]
    if same:
        raise InputError(f"rule(s) {', '.join(same)} compare a layer with itself; give two different layers")
    for rule in rules:  # every rule checked before any work
        table_a = _side(store, rule.layer_a, rule.filter_a)[0]
        _exemption_of(table_a, rule)
        _side(store, rule.layer_b, rule.filter_b)
    admin = _admin_layers(store) if locate else {}
    try:
        with store.engine.connect() as connection:
            for rule in rules:
                side_a = _staged(connection, store, rule.layer_a, rule.filter_a, "geoplan_pushdown_a", rule)
                side_b = _staged(connection, store, rule.layer_b, rule.filter_b, "geoplan_pushdown_b")
                query = (
                    _difference_query(side_a, side_b)
                    if rule.relation == "difference"
                    else _intersection_query(side_a, side_b)
                )
                # A server-side cursor: the database holds the result, we hold one batch of it.
                options = {"stream_results": True, "yield_per": batch_size}  # this statement only
                streamed = connection.execute(query, execution_options=options)
                for rows in streamed.partitions():
                    batch = _finish_batch(rule, rows, settings, admin)
                    if len(batch):
                        yield batch
                streamed.close()
                for table in (side_a, side_b):
                    connection.exec_driver_sql(f'DROP TABLE "{table.name}"')
    except OperationalError as exc:
        raise StoreError(f"the PostGIS store failed during the overlap: {str(exc).splitlines()[0]}") from None


def find_all_conflicts_in_database(
    *,
    store: PostGISStore,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    batch_size: int = DEFAULT_BATCH_SIZE,
    locate: bool = True,
) -> gpd.GeoDataFrame:
    """Every batch of `find_conflicts_in_database` in one frame (for results that fit in memory)."""
    batches = list(
        find_conflicts_in_database(store=store, rules=rules, settings=settings, batch_size=batch_size, locate=locate)
    )
    if not batches:
        return _empty_patches()
    return gpd.GeoDataFrame(pd.concat(batches, ignore_index=True), geometry="geometry", crs=STORE_CRS)


# --------------------------------------------------------------------------------------------- SQL


def _staged(
    connection: Connection,
    store: PostGISStore,
    layer: str,
    rule_filter: Filter,
    name: str,
    exempting: ConflictRule | None = None,
) -> Table:
    """A rule side's features (filtered) in a temporary table, their geometry re-projected to EPSG:4547 and
    repaired once, with a GiST index on it: each pair is then found by the index in metres, and no geometry is
    re-projected once for every feature it meets (the cost of large B polygons). Dropped after the rule.
    Side A (`exempting` its rule) also holds each feature's exemption (`rules.exemption_index`, in SQL)."""
    table, id_text, metric, conditions = _side(store, layer, rule_filter)
    exempt = _exemption_of(table, exempting) if exempting is not None else cast(literal(NOT_EXEMPT), Integer)
    # Untyped: a geometry-typed column would be selected as EWKB bytes, and the table would hold bytea.
    query = select(
        table.c.fid, id_text.label("id"), type_coerce(metric, NullType()).label("g"), exempt.label("ex")
    ).where(*conditions)
    compiled = query.compile(connection, compile_kwargs={"render_postcompile": True})
    connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    connection.exec_driver_sql(f'CREATE TEMPORARY TABLE "{name}" AS {compiled}', compiled.params)
    connection.exec_driver_sql(f'CREATE INDEX ON "{name}" USING gist (g)')
    connection.exec_driver_sql(f'ANALYZE "{name}"')
    return Table(
        name,
        MetaData(),
        Column("fid", Integer),
        Column("id", Text),
        Column("g", Geometry(srid=METRIC_SRID, spatial_index=False)),
        Column("ex", Integer),
    )


def _exemption_of(table: Table, rule: ConflictRule) -> ColumnElement[Any]:
    """The position of the first exemption of `rule` a row of its layer A matches, else NOT_EXEMPT: the same
    first-match order as `rules.exemption_index`. Values are bound parameters, as in the rule filters."""
    if not rule.exempt:
        return cast(literal(NOT_EXEMPT), Integer)
    whens = [
        (and_(*[_column(table, rule.layer_a, n).in_(list(v)) for n, v in exemption.filter_a]), position)
        for position, exemption in enumerate(rule.exempt)
    ]
    return cast(case(*whens, else_=NOT_EXEMPT), Integer)


def _intersection_query(a: Table, b_table: Table) -> Select[Any]:
    """An intersection rule's raw pieces (id A, id B, WKB in EPSG:4547), ordered by A then B in store order."""
    b = select(b_table.c.fid, b_table.c.id, b_table.c.g).where(b_table.c.g.op("&&")(a.c.g)).lateral("b")
    piece = case(
        (func.ST_Covers(b.c.g, a.c.g), a.c.g),
        (func.ST_Covers(a.c.g, b.c.g), b.c.g),
        else_=func.ST_Intersection(a.c.g, b.c.g),
    )
    return (
        select(a.c.id, b.c.id, func.ST_AsBinary(piece), a.c.ex)
        .select_from(a.join(b, func.ST_Intersects(a.c.g, b.c.g)))
        .order_by(a.c.fid, b.c.fid)
    )


def _difference_query(a: Table, b: Table) -> Select[Any]:
    """A − ∪{B intersecting A} per A: nothing where one B covers A, A itself where no B meets it."""
    meeting = (
        select(
            func.count().label("n"),
            func.array_agg(aggregate_order_by(b.c.g, b.c.fid)).label("gs"),  # store order, as the engine
            func.coalesce(func.bool_or(func.ST_Covers(b.c.g, a.c.g)), False).label("covered"),
        )
        .select_from(b)
        .where(b.c.g.op("&&")(a.c.g), func.ST_Intersects(a.c.g, b.c.g))
        .lateral("u")
    )
    piece = case(
        (meeting.c.n == 0, a.c.g),
        (meeting.c.n == 1, func.ST_Difference(a.c.g, meeting.c.gs[1])),
        else_=func.ST_Difference(a.c.g, func.ST_Union(meeting.c.gs)),
    )
    return (
        select(a.c.id, literal(None).label("id_b"), func.ST_AsBinary(piece), a.c.ex)
        .select_from(a.join(meeting, true()))
        .where(~meeting.c.covered)
        .order_by(a.c.fid)
    )


def _side(
    store: PostGISStore, layer: str, rule_filter: Filter
) -> tuple[Table, ColumnElement[Any], ColumnElement[Any], list[ColumnElement[Any]]]:
    """The layer's table, its id as text, its EPSG:4547 geometry (repaired as the engine repairs it) and the
    filter's conditions. Field names must be columns of the catalogue's tables and values are bound
    parameters: nothing of the rule is spliced into the SQL text."""
    table = _table(store, layer)
    id_field = store.catalog.get(layer).id_field
    if id_field is None:
        raise InputError(f"layer '{layer}' has no id field, so its patches could not keep stable ids")
    metric = func.ST_Transform(table.c.geom, METRIC_SRID)
    repaired: ColumnElement[Any] = case(
        (func.ST_IsValid(metric), metric),
        else_=func.ST_CollectionExtract(func.ST_MakeValid(metric), 3),
    )
    conditions: list[ColumnElement[Any]] = [_column(table, layer, n).in_(list(v)) for n, v in rule_filter]
    id_text: ColumnElement[Any] = cast(table.c[id_field], Text)
    return table, id_text, repaired, conditions


def _table(store: PostGISStore, layer: str) -> Table:
    if layer not in store.tables:
        raise InputError(f"the rules need layer '{layer}', which is not a vector layer of the catalogue")
    return store.tables[layer]


def _column(table: Table, layer: str, name: str) -> ColumnElement[Any]:
    if name not in table.c or name in ("fid", "geom"):
        raise InputError(f"layer '{layer}' has no field {name!r} that a rule filters on")
    return table.c[name]


# --------------------------------------------------------------------------------------------- batches


def _finish_batch(
    rule: ConflictRule,
    rows: Sequence[Any],
    settings: OverlapSettings,
    admin: dict[str, gpd.GeoDataFrame],
) -> gpd.GeoDataFrame:
    """One batch of raw pieces -> patches, by the in-memory engine's own functions."""
    raw = shapely.from_wkb([bytes(row[2]) if row[2] is not None else None for row in rows])
    parts, source, planar = surviving_parts(np.asarray(raw, dtype=object), settings)
    stored_parts, ellipsoidal = to_store_with_areas(parts)
    survivors, stored, part_of = merge_parts(stored_parts, source)
    ids_a = [str(rows[i][0]) for i in survivors.tolist()]
    ids_b: list[str | None] = [None if rule.relation == "difference" else str(rows[i][1]) for i in survivors.tolist()]
    n = len(survivors)
    exempt, basis = exemption_columns(rule, np.asarray([int(rows[i][3]) for i in survivors.tolist()], dtype=np.intp))
    points = shapely.point_on_surface(stored) if n and admin else stored
    store_crs = _crs_of(admin)
    frame = pd.DataFrame(
        {
            "patch_id": pd.Series(
                [patch_id(rule.code, rule.layer_a, i, rule.layer_b, j) for i, j in zip(ids_a, ids_b, strict=True)],
                dtype=object,
            ),
            "rule": pd.Series([rule.code] * n, dtype=object),
            "severity": pd.Series([rule.severity] * n, dtype=object),
            "exempt": exempt,
            "exempt_basis": basis,
            "layer_a": pd.Series([rule.layer_a] * n, dtype=object),
            "id_a": pd.Series(ids_a, dtype=object),
            "layer_b": pd.Series([rule.layer_b] * n, dtype=object),
            "id_b": pd.Series(ids_b, dtype=object),
            "area_m2": np.bincount(part_of, weights=planar, minlength=n).astype("float64"),
            "area_ellipsoid_m2": np.bincount(part_of, weights=ellipsoidal, minlength=n).astype("float64"),
            "town": pd.Series(locate_points(points, admin.get("towns"), TOWN_NAME_FIELD, store_crs), dtype=object),
            "village_code": pd.Series(
                locate_points(points, admin.get("villages"), VILLAGE_CODE_FIELD, store_crs), dtype=object
            ),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(stored, crs=STORE_CRS))[PATCH_COLUMNS]


def _admin_layers(store: PostGISStore) -> dict[str, gpd.GeoDataFrame]:
    """Towns and villages as stored: a few thousand polygons at most, read once for every batch."""
    return {name: store.read(name) for name, _ in _ADMIN if name in store.catalog}


def _crs_of(admin: dict[str, gpd.GeoDataFrame]) -> CRS:
    for frame in admin.values():
        if frame.crs is not None:
            return CRS.from_user_input(frame.crs)
    return CRS.from_user_input(STORE_CRS)


def _empty_patches() -> gpd.GeoDataFrame:
    columns = {c: pd.Series(dtype=PATCH_DTYPES.get(c, object)) for c in PATCH_COLUMNS[:-1]}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=STORE_CRS))[PATCH_COLUMNS]


def run_overlaps_in_database(
    store: LayerStore,
    *,
    rules: Sequence[ConflictRule],
    settings: OverlapSettings = OverlapSettings(),  # noqa: B008 - frozen dataclass
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> gpd.GeoDataFrame:
    """`services.overlap.run_overlaps` by push-down: every patch with its current mark, for the CLI."""
    if not isinstance(store, PostGISStore):
        raise InputError(f"--pushdown needs a PostGIS store (a postgresql:// URL), not {store.url}")
    require_initialised(store)
    patches = find_all_conflicts_in_database(store=store, rules=rules, settings=settings, batch_size=batch_size)
    return with_current_marks(store, patches)
