"""The registry of indicator kinds: each kind's function, quantity, scopes, needs and parameter check.

An indicator in layers/indicators.yaml names one of these kinds; `indicator_defs` checks its parameters with the
kind's check, and `indicators_table.evaluate` calls the kind's function. A new kind is a function and a `Kind`
entry in its module's tuple.
"""

from __future__ import annotations

from geoplan.monitoring.area_indicators import AREA_KINDS
from geoplan.monitoring.case_indicators import CASE_KINDS
from geoplan.monitoring.checklist_indicators import CHECKLIST_KINDS
from geoplan.monitoring.indicators import LAYER_KINDS, Kind
from geoplan.monitoring.life_circle_indicators import LIFE_CIRCLE_KINDS
from geoplan.monitoring.project_indicators import PROJECT_KINDS

__all__ = ["KINDS"]

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (*LAYER_KINDS, *AREA_KINDS, *PROJECT_KINDS, *CASE_KINDS, *CHECKLIST_KINDS, *LIFE_CIRCLE_KINDS)
}
