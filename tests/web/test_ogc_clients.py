"""Real clients against a live server on the demo store: OWSLib (queryables, a CQL2 filter, a CRS by URI)
and QGIS 3.22 (Debian's python3-qgis, in its own Python) through its OAPIF provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from owslib.ogcapi.features import Features

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import ROOT
from tests.web.live_server import live_server

E4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian installs QGIS's bindings
PROBE = ROOT / "tests" / "web" / "qgis_oapif_probe.py"


@pytest.fixture(scope="module")
def demo_server(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("ogc-clients") / "gaoming.gpkg"
    shutil.copy(demo_store_path, path)
    with live_server(path, path.with_suffix(".log")) as base:
        yield base, path


def test_owslib_queryables_filter_and_crs(demo_server: tuple[str, Path], catalog: Catalog) -> None:
    base, path = demo_server
    frame = GeoPackageStore(path, catalog).read("projects")
    api = Features(f"{base}/ogc")
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in api.conformance()["conformsTo"]
    queryables = api.collection_queryables("projects")
    assert set(queryables["properties"]) == {*catalog.get("projects").public_fields, "geometry"}

    status = frame["status"].iloc[0]
    text = f"status = '{status}' AND progress_pct >= 50"
    body = api.collection_items("projects", limit=1000, filter=text, **{"filter-lang": "cql2-text"})
    want = set(frame.loc[(frame["status"] == status) & (frame["progress_pct"] >= 50), "project_id"])
    assert {f["id"] for f in body["features"]} == want and body["numberMatched"] == len(want) > 0

    plain = api.collection_items("projects", limit=3)
    in_4490 = api.collection_items("projects", limit=3, crs=E4490)
    for a, b in zip(plain["features"], in_4490["features"], strict=True):
        lon, lat = a["geometry"]["coordinates"][0][0][0]
        assert b["geometry"]["coordinates"][0][0][0] == pytest.approx([lat, lon])


def test_qgis_loads_every_public_collection(demo_server: tuple[str, Path], catalog: Catalog) -> None:
    base, path = demo_server
    store = GeoPackageStore(path, catalog)
    public = sorted(layer.name for layer in catalog.vector_layers() if layer.public)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PROJ_DATA": "/usr/share/proj", "PYTHONPATH": ""}
    env.pop("PYTHONHOME", None)
    run = subprocess.run(
        [SYSTEM_PYTHON, str(PROBE), f"{base}/ogc", *public],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["version"].startswith("3.")
    for name in public:
        layer = seen["layers"][name]
        count = store.count(name)
        assert layer["valid"], name
        assert layer["featureCount"] == layer["iterated"] == count, name
        # QGIS 3.22 knows no Part 2: it always works in CRS84, which it reports as EPSG:4326.
        assert layer["crs"] == "EPSG:4326", name
        assert set(catalog.get(name).public_fields) <= set(layer["fields"]), name
    frame = store.read("projects")
    projects = seen["layers"]["projects"]
    assert projects["subsetAccepted"] and projects["subsetCount"] == int((frame["status"] == "在建").sum())
