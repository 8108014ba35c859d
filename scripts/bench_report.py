"""Time the quarterly report and the dashboard API on a copy of a GeoPackage store (the store itself is not touched).

    python scripts/bench_report.py --store data/gaoming.gpkg [--repeat 3]

Takes one snapshot in the copy (so the report has a baseline and a history), then prints, best of `--repeat`:
gathering the report (with and without the maps' per-village coverage), writing each format (seconds, size, PDF
pages), and through FastAPI's TestClient the first and a cached `GET /api/dashboard` and `GET /api/report` per
format with the indicators cached.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geoplan.access import Role
from geoplan.catalog import load_catalog
from geoplan.reporting.render import FORMATS
from geoplan.reporting.report_data import gather_report
from geoplan.reporting.report_pdf import page_plan
from geoplan.services.indicators import record_snapshot
from geoplan.services.tokens import TokenRegistry
from geoplan.settings import Settings
from geoplan.storage import open_store
from geoplan.storage.side_tables import side_table_engine


def best(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path, help="a GeoPackage store (copied first)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    layers_dir = Settings().layers_dir
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.gpkg"
        shutil.copy(args.store, path)
        store = open_store(str(path), load_catalog(layers_dir))
        try:
            record_snapshot(store, layers_dir=layers_dir, actor="bench_report")
            print(f"load average {os.getloadavg()[0]:.2f}")
            seconds, data = best(lambda: gather_report(store, layers_dir=layers_dir), args.repeat)
            bare, _ = best(lambda: gather_report(store, layers_dir=layers_dir, maps=False), args.repeat)
            print(f"gather: {seconds:.2f} s with the maps, {bare:.2f} s without")
            for name, chosen in FORMATS.items():
                seconds, content = best(lambda chosen=chosen: chosen.render(data), args.repeat)
                pages = f", {len(page_plan(data))} pages" if name == "pdf" else ""
                print(f"{name}: {seconds:.2f} s, {len(content) / 1024:.0f} KiB{pages}")
        finally:
            store.close()
        _web(path, layers_dir, args.repeat)
        print(f"load average {os.getloadavg()[0]:.2f}")


def _web(path: Path, layers_dir: Path, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from web.app import create_app
    from web.settings import WebSettings

    registry = TokenRegistry(side_table_engine(str(path)))
    try:
        headers = {"Authorization": f"Bearer {registry.create(name='bench-report', role=Role.STAFF)}"}
    finally:
        registry.close()
    with TestClient(create_app(WebSettings(store=str(path), layers_dir=layers_dir))) as client:
        first, _ = best(lambda: client.get("/api/dashboard", headers=headers).raise_for_status(), 1)
        cached, _ = best(lambda: client.get("/api/dashboard", headers=headers).raise_for_status(), repeat)
        print(f"GET /api/dashboard: first {first:.2f} s, cached {cached:.3f} s")
        for name in FORMATS:
            seconds, _ = best(
                lambda name=name: client.get(f"/api/report?format={name}", headers=headers).raise_for_status(), repeat
            )
            print(f"GET /api/report?format={name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
