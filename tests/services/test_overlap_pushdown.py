"""The overlap pushed down to PostGIS against the in-memory engine, on the demo and on a synthetic set.

Both paths read the same PostGIS tables. The in-memory engine (`find_conflicts`, itself checked against a
brute-force shapely reference and an independent SQL in the other overlap tests) is the reference here: the
push-down must give the same patches, ids, places and areas, in bounded batches through a server-side cursor,
and must bind a rule's filter values rather than execute them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from geoplan.analysis.overlap import PATCH_COLUMNS, OverlapSettings, find_conflicts
from geoplan.analysis.rules import ConflictRule
from geoplan.analysis.summary import summarise
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.crs import METRIC_CRS, STORE_CRS
from geoplan.errors import InputError
from geoplan.services.overlap import run_overlaps
from geoplan.services.overlap_pushdown import find_all_conflicts_in_database, find_conflicts_in_database
from geoplan.services.rule_files import rules_for
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.postgis import PostGISStore, engine_url
from tests.conftest import LAYERS_DIR
from tests.plans import X0, Y0, plan, rule

pytestmark = pytest.mark.postgis
ABS_M2 = 1e-6
REL = 1e-9


@pytest.fixture(scope="module")
def demo_url(postgis_server: str) -> Iterator[str]:
    """One database holding the demo (built by `geoplan demo`), shared read-only by this module's tests."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(engine_url(postgis_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgis_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        assert main(["demo", "--store", url, "--no-snapshots"]) == 0
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _as_lists(frame: pd.DataFrame) -> list[list[object]]:
    """Rows as plain Python values (missing as None), whatever dtype each path's columns came with."""
    plain = pd.DataFrame(frame).astype(object)
    return [[None if pd.isna(v) else v for v in row] for row in plain.itertuples(index=False)]


def _assert_same_patches(pushed: gpd.GeoDataFrame, memory: gpd.GeoDataFrame, *, atol: float = ABS_M2) -> None:
    """Same rows in the same order: ids, sources, places; areas within 1e-6 m² or 1e-9 relative."""
    assert list(pushed.columns) == PATCH_COLUMNS
    assert pushed.crs == memory.crs == STORE_CRS
    assert len(pushed) == len(memory)
    assert pushed["patch_id"].is_unique
    text = ["patch_id", "rule", "severity", "exempt", "exempt_basis", "layer_a", "id_a", "layer_b", "id_b", "town"]
    text.append("village_code")
    assert _as_lists(pushed[text]) == _as_lists(memory[text])
    for column in ("area_m2", "area_ellipsoid_m2"):
        np.testing.assert_allclose(pushed[column], memory[column], rtol=REL, atol=atol)
        by_rule_p = pushed.groupby("rule")[column].sum()
        by_rule_m = memory.groupby("rule")[column].sum()
        np.testing.assert_allclose(by_rule_p, by_rule_m.loc[by_rule_p.index], rtol=REL, atol=atol)
        assert float(pushed[column].sum()) == pytest.approx(float(memory[column].sum()), rel=REL, abs=atol)
    # the geometries themselves: symmetric difference negligible against the patch
    sym = shapely.area(
        shapely.symmetric_difference(
            pushed.to_crs(METRIC_CRS).geometry.to_numpy(), memory.to_crs(METRIC_CRS).geometry.to_numpy()
        )
    )
    assert float(np.max(sym)) < max(atol, 1e-6)


def test_demo_pushdown_equals_the_in_memory_engine(demo_url: str, catalog: Catalog) -> None:
    rules = rules_for(catalog, LAYERS_DIR)
    store = PostGISStore(demo_url, catalog)
    try:
        memory = run_overlaps(store, rules=rules, with_marks=False)
        pushed = find_all_conflicts_in_database(store=store, rules=rules)
        # No width rule and a 0.01 m² floor. Without the width rule the thin strips stay, and their overlay is
        # where the two GEOS builds (shapely's and the server's) differ: up to 1.4e-4 m² on sub-m² strips. With
        # no floor at all, crumbs of 1e-10..1e-7 m² come and go on either side.
        loose = OverlapSettings(min_area_m2=0.01, min_width_m=0.0)
        memory_loose = run_overlaps(store, rules=rules, settings=loose, with_marks=False)
        pushed_loose = find_all_conflicts_in_database(store=store, rules=rules, settings=loose)
    finally:
        store.close()
    assert set(pushed["rule"]) == {r.code for r in rules}  # every rule has patches on the demo
    assert pushed["town"].notna().all()
    assert pushed["exempt"].dtype == bool and 0 < int(pushed["exempt"].sum()) < len(pushed)
    _assert_same_patches(pushed, memory)
    _assert_same_patches(pushed_loose, memory_loose, atol=1e-3)
    assert len(pushed_loose) > len(pushed)  # the sliver rule did drop something


def test_ellipsoidal_area_against_geod_and_postgis_geography(demo_url: str, catalog: Catalog) -> None:
    """The reported ellipsoidal area against pyproj.Geod and PostGIS's ST_Area(geography), patch by patch."""
    rules = rules_for(catalog, LAYERS_DIR)
    store = PostGISStore(demo_url, catalog)
    try:
        pushed = find_all_conflicts_in_database(store=store, rules=rules)
        with store.engine.connect() as connection:
            geography = np.array(
                [
                    connection.execute(
                        sa.text("SELECT ST_Area(ST_GeomFromWKB(:g, 4490)::geography, true)"), {"g": g.wkb}
                    ).scalar_one()
                    for g in pushed.geometry
                ]
            )
    finally:
        store.close()
    geod = gpd.GeoSeries(pushed.geometry, crs=STORE_CRS).crs.get_geod()
    geod_area = np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in pushed.geometry])
    reported = pushed["area_ellipsoid_m2"].to_numpy()
    big = reported > 1000.0  # on crumbs Geod itself is the less precise (geoplan.analysis.areas)
    rel_geod = np.abs(reported - geod_area)[big] / geod_area[big]
    rel_pg = np.abs(reported - geography)[big] / geography[big]
    print(f"ellipsoidal vs Geod: max rel {rel_geod.max():.1e}; vs ST_Area(geography): max rel {rel_pg.max():.1e}")
    assert rel_geod.max() < 1e-6
    assert rel_pg.max() < 1e-6
    assert reported.sum() == pytest.approx(geod_area.sum(), rel=1e-7)
    assert reported.sum() == pytest.approx(geography.sum(), rel=1e-7)


# --------------------------------------------------------------------------------------------- synthetic


def _voronoi_plan(n: int, seed: int, prefix: str, *, extent: float = 6000.0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    seeds = rng.uniform((X0, Y0), (X0 + extent, Y0 + extent), (n, 2))
    frame = shapely.box(X0, Y0, X0 + extent, Y0 + extent)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds))), frame)
    construction = rng.random(len(cells)) < 0.5
    return plan([shapely.MultiPolygon([c]) for c in cells], prefix=prefix, construction=construction.tolist()).to_crs(
        STORE_CRS
    )


@pytest.fixture(scope="module")
def synthetic_url(postgis_server: str, catalog: Catalog) -> Iterator[str]:
    """Two 2,500-cell Voronoi plans over the same 6 x 6 km square: several thousand patches per rule."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(engine_url(postgis_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgis_server.rsplit("/", 1)[0] + f"/{name}"
    store = PostGISStore(url, catalog)
    try:
        store.init()
        urban = _voronoi_plan(2500, 1, "UP")
        urban.loc[7, "parcel_id"] = "UP-'quoted\"id"  # a real id with quotes, reached through a bound filter
        store.write("urban_plan", urban)
        store.write("landuse_plan", _voronoi_plan(2500, 2, "LU"))
        yield url
    finally:
        store.close()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


SYNTHETIC_RULES = [
    rule("intersection", code="X"),
    rule("intersection", code="XF", filter_a=(("construction", (True,)),), filter_b=(("construction", (False,)),)),
    rule("difference", code="D", filter_b=(("construction", (True,)),)),
]


def _in_memory(store: PostGISStore, rules: list[ConflictRule], settings: OverlapSettings) -> gpd.GeoDataFrame:
    layers = {"urban_plan": store.read("urban_plan"), "landuse_plan": store.read("landuse_plan")}
    return find_conflicts(layers=layers, catalog=store.catalog, rules=rules, settings=settings)


def test_synthetic_thousands_of_patches_in_bounded_batches(synthetic_url: str, catalog: Catalog) -> None:
    settings = OverlapSettings()
    store = PostGISStore(synthetic_url, catalog)
    watcher = sa.create_engine(engine_url(synthetic_url))
    fetches: list[str] = []
    batches: list[gpd.GeoDataFrame] = []
    try:
        memory = _in_memory(store, SYNTHETIC_RULES, settings)
        for batch in find_conflicts_in_database(store=store, rules=SYNTHETIC_RULES, settings=settings, batch_size=700):
            batches.append(batch)
            if len(batches) == 1:  # the query is still open: another session sees it fetching from a cursor
                with watcher.connect() as connection:
                    fetches = (
                        connection.execute(
                            sa.text(
                                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid() AND query ILIKE 'FETCH FORWARD%'"
                            )
                        )
                        .scalars()
                        .all()
                    )
    finally:
        watcher.dispose()
        store.close()
    sizes = [len(b) for b in batches]
    print(f"{len(memory)} patches in {len(batches)} batches: {sizes}")
    assert fetches, "the rows are not fetched through a server-side cursor"
    assert len(memory) > 5000
    assert max(sizes) <= 700
    assert len(batches) >= len(memory) // 700
    assert all(b["rule"].nunique() == 1 for b in batches)
    pushed = gpd.GeoDataFrame(pd.concat(batches, ignore_index=True), geometry="geometry", crs=STORE_CRS)
    _assert_same_patches(pushed, memory)
    assert pushed.groupby("rule").size().min() > 1000


def test_filter_values_are_bound_not_executed(synthetic_url: str, catalog: Catalog) -> None:
    store = PostGISStore(synthetic_url, catalog)
    try:
        before = store.count("urban_plan")
        hostile = [
            "x' OR '1'='1",
            "'); DROP TABLE urban_plan; --",
            "UP-0001' OR true --",
        ]
        nothing = rule("intersection", code="H", filter_a=(("parcel_id", tuple(hostile)),))
        assert len(find_all_conflicts_in_database(store=store, rules=[nothing], locate=False)) == 0
        assert store.count("urban_plan") == before
        quoted = rule("intersection", code="Q", filter_a=(("parcel_id", ("UP-'quoted\"id", *hostile)),))
        pushed = find_all_conflicts_in_database(store=store, rules=[quoted], locate=False)
        memory = _in_memory(store, [quoted], OverlapSettings())
        assert len(pushed) > 0
        assert set(pushed["id_a"]) == {"UP-'quoted\"id"}
        _assert_same_patches(pushed, memory)
        bad_field = rule("intersection", code="F", filter_a=(('construction" = true OR "construction', (True,)),))
        with pytest.raises(InputError, match="no field"):
            list(find_conflicts_in_database(store=store, rules=[bad_field]))
    finally:
        store.close()


# --------------------------------------------------------------------------------------------- CLI


def test_cli_pushdown_prints_the_same_totals(demo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["overlaps", "--store", demo_url]) == 0
    memory = capsys.readouterr().out
    assert main(["overlaps", "--store", demo_url, "--pushdown"]) == 0
    pushed = capsys.readouterr().out
    assert "ECO_PROJECT" in pushed
    assert pushed == memory


def test_postgis_and_geopackage_give_the_same_patches_exemptions_and_totals(
    demo_url: str, demo_store_path: Path, catalog: Catalog
) -> None:
    """The demo built into each store: the same patches, marked exempt alike, and the same totals."""
    rules = rules_for(catalog, LAYERS_DIR)
    stores = [PostGISStore(demo_url, catalog), GeoPackageStore(demo_store_path, catalog)]
    try:
        postgis, gpkg = (run_overlaps(store, rules=rules, with_marks=False) for store in stores)
    finally:
        for store in stores:
            store.close()
    keys = ["patch_id", "rule", "exempt", "exempt_basis", "id_a", "id_b", "town"]
    assert _as_lists(postgis[keys]) == _as_lists(gpkg[keys])
    np.testing.assert_allclose(postgis["area_m2"], gpkg["area_m2"], rtol=1e-9, atol=1e-6)
    one, other = summarise(postgis, rules=rules), summarise(gpkg, rules=rules)
    pd.testing.assert_frame_equal(one.by_rule, other.by_rule, rtol=1e-9)
    pd.testing.assert_frame_equal(one.exempt, other.exempt, rtol=1e-9)
    assert one.exempt_patches == int(gpkg["exempt"].sum()) > 0


def test_cli_pushdown_refuses_a_geopackage(demo_store_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["overlaps", "--store", str(demo_store_path), "--pushdown"]) == 2
    assert "PostGIS" in capsys.readouterr().err
