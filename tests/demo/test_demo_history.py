"""The demo lived through 2017Q3–2020Q4: every quarter 2017Q4–2020Q4 answers, and equals a recomputation.

For each quarter, `geoplan indicators --quarter Q` (the real CLI) must succeed on the shared demo store, and three
indicators must equal what this test computes itself from the history, read straight from the GeoPackage's
tables with sqlite3 (none of geoplan's replay or indicator code):

- library_towns: the 自助图书馆 standing in each town polygon, where the facilities at Q's end are today's
  minus those whose audited append came later (shapely `covers`);
- sponge_share: the 达标 sponge areas at Q's end (the initial write and each later update, replayed forwards
  from the audit's own features), intersected with the urban plan's construction land (geopandas, EPSG:4547);
- projects_completed: the projects whose latest progress record known at Q's end (recorded by then, for a
  quarter up to Q) says 已完工 (pandas on the records table).

The quarterly snapshots the demo recorded carry the same values. And the store today is what it was before
the demo had a history: the same features as `build_demo` makes, layer by layer.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.demo import build_demo
from geoplan.monitoring.ledger_quarters import Quarter, quarter_range
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

QUARTERS = [str(q) for q in quarter_range(Quarter(2017, 4), Quarter(2020, 4))]
CHECKED = ("library_towns", "sponge_share", "projects_completed")
CST = timedelta(hours=8)
METRIC = "EPSG:4547"


def quarter_end(quarter: str) -> str:
    """The last second of a quarter in Beijing time, as the audit's UTC text."""
    q = Quarter.parse(quarter).next()
    first = datetime.combine(date(q.year, 3 * (q.q - 1) + 1, 1), time(0), tzinfo=UTC) - CST
    return (first - timedelta(seconds=1)).isoformat(timespec="seconds")


def audit(path: Path, layer: str) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT at, action, detail FROM geoplan_audit WHERE layer = ? ORDER BY id", (layer,)
        ).fetchall()
    return [(at, action, json.loads(detail)) for at, action, detail in rows]


def features(items: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame.from_features(items, crs="EPSG:4490")


def library_towns_then(path: Path, store: GeoPackageStore, end: str) -> dict[str, float]:
    appends = [(at, d) for at, action, d in audit(path, "culture_facilities") if action == "write:append"]
    assert all(not d["ids_truncated"] for _, d in appends)
    later = {i for at, d in appends if at > end for i in d["ids"]}
    facilities = store.read("culture_facilities")
    standing = facilities[~facilities["facility_id"].isin(later) & (facilities["kind"] == "自助图书馆")]
    towns = store.read("towns")
    towns = towns[towns["kind"].isin(["town", "subdistrict"])]
    return {
        str(name): float(sum(bool(shapely.covers(geom, p)) for p in standing.geometry))
        for name, geom in zip(towns["town_name"], towns.geometry, strict=True)
    }


def sponge_share_then(path: Path, store: GeoPackageStore, end: str) -> float:
    state: dict[str, dict[str, Any]] = {}
    for at, action, detail in audit(path, "sponge_areas"):
        if at > end:
            break
        assert action in ("write:replace", "update") and detail["after"] is not None
        if action == "write:replace":
            state = {}
        state.update({str(f["properties"]["area_id"]): f for f in detail["after"]})
    areas = features(list(state.values())).to_crs(METRIC)
    assert all(at <= "2017-07-01T02:00:00+00:00" for at, _, _ in audit(path, "urban_plan"))  # the plan stands still
    urban = store.read("urban_plan").to_crs(METRIC)
    built = shapely.union_all(urban[urban["construction"].astype(bool)].geometry.values)
    compliant = shapely.union_all(areas[areas["status"] == "达标"].geometry.values)
    return 100.0 * shapely.intersection(compliant, built).area / built.area


def projects_completed_then(path: Path, quarter: str, end: str) -> float:
    with sqlite3.connect(path) as connection:
        records = pd.read_sql(
            "SELECT id, project_id, quarter, status, recorded_at FROM geoplan_project_progress", connection
        )
    recorded = pd.to_datetime(records["recorded_at"], utc=True)
    known = records[(recorded <= pd.Timestamp(end)).to_numpy() & (records["quarter"] <= quarter).to_numpy()]
    latest = known.sort_values(["project_id", "quarter", "id"]).groupby("project_id").tail(1)
    return float((latest["status"] == "已完工").sum())


@pytest.mark.parametrize("quarter", QUARTERS)
def test_every_quarter_of_the_plan_answers_and_equals_a_recomputation(
    quarter: str, demo_store_path: Path, catalog: Catalog, tmp_path: Path
) -> None:
    out = tmp_path / f"{quarter}.json"
    assert (
        main(
            [
                "indicators",
                "--store",
                str(demo_store_path),
                "--quarter",
                quarter,
                "--only",
                ",".join(CHECKED),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text(encoding="utf-8"))
    end = quarter_end(quarter)
    assert {r["as_of"] for r in rows} == {end}
    value = {(r["indicator"], r["scope_key"]): r["value"] for r in rows}
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        towns = library_towns_then(demo_store_path, store, end)
        share = sponge_share_then(demo_store_path, store, end)
    finally:
        store.close()
    assert {k: value[("library_towns", k)] for k in towns} == towns
    assert value[("sponge_share", "")] == pytest.approx(share, rel=1e-6, abs=1e-9)
    assert value[("projects_completed", "")] == projects_completed_then(demo_store_path, quarter, end)
    # the snapshot the demo recorded for the quarter holds the same numbers
    with sqlite3.connect(demo_store_path) as connection:
        recorded = dict(
            connection.execute(
                "SELECT v.indicator || '|' || v.scope_key, v.value FROM geoplan_indicator_values v "
                "JOIN geoplan_indicator_snapshots s ON s.id = v.snapshot_id WHERE s.quarter = ? AND s.as_of = ?",
                (quarter, end),
            ).fetchall()
        )
    for (indicator, key), number in value.items():
        if number is None:  # no value (a town without built-up area): none recorded either
            assert recorded[f"{indicator}|{key}"] is None, (indicator, key)
        else:
            assert recorded[f"{indicator}|{key}"] == pytest.approx(number, rel=1e-9, abs=1e-9), (indicator, key)


def test_the_history_moves(demo_store_path: Path, catalog: Catalog) -> None:
    """Not a flat line: facilities open, sponge areas reach 达标, projects finish, a plan edit settles conflicts."""
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        first, last = quarter_end("2017Q4"), quarter_end("2020Q4")
        assert sum(library_towns_then(demo_store_path, store, first).values()) <= sum(
            library_towns_then(demo_store_path, store, last).values()
        )
        assert sponge_share_then(demo_store_path, store, first) < sponge_share_then(demo_store_path, store, last)
    finally:
        store.close()
    assert projects_completed_then(demo_store_path, "2017Q4", first) < projects_completed_then(
        demo_store_path, "2020Q4", last
    )
    with sqlite3.connect(demo_store_path) as connection:
        values = dict(
            connection.execute(
                "SELECT s.quarter, v.value FROM geoplan_indicator_values v JOIN geoplan_indicator_snapshots s "
                "ON s.id = v.snapshot_id WHERE v.indicator = 'conflict_area_open' AND v.scope_key = ''"
            ).fetchall()
        )
        quarters = [q for (q,) in connection.execute("SELECT quarter FROM geoplan_indicator_snapshots ORDER BY id")]
    assert quarters == QUARTERS
    assert values["2020Q4"] < values["2017Q4"]  # the land-use plan's adjustments resolved conflicts
    appends = [d for _, a, d in audit(demo_store_path, "culture_facilities") if a == "write:append"]
    assert appends and all(d["backdated"] and len(d["after"]) == len(d["ids"]) for d in appends)


def test_today_the_store_holds_what_the_demo_builds(demo_store_path: Path, catalog: Catalog) -> None:
    built = build_demo(LAYERS_DIR / "sources")
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        for name, frame in built.layers.items():
            layer = catalog.get(name)
            assert layer.id_field is not None
            stored = store.read(name).sort_values(layer.id_field).reset_index(drop=True)
            expected = frame.sort_values(layer.id_field).reset_index(drop=True)
            assert list(stored[layer.id_field]) == list(expected[layer.id_field]), name
            for field in layer.field_names:
                got = [None if pd.isna(v) else v for v in stored[field]]
                want = [None if pd.isna(v) else v for v in expected[field]]
                if layer.field(field).type == "float":
                    assert got == pytest.approx(want), (name, field)
                else:
                    assert got == want, (name, field)
            assert shapely.equals_exact(stored.geometry.values, expected.geometry.values, tolerance=1e-9).all(), name
    finally:
        store.close()


@pytest.mark.postgis
def test_on_postgis_a_quarter_of_the_plan_equals_the_geopackage_demos(
    postgis_url: str, demo_store_path: Path, catalog: Catalog
) -> None:
    """The same history written into PostGIS answers 2019Q2 with every row of the GeoPackage demo's snapshot."""
    from geoplan.demo.history import write_demo
    from geoplan.monitoring.asof import as_of_quarter
    from geoplan.services.indicators import compute_indicators
    from geoplan.storage.postgis import PostGISStore

    store = PostGISStore(postgis_url, catalog)
    try:
        write_demo(
            store, build_demo(LAYERS_DIR / "sources"), layers_dir=LAYERS_DIR, actor="geoplan demo", snapshots=False
        )
        entries = store.audit_log(limit=1000, layer="sponge_areas")
        assert entries and all(e.detail.get("backdated") for e in entries)
        run = compute_indicators(store, layers_dir=LAYERS_DIR, as_of=as_of_quarter("2019Q2"))
    finally:
        store.close()
    end = quarter_end("2019Q2")
    gpkg = GeoPackageStore(demo_store_path, catalog)
    try:
        towns = library_towns_then(demo_store_path, gpkg, end)
    finally:
        gpkg.close()
    assert run.as_of.iso == end
    with sqlite3.connect(demo_store_path) as connection:
        recorded = {
            (indicator, key): value
            for indicator, key, value in connection.execute(
                "SELECT v.indicator, v.scope_key, v.value FROM geoplan_indicator_values v "
                "JOIN geoplan_indicator_snapshots s ON s.id = v.snapshot_id WHERE s.quarter = '2019Q2'"
            )
        }
    got = {(r["indicator"], r["scope_key"]): r["value"] for r in run.table.to_dict("records")}
    assert set(got) == set(recorded)
    for key, value in recorded.items():
        if value is None:
            assert got[key] is None or pd.isna(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert {k: got[("library_towns", k)] for k in towns} == towns  # and the independent count


def test_without_a_quarter_the_indicators_show_the_plans_last_one_and_say_so(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today (2026) is past the plan (layers/plan.yaml, monitored until 2020Q4): the default is 2020Q4's end."""
    out = tmp_path / "default.json"
    assert main(["indicators", "--store", str(demo_store_path), "--only", "projects_overdue", "-o", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "显示 2020Q4 季末" in printed and "showing 2020Q4, the plan's last monitored quarter" in printed
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert {r["as_of"] for r in rows} == {quarter_end("2020Q4")}
    # overdue as of the plan's end, from the records known then: unfinished projects whose end year is over
    end = quarter_end("2020Q4")
    with sqlite3.connect(demo_store_path) as connection:
        projects = pd.read_sql("SELECT project_id, start_year, end_year FROM projects", connection)
        records = pd.read_sql(
            "SELECT id, project_id, quarter, status, progress_pct, recorded_at FROM geoplan_project_progress",
            connection,
        )
    known = records[(pd.to_datetime(records["recorded_at"], utc=True) <= pd.Timestamp(end)).to_numpy()]
    latest = known.sort_values(["project_id", "quarter", "id"]).groupby("project_id").tail(1).set_index("project_id")
    overdue = 0
    for pid, end_year in zip(projects["project_id"], projects["end_year"], strict=True):
        status, progress = (
            ("前期", 0.0) if pid not in latest.index else (latest.loc[pid, "status"], latest.loc[pid, "progress_pct"])
        )
        overdue += int(end_year <= 2020 and progress < 100 and status != "已完工")
    assert next(r["value"] for r in rows if r["scope"] == "district") == overdue


def test_the_demo_needs_a_new_store(tmp_path: Path, catalog: Catalog) -> None:
    """Its history starts in 2017: on a store that already holds data it is refused, before writing anything."""
    from geoplan.demo import DemoData
    from geoplan.demo.history import write_demo
    from geoplan.errors import InputError
    from tests.factories import sample_frame

    store = GeoPackageStore(tmp_path / "used.gpkg", catalog)
    try:
        store.init()
        store.write("towns", sample_frame(catalog.get("towns"), 1))
        empty = DemoData(layers={}, population=None, progress=pd.DataFrame())  # type: ignore[arg-type]
        with pytest.raises(InputError, match="already holds data") as caught:
            write_demo(store, empty, layers_dir=LAYERS_DIR, actor="geoplan demo")
        assert "需要新库" in caught.value.zh
        assert len(store.audit_log()) == 1
    finally:
        store.close()
