"""A writer killed in the middle of a write leaves the store as it was, on both backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from geoplan.catalog import Catalog
from geoplan.storage import LayerStore
from tests.conftest import ROOT
from tests.factories import sample_frame

WRITER = textwrap.dedent(
    """
    import sys
    import geopandas as gpd, numpy as np, shapely
    from geoplan.catalog import load_catalog
    from geoplan.storage import open_store
    from tests.factories import sample_frame
    catalog = load_catalog(__import__("pathlib").Path("layers"))
    store = open_store(sys.argv[1], catalog)
    frame = sample_frame(catalog.get("culture_facilities"), 400_000, start=1_000_000)
    print("writing", flush=True)
    store.write("culture_facilities", frame, mode="replace")
    print("finished", flush=True)
    """
)


def test_killed_writer_leaves_store_unchanged(store: LayerStore, catalog: Catalog) -> None:
    original = sample_frame(catalog.get("culture_facilities"), 7)
    store.write("culture_facilities", original)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, store.url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(1.0)  # let the transaction start and insert a good share of rows
    assert writer.poll() is None, "the writer finished before it could be killed; make the write larger"
    writer.kill()
    writer.wait(timeout=30)
    assert writer.returncode != 0
    assert store.count("culture_facilities") == 7
    assert sorted(store.read("culture_facilities")["facility_id"]) == sorted(original["facility_id"])
