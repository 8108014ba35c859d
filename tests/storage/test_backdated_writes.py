"""Writes "as of" a past moment (`at=`), on both store backends: how the demo and history imports record a past.

The audit dates them then and says they were back-dated and when they were really made; the as-of replay then
answers every moment between them; a back-dated write may not go before the layer's newest entry, nor into the
future, nor be naive. The web API offers no way to pass a time (the routers never do; checked by grep here).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf, layer_as_of, raster_as_of
from geoplan.rasterdata import RasterData
from geoplan.storage import LayerStore
from tests.factories import sample_frame

LAYER = "culture_facilities"
T1 = datetime(2017, 7, 1, 2, 0, tzinfo=UTC)
T2 = datetime(2018, 2, 15, 2, 0, tzinfo=UTC)
T3 = datetime(2019, 5, 15, 2, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _ids(frame: pd.DataFrame) -> list[str]:
    return sorted(str(v) for v in frame["facility_id"])


def test_back_dated_writes_are_audited_then_and_replayed(store: LayerStore, catalog: Catalog) -> None:
    layer = catalog.get(LAYER)
    first, added = sample_frame(layer, 4), sample_frame(layer, 2, start=4)
    store.write(LAYER, first, actor="geoplan demo", at=T1)
    store.write(LAYER, added, mode="append", actor="geoplan demo", at=T2)
    renamed = first.iloc[[1]].copy()
    renamed["name"] = "更名后的文化站"
    store.update_features(LAYER, renamed, actor="geoplan demo", at=T3)
    store.delete_features(LAYER, [str(first["facility_id"].iloc[0])], actor="geoplan demo")  # today

    entries = list(reversed(store.audit_log(layer=LAYER)))
    assert [e.at for e in entries[:3]] == [t.isoformat(timespec="seconds") for t in (T1, T2, T3)]
    for entry in entries[:3]:
        assert entry.detail["backdated"] is True
        recorded = datetime.fromisoformat(entry.detail["recorded_at"])
        assert abs(recorded - datetime.now(UTC)) < timedelta(minutes=10)  # really made now
    assert "backdated" not in entries[3].detail

    def at(moment: datetime) -> AsOf:
        return AsOf(at=moment)

    assert len(layer_as_of(store, LAYER, at(T1 - timedelta(seconds=1)))) == 0
    assert _ids(layer_as_of(store, LAYER, at(T1 + timedelta(days=30)))) == _ids(first)
    both = layer_as_of(store, LAYER, at(T3 - timedelta(days=1)))
    assert _ids(both) == _ids(pd.concat([first, added]))
    assert "更名后的文化站" not in set(both["name"])
    later = layer_as_of(store, LAYER, at(T3 + timedelta(days=1)))
    assert later.loc[later["facility_id"] == renamed["facility_id"].iloc[0], "name"].tolist() == ["更名后的文化站"]
    assert len(later) == 6 and store.count(LAYER) == 5


def test_a_back_dated_write_cannot_go_before_the_log_into_the_future_or_be_naive(
    store: LayerStore, catalog: Catalog
) -> None:
    layer = catalog.get(LAYER)
    store.write(LAYER, sample_frame(layer, 2), at=T2)
    with pytest.raises(InputError, match="would go before the layer's latest audited change"):
        store.write(LAYER, sample_frame(layer, 1, start=2), mode="append", at=T1)
    with pytest.raises(InputError, match="in the future"):
        store.write(LAYER, sample_frame(layer, 1, start=2), mode="append", at=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(InputError, match="aware time"):
        store.update_features(LAYER, sample_frame(layer, 1), at=datetime(2019, 1, 1))
    assert store.count(LAYER) == 2 and len(store.audit_log(layer=LAYER)) == 1  # nothing else was written
    # another layer keeps its own order: an earlier date is fine there
    store.write("towns", sample_frame(catalog.get("towns"), 1), at=T1)


def test_a_back_dated_raster_is_the_version_of_its_time(store: LayerStore) -> None:
    def raster(value: float) -> RasterData:
        return RasterData(
            array=np.full((2, 2), value, dtype=np.float32),
            transform=Affine(100.0, 0.0, 370_000.0, 0.0, -100.0, 2_525_200.0),
            crs="EPSG:4547",
            nodata=-1.0,
        )

    store.write_raster("population", raster(1.0), at=T1)
    store.write_raster("population", raster(2.0), at=T3)
    assert raster_as_of(store, "population", AsOf(at=T2)).valid_sum() == 4
    assert raster_as_of(store, "population", AsOf(at=T3)).valid_sum() == 8
    with pytest.raises(InputError, match="did not exist yet"):
        raster_as_of(store, "population", AsOf(at=T1 - timedelta(days=1)))
    assert store.audit_log(layer="population")[0].detail["backdated"] is True


def test_no_router_passes_a_time_to_a_store_write() -> None:
    """Back-dating is for the demo and history imports; an API caller never chooses the audit's time."""
    writes = re.compile(r"\.(write|write_raster|update_features|delete_features)\([^)]*\bat=", re.S)
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "web").rglob("*.py") if writes.search(path.read_text())
    ]
    assert offenders == []
