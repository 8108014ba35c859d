"""layers/rules/life_circles.yaml: read, checked against the catalogue, and clear about a bad file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from geoplan.analysis.coverage_config import parse_coverage_rules
from geoplan.analysis.life_circle_rules import parse_life_circles
from geoplan.catalog import load_catalog
from geoplan.errors import InputError
from geoplan.services.rule_files import load_life_circles
from tests.conftest import ROOT

LAYERS = ROOT / "layers"
RULES = LAYERS / "rules" / "life_circles.yaml"
STANDARDS_DOC = ROOT / "docs" / "life-circle-standards.md"


def _raw() -> dict:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def test_the_bundled_file_covers_every_service_and_culture() -> None:
    rules = load_life_circles(RULES, load_catalog(LAYERS))
    services = load_catalog(LAYERS).get("public_facilities").field("service").allowed
    assert set(rules) == {*(services or []), "culture"}
    assert {r.circle for r in rules.values()} == {5, 10, 15}
    # values cited from GB 50180-2018 (appendix C), as the issue quotes them; see docs/life-circle-standards.md
    assert rules["kindergarten"].urban.radius_m == 300 and not rules["kindergarten"].urban.assumed
    assert rules["primary_school"].urban.radius_m == 500
    assert rules["middle_school"].urban.radius_m == 1000
    assert all(r.rural.assumed for r in rules.values())  # no standard fixes a rural radius
    park = rules["park"].urban
    assert [(r.min_ha, r.radius_m) for r in park.reaches] == [(0.5, 500.0), (0.2, 300.0)]
    assert rules["park"].area_field == "area_ha"
    assert rules["kindergarten"].where == (("service", ("kindergarten",)),)


def test_culture_is_the_ten_minute_circle_of_coverage_yaml() -> None:
    culture = load_life_circles(RULES)["culture"]
    old = parse_coverage_rules(yaml.safe_load((LAYERS / "rules" / "coverage.yaml").read_text(encoding="utf-8")))
    assert culture.layer == "culture_facilities" and culture.where == ()
    assert culture.settings(culture.urban.radius_m) == old.urban
    assert culture.settings(culture.rural.radius_m) == old.rural


def test_radius_becomes_minutes_at_the_walking_speed() -> None:
    rule = load_life_circles(RULES)["kindergarten"]
    s = rule.settings(300)
    assert s.minutes == pytest.approx(300 / 75.0)
    assert s.threshold_m == pytest.approx(300.0, abs=1e-9)
    assert rule.settings(5000).horizon_minutes >= rule.settings(5000).minutes


def test_a_bad_file_reports_every_problem_at_once() -> None:
    raw = _raw()
    raw["services"]["kindergarten"]["circle"] = 7
    raw["services"]["primary_school"]["urban"]["radius_m"] = -5
    raw["services"]["market"]["rural"].pop("clause")
    raw["services"]["sports"]["speeed_kmh"] = 5
    raw["services"]["clinic"]["rural"]["assumed"] = "yes"
    with pytest.raises(InputError) as err:
        parse_life_circles(raw, source="life_circles.yaml")
    msg = str(err.value)
    assert msg.startswith("life_circles.yaml: ")
    for part in (
        "kindergarten.circle must be one of 5, 10, 15, not 7",
        "primary_school.urban.radius_m must be > 0, not -5",
        "market.rural: radius_m and a clause",
        "sports: unknown key(s) speeed_kmh",
        "clinic.rural.assumed must be true or false",
    ):
        assert part in msg


@pytest.mark.parametrize(
    "raw",
    [None, [], {"services": {}}, {"services": []}, {"defaults": {}}],
)
def test_not_a_rules_file(raw: object) -> None:
    with pytest.raises(InputError, match="non-empty 'services'"):
        parse_life_circles(raw)


def test_radius_by_area_needs_an_area_field() -> None:
    raw = _raw()
    raw["services"]["park"].pop("area_field")
    with pytest.raises(InputError, match=r"park\.urban\.radius_m by area needs the service's area_field"):
        parse_life_circles(raw)


def test_the_catalogue_check_names_a_wrong_service_value(tmp_path: Path) -> None:
    raw = _raw()
    raw["services"]["kindergarten"]["where"] = {"service": "kindergarden"}
    raw["services"]["park"]["area_field"] = "size_ha"
    raw["services"]["culture"]["layer"] = "libraries"
    path = tmp_path / "life_circles.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    load_life_circles(path)  # the file itself is well formed
    with pytest.raises(InputError) as err:
        load_life_circles(path, load_catalog(LAYERS))
    msg = str(err.value)
    assert "kindergarten.where.service: kindergarden not among" in msg
    assert "park: layer 'public_facilities' has no field 'size_ha'" in msg
    assert "culture.layer: no layer 'libraries' in the catalogue" in msg


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_life_circles(tmp_path / "none.yaml")


def test_every_clause_says_how_far_it_was_checked() -> None:
    for name, rule in load_life_circles(RULES).items():
        for kind, unit in (("urban", rule.urban), ("rural", rule.rural)):
            where = f"{name}.{kind}"
            if unit.verified:
                assert unit.source, where  # the loader enforces it; the bundled file must not dodge it
            else:
                # the clause is what a reader sees: an unchecked one must say so in its own words
                assert "未核" in unit.clause or "规划假定" in unit.clause, where
            if unit.assumed:
                assert "规划假定" in unit.clause, where


def test_verified_and_source_are_read_and_checked() -> None:
    raw = _raw()
    raw["services"]["kindergarten"]["urban"].update(verified=True, source="GB 50180-2018 表C.0.3（出版本）")
    rules = parse_life_circles(raw)
    assert (
        rules["kindergarten"].urban.verified and rules["kindergarten"].urban.source == "GB 50180-2018 表C.0.3（出版本）"
    )
    assert not rules["primary_school"].urban.verified and rules["primary_school"].urban.source is None
    raw["services"]["primary_school"]["urban"].pop("verified")  # absent means not verified
    assert not parse_life_circles(raw)["primary_school"].urban.verified

    raw = _raw()
    raw["services"]["kindergarten"]["urban"].update(verified=True)
    raw["services"]["kindergarten"]["urban"].pop("source", None)
    raw["services"]["clinic"]["urban"]["verified"] = "yes"
    raw["services"]["market"]["urban"]["source"] = "  "
    raw["services"]["sports"]["rural"]["source"] = 5
    with pytest.raises(InputError) as err:
        parse_life_circles(raw)
    msg = str(err.value)
    for part in (
        "kindergarten.urban: verified: true needs a source",
        "clinic.urban.verified must be true or false, not 'yes'",
        "market.urban.source must be a non-empty text",
        "sports.rural.source must be a non-empty text",
    ):
        assert part in msg


_ROW = re.compile(
    r"^\| `(\w+)` [^|]+\| \S+ (urban|rural) \| ([^|]+) \| ([^|]+) \| [^|]+ \| (是|否) \w+ \| (是|否) \w+ \|$"
)


def _radius_text(reaches: tuple) -> str:
    if len(reaches) == 1 and reaches[0].min_ha is None:
        return f"{reaches[0].radius_m:g} m"
    return "; ".join(f"≥{r.min_ha:g} ha: {r.radius_m:g} m" for r in reaches)


def test_the_standards_page_agrees_with_the_rules_file() -> None:
    rows = {}
    for line in STANDARDS_DOC.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            rows[(m[1], m[2])] = (m[3].strip(), m[4].strip(), m[5] == "是", m[6] == "是")
    expected = {}
    for name, rule in load_life_circles(RULES).items():
        for kind, unit in (("urban", rule.urban), ("rural", rule.rural)):
            expected[(name, kind)] = (_radius_text(unit.reaches), unit.clause, unit.assumed, unit.verified)
    assert rows == expected
