"""The columns of one indicator row: what it measures, where, and the target that applied.

The computed table (`indicators_table.RESULT_COLUMNS`), the snapshot rows and the indicator history all carry
them in this order; they live here, apart from the computation, so the snapshot tables can use them without
importing the analysis.
"""

from __future__ import annotations

__all__ = ["MEASURE_COLUMNS"]

MEASURE_COLUMNS = [
    "indicator",
    "scope",
    "scope_key",
    "value",
    "value_ellipsoid",
    "unit",
    "target",
    "target_op",
    "target_year",
    "target_met",
]
"""indicator, scope, value and target columns, as `indicators_table` describes them; `note` follows them
everywhere except in a snapshot's own rows, where `good_direction` comes first."""
