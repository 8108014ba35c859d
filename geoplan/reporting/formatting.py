"""How numbers, targets and target states are written in the dashboard and the reports (one place, so the page,
the HTML, the workbook and the PDF agree)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MET_LABELS",
    "change_text",
    "is_missing",
    "met_label",
    "met_or_none",
    "note_text",
    "number_or_none",
    "plain",
    "scope_text",
    "target_text",
    "value_text",
]

MET_LABELS = {True: "达标", False: "未达标", None: "—"}
NO_VALUE = "无数据"


def is_missing(value: Any) -> bool:
    """None, pandas' NA or NaN: a table cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def number_or_none(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def met_or_none(value: Any) -> bool | None:
    """A target state: met, missed, or None where no target applies or no value was measured."""
    return None if is_missing(value) else bool(value)


def plain(value: Any) -> Any:
    """A table cell as plain Python (for JSON and the workbook): numpy scalars unwrapped, missing values None."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if is_missing(value) else value


def _decimals(unit: str) -> int:
    if unit == "%":
        return 1
    if unit in ("m2", "m²"):
        return 0
    if unit in ("ha", "km2", "km²"):
        return 2
    return 0


def value_text(value: Any, unit: str, *, with_unit: bool = True) -> str:
    """63.4 % · 950.29 ha · 30 项; counts that are not whole keep two decimals."""
    if is_missing(value):
        return NO_VALUE
    number = float(value)
    places = _decimals(unit)
    if places == 0 and number != round(number):
        places = 2
    text = f"{number:,.{places}f}"
    if not with_unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def target_text(op: Any, value: Any, year: Any, unit: str) -> str:
    """≥ 20%（2020）, or — without a target."""
    if not op or is_missing(value):
        return "—"
    symbol = {">=": "≥", "<=": "≤"}.get(str(op), str(op))
    when = "" if is_missing(year) else f"（{int(float(year))}）"
    number = f"{float(value):g}"
    return f"{symbol} {number}{unit}{when}" if unit == "%" else f"{symbol} {number} {unit}{when}"


def met_label(met: Any) -> str:
    return MET_LABELS[met_or_none(met)]


def change_text(change: Any, unit: str) -> str:
    """+1.2% · −3 项 · 0 · — (no earlier value)."""
    if is_missing(change):
        return "—"
    number = float(change)
    if number == 0:
        return "0"
    text = value_text(abs(number), unit)
    return ("+" if number > 0 else "−") + text


NOTES_ZH = {"no population": "无人口", "no built-up area": "无建成区"}
"""The indicator service's notes (geoplan.monitoring.indicators) in the reports' language; others stay as they are."""


def note_text(note: Any) -> str:
    """ "no built-up area" -> 无建成区, "no data: layer … holds no features" -> 无数据（…）."""
    text = "" if is_missing(note) else str(note)
    if text in NOTES_ZH:
        return NOTES_ZH[text]
    if text.startswith("no data"):
        detail = text.partition(":")[2].strip()
        return f"{NO_VALUE}（{detail}）" if detail else NO_VALUE
    return text


SCOPES_ZH = {
    "district": "全区",
    "town": "镇街",
    "rule": "规则",
    "status": "状态",
    "task_area": "任务领域",
    "task_area_status": "任务领域·状态",
    "town_status": "镇街·状态",
}
"""An indicator row's scope as a reader names it; the field of an area_by_field indicator stays as it is."""


def scope_text(scope: Any) -> str:
    text = "" if is_missing(scope) else str(scope)
    return SCOPES_ZH.get(text, text)
