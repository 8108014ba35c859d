"""Rule files read from disk: the 多规合一 conflict table and the coverage rules, each parsed by its engine.

The engines parse data (`analysis.rules.parse_rules`, `analysis.coverage_config.parse_coverage_rules`); this
module finds and reads the files, so analysis/ never touches the file system. Defaults live in the layers
folder (layers/rules/), which GEOPLAN_LAYERS_DIR can move; a user's file replaces them per run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from geoplan.analysis.coverage import CoverageRules
from geoplan.analysis.coverage_config import parse_coverage_rules
from geoplan.analysis.life_circle_rules import ServiceRule, parse_life_circles
from geoplan.analysis.rules import ConflictRule, parse_rules
from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.settings import DEFAULT_LAYERS_DIR
from geoplan.user_yaml import read_user_yaml

__all__ = [
    "DEFAULT_COVERAGE_RULES_FILE",
    "DEFAULT_LIFE_CIRCLES_FILE",
    "DEFAULT_RULES_FILE",
    "default_coverage_rules_path",
    "default_life_circles_path",
    "default_rules_path",
    "load_coverage_rules",
    "load_life_circles",
    "load_rules",
    "rule_file_stamp",
    "rules_for",
]

DEFAULT_RULES_FILE = Path("rules") / "conflicts.yaml"
"""The default conflict rule table, relative to the layers directory."""
DEFAULT_COVERAGE_RULES_FILE = Path("rules") / "coverage.yaml"
"""The default coverage rules, relative to the layers directory."""
DEFAULT_LIFE_CIRCLES_FILE = Path("rules") / "life_circles.yaml"
"""The default life-circle rules, relative to the layers directory."""
MAX_RULES_BYTES = 1024 * 1024
MAX_COVERAGE_RULES_BYTES = 64 * 1024


def default_rules_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / DEFAULT_RULES_FILE


def load_rules(path: Path, catalog: Catalog) -> list[ConflictRule]:
    """Read and check a rules file; every problem in it is reported at once (`ValidationFailed`)."""
    path = Path(path)
    raw, _ = read_user_yaml(path, what="rules file", max_bytes=MAX_RULES_BYTES)
    return parse_rules(raw, catalog, source=path.name)


def rules_for(catalog: Catalog, layers_dir: Path, rules_file: Path | None = None) -> list[ConflictRule]:
    """The user's rules file, or the default table in layers/rules/conflicts.yaml."""
    return load_rules(rules_file if rules_file is not None else default_rules_path(layers_dir), catalog)


def default_coverage_rules_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / DEFAULT_COVERAGE_RULES_FILE


def load_coverage_rules(path: Path | None = None) -> CoverageRules:
    """Read and check a coverage rules file (default: rules/coverage.yaml in the bundled layers folder).

    Callers that honour GEOPLAN_LAYERS_DIR pass `default_coverage_rules_path(settings.layers_dir)`.
    """
    path = default_coverage_rules_path(DEFAULT_LAYERS_DIR) if path is None else Path(path)
    raw, _ = read_user_yaml(path, what="coverage rules file", max_bytes=MAX_COVERAGE_RULES_BYTES)
    return parse_coverage_rules(raw, source=path.name)


def default_life_circles_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / DEFAULT_LIFE_CIRCLES_FILE


def load_life_circles(path: Path | None = None, catalog: Catalog | None = None) -> dict[str, ServiceRule]:
    """Read and check a life-circle rules file (default: rules/life_circles.yaml in the bundled layers folder).

    With `catalog`, every service's layer, filter fields and values and area field are checked against it too,
    so a misspelt service value is an error, not a service with no facility.
    """
    path = Path(DEFAULT_LAYERS_DIR) / DEFAULT_LIFE_CIRCLES_FILE if path is None else Path(path)
    raw, _ = read_user_yaml(path, what="life-circle rules file", max_bytes=MAX_COVERAGE_RULES_BYTES)
    rules = parse_life_circles(raw, source=path.name)
    if catalog is not None:
        problems = [p for rule in rules.values() for p in _catalogue_problems(rule, catalog)]
        if problems:
            raise InputError(f"{path.name}: {'; '.join(problems)}")
    return rules


def _catalogue_problems(rule: ServiceRule, catalog: Catalog) -> list[str]:
    if rule.layer not in catalog:
        return [f"{rule.name}.layer: no layer '{rule.layer}' in the catalogue"]
    layer = catalog.get(rule.layer)
    if layer.geometry != "Point":
        return [f"{rule.name}.layer: '{rule.layer}' is not a Point layer"]
    problems = []
    for name in [f for f, _ in rule.where] + ([rule.area_field] if rule.area_field else []):
        if name not in layer.field_names:
            problems.append(f"{rule.name}: layer '{rule.layer}' has no field '{name}'")
    for name, values in rule.where:
        allowed = layer.field(name).allowed if name in layer.field_names else None
        wrong = [v for v in values if allowed is not None and v not in allowed]
        if wrong:
            problems.append(
                f"{rule.name}.where.{name}: {', '.join(wrong)} not among {', '.join(map(str, allowed or []))}"
            )
    return problems


def rule_file_stamp(path: Path) -> dict[str, str]:
    """A rule file as the audit log records it: its name and the SHA-256 of its bytes ("-" if it is missing)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"
    return {"name": path.name, "sha256": digest}
