"""`geoplan scenario …` end to end: the commands, their bilingual refusals, and adoption killed mid-transaction.

The kill is no sleep-and-hope: the adopting process runs the real `geoplan scenario adopt` with one store method
wrapped so that, after the first layer's rows are written inside the transaction (and seen there), it SIGKILLs
itself. The live layers must then be exactly as before, the scenario still there, and a second adoption must work.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.services import scenarios as sc
from geoplan.storage import LayerStore, open_store
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import ROOT
from tests.factories import sample_frame

NAME = "新馆方案"
LAYERS = ("projects", "culture_facilities")

KILL_GPKG = textwrap.dedent(
    """
    import os, signal, sys
    from geoplan.storage.gpkg import GeoPackageStore
    wrapped = GeoPackageStore._refresh_extent
    def refresh_then_die(self, connection, layer):
        wrapped(self, connection, layer)  # this layer's rows are written, inside the adoption's transaction
        count = connection.execute(f'SELECT count(*) FROM "{layer}"').fetchone()[0]
        print(f"inside {layer} {count}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    GeoPackageStore._refresh_extent = refresh_then_die
    from geoplan.cli import main
    sys.exit(main(["scenario", "adopt", sys.argv[1], "--store", sys.argv[2]]))
    """
)

KILL_POSTGIS = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import text
    from geoplan.storage.postgis import PostGISStore
    wrapped = PostGISStore._audit
    def audit_then_die(self, connection, actor, layer, action, count, detail, *, at=None):
        result = wrapped(self, connection, actor, layer, action, count, detail, at=at)
        rows = connection.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one()
        print(f"inside {layer} {rows}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    PostGISStore._audit = audit_then_die
    from geoplan.cli import main
    sys.exit(main(["scenario", "adopt", sys.argv[1], "--store", sys.argv[2]]))
    """
)


def _snapshot(store: LayerStore) -> dict[str, tuple[int, dict[str, object]]]:
    return {name: (store.layer_version(name), store.read(name).to_wkt().to_dict()) for name in LAYERS}


def _draft_with_the_cli(store_arg: str, folder: Path, catalog: Catalog, live: LayerStore) -> None:
    """A scenario touching two layers: a new facility (from a file), a renamed project (--replace), a deletion."""
    assert main(["scenario", "create", NAME, "--store", store_arg]) == 0
    new = sample_frame(catalog.get("culture_facilities"), 1, start=900)
    new["village_code"] = live.read("villages")["village_code"].iloc[0] if live.count("villages") else "v"
    new = new.set_geometry([shapely.Point(112.86, 22.89)], crs=new.crs)
    new.to_file(folder / "new.geojson", driver="GeoJSON")
    assert main(["scenario", "add", NAME, "culture_facilities", str(folder / "new.geojson"), "--store", store_arg]) == 0
    renamed = live.read("projects").iloc[[0]].copy()
    renamed["name"] = "方案中改名"
    renamed.to_file(folder / "renamed.geojson", driver="GeoJSON")
    args = ["scenario", "add", NAME, "projects", str(folder / "renamed.geojson"), "--replace", "--store", store_arg]
    assert main(args) == 0
    gone = str(live.read("projects").iloc[1]["project_id"])
    assert main(["scenario", "add", NAME, "projects", "--delete-ids", gone, "--store", store_arg]) == 0


def _kill_mid_adoption(script: str, store_arg: str, live: LayerStore) -> None:
    before = _snapshot(live)
    run = subprocess.run(
        [sys.executable, "-c", script, NAME, store_arg], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == -9, run.stderr
    inside = run.stdout.split()
    assert inside[0] == "inside" and inside[1] in LAYERS
    # the rows had changed inside the transaction …
    assert int(inside[2]) != len(before[inside[1]][1]["geometry"])  # type: ignore[index]
    # … and none of it survived the kill
    assert _snapshot(live) == before
    assert [s.name for s in sc.list_scenarios(live)] == [NAME]
    # the store is sound: the same scenario adopts now
    assert main(["scenario", "adopt", NAME, "--store", store_arg]) == 0
    after = _snapshot(live)
    assert all(after[name][0] > before[name][0] for name in LAYERS)
    assert sc.list_scenarios(live) == []


def test_adoption_killed_mid_transaction_leaves_the_geopackage_unchanged(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path
) -> None:
    live = GeoPackageStore(demo_store_copy, catalog)
    try:
        _draft_with_the_cli(str(demo_store_copy), tmp_path, catalog, live)
        _kill_mid_adoption(KILL_GPKG, str(demo_store_copy), live)
        assert "方案中改名" in set(live.read("projects")["name"])
    finally:
        live.close()


@pytest.mark.postgis
def test_adoption_killed_mid_transaction_leaves_postgis_unchanged(
    postgis_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    live = open_store(postgis_url, catalog)
    try:
        live.init()
        live.write("villages", sample_frame(catalog.get("villages"), 2))
        live.write("projects", sample_frame(catalog.get("projects"), 4))
        live.write("culture_facilities", sample_frame(catalog.get("culture_facilities"), 5))
        _draft_with_the_cli(postgis_url, tmp_path, catalog, live)
        _kill_mid_adoption(KILL_POSTGIS, postgis_url, live)
    finally:
        live.close()


def test_the_commands_from_create_to_discard(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(demo_store_copy)
    assert main(["scenario", "create", "甲", "--store", store]) == 0
    assert (
        main(["scenario", "add", "甲", "culture_facilities", "--delete-ids", "CF-0001,CF-0002", "--store", store]) == 0
    )
    capsys.readouterr()
    assert main(["scenario", "list", "--store", store]) == 0
    listed = capsys.readouterr().out
    assert "甲" in listed and "culture_facilities" in listed
    out = tmp_path / "diff.geojson"
    assert main(["scenario", "diff", "甲", "-o", str(out), "--store", store]) == 0
    printed = capsys.readouterr().out
    assert "生活圈覆盖变化" in printed and "culture_coverage" in printed and "nan" not in printed.lower()
    assert gpd.read_file(out).empty  # closing two facilities adds or removes no conflict patch
    assert main(["scenario", "discard", "甲", "--store", store]) == 0
    live = GeoPackageStore(demo_store_copy, catalog)
    try:
        assert {"CF-0001", "CF-0002"} <= set(live.read("culture_facilities")["facility_id"])
        assert sc.list_scenarios(live) == []
    finally:
        live.close()


@pytest.mark.parametrize(
    ("args", "english", "chinese"),
    [
        (
            ["add", "nope", "culture_facilities", "--delete-ids", "x"],
            "no scenario named 'nope'",
            "没有名为“nope”的方案",
        ),
        (["add", "甲", "no_such_layer", "--delete-ids", "x"], "no layer 'no_such_layer'", "没有图层“no_such_layer”"),
        (["add", "甲", "culture_facilities", "missing.geojson"], "missing.geojson", "无法读取"),
        (["add", "甲", "culture_facilities", "--delete-ids", "CF-9999"], "no feature", "没有编号为 CF-9999"),
        (["add", "甲", "culture_facilities"], "either FILE", "二者选一"),
        (["adopt", "nope"], "no scenario named 'nope'", "没有名为“nope”的方案"),
        (["discard", "nope"], "no scenario named 'nope'", "没有名为“nope”的方案"),
        (["create", "甲"], "exists already", "已有名为“甲”的方案"),
    ],
)
def test_refusals_are_in_chinese_and_english(
    demo_store_copy: Path, capsys: pytest.CaptureFixture[str], args: list[str], english: str, chinese: str
) -> None:
    assert main(["scenario", "create", "甲", "--store", str(demo_store_copy)]) == 0
    capsys.readouterr()
    assert main(["scenario", *args, "--store", str(demo_store_copy)]) == 2
    said = capsys.readouterr().err
    assert english in said and chinese in said
    assert "Traceback" not in said
