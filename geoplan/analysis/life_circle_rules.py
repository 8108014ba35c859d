"""Life-circle rules as data: layers/rules/life_circles.yaml (or a user's file) -> checked `ServiceRule`s.

Every key and value is checked when the file is read and every problem is reported at once: a misspelt key
would otherwise fall back to a default, an answer nobody could tell from the intended one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoplan.analysis.coverage import CoverageSettings, Mode
from geoplan.errors import InputError

__all__ = [
    "CIRCLES",
    "Reach",
    "ServiceRule",
    "UnitRule",
    "parse_life_circles",
]

CIRCLES = (5, 10, 15)
_MODES = ("network", "euclidean")
_DEFAULT_KEYS = ("mode", "speed_kmh", "access_m")
_SERVICE_KEYS = ("title_zh", "layer", "where", "circle", "area_field", "urban", "rural", *_DEFAULT_KEYS)
_UNIT_KEYS = ("radius_m", "clause", "assumed", "verified", "source")
_DEFAULTS: dict[str, Any] = {"mode": "network", "speed_kmh": 4.5, "access_m": 200.0}


@dataclass(frozen=True)
class Reach:
    """A radius for the facilities of at least `min_ha` hectares (None: every facility)."""

    radius_m: float
    min_ha: float | None = None


@dataclass(frozen=True)
class UnitRule:
    """How far a service reaches for one kind of unit, with the clause it comes from.

    `assumed`: no standard sets the value (a planning assumption). `verified`: the clause was read in a
    published copy of the text it cites, named in `source`; unverified clauses are cited from secondary
    material or memory and must not be quoted as the standard's words.
    """

    reaches: tuple[Reach, ...]
    clause: str
    assumed: bool
    verified: bool = False
    source: str | None = None

    @property
    def radius_m(self) -> float:
        """The largest radius (the one a table shows; parks reach less when small)."""
        return max(r.radius_m for r in self.reaches)


@dataclass(frozen=True)
class ServiceRule:
    name: str
    title_zh: str
    layer: str
    where: tuple[tuple[str, tuple[str, ...]], ...]
    """(field, allowed values) pairs a facility must all match."""
    circle: int
    mode: Mode
    speed_kmh: float
    access_m: float
    urban: UnitRule
    rural: UnitRule
    area_field: str | None = None

    def settings(self, radius_m: float) -> CoverageSettings:
        """The coverage settings that reach `radius_m` metres: radius / speed minutes of travel."""
        minutes = radius_m / (self.speed_kmh * 1000.0 / 60.0)
        horizon = max(60.0, minutes)
        return CoverageSettings(
            minutes=minutes, speed_kmh=self.speed_kmh, access_m=self.access_m, mode=self.mode, horizon_minutes=horizon
        )


def _number(value: Any, where: str, problems: list[str], *, positive: bool = True) -> float | None:
    # bool is an int to Python; true in a rules file is a mistake, not a number
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{where} must be a number, not {value!r}")
        return None
    if (positive and value <= 0) or value < 0:
        problems.append(f"{where} must be {'> 0' if positive else '>= 0'}, not {value!r}")
        return None
    return float(value)


def parse_life_circles(raw: Any, *, source: str = "life-circle rules") -> dict[str, ServiceRule]:
    """Turn parsed YAML (`{"defaults": {...}, "services": {name: {...}}}`) into rules, in file order."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("services"), Mapping) or not raw["services"]:
        raise InputError(f"{source}: expected a mapping with a non-empty 'services' mapping")
    problems: list[str] = []
    unknown = sorted(str(k) for k in raw if k not in ("defaults", "services"))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; expected defaults and services")
    defaults = dict(_DEFAULTS)
    given = raw.get("defaults") or {}
    if not isinstance(given, Mapping):
        problems.append("defaults: expected a mapping")
        given = {}
    bad = sorted(str(k) for k in given if k not in _DEFAULT_KEYS)
    if bad:
        problems.append(f"defaults: unknown key(s) {', '.join(bad)}; expected {', '.join(_DEFAULT_KEYS)}")
    defaults.update({k: v for k, v in given.items() if k in _DEFAULT_KEYS})
    out: dict[str, ServiceRule] = {}
    for name, item in raw["services"].items():
        rule = _service(str(name), item, defaults, problems)
        if rule is not None:
            out[rule.name] = rule
    if problems:
        raise InputError(f"{source}: {'; '.join(problems)}")
    return out


def _service(name: str, item: Any, defaults: Mapping[str, Any], problems: list[str]) -> ServiceRule | None:
    if not isinstance(item, Mapping):
        problems.append(f"{name}: expected a mapping of {', '.join(_SERVICE_KEYS)}")
        return None
    before = len(problems)
    unknown = sorted(str(k) for k in item if k not in _SERVICE_KEYS)
    if unknown:
        problems.append(f"{name}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_SERVICE_KEYS)}")
    missing = [k for k in ("title_zh", "layer", "circle", "urban", "rural") if k not in item]
    if missing:
        problems.append(f"{name}: missing {', '.join(missing)}")
        return None
    for key in ("title_zh", "layer"):
        if not isinstance(item[key], str) or not item[key].strip():
            problems.append(f"{name}.{key} must be a non-empty text")
    if item["circle"] not in CIRCLES or isinstance(item["circle"], bool):
        problems.append(f"{name}.circle must be one of 5, 10, 15, not {item['circle']!r}")
    mode = item.get("mode", defaults["mode"])
    if mode not in _MODES:
        problems.append(f"{name}.mode must be network or euclidean, not {mode!r}")
    speed = _number(item.get("speed_kmh", defaults["speed_kmh"]), f"{name}.speed_kmh", problems)
    access = _number(item.get("access_m", defaults["access_m"]), f"{name}.access_m", problems, positive=False)
    where = _where(name, item.get("where", {}), problems)
    area_field = item.get("area_field")
    if area_field is not None and not isinstance(area_field, str):
        problems.append(f"{name}.area_field must be a field name")
    urban = _unit(f"{name}.urban", item["urban"], area_field, problems)
    rural = _unit(f"{name}.rural", item["rural"], area_field, problems)
    if len(problems) > before or urban is None or rural is None or speed is None or access is None:
        return None
    return ServiceRule(
        name=name,
        title_zh=str(item["title_zh"]),
        layer=str(item["layer"]),
        where=where,
        circle=int(item["circle"]),
        mode="euclidean" if mode == "euclidean" else "network",
        speed_kmh=speed,
        access_m=access,
        urban=urban,
        rural=rural,
        area_field=area_field,
    )


def _where(name: str, raw: Any, problems: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        problems.append(f"{name}.where must be a mapping of field: value or [values]")
        return ()
    out = []
    for field, values in raw.items():
        listed = values if isinstance(values, list) else [values]
        if not listed or not all(isinstance(v, str) and v for v in listed):
            problems.append(f"{name}.where.{field} must be a text or a non-empty list of texts")
            continue
        out.append((str(field), tuple(listed)))
    return tuple(out)


def _unit(where: str, raw: Any, area_field: str | None, problems: list[str]) -> UnitRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping of {', '.join(_UNIT_KEYS)}")
        return None
    unknown = sorted(str(k) for k in raw if k not in _UNIT_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_UNIT_KEYS)}")
    if "radius_m" not in raw or not isinstance(raw.get("clause"), str) or not raw["clause"].strip():
        problems.append(f"{where}: radius_m and a clause (the standard's words, or why it is assumed) are required")
        return None
    assumed = raw.get("assumed", False)
    if not isinstance(assumed, bool):
        problems.append(f"{where}.assumed must be true or false, not {assumed!r}")
    verified = raw.get("verified", False)
    if not isinstance(verified, bool):
        problems.append(f"{where}.verified must be true or false, not {verified!r}")
    source = raw.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        problems.append(f"{where}.source must be a non-empty text (the document or address read)")
        source = None
    if verified is True and source is None and "source" not in raw:
        # a claim of verification nobody can retrace is no better than none
        problems.append(f"{where}: verified: true needs a source (the published copy the clause was read in)")
    reaches: list[Reach] = []
    if isinstance(raw["radius_m"], list):
        if area_field is None:
            problems.append(f"{where}.radius_m by area needs the service's area_field")
        for i, step in enumerate(raw["radius_m"]):
            if not isinstance(step, Mapping) or set(step) != {"min_ha", "radius_m"}:
                problems.append(f"{where}.radius_m[{i}] must be {{min_ha, radius_m}}")
                continue
            radius = _number(step["radius_m"], f"{where}.radius_m[{i}].radius_m", problems)
            min_ha = _number(step["min_ha"], f"{where}.radius_m[{i}].min_ha", problems, positive=False)
            if radius is not None and min_ha is not None:
                reaches.append(Reach(radius, min_ha))
        if not raw["radius_m"]:
            problems.append(f"{where}.radius_m must not be an empty list")
    else:
        radius = _number(raw["radius_m"], f"{where}.radius_m", problems)
        if radius is not None:
            reaches.append(Reach(radius))
    if not reaches:
        return None
    return UnitRule(
        reaches=tuple(reaches),
        clause=str(raw["clause"]),
        assumed=bool(assumed),
        verified=verified is True,
        source=source,
    )
