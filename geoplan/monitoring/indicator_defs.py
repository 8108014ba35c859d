"""Indicator definitions as data: layers/indicators.yaml (or a user's file) -> checked `IndicatorDef`s.

Each indicator names a computation kind (`indicators.KINDS`) with its parameters, the scopes it is reported for,
its unit, its targets (value, comparison, year) and the direction in which it should move. Everything is checked
when the file is read, each problem naming the indicator and the key, all reported at once (an `InputError`):
a misspelt key or scope would otherwise be silently ignored.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from geoplan.catalog import Catalog
from geoplan.errors import InputError, NotFoundError
from geoplan.monitoring.indicator_kinds import KINDS
from geoplan.monitoring.indicators import Kind
from geoplan.monitoring.life_circle_indicators import check_service
from geoplan.user_yaml import read_user_yaml

__all__ = [
    "AREA_UNITS",
    "DEFAULT_INDICATORS_FILE",
    "IndicatorDef",
    "IndicatorSet",
    "Target",
    "default_indicators_path",
    "load_indicator_defs",
    "parse_indicator_defs",
]

Comparison = Literal[">=", "<="]
Direction = Literal["up", "down", "none"]
DEFAULT_INDICATORS_FILE = Path("indicators.yaml")
"""The default definitions, relative to the layers directory."""
MAX_FILE_BYTES = 256 * 1024
AREA_UNITS: dict[str, float] = {"m2": 1.0, "m²": 1.0, "ha": 1e-4, "km2": 1e-6, "km²": 1e-6}
"""Area units and their factor from m²."""
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REQUIRED = ("id", "title_zh", "title_en", "unit", "scopes", "kind", "good_direction")
_OPTIONAL = ("params", "targets", "description")
_COMPARISONS = (">=", "<=")
_DIRECTIONS = ("up", "down", "none")
_MIN_YEAR, _MAX_YEAR = 2000, 2100


@dataclass(frozen=True)
class Target:
    """`value` `comparison` (>= or <=), due by the end of `year` (None: always)."""

    value: float
    comparison: Comparison
    year: int | None = None

    def met(self, value: float) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value >= self.value if self.comparison == ">=" else value <= self.value

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "comparison": self.comparison, "year": self.year}


@dataclass(frozen=True)
class IndicatorDef:
    id: str
    title_zh: str
    title_en: str
    unit: str
    scopes: tuple[str, ...]
    kind: str
    good_direction: Direction
    params: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    description: str = ""

    @property
    def unit_factor(self) -> float:
        """From the kind's base unit (m² for areas; % and counts as they are) to `unit`."""
        return AREA_UNITS.get(self.unit, 1.0) if KINDS[self.kind].quantity == "area" else 1.0

    def target_for(self, year: int) -> Target | None:
        """The target that applies in `year`: the first one due in that year or later, else the last one (a
        target reached stays a target). A target without a year always applies."""
        if not self.targets:
            return None
        dated = [t for t in self.targets if t.year is not None]
        if not dated:
            return self.targets[0]
        upcoming = [t for t in dated if t.year is not None and t.year >= year]
        return upcoming[0] if upcoming else dated[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the API and reports)."""
        return {
            "id": self.id,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "unit": self.unit,
            "scopes": list(self.scopes),
            "kind": self.kind,
            "quantity": KINDS[self.kind].quantity,
            "params": dict(self.params),
            "targets": [t.to_dict() for t in self.targets],
            "good_direction": self.good_direction,
            "description": self.description,
        }


@dataclass(frozen=True)
class IndicatorSet:
    """The checked definitions of one file, in file order, with the file's SHA-256 (kept with snapshots)."""

    indicators: tuple[IndicatorDef, ...]
    source: str
    sha256: str

    def __iter__(self) -> Iterator[IndicatorDef]:
        return iter(self.indicators)

    def __len__(self) -> int:
        return len(self.indicators)

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.indicators]

    def get(self, indicator: str) -> IndicatorDef:
        for definition in self.indicators:
            if definition.id == indicator:
                return definition
        raise NotFoundError(f"unknown indicator {indicator!r}; the indicators are: {', '.join(self.ids)}")

    def select(self, ids: list[str] | None) -> tuple[IndicatorDef, ...]:
        """The named indicators (all for None), in file order; an unknown id is an error."""
        if ids is None:
            return self.indicators
        wanted = [self.get(i).id for i in ids]
        return tuple(d for d in self.indicators if d.id in wanted)


def default_indicators_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / DEFAULT_INDICATORS_FILE


def load_indicator_defs(
    path: Path, *, catalog: Catalog, life_circle_services: Sequence[str] | None = None
) -> IndicatorSet:
    """Read and check a definitions file (every problem reported at once)."""
    path = Path(path)
    raw, data = read_user_yaml(path, what="indicator definitions file", max_bytes=MAX_FILE_BYTES)
    return parse_indicator_defs(
        raw,
        catalog=catalog,
        source=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        life_circle_services=life_circle_services,
    )


def parse_indicator_defs(
    raw: Any,
    *,
    catalog: Catalog,
    source: str = "indicators",
    sha256: str = "",
    life_circle_services: Sequence[str] | None = None,
) -> IndicatorSet:
    """Turn parsed YAML (`{"indicators": [...]}`) into checked definitions. With `life_circle_services` (the
    services of the life-circle rules in use), a life-circle indicator naming another service is an error."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("indicators"), list) or not raw["indicators"]:
        raise InputError(f"{source}: expected a mapping with a non-empty list 'indicators'")
    unknown_top = [str(k) for k in raw if k != "indicators"]
    problems = [f"unknown top-level key(s) {', '.join(unknown_top)}"] if unknown_top else []
    parsed: list[IndicatorDef] = []
    seen: set[str] = set()
    for number, item in enumerate(raw["indicators"], start=1):
        label = f"indicator #{number}"
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            label += f" ({item['id']})"
        mine: list[str] = []
        definition = _parse_one(item, catalog, mine, life_circle_services)
        problems += [f"{label}: {p}" for p in mine]
        if definition is not None:
            if definition.id in seen:
                problems.append(f"{label}: the id {definition.id!r} is used twice")
            seen.add(definition.id)
            parsed.append(definition)
    if problems:
        shown = "; ".join(problems[:20]) + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else "")
        raise InputError(f"{source}: {len(problems)} problem(s): {shown}")
    return IndicatorSet(indicators=tuple(parsed), source=source, sha256=sha256)


def _parse_one(
    item: Any, catalog: Catalog, problems: list[str], services: Sequence[str] | None = None
) -> IndicatorDef | None:
    if not isinstance(item, Mapping):
        problems.append("expected a mapping")
        return None
    unknown = [str(k) for k in item if k not in _REQUIRED + _OPTIONAL]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in item]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
        return None
    before = len(problems)
    ident = item["id"]
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        problems.append(f"id {ident!r} must be lower-case letters, digits and _ (starting with a letter)")
    for key, limit in (("title_zh", 200), ("title_en", 200), ("description", 2000)):
        value = item.get(key, "")
        if not isinstance(value, str) or (key != "description" and not value.strip()) or len(value) > limit:
            problems.append(f"{key} must be text of 1–{limit} characters")
        elif key != "description" and _CONTROL.search(value):
            problems.append(f"{key} contains control characters")
    kind_name = item["kind"]
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        problems.append(f"unknown kind {kind_name!r}; the kinds are: {', '.join(KINDS)}")
    params = item.get("params") or {}
    if not isinstance(params, Mapping):
        problems.append("params must be a mapping")
        params = {}
    if kind is not None:
        problems += [f"params: {p}" for p in kind.check(params, catalog)]
        if services is not None and kind.needs(params).life_circles:
            problems += [f"params: {p}" for p in check_service(params, services)]
    unit = item["unit"]
    if not isinstance(unit, str) or not unit.strip() or len(unit) > 20:
        problems.append("unit must be a short text")
    elif kind is not None:
        problems += _unit_problems(kind, unit)
    scopes = _scopes(item["scopes"], kind, params, problems)
    targets = _targets(item.get("targets") or [], problems)
    direction = item["good_direction"]
    if direction not in _DIRECTIONS:
        problems.append(f"good_direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")
    if len(problems) > before or kind is None:
        return None
    return IndicatorDef(
        id=ident,
        title_zh=item["title_zh"].strip(),
        title_en=item["title_en"].strip(),
        unit=unit,
        scopes=scopes,
        kind=kind.name,
        good_direction=cast(Direction, direction),
        params=dict(params),
        targets=targets,
        description=str(item.get("description") or "").strip(),
    )


def _unit_problems(kind: Kind, unit: str) -> list[str]:
    if kind.quantity == "area" and unit not in AREA_UNITS:
        return [f"unit {unit!r}: kind {kind.name} measures an area; use one of {', '.join(AREA_UNITS)}"]
    if kind.quantity == "percent" and unit != "%":
        return [f"unit {unit!r}: kind {kind.name} gives a percentage; use %"]
    if kind.quantity == "count" and (unit == "%" or unit in AREA_UNITS):
        return [f"unit {unit!r}: kind {kind.name} counts; use a counting word such as 个, 项 or 件"]
    return []


def _scopes(raw: Any, kind: Kind | None, params: Mapping[str, Any], problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        problems.append("scopes must be a non-empty list, e.g. [district, town]")
        return ()
    if len(set(raw)) != len(raw):
        problems.append("scopes lists a scope twice")
    if kind is not None:
        offered = kind.scopes(params)
        problems += [
            f"scope {s!r} is not offered by kind {kind.name} ({', '.join(offered)})" for s in raw if s not in offered
        ]
    return tuple(raw)


def _targets(raw: Any, problems: list[str]) -> tuple[Target, ...]:
    if not isinstance(raw, list):
        problems.append("targets must be a list of {value, comparison, year}")
        return ()
    targets: list[Target] = []
    for number, item in enumerate(raw, start=1):
        where = f"target #{number}"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected a mapping {{value, comparison, year}}")
            continue
        unknown = [str(k) for k in item if k not in ("value", "comparison", "year")]
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        value, comparison, year = item.get("value"), item.get("comparison"), item.get("year")
        ok = True
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{where}: value must be a number, not {value!r}")
            ok = False
        if comparison not in _COMPARISONS:
            problems.append(f"{where}: comparison must be >= or <=, not {comparison!r} (quote it in YAML)")
            ok = False
        if year is not None and (
            isinstance(year, bool) or not isinstance(year, int) or not _MIN_YEAR <= year <= _MAX_YEAR
        ):
            problems.append(f"{where}: year must be a year {_MIN_YEAR}–{_MAX_YEAR}, not {year!r}")
            ok = False
        if ok:
            targets.append(Target(value=float(cast(float, value)), comparison=cast(Comparison, comparison), year=year))
    years = [t.year for t in targets]
    if None in years and len(targets) > 1:
        problems.append("targets: a target without a year must be the only one")
    elif len(set(years)) != len(years):
        problems.append("targets: two targets for the same year")
    return tuple(sorted(targets, key=lambda t: t.year or 0))
