"""The CLI against hostile input (issue 13): errors stay on one line in logs, invisible ids are refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geoplan.catalog import Catalog
from geoplan.storage.gpkg import GeoPackageStore

GEOPLAN = Path(sys.executable).with_name("geoplan")


def test_a_long_error_is_one_line_when_stderr_is_not_a_terminal(demo_store_path: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a-very-long-folder-name-" * 4) / ("and-a-long-file-name-" * 8 + ".geojson")
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [GEOPLAN, "import", "projects", str(deep), "--store", str(demo_store_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ") and len(errors[0]) > 120 and deep.name in errors[0]


# (A NUL cannot reach the check from a file: GDAL's reader ends the text at it. The API test covers NUL.)
@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\u00a0"], ids=["U+200B", "U+202E", "U+00A0"])
def test_import_refuses_an_id_with_an_invisible_character(
    demo_store_copy: Path, catalog: Catalog, tmp_path: Path, char: str
) -> None:
    from geoplan.cli import main

    store = GeoPackageStore(demo_store_copy, catalog)
    try:
        frame = store.read("projects").head(1)
    finally:
        store.close()
    feature = json.loads(frame.to_json(drop_id=True))["features"][0]
    existing = feature["properties"]["project_id"]
    feature["properties"]["project_id"] = existing[:3] + char + existing[3:]
    path = tmp_path / "lookalike.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), "utf-8")
    before = hashlib.sha256(demo_store_copy.read_bytes()).hexdigest()
    assert main(["import", "projects", str(path), "--mode", "append", "--store", str(demo_store_copy)]) == 2
    assert hashlib.sha256(demo_store_copy.read_bytes()).hexdigest() == before
