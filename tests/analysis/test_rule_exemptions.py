"""Exemptions in the conflict rules: which project categories each rule of the default table spares, how a
user's mistake in an `exempt` list is named, and that exempt patches are listed but never counted."""

from __future__ import annotations

import copy
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geoplan.analysis.overlap import OverlapSettings, find_conflicts, patch_id
from geoplan.analysis.rules import NOT_EXEMPT, ConflictRule, Exemption, exemption_index, parse_rules
from geoplan.analysis.summary import by_severity, combine, summarise
from geoplan.catalog import Catalog
from geoplan.errors import ValidationFailed
from geoplan.services.rule_files import default_rules_path, load_rules
from tests.conftest import LAYERS_DIR
from tests.plans import brute_force, plan, random_shapes, rule

LINEAR = "线性基础设施"
SITED = "有特定选址要求的设施和特殊用地"
RURAL = "乡村振兴和农业项目"
ECOLOGICAL = "生态修复和生态旅游"
PLANNING = "非建设类项目（规划编制）"
PROJECT_RULES = ("ECO_PROJECT", "FARMLAND_PROJECT", "PROJECT_OUTSIDE_BOUNDARY")

# Project category -> the exemption PROJECT_OUTSIDE_BOUNDARY spares it by (absent: counted). The red-line and
# basic-farmland rules (ECO_PROJECT, FARMLAND_PROJECT) spare no category: occupying them needs an approval.
OUTSIDE_BOUNDARY_EXEMPT = {
    "道路交通": LINEAR,
    "轨道交通": LINEAR,
    "旅游公路": LINEAR,
    "供水工程": LINEAR,
    "排水工程": LINEAR,
    "电力工程": LINEAR,
    "燃气工程": LINEAR,
    "通信工程": LINEAR,
    "水利工程": LINEAR,
    "港口航运": SITED,
    "粮食储备": SITED,
    "乡村振兴": RURAL,
    "现代农业": RURAL,
    "农田水利": RURAL,
    "土地整治": RURAL,
    "生态修复": ECOLOGICAL,
    "生态旅游": ECOLOGICAL,
    "水环境治理": ECOLOGICAL,
    "规划编制": PLANNING,
}
COUNTED = [  # every other category of the catalogue: outside the boundary it is a conflict
    "海绵城市",
    "污水处理",
    "园林绿化",
    "环卫设施",
    "城市更新",
    "景观提升",
    "街区整治",
    "市容整治",
    "智慧城管",
    "停车设施",
    "教育设施",
    "养老设施",
    "医疗卫生",
    "文化设施",
    "农贸市场",
    "人才社区",
    "商务设施",
    "产业园区",
    "物流园区",
    "其他",
]


@pytest.fixture(scope="module")
def default_rules(catalog: Catalog) -> dict[str, ConflictRule]:
    return {r.code: r for r in load_rules(default_rules_path(LAYERS_DIR), catalog)}


def test_the_table_covers_every_category_of_the_catalogue(catalog: Catalog) -> None:
    allowed = catalog.get("projects").field("category").allowed
    assert allowed is not None
    assert sorted([*OUTSIDE_BOUNDARY_EXEMPT, *COUNTED]) == sorted(allowed)


@pytest.mark.parametrize("code", PROJECT_RULES)
@pytest.mark.parametrize("category", [*OUTSIDE_BOUNDARY_EXEMPT, *COUNTED])
def test_category_by_rule(default_rules: dict[str, ConflictRule], category: str, code: str) -> None:
    """One cell of the table: is a project of `category` exempt from rule `code`, and by which exemption."""
    rule = default_rules[code]
    assert rule.layer_a == "projects"
    (index,) = exemption_index(pd.DataFrame({"category": [category]}), rule).tolist()
    expected = OUTSIDE_BOUNDARY_EXEMPT.get(category) if code == "PROJECT_OUTSIDE_BOUNDARY" else None
    assert (rule.exempt[index].title_zh if index != NOT_EXEMPT else None) == expected


def test_every_exemption_states_its_basis_in_chinese(default_rules: dict[str, ConflictRule]) -> None:
    exemptions = [e for r in default_rules.values() for e in r.exempt]
    assert len(exemptions) == 6
    for exemption in exemptions:
        assert "《" in exemption.basis or "假定" in exemption.basis
        assert exemption.basis.isascii() is False and exemption.title_zh.isascii() is False
    spare_transport = default_rules["CONSTRUCTION_OUTSIDE_BOUNDARY"].exempt
    assert [e.filter_a for e in spare_transport] == [(("land_class", ("道路与交通设施用地",)),)]
    for code in ("ECO_PROJECT", "FARMLAND_PROJECT", "FARMLAND_IN_BOUNDARY", "URBAN_ON_NONCONSTRUCTION"):
        assert default_rules[code].exempt == ()


def test_the_first_matching_exemption_gives_the_basis() -> None:
    two = ConflictRule(
        code="T",
        title_zh="测试",
        title_en="test",
        severity="low",
        relation="difference",
        layer_a="projects",
        layer_b="dev_boundary",
        basis="b",
        exempt=(
            Exemption("甲", (("category", ("道路交通",)),), "甲依据"),
            Exemption("乙", (("category", ("道路交通", "乡村振兴")), ("status", ("在建",))), "乙依据"),
        ),
    )
    frame = pd.DataFrame(
        {"category": ["道路交通", "乡村振兴", "乡村振兴", None], "status": ["在建", "在建", "前期", "在建"]}
    )
    assert exemption_index(frame, two).tolist() == [0, 1, NOT_EXEMPT, NOT_EXEMPT]


# --------------------------------------------------------------------------------------------- a user's mistakes

USER_RULE: dict[str, Any] = {
    "code": "MY_OUTSIDE",
    "title_zh": "项目位于开发边界外",
    "title_en": "Project outside the boundary",
    "severity": "low",
    "relation": "difference",
    "layer_a": "projects",
    "layer_b": "dev_boundary",
    "basis": "测试",
    "exempt": [{"title_zh": "线性工程", "filter_a": {"category": ["道路交通"]}, "basis": "可在边界外布局"}],
}


def with_exempt(value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(USER_RULE)
    changed["exempt"] = value
    return changed


def test_a_good_exempt_list_parses(catalog: Catalog) -> None:
    (parsed,) = parse_rules({"rules": [USER_RULE]}, catalog, source="test.yaml")
    assert parsed.exempt == (Exemption("线性工程", (("category", ("道路交通",)),), "可在边界外布局"),)


@pytest.mark.parametrize(
    ("exempt", "message"),
    [
        ([], "must be a list"),
        ({"category": ["道路交通"]}, "must be a list"),
        (["道路交通"], "must be a mapping"),
        ([{"title_zh": "x", "filter_a": {"category": ["道路交通"]}}], "missing basis"),
        ([{"title_zh": "x", "filter_a": {"category": ["道路交通"]}, "basis": "y", "why": "z"}], "unknown key(s) why"),
        ([{"title_zh": "x", "filter_a": {"categroy": ["道路交通"]}, "basis": "y"}], "no field 'categroy'"),
        ([{"title_zh": "x", "filter_a": {"category": ["道路"]}, "basis": "y"}], "'道路' is not an allowed value"),
        ([{"title_zh": "x", "filter_a": {"category": []}, "basis": "y"}], "empty list"),
        ([{"title_zh": "x", "filter_a": {"progress_pct": "half"}, "basis": "y"}], "number field"),
        ([{"title_zh": "x", "filter_a": {"category": ["道路交通"]}, "basis": "y\x07"}], "control characters"),
    ],
)
def test_each_exempt_mistake_is_named_with_its_rule(catalog: Catalog, exempt: Any, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_rules({"rules": [with_exempt(exempt)]}, catalog, source="test.yaml")
    problems = caught.value.problems
    assert any(message in p.message for p in problems), problems
    assert all(p.feature == "rule MY_OUTSIDE" for p in problems)
    assert all(p.field is not None and p.field.startswith("exempt") for p in problems)


# --------------------------------------------------------------------------------------------- counted apart

SETTINGS = OverlapSettings(min_area_m2=10.0, min_width_m=2.0)
CLASSES = ["居住用地", "道路与交通设施用地", "工业用地", "农林用地"]


def _exempting(relation: str, code: str) -> ConflictRule:
    base = rule(relation, code=code)  # type: ignore[arg-type]
    spared = Exemption("交通", (("land_class", ("道路与交通设施用地",)),), "依据甲")
    farms = Exemption("农林", (("land_class", ("农林用地", "道路与交通设施用地")),), "依据乙")
    return ConflictRule(**{**base.__dict__, "exempt": (spared, farms), "severity": "low"})


@pytest.fixture(scope="module")
def plans() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    a = plan(random_shapes(70, seed=11), prefix="A")
    a["land_class"] = [CLASSES[i % len(CLASSES)] for i in range(len(a))]
    b = plan(random_shapes(60, seed=12), prefix="B")
    return a, b


@pytest.mark.parametrize("relation", ["intersection", "difference"])
def test_exempt_patches_are_listed_but_the_totals_leave_them_out(
    catalog: Catalog, plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], relation: str
) -> None:
    a, b = plans
    spare = _exempting(relation, "X")
    plain = rule(relation, code="X")  # type: ignore[arg-type]
    layers = {"urban_plan": a, "landuse_plan": b}
    found = find_conflicts(layers=layers, catalog=catalog, rules=[spare], settings=SETTINGS)
    without = find_conflicts(layers=layers, catalog=catalog, rules=[plain], settings=SETTINGS)
    # Exemptions take nothing away: the same patches, ids and areas, only marked.
    assert found["patch_id"].tolist() == without["patch_id"].tolist()
    assert np.allclose(found["area_m2"], without["area_m2"])
    classes = dict(zip(a["parcel_id"], a["land_class"], strict=True))
    expected_basis = {"道路与交通设施用地": "交通：依据甲", "农林用地": "农林：依据乙"}
    for row in found.itertuples(index=False):
        assert row.exempt == (classes[row.id_a] in expected_basis)
        assert row.exempt_basis == expected_basis.get(classes[row.id_a])
        assert row.patch_id == patch_id("X", "urban_plan", row.id_a, "landuse_plan", row.id_b)
    assert 0 < int(found["exempt"].sum()) < len(found)
    # The totals against a plain double loop of shapely overlays over the features no exemption spares.
    truth = brute_force(a, b, relation, min_area=SETTINGS.min_area_m2, min_width=SETTINGS.min_width_m)  # type: ignore[arg-type]
    counted = {key: area for key, area in truth.items() if classes[key[0]] not in expected_basis}
    spared = {key: area for key, area in truth.items() if classes[key[0]] in expected_basis}
    summary = summarise(found, rules=[spare])
    (by_rule,) = summary.by_rule.itertuples(index=False)
    assert by_rule.patches == len(counted)
    assert by_rule.area_m2 == pytest.approx(sum(counted.values()), rel=1e-9)
    assert summary.exempt_patches == len(spared)
    assert summary.exempt_area_m2 == pytest.approx(sum(spared.values()), rel=1e-9)
    assert int(summary.by_town["patches"].sum()) == len(counted)
    assert summary.by_town["area_m2"].sum() == pytest.approx(sum(counted.values()), rel=1e-9)
    # The parts of a run add up to the whole, exempt totals included.
    halves = [summarise(found.iloc[: len(found) // 2], rules=[spare]), summarise(found.iloc[len(found) // 2 :])]
    joined = combine(halves, rules=[spare])
    assert joined.exempt_patches == summary.exempt_patches
    assert joined.exempt_area_m2 == pytest.approx(summary.exempt_area_m2)
    assert joined.by_rule["area_m2"].sum() == pytest.approx(by_rule.area_m2)


def test_a_table_without_exempt_patches_has_an_empty_exempt_summary(catalog: Catalog) -> None:
    a = plan(random_shapes(10, seed=3), prefix="A")
    b = plan(random_shapes(10, seed=4), prefix="B")
    found = find_conflicts(layers={"urban_plan": a, "landuse_plan": b}, catalog=catalog, rules=[rule()])
    assert not found["exempt"].any() and found["exempt_basis"].isna().all()
    summary = summarise(found, rules=[rule()])
    assert summary.exempt_patches == 0 and summary.exempt_area_m2 == 0.0 and summary.exempt.empty
    assert int(summary.by_rule["patches"].sum()) == len(found)


def test_patches_read_high_first_then_by_area() -> None:
    patches = pd.DataFrame(
        {
            "patch_id": ["a", "b", "c", "d", "e", "f"],
            "severity": ["low", "high", "medium", "high", "low", "high"],
            "area_m2": [500.0, 10.0, 70.0, 30.0, 600.0, 30.0],
        }
    )
    ordered = by_severity(patches)
    assert ordered["patch_id"].tolist() == ["d", "f", "b", "c", "e", "a"]
    assert patches["patch_id"].tolist() == ["a", "b", "c", "d", "e", "f"]  # the input is left as it was
