"""The conflict rule table: the default file loads; every kind of mistake in a user's file is named."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from geoplan.analysis.rules import filter_mask, layers_of, parse_rules
from geoplan.catalog import Catalog
from geoplan.errors import InputError, ValidationFailed
from geoplan.services.rule_files import default_rules_path, load_rules
from tests.conftest import LAYERS_DIR

GOOD: dict[str, Any] = {
    "code": "URBAN_ON_FARMLAND",
    "title_zh": "城规建设用地占用基本农田",
    "title_en": "Urban construction land on basic farmland",
    "severity": "high",
    "relation": "intersection",
    "layer_a": "urban_plan",
    "filter_a": {"construction": True, "land_class": ["居住用地", "工业用地"]},
    "layer_b": "basic_farmland",
    "basis": "《基本农田保护条例》",
    "description": "test",
}


def parse(*rules: dict[str, Any], catalog: Catalog) -> list[Any]:
    return parse_rules({"rules": list(rules)}, catalog, source="test.yaml")


def with_(**changes: Any) -> dict[str, Any]:
    rule = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is ...:
            rule.pop(key, None)
        else:
            rule[key] = value
    return rule


def test_the_default_rule_table_loads(catalog: Catalog) -> None:
    rules = load_rules(default_rules_path(LAYERS_DIR), catalog)
    by_code = {r.code: r for r in rules}
    assert list(by_code) == [
        "ECO_PROJECT",
        "FARMLAND_PROJECT",
        "FARMLAND_IN_BOUNDARY",
        "URBAN_ON_NONCONSTRUCTION",
        "LANDUSE_ON_NONURBAN",
        "CONSTRUCTION_OUTSIDE_BOUNDARY",
        "PROJECT_OUTSIDE_BOUNDARY",
    ]
    urban = by_code["URBAN_ON_NONCONSTRUCTION"]
    assert (urban.layer_a, urban.layer_b, urban.severity) == ("urban_plan", "landuse_plan", "medium")
    assert urban.filter_a == (("construction", (True,)),) and urban.filter_b == (("construction", (False,)),)
    assert by_code["CONSTRUCTION_OUTSIDE_BOUNDARY"].relation == "difference"
    assert [r.code for r in rules if r.site_check] == ["ECO_PROJECT", "FARMLAND_PROJECT", "PROJECT_OUTSIDE_BOUNDARY"]
    assert all(r.basis and r.title_zh and r.title_en for r in rules)
    assert layers_of(rules) == [
        "projects",
        "eco_redlines",
        "basic_farmland",
        "dev_boundary",
        "urban_plan",
        "landuse_plan",
    ]


def test_a_good_user_rule_with_list_and_scalar_filters(catalog: Catalog) -> None:
    (rule,) = parse(GOOD, catalog=catalog)
    assert rule.filter_a == (("construction", (True,)), ("land_class", ("居住用地", "工业用地")))
    assert rule.filter_b == () and rule.site_check is False
    frame = pd.DataFrame(
        {
            "construction": pd.array([True, True, False, None], dtype="boolean"),
            "land_class": ["居住用地", "水域", "工业用地", "工业用地"],
        }
    )
    assert filter_mask(frame, rule.filter_a).tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (with_(layer_a="urban_plans"), "layer_a", "unknown layer 'urban_plans'"),
        (with_(layer_b="culture_facilities"), "layer_b", "not a polygon layer"),
        (with_(layer_b="population"), "layer_b", "not a polygon layer"),
        (with_(layer_b="urban_plan"), "layer_b", "two different layers"),
        (with_(filter_a={"constructon": True}), "filter_a", "no field 'constructon'"),
        (with_(filter_a={"land_class": "住宅用地"}), "filter_a", "'住宅用地' is not an allowed value"),
        (with_(filter_a={"land_class": ["居住用地", "工业"]}), "filter_a", "'工业' is not an allowed value"),
        (with_(filter_a={"construction": "true"}), "filter_a", "boolean field: use true or false"),
        (with_(filter_a={"construction": 1}), "filter_a", "boolean field"),
        (with_(filter_a={"construction": []}), "filter_a", "empty list"),
        (with_(filter_a={}), "filter_a", "must be a mapping"),
        (with_(filter_a=["construction"]), "filter_a", "must be a mapping"),
        (with_(layer_b="basic_farmland", filter_b={"grade": "一等"}), "filter_b", "integer field"),
        (with_(layer_b="basic_farmland", filter_b={"grade": 16}), "filter_b", "outside the field's range"),
        (with_(layer_b="basic_farmland", filter_b={"grade": True}), "filter_b", "integer field"),
        (with_(layer_a="projects", filter_a={"progress_pct": "half"}), "filter_a", "number field"),
        (with_(layer_a="projects", filter_a={"name": 12}), "filter_a", "text field"),
        (with_(severity="critical"), "severity", "high, medium, low"),
        (with_(relation="union"), "relation", "intersection, difference"),
        (with_(site_check="yes"), "site_check", "true or false"),
        (with_(code="has space"), "code", "letter then"),
        (with_(title_zh="x" * 201), "title_zh", "at most 200"),
        (with_(basis="line\x07bell"), "basis", "control characters"),
        (with_(filter_b={"construction": True}, filtr_b={}), "filtr_b", "unknown key"),
    ],
)
def test_each_mistake_is_named_with_its_rule_and_key(
    catalog: Catalog, rule: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(rule, catalog=catalog)
    problems = caught.value.problems
    assert any(p.field == field and message in p.message for p in problems), problems
    assert all(p.feature == f"rule {rule['code']}" for p in problems)


def test_a_layer_without_ids_cannot_take_part(catalog: Catalog) -> None:
    no_ids = dataclasses.replace(catalog.get("dev_boundary"), name="no_ids", id_field=None)
    extended = Catalog([*catalog, no_ids])
    with pytest.raises(ValidationFailed, match="no id field"):
        parse(with_(layer_b="no_ids"), catalog=extended)


@pytest.mark.parametrize("key", ["code", "title_zh", "title_en", "severity", "relation", "layer_a", "layer_b", "basis"])
def test_missing_keys_are_named(catalog: Catalog, key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(with_(**{key: ...}), catalog=catalog)
    assert [(p.field, p.message) for p in caught.value.problems] == [(key, "missing")]


def test_duplicate_codes_and_every_problem_are_reported_at_once(catalog: Catalog) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(GOOD, GOOD, with_(code="OTHER", severity="urgent"), "not a mapping", catalog=catalog)  # type: ignore[arg-type]
    messages = [str(p) for p in caught.value.problems]
    assert len(messages) == 3, messages
    assert "duplicate rule code 'URBAN_ON_FARMLAND'" in messages[0]
    assert "rule OTHER" in messages[1] and "severity" in messages[1]
    assert "rule #4" in messages[2]
    assert str(caught.value).startswith("test.yaml: 3 problem(s)")


@pytest.mark.parametrize("raw", [None, [], {"rules": []}, {"rules": {"code": "X"}}, {"rule": [GOOD]}])
def test_a_file_without_a_rules_list_is_refused(catalog: Catalog, raw: object) -> None:
    with pytest.raises(InputError, match=r"test\.yaml"):
        parse_rules(raw, catalog, source="test.yaml")


def test_file_level_errors(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_rules(tmp_path / "absent.yaml", catalog)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - code: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.yaml: not a readable YAML file"):
        load_rules(broken, catalog)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00rules")
    with pytest.raises(InputError, match=r"binary\.yaml"):
        load_rules(binary, catalog)
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump({"rules": [GOOD]}, allow_unicode=True), encoding="utf-8")
    assert [r.code for r in load_rules(good, catalog)] == ["URBAN_ON_FARMLAND"]


def test_filter_mask_refuses_a_frame_without_the_filtered_column(catalog: Catalog) -> None:
    (rule,) = parse(GOOD, catalog=catalog)
    with pytest.raises(InputError, match="construction"):
        filter_mask(pd.DataFrame({"land_class": ["居住用地"]}), rule.filter_a)
