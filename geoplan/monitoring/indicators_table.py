"""The tidy indicator table: every indicator's rows with their unit, the target that applies, and whether it is met.

One row per (indicator, scope, scope_key), columns `RESULT_COLUMNS`:

indicator        the indicator id (layers/indicators.yaml)
scope            district | town | rule | status | task_area | task_area_status | town_status | a field name
scope_key        the town, rule code, status, … ("" for the district; "A|B" for two-level scopes)
value            in `unit` (NaN when there is nothing to measure; `note` says why)
value_ellipsoid  areas only: the same area on the CGCS2000 ellipsoid, in `unit` (NaN otherwise)
unit             %, m2, ha, km2, or a counting word
target           the target value that applies in the as-of year (NaN without a target)
target_op        >= or <= ("" without a target)
target_year      the year the target is due (NaN: always, or no target)
target_met       True / False, or None (no target, or no value)
note             "" or why the value is missing ("no data: …", "no population", "no built-up area")
as_of            the moment the values describe (ISO 8601, UTC)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from geoplan.monitoring.indicator_columns import MEASURE_COLUMNS
from geoplan.monitoring.indicator_defs import IndicatorDef
from geoplan.monitoring.indicator_kinds import KINDS
from geoplan.monitoring.indicators import KIND_COLUMNS, Inputs

__all__ = ["RESULT_COLUMNS", "empty_result", "evaluate"]

RESULT_COLUMNS = [*MEASURE_COLUMNS, "note", "as_of"]


def empty_result() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in RESULT_COLUMNS})


def evaluate(*, definitions: Sequence[IndicatorDef], inputs: Inputs) -> pd.DataFrame:
    """Compute every definition on `inputs` (in the given order) into one tidy table."""
    frames = [_one(definition, inputs) for definition in definitions]
    if not frames:
        return empty_result()
    table = pd.concat(frames, ignore_index=True)
    return table[RESULT_COLUMNS]


def _one(definition: IndicatorDef, inputs: Inputs) -> pd.DataFrame:
    kind = KINDS[definition.kind]
    raw = kind.function(inputs=inputs, params=definition.params, scopes=definition.scopes)
    missing = [c for c in KIND_COLUMNS if c not in raw.columns]
    if missing:  # pragma: no cover - a kind's own bug
        raise RuntimeError(f"kind {kind.name} returned no column(s) {', '.join(missing)}")
    factor = definition.unit_factor
    target = definition.target_for(inputs.as_of.local_date.year)
    values = raw["value"].astype("float64") * factor
    out = pd.DataFrame(
        {
            "indicator": definition.id,
            "scope": raw["scope"].astype(str),
            "scope_key": raw["scope_key"].astype(str),
            "value": values,
            "value_ellipsoid": raw["value_ellipsoid"].astype("float64") * factor,
            "unit": definition.unit,
            "target": math.nan if target is None else target.value,
            "target_op": "" if target is None else target.comparison,
            "target_year": math.nan if target is None or target.year is None else float(target.year),
            "target_met": pd.Series(
                [None if target is None else target.met(float(v)) for v in values], index=raw.index, dtype=object
            ),
            "note": raw["note"].astype(str),
            "as_of": inputs.as_of.iso,
        }
    )
    return out
