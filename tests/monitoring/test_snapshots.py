"""Snapshots, histories and early warnings on both store backends, in a small world with known coverage.

The world, in EPSG:4547 metres: ten 100 m population cells in a row, ten people each; village A (社区, town 甲镇)
holds the western five, village B (村, town 乙镇) the eastern five; a walkable road joins the ten cell centres.
Walking 10 minutes at 4.5 km/h reaches 750 m, so a facility on the first cell centre covers cells 0–7 (80 %: A
100 %, B 60 %); one on the last centre as well covers all; the last one alone covers cells 2–9 (80 %: A 60 %,
B 100 %).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from sqlalchemy import text

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.errors import InputError, NotFoundError
from geoplan.monitoring.asof import LOCAL_TZ
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.snapshots import history, snapshot_registry, warnings
from geoplan.rasterdata import RasterData
from geoplan.services.indicators import record_snapshot
from geoplan.storage import LayerStore
from geoplan.storage.gpkg import GeoPackageStore
from geoplan.storage.side_tables import side_table_engine
from tests.conftest import LAYERS_DIR

X0, Y0 = 370_000.0, 2_525_000.0
METRIC = "EPSG:4547"
COVERAGE_RULES = """\
urban: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}
rural: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}
"""


@pytest.fixture(scope="module")
def layers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's catalogue, indicators and rules, with coverage rules fixed here (the answers depend on them)."""
    folder = tmp_path_factory.mktemp("layers")
    for path in LAYERS_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    (folder / "rules").mkdir()
    for path in (LAYERS_DIR / "rules").glob("*.yaml"):
        shutil.copy(path, folder / "rules" / path.name)
    (folder / "rules" / "coverage.yaml").write_text(COVERAGE_RULES, encoding="utf-8")
    return folder


def _frame(catalog: Catalog, layer: str, rows: list[dict[str, Any]], geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    names = catalog.get(layer).field_names
    data = pd.DataFrame([{name: row.get(name) for name in names} for row in rows], columns=names)
    return gpd.GeoDataFrame(data, geometry=geoms, crs=METRIC).to_crs("EPSG:4490")


def _facility(catalog: Catalog, ident: str, cell: int) -> gpd.GeoDataFrame:
    return _frame(
        catalog,
        "culture_facilities",
        [{"facility_id": ident, "name": ident, "kind": "文化站"}],
        [shapely.Point(X0 + 50 + 100 * cell, Y0 + 50)],
    )


def _build_world(store: LayerStore, catalog: Catalog) -> None:
    box = shapely.box
    store.write(
        "towns",
        _frame(
            catalog,
            "towns",
            [
                {"town_code": "1", "town_name": "甲镇", "kind": "town"},
                {"town_code": "2", "town_name": "乙镇", "kind": "town"},
            ],
            [
                shapely.MultiPolygon([box(X0, Y0 - 500, X0 + 500, Y0 + 600)]),
                shapely.MultiPolygon([box(X0 + 500, Y0 - 500, X0 + 1000, Y0 + 600)]),
            ],
        ),
    )
    store.write(
        "villages",
        _frame(
            catalog,
            "villages",
            [
                {"village_code": "A", "village_name": "甲社区", "town_code": "1", "town": "甲镇", "type": "community"},
                {"village_code": "B", "village_name": "乙村", "town_code": "2", "town": "乙镇", "type": "village"},
            ],
            [
                shapely.MultiPolygon([box(X0, Y0, X0 + 500, Y0 + 100)]),
                shapely.MultiPolygon([box(X0 + 500, Y0, X0 + 1000, Y0 + 100)]),
            ],
        ),
    )
    centres = [(X0 + 50 + 100 * c, Y0 + 50) for c in range(10)]
    store.write(
        "roads",
        _frame(
            catalog,
            "roads",
            [{"road_id": f"R{i}", "road_class": "支路", "walkable": True} for i in range(9)],
            [shapely.MultiLineString([[centres[i], centres[i + 1]]]) for i in range(9)],
        ),
    )
    store.write_raster(
        "population",
        RasterData(
            array=np.full((1, 10), 10.0, dtype=np.float32),
            transform=Affine(100.0, 0.0, X0, 0.0, -100.0, Y0 + 100),
            crs=METRIC,
            nodata=-1.0,
        ),
    )
    store.write("culture_facilities", _facility(catalog, "F1", 0))


def _coverage(store: LayerStore, snapshot_id: int) -> dict[str, float]:
    rows = history(store, "culture_coverage")
    rows = rows[rows["snapshot_id"] == snapshot_id]
    return {str(k): float(v) for k, v in zip(rows["scope_key"], rows["value"], strict=True)}


@pytest.fixture
def world(store: LayerStore, catalog: Catalog) -> Iterator[LayerStore]:
    _build_world(store, catalog)
    yield store


def test_snapshots_show_an_added_facility_and_warn_when_coverage_falls(world: LayerStore, layers_dir: Path) -> None:
    store = world
    first = record_snapshot(store, layers_dir=layers_dir, actor="tester")
    assert first.quarter == str(Quarter.of(datetime.now(LOCAL_TZ).date())) and first.rows > 0
    assert _coverage(store, first.id) == pytest.approx({"": 80.0, "甲镇": 100.0, "乙镇": 60.0}, abs=1e-6)

    store.write("culture_facilities", _facility(store.catalog, "F2", 9), mode="append")
    second = record_snapshot(store, layers_dir=layers_dir, actor="tester")
    assert _coverage(store, second.id) == pytest.approx({"": 100.0, "甲镇": 100.0, "乙镇": 100.0}, abs=1e-6)
    district = history(store, "culture_coverage", "")
    assert list(district["snapshot_id"]) == [first.id, second.id]
    assert list(district["value"]) == pytest.approx([80.0, 100.0])
    assert list(district["target_met"]) == [False, True]  # the plan's last target (90 %, 2019) still holds
    found = warnings(store)
    coverage_warnings = found[found["indicator"] == "culture_coverage"]
    assert coverage_warnings.empty  # all at target, nothing fell
    library = found[(found["indicator"] == "library_towns") & (found["warning"] == "target_missed")]
    assert set(library["scope_key"]) == {"甲镇", "乙镇"}  # neither town has a 自助图书馆

    store.delete_features("culture_facilities", ["F1"])
    third = record_snapshot(store, layers_dir=layers_dir, actor="tester")
    assert _coverage(store, third.id) == pytest.approx({"": 80.0, "甲镇": 60.0, "乙镇": 100.0}, abs=1e-6)
    found = warnings(store)
    assert set(found["snapshot_id"]) == {third.id}
    coverage_warnings = found[found["indicator"] == "culture_coverage"]
    moved = coverage_warnings[coverage_warnings["warning"] == "wrong_direction"]
    assert set(moved["scope_key"]) == {"", "甲镇"}
    assert moved.set_index("scope_key").loc["", "previous_value"] == pytest.approx(100.0)
    assert moved.set_index("scope_key").loc["", "previous_snapshot_id"] == second.id
    missed = coverage_warnings[coverage_warnings["warning"] == "target_missed"]
    assert set(missed["scope_key"]) == {"", "甲镇"}
    assert "misses the target >= 90" in missed["message"].iloc[0]
    # the earlier snapshot's own warnings are still there to read
    earlier = warnings(store, snapshot_id=second.id)
    assert earlier[earlier["indicator"] == "culture_coverage"].empty
    with pytest.raises(NotFoundError):
        warnings(store, snapshot_id=999)
    registry = snapshot_registry(store)
    try:
        assert [s.id for s in registry.snapshots()] == [first.id, second.id, third.id]
        assert registry.latest_id() == third.id
        assert all(s.actor == "tester" and len(s.definitions_sha256) == 64 for s in registry.snapshots())
    finally:
        registry.close()


def _move_audit(store: LayerStore, times: list[str]) -> None:
    """Give the audit entries, oldest first, these times (the last time repeats for any further entries)."""
    engine = side_table_engine(store.url)
    try:
        with engine.begin() as connection:
            ids = connection.execute(text("SELECT id FROM geoplan_audit ORDER BY id")).scalars().all()
            for number, entry in enumerate(ids):
                at = times[min(number, len(times) - 1)]
                connection.execute(text("UPDATE geoplan_audit SET at = :at WHERE id = :id"), {"at": at, "id": entry})
    finally:
        engine.dispose()


def test_a_past_quarter_is_recorded_as_the_layers_were_then(world: LayerStore, layers_dir: Path) -> None:
    store = world
    store.write("culture_facilities", _facility(store.catalog, "F2", 9), mode="append")
    store.delete_features("culture_facilities", ["F1"])
    # the world was built in January, F2 opened in May and F1 closed in August
    _move_audit(store, ["2026-01-05T00:00:00+00:00"] * 5 + ["2026-05-10T00:00:00+00:00", "2026-08-20T00:00:00+00:00"])
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    shots = {
        q: record_snapshot(store, layers_dir=layers_dir, quarter=q, actor="tester", now=now)
        for q in ("2026Q1", "2026Q2", "2026Q3")
    }
    assert shots["2026Q1"].as_of == "2026-03-31T15:59:59+00:00"
    assert _coverage(store, shots["2026Q1"].id)[""] == pytest.approx(80.0)
    assert _coverage(store, shots["2026Q2"].id)[""] == pytest.approx(100.0)
    assert _coverage(store, shots["2026Q3"].id) == pytest.approx({"": 80.0, "甲镇": 60.0, "乙镇": 100.0})
    with pytest.raises(InputError, match="did not exist yet"):
        record_snapshot(store, layers_dir=layers_dir, quarter="2025Q4", actor="tester", now=now)
    with pytest.raises(InputError, match="has not begun"):
        record_snapshot(store, layers_dir=layers_dir, quarter="2027Q1", actor="tester", now=now)
    assert len(snapshot_registry(store).snapshots()) == 3  # refused snapshots record nothing


def test_the_commands(
    tmp_path: Path,
    catalog: Catalog,
    layers_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEOPLAN_LAYERS_DIR", str(layers_dir))
    path = tmp_path / "world.gpkg"
    store = GeoPackageStore(path, catalog)
    store.init()
    _build_world(store, catalog)
    out = tmp_path / "indicators.csv"
    assert main(["indicators", "--store", str(path), "--only", "culture_coverage", "-o", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert dict(zip(table["scope_key"], table["value"], strict=True)) == pytest.approx(
        {"": 80.0, "甲镇": 100.0, "乙镇": 60.0}
    )
    assert main(["snapshot", "--store", str(path)]) == 0
    store.write("culture_facilities", _facility(catalog, "F2", 9), mode="append")
    assert main(["snapshot", "--store", str(path)]) == 0
    capsys.readouterr()
    assert main(["history", "culture_coverage", "--scope", "乙镇", "--store", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "60.00" in shown and "100.00" in shown
    assert main(["warnings", "--store", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "library_towns" in shown and "target_missed" in shown
    assert main(["indicators", "--store", str(path), "--as-of", "2026-13-01"]) == 2
    assert main(["indicators", "--store", str(path), "--as-of", "2026-01-01", "--quarter", "2026Q1"]) == 2
    assert main(["history", "no_such_indicator", "--store", str(path)]) == 2
    assert main(["indicators", "--store", str(path), "-o", str(tmp_path / "out.txt")]) == 2
