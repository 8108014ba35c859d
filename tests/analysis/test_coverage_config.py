"""Coverage rules as data: the bundled layers/rules/coverage.yaml, user files with every kind of mistake, and the
explicit overrides the CLI and the web form apply to urban and rural units alike.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from geoplan.analysis.coverage import CoverageRules, CoverageSettings
from geoplan.analysis.coverage_config import parse_coverage_rules, rules_with_overrides
from geoplan.errors import InputError
from geoplan.services.rule_files import default_coverage_rules_path, default_rules_path, load_coverage_rules
from geoplan.settings import Settings

LAYERS_DIR = Path(__file__).resolve().parents[2] / "layers"

GOOD = """
urban: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}
rural: {mode: network, minutes: 90, speed_kmh: 12, access_m: 300.5}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_file_holds_the_documented_defaults() -> None:
    path = default_coverage_rules_path(LAYERS_DIR)
    assert path == LAYERS_DIR / "rules" / "coverage.yaml"
    rules = load_coverage_rules(path)
    walk = CoverageSettings(minutes=10, speed_kmh=4.5, access_m=200, mode="network", horizon_minutes=60)
    assert rules == CoverageRules(urban=walk, rural=walk)
    assert rules.urban.threshold_m == pytest.approx(750.0)
    assert load_coverage_rules() == rules  # no path: the bundled file
    text = path.read_text(encoding="utf-8")
    assert "GB 50180" in text and "TD/T 1062" in text


def test_the_file_is_found_where_the_conflict_rules_are() -> None:
    """Both rule tables live in the layers folder that GEOPLAN_LAYERS_DIR points to (default: layers/)."""
    layers_dir = Settings().layers_dir
    assert default_coverage_rules_path(layers_dir).parent == default_rules_path(layers_dir).parent
    assert default_coverage_rules_path(layers_dir).is_file()


def test_a_user_file_with_different_urban_and_rural_rules(tmp_path: Path) -> None:
    rules = load_coverage_rules(_write(tmp_path, GOOD))
    assert rules.urban == CoverageSettings()
    assert rules.rural == CoverageSettings(
        minutes=90.0, speed_kmh=12.0, access_m=300.5, mode="network", horizon_minutes=90.0
    )  # a limit beyond the default 60 min horizon raises the horizon with it
    assert rules.rural.threshold_m == pytest.approx(18_000.0)
    euclid = load_coverage_rules(
        _write(
            tmp_path,
            "urban: {mode: euclidean, minutes: 5, speed_kmh: 6, access_m: 0, horizon_minutes: 30}\n"
            "rural: {mode: network, minutes: 15, speed_kmh: 4, access_m: 100}\n",
        )
    )
    assert euclid.urban == CoverageSettings(minutes=5, speed_kmh=6, access_m=0, mode="euclidean", horizon_minutes=30)
    assert euclid.rural.horizon_minutes == 60.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("urban: {mode: network, minutes: 10, speed_kmh: 4.5, access_m: 200}\n", "'rural' is missing"),
        (GOOD + "suburban: {}\n", "unknown key(s) suburban"),
        (GOOD.replace("access_m: 200}", "access_m: 200, minuts: 12}"), "urban: unknown key(s) minuts"),
        (GOOD.replace("mode: network, minutes: 90", "mode: bus, minutes: 90"), "rural.mode must be network"),
        (GOOD.replace("minutes: 10", "minutes: 0"), "urban.minutes must be > 0"),
        (GOOD.replace("minutes: 10", "minutes: ten"), "urban.minutes must be a number, not 'ten'"),
        (GOOD.replace("minutes: 10", "minutes: true"), "urban.minutes must be a number, not True"),
        (GOOD.replace("speed_kmh: 4.5", "speed_kmh: .nan"), "urban.speed_kmh must be a number"),
        (GOOD.replace("access_m: 200", "access_m: -1"), "urban.access_m must be >= 0"),
        (GOOD.replace("access_m: 200}", "access_m: 200, horizon_minutes: 5}"), "urban.horizon_minutes (5)"),
        (GOOD.replace("mode: network, minutes: 10, ", ""), "urban: missing mode, minutes"),
        ("urban: 10\nrural: {}\n", "urban: expected a mapping"),
        ("- urban\n- rural\n", "expected a mapping with 'urban' and 'rural'"),
        ("urban: [unclosed\n", "not a readable YAML file"),
        ("", "expected a mapping"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        load_coverage_rules(_write(tmp_path, text))
    assert expected in str(caught.value)
    assert "coverage.yaml" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    raw = {"urban": {"mode": "walk", "minutes": -1, "speed_kmh": 4.5, "access_m": 200}, "extra": 1}
    with pytest.raises(InputError) as caught:
        parse_coverage_rules(raw, source="mine.yaml")
    message = str(caught.value)
    for part in ("mine.yaml", "unknown key(s) extra", "urban.mode", "urban.minutes", "'rural' is missing"):
        assert part in message


def test_a_missing_or_oversized_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_coverage_rules(tmp_path / "nothing.yaml")
    big = _write(tmp_path, GOOD + "#" * 70_000)
    with pytest.raises(InputError, match="at most"):
        load_coverage_rules(big)


def test_overrides_apply_to_urban_and_rural_alike() -> None:
    base = CoverageRules(
        urban=CoverageSettings(minutes=10, speed_kmh=4.5, access_m=200),
        rural=CoverageSettings(minutes=15, speed_kmh=12, access_m=300, horizon_minutes=45),
    )
    assert rules_with_overrides(base) == base
    faster = rules_with_overrides(base, speed_kmh=5)
    assert faster.urban == replace(base.urban, speed_kmh=5.0)
    assert faster.rural == replace(base.rural, speed_kmh=5.0)
    straight = rules_with_overrides(base, mode="euclidean", access_m=50)
    assert (straight.urban.mode, straight.rural.mode) == ("euclidean", "euclidean")
    assert (straight.urban.access_m, straight.rural.access_m) == (50.0, 50.0)
    assert straight.rural.minutes == 15  # what is not given stays as the file has it
    longer = rules_with_overrides(base, minutes=50)
    assert (longer.urban.minutes, longer.rural.minutes) == (50.0, 50.0)
    assert longer.urban.horizon_minutes == 60.0  # within the horizon: unchanged
    assert longer.rural.horizon_minutes == 50.0  # beyond it: the horizon follows
    assert base.rural.horizon_minutes == 45  # the base is not touched


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "bus"},
        {"minutes": 0},
        {"minutes": float("nan")},
        {"speed_kmh": -3},
        {"access_m": -1},
        {"minutes": True},
    ],
)
def test_bad_overrides_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InputError):
        rules_with_overrides(CoverageRules(), **options)  # type: ignore[arg-type]
