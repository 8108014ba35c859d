"""A run whose input is larger than the configured memory limit finishes, every process under that limit.

Two layers of synthetic parcels are written to a GeoPackage store. A fresh process measures how much memory
they take once read into frames (what the in-memory engine must hold before it starts): more than the limit.
Then `geoplan overlaps --partitioned --out-of-core` runs in its own process with two dask worker processes
held to the limit, and reports the peak resident memory (VmHWM) of itself and of each worker: all under it.
The patches it writes are checked against its own totals; that the out-of-core patches equal the in-memory
engine's is shown on smaller sets in test_overlap_out_of_core.py and at 1M x 1M by scripts/bench_scale.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest
import yaml

from geoplan.catalog import Catalog
from geoplan.demo.synthetic_parcels import LAYERS, parcel_chunk, parcel_rules
from geoplan.services.overlap_out_of_core import id_digest
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR

PARCELS = 500_000  # a layer
LIMIT = "800MB"  # per process; dask reads it as 800e6 bytes
LIMIT_MIB = 800e6 / 2**20
CHUNK = 100_000
ROOT = Path(__file__).resolve().parents[2]
MEASURE = """
import json, sys
from pathlib import Path
from geoplan.catalog import load_catalog
from geoplan.peak_memory import current_rss_mb
from geoplan.storage.gpkg import GeoPackageStore

store = GeoPackageStore(Path(sys.argv[1]), load_catalog(Path(sys.argv[2])))
before = current_rss_mb()
layers = [store.read(name) for name in ("urban_plan", "landuse_plan")]
print(json.dumps({"held_mb": current_rss_mb() - before, "rows": sum(len(f) for f in layers)}))
"""


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    path = tmp_path_factory.mktemp("big") / "parcels.gpkg"
    store = GeoPackageStore(path, catalog)
    try:
        store.init()
        for name in LAYERS:
            for start in range(0, PARCELS, CHUNK):
                frame = parcel_chunk(PARCELS, name, start, min(PARCELS, start + CHUNK))
                store.write(name, frame, mode="replace" if start == 0 else "append", actor="test")
    finally:
        store.close()
    return path


def _rules_file(path: Path) -> Path:
    rules = []
    for rule in parcel_rules():
        item = {
            key: getattr(rule, key)
            for key in ("code", "title_zh", "title_en", "severity", "relation", "layer_a", "layer_b", "basis")
        }
        for side in ("filter_a", "filter_b"):
            conditions = getattr(rule, side)
            if conditions:
                item[side] = {field: list(values) for field, values in conditions}
        rules.append(item)
    path.write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8")
    return path


def test_an_input_larger_than_the_limit_runs_with_every_process_under_it(big_store: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(big_store), str(LAYERS_DIR)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    held = json.loads(measured.stdout.strip().splitlines()[-1])
    assert held["rows"] == 2 * PARCELS
    assert held["held_mb"] > LIMIT_MIB, held  # the input does not fit under the limit

    out = tmp_path / "patches.gpkg"
    command = [sys.executable, "-m", "geoplan", "overlaps", "--store", str(big_store)]
    command += ["--rules", str(_rules_file(tmp_path / "rules.yaml")), "--partitioned", "--out-of-core"]
    command += ["--workers", "2", "--partition-rows", "10000", "-o", str(out)]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**env, "GEOPLAN_DASK_MEMORY_LIMIT": LIMIT, "GEOPLAN_LAYERS_DIR": str(LAYERS_DIR)},
        timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = " ".join(run.stdout.split())  # the terminal width may wrap the line anywhere
    report = re.search(
        r"([\d,]+) patch\(es\), ([\d,.]+) m², id digest (\w+); .*peak memory: this process ([\d,]+) MB, "
        r"workers ([\d, ]+) MB",
        printed,
    )
    assert report is not None, printed[-3000:]
    patches = int(report.group(1).replace(",", ""))
    client_peak = float(report.group(4).replace(",", ""))
    worker_peaks = [float(v.replace(",", "")) for v in report.group(5).split(", ")]
    assert len(worker_peaks) == 2
    assert client_peak < LIMIT_MIB and all(peak < LIMIT_MIB for peak in worker_peaks), printed[-1500:]
    # The file written task by task holds what the run counted.
    written = pyogrio.read_dataframe(out, columns=["patch_id", "area_m2"], read_geometry=False)
    assert patches > PARCELS and len(written) == patches
    assert written["patch_id"].is_unique
    assert id_digest(written["patch_id"]) == report.group(3)
    assert float(written["area_m2"].sum()) == pytest.approx(float(report.group(2).replace(",", "")), abs=1e-3)
