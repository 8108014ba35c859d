"""The `virtual_units` switch of the coverage indicators (layers/indicators.yaml): virtual units (prisons, farms)
get no town row, target or early warning by default (`separate`), and town rows of their own with `in_towns`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from geoplan.analysis.coverage import CoverageRules, compute_coverage
from geoplan.analysis.network import build_walk_graph
from geoplan.catalog import Catalog
from geoplan.monitoring.indicator_defs import IndicatorSet, load_indicator_defs, parse_indicator_defs
from geoplan.monitoring.indicators import Inputs
from geoplan.monitoring.indicators_table import evaluate
from geoplan.monitoring.snapshots import Snapshot, find_warnings
from geoplan.storage.gpkg import GeoPackageStore
from tests.conftest import LAYERS_DIR
from tests.monitoring.test_indicators import NOW

VIRTUAL = {"高明监狱", "佛山监狱", "云勇林场", "对川茶场"}


def _definitions(catalog: Catalog, params: dict[str, Any]) -> IndicatorSet:
    common = {"unit": "%", "scopes": ["district", "town"], "good_direction": "up", "params": params}
    target = {"targets": [{"value": 90, "comparison": ">="}]}
    items = [
        {"id": "culture", "title_zh": "文化", "title_en": "culture", "kind": "cultural_coverage", **common, **target},
        {"id": "library", "title_zh": "图书馆", "title_en": "library", "kind": "library_coverage", **common},
    ]
    return parse_indicator_defs({"indicators": items}, catalog=catalog, source="test")


@pytest.fixture(scope="module")
def inputs(demo_store_path: Path, catalog: Catalog) -> Inputs:
    store = GeoPackageStore(demo_store_path, catalog)
    try:
        layers = {name: store.read(name) for name in ("villages", "culture_facilities", "roads")}
        population = store.read_raster("population")
    finally:
        store.close()
    graph = build_walk_graph(roads=layers.pop("roads"))
    return Inputs(layers=layers, as_of=NOW, catalog=catalog, population=population, graph=graph)


def _town_pct(table: pd.DataFrame) -> dict[str, float]:
    """Coverage % per `town` value, summed straight from the village table."""
    sums = table.groupby("town")[["covered_population", "population"]].sum()
    return {str(t): 100.0 * float(r["covered_population"]) / float(r["population"]) for t, r in sums.iterrows()}


def test_the_bundled_definitions_keep_virtual_units_separate(catalog: Catalog) -> None:
    definitions = load_indicator_defs(LAYERS_DIR / "indicators.yaml", catalog=catalog)
    coverage = [d for d in definitions if d.kind in ("cultural_coverage", "library_coverage")]
    assert coverage and all(d.params.get("virtual_units") == "separate" for d in coverage)


@pytest.mark.parametrize("setting", ["separate", "in_towns", None])
def test_virtual_units_switch(inputs: Inputs, catalog: Catalog, setting: str | None) -> None:
    params = {} if setting is None else {"virtual_units": setting}
    table = evaluate(definitions=list(_definitions(catalog, params)), inputs=Inputs(**{**inputs.__dict__, "memo": {}}))
    villages = compute_coverage(
        villages=inputs.layers["villages"],
        facilities=inputs.layers["culture_facilities"],
        population=inputs.population,  # type: ignore[arg-type]
        graph=inputs.graph,
        rules=CoverageRules(),
    ).table
    expected = _town_pct(villages)
    total = 100.0 * villages["covered_population"].sum() / villages["population"].sum()
    culture = table[table["indicator"] == "culture"]
    towns = {str(k): float(v) for k, v in zip(culture["scope_key"], culture["value"], strict=True) if k}
    district = float(culture.loc[culture["scope"] == "district", "value"].iloc[0])
    assert district == pytest.approx(total, abs=1e-9)  # the virtual units count in the district either way
    real = {t: v for t, v in expected.items() if t not in VIRTUAL}
    if setting == "in_towns":
        assert towns == pytest.approx(expected, abs=1e-9)
    else:
        assert towns == pytest.approx(real, abs=1e-9)
    library = table[(table["indicator"] == "library") & (table["scope"] == "town")]
    assert (set(library["scope_key"]) & VIRTUAL) == (VIRTUAL if setting == "in_towns" else set())
    # the early warnings follow the rows: the prisons miss the 90 % target only when they are town rows
    snapshot = Snapshot(id=2, quarter="2026Q4", as_of="", taken_at="", actor="t", definitions_sha256="", rows=0)
    warned = find_warnings(
        current=table.assign(good_direction="up"), previous=None, snapshot=snapshot, previous_id=None
    )
    flagged = set(warned.loc[warned["warning"] == "target_missed", "scope_key"])
    assert (flagged & VIRTUAL) == (VIRTUAL if setting == "in_towns" else set())
    assert {t for t, v in real.items() if v < 90} <= flagged


def test_a_misspelt_switch_is_refused(catalog: Catalog) -> None:
    from geoplan.errors import InputError

    with pytest.raises(InputError, match="virtual_units"):
        _definitions(catalog, {"virtual_units": "towns"})
