"""Coverage rules as data: layers/rules/coverage.yaml (or a user's file) -> checked `CoverageRules`.

The file holds one mapping per kind of unit, `urban` (社区) and `rural` (村 and virtual units), each with the
fields of `CoverageSettings`. Every key and value is checked when the file is read: a misspelt key would
otherwise be ignored and the defaults used, an answer nobody could tell from the intended one.
`rules_with_overrides` applies explicit options (the CLI's --mode, --minutes, …, the web form) to both rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from geoplan.analysis.coverage import CoverageRules, CoverageSettings, Mode
from geoplan.errors import InputError

__all__ = [
    "parse_coverage_rules",
    "rules_with_overrides",
]

DEFAULT_HORIZON_MINUTES = CoverageSettings().horizon_minutes
_UNITS = ("urban", "rural")
_KEYS = ("mode", "minutes", "speed_kmh", "access_m", "horizon_minutes")
_MODES = ("network", "euclidean")


def parse_coverage_rules(raw: Any, *, source: str = "coverage rules") -> CoverageRules:
    """Turn parsed YAML (`{"urban": {...}, "rural": {...}}`) into rules; every problem is reported at once."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{source}: expected a mapping with 'urban' and 'rural' rules")
    problems: list[str] = []
    unknown = [str(key) for key in raw if key not in _UNITS]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))}; expected urban and rural")
    parsed: dict[str, CoverageSettings] = {}
    for unit in _UNITS:
        if unit not in raw:
            problems.append(f"'{unit}' is missing")
            continue
        settings = _parse_settings(raw[unit], unit, problems)
        if settings is not None:
            parsed[unit] = settings
    if problems:
        raise InputError(f"{source}: {'; '.join(problems)}")
    return CoverageRules(urban=parsed["urban"], rural=parsed["rural"])


def _parse_settings(item: Any, unit: str, problems: list[str]) -> CoverageSettings | None:
    if not isinstance(item, Mapping):
        problems.append(f"{unit}: expected a mapping of {', '.join(_KEYS)}")
        return None
    before = len(problems)
    unknown = [str(key) for key in item if key not in _KEYS]
    if unknown:
        problems.append(f"{unit}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(_KEYS)}")
    missing = [key for key in ("mode", "minutes", "speed_kmh", "access_m") if key not in item]
    if missing:
        problems.append(f"{unit}: missing {', '.join(missing)}")
    mode = item.get("mode")
    if "mode" in item and mode not in _MODES:
        problems.append(f"{unit}.mode must be network or euclidean, not {mode!r}")
    numbers: dict[str, float] = {}
    for key in ("minutes", "speed_kmh", "access_m", "horizon_minutes"):
        if key not in item:
            continue
        value = item[key]
        # bool is an int to Python; "ten" or true in a rules file is a mistake, not a number
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{unit}.{key} must be a number, not {value!r}")
        elif key == "access_m" and value < 0:
            problems.append(f"{unit}.{key} must be >= 0, not {value!r}")
        elif key != "access_m" and value <= 0:
            problems.append(f"{unit}.{key} must be > 0, not {value!r}")
        else:
            numbers[key] = float(value)
    if len(problems) > before:
        return None
    minutes = numbers["minutes"]
    horizon = numbers.get("horizon_minutes", max(DEFAULT_HORIZON_MINUTES, minutes))
    if horizon < minutes:
        problems.append(f"{unit}.horizon_minutes ({horizon:g}) must be at least minutes ({minutes:g})")
        return None
    chosen: Mode = "euclidean" if mode == "euclidean" else "network"
    return CoverageSettings(
        minutes=minutes,
        speed_kmh=numbers["speed_kmh"],
        access_m=numbers["access_m"],
        mode=chosen,
        horizon_minutes=horizon,
    )


def rules_with_overrides(
    base: CoverageRules,
    *,
    mode: str | None = None,
    minutes: float | None = None,
    speed_kmh: float | None = None,
    access_m: float | None = None,
) -> CoverageRules:
    """`base` with every option that is not None applied to urban and rural alike (checked like the file).

    A time limit beyond a rule's search horizon raises the horizon with it, so an explicit --minutes 90 works.
    """
    if mode is not None and mode not in _MODES:
        raise InputError(f"coverage mode must be network or euclidean, not {mode!r}")
    for name, value in (("minutes", minutes), ("speed_kmh", speed_kmh), ("access_m", access_m)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"coverage setting {name} must be a number, not {value!r}")

    def apply(settings: CoverageSettings) -> CoverageSettings:
        changes: dict[str, Any] = {}
        if mode is not None:
            changes["mode"] = mode
        if minutes is not None:
            changes["minutes"] = float(minutes)
            if math.isfinite(minutes) and minutes > settings.horizon_minutes:
                changes["horizon_minutes"] = float(minutes)
        if speed_kmh is not None:
            changes["speed_kmh"] = float(speed_kmh)
        if access_m is not None:
            changes["access_m"] = float(access_m)
        return replace(settings, **changes)  # __post_init__ checks the values

    urban = apply(base.urban)
    rural = urban if base.rural == base.urban else apply(base.rural)
    return CoverageRules(urban=urban, rural=rural)
