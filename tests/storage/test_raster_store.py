"""The raster half of the LayerStore contract, run against the GeoPackage store and a real PostGIS: tiled round
trips, the checks on write, the audit, the version history and as-of, the migration from the old blob table, and
writes that fail leaving the store as it was."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from affine import Affine

from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError
from geoplan.monitoring.asof import AsOf, raster_as_of
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore, is_postgis_url
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine

ORIGIN = Affine(100.0, 0.0, 380_000.0, 0.0, -100.0, 2_530_000.0)


def _raster(rows: int, cols: int, *, seed: int = 1, nodata: float | None = -1.0) -> RasterData:
    rng = np.random.default_rng(seed)
    array = (rng.random((rows, cols)) * 50).astype("float32")
    if nodata is not None:
        array[rng.random((rows, cols)) < 0.2] = nodata
        array[:, : min(cols, 40)] = nodata  # a whole empty strip: the GeoPackage leaves such tiles out
    return RasterData(array, ORIGIN, "EPSG:4547", nodata)


def _same(a: RasterData, b: RasterData) -> None:
    assert a.array.dtype == np.float32 and a.array.shape == b.array.shape
    assert np.array_equal(a.array, b.array)
    assert a.transform == b.transform and a.crs == b.crs and a.nodata == b.nodata


def _engine_run(store: LayerStore, *statements: tuple[str, dict[str, object]]) -> None:
    engine = side_table_engine(store.url)
    try:
        with engine.begin() as connection:
            for sql, params in statements:
                connection.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def _count(store: LayerStore, table: str) -> int:
    engine = side_table_engine(store.url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (256, 256), (300, 520), (513, 257)])
def test_round_trip_over_tile_edges_is_identical(store: LayerStore, rows: int, cols: int) -> None:
    raster = _raster(rows, cols)
    store.write_raster("population", raster)
    _same(store.read_raster("population"), raster)


def test_a_raster_without_nodata_round_trips(store: LayerStore) -> None:
    raster = _raster(270, 300, nodata=None)
    store.write_raster("population", raster)
    _same(store.read_raster("population"), raster)


def test_float64_and_integer_cells_are_stored_as_float32(store: LayerStore) -> None:
    cells = np.arange(12, dtype="float64").reshape(3, 4) / 3
    store.write_raster("population", RasterData(cells, ORIGIN, "EPSG:4547", -1.0))
    back = store.read_raster("population")
    assert back.array.dtype == np.float32 and np.array_equal(back.array, cells.astype("float32"))
    store.write_raster("population", RasterData(np.arange(6, dtype="int32").reshape(2, 3), ORIGIN, "EPSG:4547", -1))
    assert store.read_raster("population").array.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize(
    ("raster", "message"),
    [
        (RasterData(np.ones((2, 2, 2), "float32"), ORIGIN, "EPSG:4547", -1.0), "2-D"),
        (RasterData(np.ones((0, 3), "float32"), ORIGIN, "EPSG:4547", -1.0), "2-D"),
        (RasterData(np.ones((2, 2), "float32"), ORIGIN, "EPSG:4326", -1.0), "reproject"),
        (RasterData(np.array([[1, np.nan]], "float32"), ORIGIN, "EPSG:4547", -1.0), "NaN"),
        (RasterData(np.array([[1, np.inf]], "float64"), ORIGIN, "EPSG:4547", -1.0), "NaN"),
        (RasterData(np.array([[1, 1e300]], "float64"), ORIGIN, "EPSG:4547", -1.0), "too large for float32"),
        (RasterData(np.ones((2, 2), "float32"), Affine(100, 5, 0, 0, -100, 0), "EPSG:4547", -1.0), "north-up"),
        (RasterData(np.ones((2, 2), "float32"), Affine(100, 0, 0, 0, 100, 0), "EPSG:4547", -1.0), "north-up"),
        (RasterData(np.ones((2, 2), "float32"), ORIGIN, "EPSG:4547", float("nan")), "nodata"),
        (RasterData(np.array([["a"]]), ORIGIN, "EPSG:4547", -1.0), "numbers"),
    ],
)
def test_bad_rasters_are_refused_and_leave_the_store_as_it_was(
    store: LayerStore, raster: RasterData, message: str
) -> None:
    kept = _raster(30, 20)
    store.write_raster("population", kept)
    audit = store.audit_log()
    with pytest.raises(InputError, match=message):
        store.write_raster("population", raster)
    _same(store.read_raster("population"), kept)
    assert store.audit_log() == audit
    assert _count(store, "geoplan_raster_versions") == 1


def test_a_write_failing_inside_the_transaction_leaves_nothing(
    store: LayerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _raster(300, 300, seed=2)
    store.write_raster("population", kept)
    audit = store.audit_log()

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")  # after the tiles and the audit entry were written

    monkeypatch.setattr(store, "_insert_version", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        store.write_raster("population", _raster(600, 200, seed=3))
    _same(store.read_raster("population"), kept)
    assert store.audit_log() == audit
    assert _count(store, "geoplan_raster_versions") == 1


def test_the_gpkg_file_is_byte_for_byte_unchanged_by_a_refused_write(tmp_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(tmp_path / "s.gpkg", catalog)
    store.init()
    store.write_raster("population", _raster(40, 40))
    before = hashlib.sha256(store.path.read_bytes()).hexdigest()
    with pytest.raises(InputError):
        store.write_raster("population", RasterData(np.full((3, 3), np.nan), ORIGIN, "EPSG:4547", -1.0))
    assert hashlib.sha256(store.path.read_bytes()).hexdigest() == before


def test_each_write_is_audited_with_shape_and_sum(store: LayerStore) -> None:
    raster = _raster(70, 90)
    store.write_raster("population", raster, actor="cli:analyst")
    (entry,) = store.audit_log(layer="population")
    assert (entry.actor, entry.action, entry.feature_count) == ("cli:analyst", "write:raster", 70 * 90)
    assert entry.detail["shape"] == [70, 90] and entry.detail["crs"] == "EPSG:4547"
    expected = float(raster.array[raster.array != -1].astype("float64").sum())
    assert entry.detail["sum"] == pytest.approx(expected, rel=1e-12)
    assert store.layer_version("population") == entry.id


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_history_keeps_every_version_by_its_audit_time(store: LayerStore) -> None:
    first, second, third = _raster(10, 10, seed=1), _raster(300, 12, seed=2), _raster(5, 600, seed=3, nodata=None)
    for raster in (first, second, third):
        store.write_raster("population", raster)
    ids = [e.id for e in reversed(store.audit_log(layer="population"))]
    times = ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"]
    _engine_run(
        store,
        *(
            (("UPDATE geoplan_audit SET at = :at WHERE id = :id"), {"at": t, "id": i})
            for i, t in zip(ids, times, strict=True)
        ),
    )
    with pytest.raises(NotFoundError):
        store.read_raster_version("population", _at("2025-12-31T23:59:59+00:00"))
    _same(store.read_raster_version("population", _at("2026-01-01T00:00:00+00:00")), first)
    _same(store.read_raster_version("population", _at("2026-01-31T23:00:00-02:00")), second)  # 01:00 UTC, Feb 1
    _same(store.read_raster_version("population", _at("2026-02-28T00:00:00+00:00")), second)
    _same(store.read_raster_version("population", _at("2027-01-01T00:00:00+00:00")), third)
    _same(store.read_raster("population"), third)
    # and the monitoring's as-of answers for every date after the first write
    _same(raster_as_of(store, "population", AsOf(at=_at("2026-01-15T00:00:00+00:00"))), first)
    _same(raster_as_of(store, "population", AsOf(at=_at("2026-02-15T00:00:00+00:00"))), second)
    with pytest.raises(InputError, match="did not exist yet"):
        raster_as_of(store, "population", AsOf(at=_at("2025-06-01T00:00:00+00:00")))


def test_history_is_stored_compressed(store: LayerStore) -> None:
    raster = _raster(400, 400)  # a fifth of the cells nodata, the rest random: little to gain
    store.write_raster("population", raster)
    sparse = np.full((400, 400), -1.0, dtype="float32")
    sparse[100:120, 50:90] = 3.5
    store.write_raster("population", RasterData(sparse, ORIGIN, "EPSG:4547", -1.0))
    engine = side_table_engine(store.url)
    try:
        with engine.connect() as connection:
            sizes = (
                connection.execute(sa.text("SELECT length(data) FROM geoplan_raster_versions ORDER BY id"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert sizes[0] < 400 * 400 * 4  # below raw float32
    assert sizes[1] < 400 * 400 * 4 / 100  # a mostly empty grid shrinks a hundredfold


def _legacy_table(store: LayerStore, raster: RasterData, updated_at: str) -> None:
    """The store as geoplan kept rasters before the tiled form: one GeoTIFF blob per layer in `geoplan_rasters`,
    and the audit entry of its write. The new-form tables that `init` made are emptied."""
    blob_type = "bytea" if is_postgis_url(store.url) else "BLOB"
    statements: list[tuple[str, dict[str, object]]] = [
        (
            "CREATE TABLE geoplan_rasters (name varchar(63) PRIMARY KEY NOT NULL, crs TEXT NOT NULL, width INTEGER "
            f"NOT NULL, height INTEGER NOT NULL, updated_at TEXT NOT NULL, data {blob_type} NOT NULL)",
            {},
        ),
        (
            "INSERT INTO geoplan_rasters VALUES ('population', :crs, :w, :h, :at, :data)",
            {
                "crs": raster.crs,
                "w": raster.array.shape[1],
                "h": raster.array.shape[0],
                "at": updated_at,
                "data": raster.to_geotiff(),
            },
        ),
        (
            "INSERT INTO geoplan_audit (at, actor, layer, action, feature_count, detail) "
            "VALUES (:at, 'geoplan demo', 'population', 'write:raster', :n, '{}')",
            {"at": updated_at, "n": raster.array.size},
        ),
    ]
    if not is_postgis_url(store.url):
        statements.append(
            (
                "INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES "
                "('geoplan_rasters', 'attributes', 'geoplan_rasters')",
                {},
            )
        )
    _engine_run(store, *statements)


def test_init_migrates_the_old_blob_table(store: LayerStore) -> None:
    raster = _raster(333, 280, seed=5)
    _legacy_table(store, raster, "2025-11-01T08:00:00+00:00")
    assert not store.has_raster("population")
    store.init()
    assert store.is_initialised() and store.has_raster("population")
    _same(store.read_raster("population"), raster)
    _same(store.read_raster_version("population", _at("2025-11-02T00:00:00+00:00")), raster)
    with pytest.raises(NotFoundError):
        store.read_raster_version("population", _at("2025-10-31T00:00:00+00:00"))
    engine = side_table_engine(store.url)
    try:
        assert "geoplan_rasters" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert [e.action for e in store.audit_log(layer="population")] == ["write:raster"]  # a move, not a write
    store.init()  # idempotent afterwards
    _same(store.read_raster("population"), raster)
    # a later write starts the history's next version; the migrated one stays readable
    store.write_raster("population", _raster(10, 10, seed=6))
    _same(store.read_raster_version("population", _at("2025-11-02T00:00:00+00:00")), raster)


def test_a_migrated_gpkg_has_no_trace_of_the_old_table(tmp_path: Path, catalog: Catalog) -> None:
    store = GeoPackageStore(tmp_path / "s.gpkg", catalog)
    store.init()
    _legacy_table(store, _raster(20, 20), "2025-11-01T08:00:00+00:00")
    store.init()
    engine = side_table_engine(store.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT table_name, data_type FROM gpkg_contents WHERE table_name LIKE 'geoplan_raster%' "
                    "OR table_name = 'population'"
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(map(tuple, rows)) == [
        ("geoplan_raster_versions", "attributes"),
        ("population", "2d-gridded-coverage"),
    ]


def test_as_of_now_is_the_stored_raster(store: LayerStore) -> None:
    raster = _raster(20, 30)
    store.write_raster("population", raster)
    _same(raster_as_of(store, "population", AsOf(at=datetime.now(UTC), current=True)), raster)
    _same(raster_as_of(store, "population", AsOf(at=datetime.now(UTC))), raster)
