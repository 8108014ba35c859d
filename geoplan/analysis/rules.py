"""多规合一 conflict rules as data: layers/rules/conflicts.yaml (or a user's file) -> typed, checked rules.

A rule names two catalogue layers, optional attribute filters on each, a relation (A ∩ B or A − ∪B), a severity
and its legal basis. Every layer, field and filter value is checked against the catalogue when the file is
loaded, because a misspelt value would otherwise match nothing and report "no conflicts", the one answer a
planner cannot tell from a real all-clear. Reading the file is `services.rule_files`' job; this module parses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from geoplan.catalog import Catalog, FieldDef
from geoplan.errors import InputError, Problem, ValidationFailed

Severity = Literal["high", "medium", "low"]
Relation = Literal["intersection", "difference"]
FilterValue = str | int | float | bool
Filter = tuple[tuple[str, tuple[FilterValue, ...]], ...]
"""((field, (value, ...)), ...): a feature matches when every field holds one of its values."""

SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")
RELATIONS: tuple[Relation, ...] = ("intersection", "difference")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REQUIRED = ("code", "title_zh", "title_en", "severity", "relation", "layer_a", "layer_b", "basis")
_OPTIONAL = ("filter_a", "filter_b", "description", "site_check", "exempt")
_TEXT_LIMITS = {"title_zh": 200, "title_en": 200, "basis": 2000, "description": 2000}
_EXEMPT_KEYS = ("title_zh", "filter_a", "basis")
NOT_EXEMPT = -1
"""`exemption_index` of a feature no exemption of the rule matches."""


@dataclass(frozen=True)
class Exemption:
    """Layer-A features a rule spares by their nature (a road may lie outside the development boundary): their
    patches are still found and listed, marked exempt with this basis, but left out of totals and indicators."""

    title_zh: str
    filter_a: Filter
    basis: str


@dataclass(frozen=True)
class ConflictRule:
    """One row of the rule table."""

    code: str
    title_zh: str
    title_en: str
    severity: Severity
    relation: Relation
    layer_a: str
    layer_b: str
    basis: str
    filter_a: Filter = ()
    filter_b: Filter = ()
    description: str = ""
    site_check: bool = False
    """The rule also applies to a proposed project site, which stands in for layer A."""
    exempt: tuple[Exemption, ...] = ()
    """Checked in order: a feature matching several is exempt by the first."""


def parse_rules(raw: Any, catalog: Catalog, *, source: str = "rules") -> list[ConflictRule]:
    """Turn parsed YAML (`{"rules": [...]}`) into rules, checked against the catalogue."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rules"), list):
        raise InputError(f"{source}: expected a mapping with a 'rules' list")
    items: list[Any] = raw["rules"]
    if not items:
        raise InputError(f"{source}: the 'rules' list is empty")
    problems: list[Problem] = []
    rules: list[ConflictRule] = []
    seen: set[str] = set()
    for position, item in enumerate(items, start=1):
        rule = _parse_rule(item, position, catalog, problems)
        if rule is None:
            continue
        if rule.code in seen:
            problems.append(Problem(f"duplicate rule code {rule.code!r}", feature=f"rule {rule.code}", field="code"))
            continue
        seen.add(rule.code)
        rules.append(rule)
    if problems:
        raise ValidationFailed(source, problems)
    return rules


def _parse_rule(item: Any, position: int, catalog: Catalog, problems: list[Problem]) -> ConflictRule | None:
    if not isinstance(item, Mapping):
        problems.append(Problem("a rule must be a mapping of keys to values", feature=f"rule #{position}"))
        return None
    code = item.get("code")
    where = f"rule {code}" if isinstance(code, str) and code else f"rule #{position}"
    before = len(problems)

    def fail(message: str, key: str | None = None) -> None:
        problems.append(Problem(message, feature=where, field=key))

    for key in _REQUIRED:
        if key not in item or item[key] is None or item[key] == "":
            fail("missing", key)
    for key in item:
        if key not in _REQUIRED and key not in _OPTIONAL:
            fail(f"unknown key; a rule has {', '.join(_REQUIRED + _OPTIONAL)}", str(key))
    if len(problems) > before:
        return None
    if not isinstance(code, str) or not _CODE.match(code):
        fail("must be a letter then up to 63 letters, digits, '_' or '-'", "code")
    for key, limit in _TEXT_LIMITS.items():
        value = item.get(key, "")
        if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value.replace("\n", " ")):
            fail(f"must be text of at most {limit} characters without control characters", key)
    if item["severity"] not in SEVERITIES:
        fail(f"must be one of {', '.join(SEVERITIES)}, not {item['severity']!r}", "severity")
    if item["relation"] not in RELATIONS:
        fail(f"must be one of {', '.join(RELATIONS)}, not {item['relation']!r}", "relation")
    site_check = item.get("site_check", False)
    if not isinstance(site_check, bool):
        fail(f"must be true or false, not {site_check!r}", "site_check")
    layer_a = _polygon_layer(item["layer_a"], catalog, "layer_a", fail)
    layer_b = _polygon_layer(item["layer_b"], catalog, "layer_b", fail)
    if layer_a is not None and layer_a == layer_b:
        fail("layer_a and layer_b must be two different layers", "layer_b")
    filter_a = _filter(item.get("filter_a"), layer_a, catalog, "filter_a", fail)
    filter_b = _filter(item.get("filter_b"), layer_b, catalog, "filter_b", fail)
    exempt = _exemptions(item.get("exempt"), layer_a, catalog, fail)
    if len(problems) > before or layer_a is None or layer_b is None:
        return None
    return ConflictRule(
        code=item["code"],
        title_zh=item["title_zh"],
        title_en=item["title_en"],
        severity=item["severity"],
        relation=item["relation"],
        layer_a=layer_a,
        layer_b=layer_b,
        basis=item["basis"],
        filter_a=filter_a,
        filter_b=filter_b,
        description=item.get("description", ""),
        site_check=site_check,
        exempt=exempt,
    )


def _polygon_layer(name: Any, catalog: Catalog, key: str, fail: Any) -> str | None:
    if not isinstance(name, str) or name not in catalog:
        fail(f"unknown layer {name!r}; the catalogue has: {', '.join(sorted(catalog.names))}", key)
        return None
    layer = catalog.get(name)
    if layer.kind != "vector" or layer.geometry != "MultiPolygon":
        fail(f"layer {name!r} is not a polygon layer; conflicts are areas", key)
        return None
    if layer.id_field is None:
        fail(f"layer {name!r} has no id field, so its patches could not keep stable ids", key)
        return None
    return name


def _filter(raw: Any, layer: str | None, catalog: Catalog, key: str, fail: Any) -> Filter:
    if raw is None or layer is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        fail("must be a mapping {field: value} or {field: [value, ...]}", key)
        return ()
    definition = catalog.get(layer)
    result: list[tuple[str, tuple[FilterValue, ...]]] = []
    for name, value in raw.items():
        if not isinstance(name, str) or name not in definition.field_names:
            fields = ", ".join(definition.field_names)
            fail(f"layer {layer!r} has no field {name!r}; its fields are: {fields}", key)
            continue
        values = list(value) if isinstance(value, list | tuple) else [value]
        if not values:
            fail(f"field {name!r}: an empty list of values matches nothing", key)
            continue
        bad = [why for v in values if (why := _value_problem(definition.field(name), v)) is not None]
        for why in bad:
            fail(f"field {name!r}: {why}", key)
        if not bad:
            result.append((name, tuple(values)))
    return tuple(result)


def _exemptions(raw: Any, layer: str | None, catalog: Catalog, fail: Any) -> tuple[Exemption, ...]:
    """`exempt: [{title_zh, filter_a, basis}, ...]`: each a filter on layer A's features and why they are spared."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        fail("must be a list of {title_zh, filter_a, basis}", "exempt")
        return ()
    parsed = [_exemption(entry, f"exempt #{n}", layer, catalog, fail) for n, entry in enumerate(raw, start=1)]
    return tuple(e for e in parsed if e is not None)


def _exemption(entry: Any, key: str, layer: str | None, catalog: Catalog, fail: Any) -> Exemption | None:
    if not isinstance(entry, Mapping):
        fail("must be a mapping {title_zh, filter_a, basis}", key)
        return None
    unknown = [str(k) for k in entry if k not in _EXEMPT_KEYS]
    missing = [k for k in _EXEMPT_KEYS if entry.get(k) in (None, "")]
    if unknown:
        fail(f"unknown key(s) {', '.join(unknown)}; an exemption has {', '.join(_EXEMPT_KEYS)}", key)
    if missing:
        fail(f"missing {', '.join(missing)}", key)
    if unknown or missing:
        return None
    problems: list[str] = []
    for name in ("title_zh", "basis"):
        value, limit = entry[name], _TEXT_LIMITS[name]
        if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value.replace("\n", " ")):
            problems.append(f"{name} must be text of at most {limit} characters without control characters")
    rule_filter = _filter(
        entry["filter_a"], layer, catalog, "filter_a", lambda message, _=None: problems.append(f"filter_a: {message}")
    )
    for message in problems:
        fail(message, key)
    if problems or layer is None:
        return None
    return Exemption(title_zh=entry["title_zh"], filter_a=rule_filter, basis=entry["basis"])


def _value_problem(field: FieldDef, value: Any) -> str | None:
    """Why `value` can never match `field` (None when it can)."""
    if field.type == "boolean":
        return None if isinstance(value, bool) else f"is a boolean field: use true or false, not {value!r}"
    if field.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"is an integer field, not {value!r}"
    if field.type == "float" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return f"is a number field, not {value!r}"
    if field.type == "string" and not isinstance(value, str):
        return f"is a text field, not {value!r}"
    if field.allowed is not None and value not in field.allowed:
        return f"{value!r} is not an allowed value ({', '.join(map(str, field.allowed))})"
    if isinstance(value, int | float) and (
        (field.minimum is not None and value < field.minimum) or (field.maximum is not None and value > field.maximum)
    ):
        return f"{value!r} is outside the field's range [{field.minimum}, {field.maximum}]"
    if isinstance(value, str) and field.max_length is not None and len(value) > field.max_length:
        return f"{value!r} is longer than the field's {field.max_length} characters"
    return None


def filter_mask(frame: pd.DataFrame, rule_filter: Filter) -> NDArray[np.bool_]:
    """Which rows match every (field, values) of the filter; a missing value matches nothing."""
    mask = np.ones(len(frame), dtype=bool)
    for name, values in rule_filter:
        if name not in frame.columns:
            raise InputError(f"the frame has no column {name!r} that a rule filters on")
        mask &= frame[name].isin(list(values)).fillna(False).to_numpy(dtype=bool)
    return mask


def exemption_index(frame: pd.DataFrame, rule: ConflictRule) -> NDArray[np.intp]:
    """For each row of layer A, the position of the first of the rule's exemptions it matches (`NOT_EXEMPT`
    when none does)."""
    index = np.full(len(frame), NOT_EXEMPT, dtype=np.intp)
    for position, exemption in reversed(list(enumerate(rule.exempt))):
        index[filter_mask(frame, exemption.filter_a)] = position
    return index


def layers_of(rules: Sequence[ConflictRule]) -> list[str]:
    """The layers the rules compare, each once, in first-use order."""
    names: dict[str, None] = {}
    for rule in rules:
        names.setdefault(rule.layer_a, None)
        names.setdefault(rule.layer_b, None)
    return list(names)
