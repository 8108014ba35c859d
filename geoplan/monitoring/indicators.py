"""The computation kinds behind the indicators: each a keyword-only pure function of the layers.

An indicator (layers/indicators.yaml) names a kind and its parameters; the kind computes raw values for the
indicator's scopes (district, per town, per rule, per status, …) from an `Inputs` bundle of GeoDataFrames, the
population raster, the walking graph, the conflict rules and marks and the project ledger, all as of one
moment. Kinds never read the store or settings and never modify their inputs; `indicators_table.evaluate`
turns their rows into the tidy indicator table with units and targets.

Every kind returns `KIND_COLUMNS`: scope, scope_key ("" for the district), value (in the kind's base unit: %
for shares, m² for areas, a number for counts), value_ellipsoid (the same area on the CGCS2000 ellipsoid, NaN
where the value is no area) and note (why a value is missing, "" otherwise). Areas are measured planar in
EPSG:4547 and on the ellipsoid. A layer that holds no data gives one district row with value NaN and the note
`NO_DATA`, never a made-up zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoplan.analysis.coverage import (
    CoverageResult,
    CoverageRules,
    VirtualUnits,
    compute_coverage,
    district_total,
    town_rollup,
)
from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.network import WalkGraph
from geoplan.analysis.overlap import OverlapSettings, find_conflicts
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.analysis.siting import SELF_SERVICE_LIBRARY, self_service_library_coverage
from geoplan.analysis.summary import exempt_mask
from geoplan.analysis.unit_groups import VIRTUAL_GROUP
from geoplan.catalog import Catalog, FieldDef
from geoplan.crs import METRIC_CRS
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf
from geoplan.rasterdata import RasterData

__all__ = [
    "KIND_COLUMNS",
    "LAYER_KINDS",
    "MARK_NONE",
    "NO_DATA",
    "TOWN_SEPARATOR",
    "Inputs",
    "Kind",
    "Needs",
]

Quantity = Literal["percent", "area", "count"]
KIND_COLUMNS = ["scope", "scope_key", "value", "value_ellipsoid", "note"]
NO_DATA = "no data"
MARK_NONE = "none"
"""The status of a conflict patch nobody has marked yet."""
MARK_STATUSES = (MARK_NONE, "accepted", "to_adjust", "resolved")
TOWN_SEPARATOR = "、"
"""Projects that span towns list them in one field, separated by this (荷城街道、杨和镇)."""
KEY_SEPARATOR = "|"
"""Two-level scope keys join their parts with this: "规划建设科学化|在建"."""
PROJECT_SCOPES = ("district", "status", "task_area", "town", "task_area_status", "town_status")
COMPLETED_STATUS = "已完工"

T = TypeVar("T")


@dataclass(frozen=True)
class Inputs:
    """Everything the kinds read, as of one moment. `memo` shares expensive results between indicators of
    one evaluation (two indicators on the same coverage run compute it once)."""

    layers: Mapping[str, gpd.GeoDataFrame]
    as_of: AsOf
    catalog: Catalog
    population: RasterData | None = None
    graph: WalkGraph | None = None
    coverage_rules: CoverageRules = field(default_factory=CoverageRules)
    conflict_rules: tuple[ConflictRule, ...] = ()
    marks: Mapping[str, str] = field(default_factory=dict)
    """Conflict patch id -> its mark status at `as_of` (unmarked patches are absent)."""
    ledger: pd.DataFrame | None = None
    """`ledger.ledger_table` as of the quarter of `as_of`; None: status and progress from the projects layer."""
    life_circle_rules: Mapping[str, ServiceRule] = field(default_factory=dict)
    """Every service of rules/life_circles.yaml: the life-circle kinds run them all in one engine run."""
    checklist: pd.DataFrame | None = None
    """`village_checklist.checklist_state` as of the quarter of `as_of` (one row per village and item)."""
    memo: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        crss = {name: frame.crs for name, frame in self.layers.items()}
        if any(crs is None for crs in crss.values()):
            raise InputError(f"layer(s) without a CRS: {', '.join(n for n, c in crss.items() if c is None)}")
        distinct = {crs.to_string() for crs in crss.values() if crs is not None}
        if len(distinct) > 1:
            raise InputError(f"the layers must share one CRS, not {', '.join(sorted(distinct))}")

    def layer(self, name: str) -> gpd.GeoDataFrame:
        try:
            return self.layers[name]
        except KeyError:
            raise InputError(f"the indicator needs layer '{name}', which was not given") from None

    def memoised(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key not in self.memo:
            self.memo[key] = compute()
        value: T = self.memo[key]
        return value


@dataclass(frozen=True)
class Needs:
    """What a kind reads, so the caller loads (and replays) only that."""

    layers: frozenset[str] = frozenset()
    population: bool = False
    walk_graph: bool = False
    conflicts: bool = False
    """The conflict rules, the layers they compare and the marks."""
    ledger: bool = False
    life_circles: bool = False
    """The life-circle rules, their facility layers, the population raster and (for network rules) the graph."""
    checklist: bool = False
    """The village checklist's state as of the quarter (`Inputs.checklist`)."""


class KindFunction(Protocol):
    def __call__(self, *, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Kind:
    """One computation kind: its function, what it measures, the scopes it offers and what it reads."""

    name: str
    function: KindFunction
    quantity: Quantity
    scopes: Callable[[Mapping[str, Any]], tuple[str, ...]]
    needs: Callable[[Mapping[str, Any]], Needs]
    check: Callable[[Mapping[str, Any], Catalog], list[str]]
    """Problems with the parameters (empty when they are fine)."""
    summary: str


# --------------------------------------------------------------------------------------------- helpers


def kind_frame(rows: list[tuple[str, str, float, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=KIND_COLUMNS)
    frame["value"] = frame["value"].astype("float64")
    frame["value_ellipsoid"] = frame["value_ellipsoid"].astype("float64")
    return frame


def no_data(layer: str) -> pd.DataFrame:
    return kind_frame([("district", "", math.nan, math.nan, f"{NO_DATA}: layer {layer} holds no features")])


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else math.nan


def _metric(frame: gpd.GeoDataFrame) -> np.ndarray:
    if frame.crs is None:
        raise InputError("a layer without a CRS cannot be measured")
    return np.asarray(frame.to_crs(METRIC_CRS).geometry.values, dtype=object)


def _union(geoms: np.ndarray) -> shapely.Geometry:
    if len(geoms) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.make_valid(geoms))


def text_or_none(value: Any) -> str | None:
    """A field's text, None when missing (None, NaN, pandas' NA or blank)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def first_containing(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Per point, the position of the first polygon that covers it (-1 for none): a point on a shared border
    goes to the polygon listed first, so it is counted once."""
    out = np.full(len(points), -1, dtype=np.intp)
    if len(points) == 0 or len(polygons) == 0:
        return out
    tree = shapely.STRtree(polygons)
    hit_point, hit_polygon = tree.query(points, predicate="covered_by")
    order = np.lexsort((hit_polygon, hit_point))
    hit_point, hit_polygon = hit_point[order], hit_polygon[order]
    first = np.r_[True, hit_point[1:] != hit_point[:-1]] if len(hit_point) else np.zeros(0, dtype=bool)
    out[hit_point[first]] = hit_polygon[first]
    return out


def town_names(inputs: Inputs) -> list[str]:
    """The towns every per-town count lists, zero or not: the towns layer without the prisons' and farms' own
    areas (a project that does lie in one still gets its row, from the data)."""
    towns = inputs.layers.get("towns")
    if towns is None:
        return []
    if "kind" in towns.columns:
        towns = towns[towns["kind"].astype(str) != SPECIAL_TOWN_KIND]
    return [str(t) for t in towns["town_name"]]


def scope_keys(known: Sequence[Any] | None, present: Sequence[Any]) -> list[str]:
    """Every key worth a row: the known values (allowed values, the towns layer) first, then any others
    present in the data. Zero rows stay, so a history has the same keys in every snapshot."""
    out = [str(k) for k in (known or ())]
    for value in present:
        if value is not None and str(value) not in out:
            out.append(str(value))
    return out


def allowed_values(catalog: Catalog, layer: str, field_name: str) -> tuple[Any, ...]:
    if layer not in catalog:
        return ()
    return catalog.get(layer).field(field_name).allowed or ()


def _list_of_strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def check_keys(params: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str] = ()) -> list[str]:
    problems = [
        f"unknown parameter {key!r} (known: {', '.join(allowed) or 'none'})" for key in params if key not in allowed
    ]
    problems += [f"parameter {key!r} is missing" for key in required if key not in params]
    return problems


def check_allowed_values(values: Any, field_def: FieldDef, what: str) -> list[str]:
    if not _list_of_strings(values):
        return [f"{what} must be a non-empty list of names"]
    if field_def.allowed is None:
        return []
    return [
        f"{what}: {v!r} is not one of {', '.join(map(str, field_def.allowed))}"
        for v in values
        if v not in field_def.allowed
    ]


def fixed_scopes(*scopes: str) -> Callable[[Mapping[str, Any]], tuple[str, ...]]:
    """A kind's scopes, the same whatever its parameters."""
    return lambda _: scopes


def layer_needs(*names: str) -> Callable[[Mapping[str, Any]], Needs]:
    """A kind that needs these layers and nothing else."""
    return lambda _: Needs(layers=frozenset(names))


# --------------------------------------------------------------------------------------------- coverage

COVERAGE_LAYERS = frozenset({"villages", "culture_facilities", "roads"})


def _coverage_needs(_: Mapping[str, Any]) -> Needs:
    return Needs(layers=COVERAGE_LAYERS, population=True, walk_graph=True)


class _CoverageArgs(TypedDict):
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    population: RasterData
    graph: WalkGraph | None
    rules: CoverageRules


def _coverage_args(inputs: Inputs) -> _CoverageArgs:
    """What the coverage engine's entry points take, from the inputs (the rules are the store's)."""
    return _CoverageArgs(
        villages=inputs.layer("villages"),
        facilities=inputs.layer("culture_facilities"),
        population=_population(inputs),
        graph=inputs.graph,
        rules=inputs.coverage_rules,
    )


def _coverage_result(inputs: Inputs, kinds: Sequence[str] | None) -> CoverageResult:
    key = ("coverage", None if kinds is None else tuple(kinds))
    return inputs.memoised(key, lambda: compute_coverage(**_coverage_args(inputs), kinds=kinds))


def _population(inputs: Inputs) -> RasterData:
    if inputs.population is None:
        raise InputError("the coverage indicators need the population raster")
    return inputs.population


VIRTUAL_UNITS_CHOICES = ("separate", "in_towns")
SPECIAL_TOWN_KIND = "special"
"""The towns layer's kind of the prisons' and farms' own areas (the virtual units' territory)."""


def _virtual_units(params: Mapping[str, Any]) -> VirtualUnits:
    """The `virtual_units` parameter (default separate): whether prisons and farms get town rows and targets."""
    return "in_towns" if params.get("virtual_units") == "in_towns" else "separate"


def _check_virtual_units(params: Mapping[str, Any]) -> list[str]:
    value = params.get("virtual_units", "separate")
    if value not in VIRTUAL_UNITS_CHOICES:
        return [f"virtual_units must be one of {', '.join(VIRTUAL_UNITS_CHOICES)}, not {value!r}"]
    return []


def _town_rows(towns: pd.DataFrame) -> pd.DataFrame:
    """The town rollup without the virtual units' own group: they are no town and are held to no town target
    (they stay in the district row)."""
    return towns[towns["town"] != VIRTUAL_GROUP]


def _coverage_rows(district: tuple[float, float] | None, towns: pd.DataFrame | None) -> pd.DataFrame:
    """Rows from (covered, population) of the district and a town rollup (town, covered_population, population)."""
    rows: list[tuple[str, str, float, float, str]] = []
    if towns is not None:
        towns = _town_rows(towns)
    if district is not None:
        covered, population = district
        rows.append(("district", "", _pct(covered, population), math.nan, "" if population > 0 else "no population"))
    if towns is not None:
        for town, covered, population in zip(
            towns["town"], towns["covered_population"], towns["population"], strict=True
        ):
            note = "" if population > 0 else "no population"
            rows.append(("town", str(town), _pct(float(covered), float(population)), math.nan, note))
    return kind_frame(rows)


def cultural_coverage(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """Ten-minute cultural-circle population coverage (%): the share of the people within reach of a cultural
    facility (of `kinds`, default every kind) under the coverage rules, for the district and per town."""
    if not len(inputs.layer("villages")):
        return no_data("villages")
    kinds = params.get("kinds")
    table = _coverage_result(inputs, None if kinds is None else list(kinds)).table
    total = district_total(table)
    district = (total["covered_population"], total["population"]) if "district" in scopes else None
    towns = town_rollup(table, virtual_units=_virtual_units(params)) if "town" in scopes else None
    return _coverage_rows(district, towns)


def library_coverage(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """Self-service library (自助图书馆) population coverage (%) per town (`siting.self_service_library_coverage`);
    the district value adds the towns up."""
    if not len(inputs.layer("villages")):
        return no_data("villages")
    virtual_units = _virtual_units(params)
    towns = inputs.memoised(
        ("library_coverage", virtual_units),
        lambda: self_service_library_coverage(**_coverage_args(inputs), virtual_units=virtual_units),
    )
    district = (float(towns["covered_population"].sum()), float(towns["population"].sum()))
    return _coverage_rows(district if "district" in scopes else None, towns if "town" in scopes else None)


def _check_coverage(params: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = check_keys(params, ["kinds", "virtual_units"]) + _check_virtual_units(params)
    if "kinds" in params and "culture_facilities" in catalog:
        problems += check_allowed_values(params["kinds"], catalog.get("culture_facilities").field("kind"), "kinds")
    return problems


# --------------------------------------------------------------------------------------------- facility counts


def facility_count(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The number of cultural facilities of `kinds` in the district and per town (the town whose polygon
    covers the point; `town_kinds` limits which towns get a row, e.g. the four towns without the farms)."""
    facilities = inputs.layer("culture_facilities")
    towns = inputs.layer("towns")
    chosen = facilities[facilities["kind"].isin(list(params["kinds"])).to_numpy()]
    rows: list[tuple[str, str, float, float, str]] = []
    if "district" in scopes:
        rows.append(("district", "", float(len(chosen)), math.nan, ""))
    if "town" in scopes:
        where = first_containing(np.asarray(chosen.geometry.values, dtype=object), np.asarray(towns.geometry.values))
        counts = np.bincount(where[where >= 0], minlength=len(towns))
        town_kinds = params.get("town_kinds")
        for position, (name, kind) in enumerate(zip(towns["town_name"], towns["kind"], strict=True)):
            if town_kinds is None or kind in town_kinds:
                rows.append(("town", str(name), float(counts[position]), math.nan, ""))
    return kind_frame(rows)


def _check_facility_count(params: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = check_keys(params, ["kinds", "town_kinds"], required=["kinds"])
    if "kinds" in params and "culture_facilities" in catalog:
        problems += check_allowed_values(params["kinds"], catalog.get("culture_facilities").field("kind"), "kinds")
    if "town_kinds" in params and "towns" in catalog:
        problems += check_allowed_values(params["town_kinds"], catalog.get("towns").field("kind"), "town_kinds")
    return problems


# --------------------------------------------------------------------------------------------- conflicts


def conflict_area(*, inputs: Inputs, params: Mapping[str, Any], scopes: Sequence[str]) -> pd.DataFrame:
    """The area (planar and ellipsoidal m²) of the 多规合一 conflict patches whose mark status at the moment is
    one of `marks` ("none" for unmarked), per rule (every rule of the table gets a row) and in total. Patches
    a rule exempts (a road outside the development boundary) are never counted."""
    rules = inputs.conflict_rules
    settings = OverlapSettings(
        min_area_m2=float(params.get("min_area_m2", OverlapSettings().min_area_m2)),
        min_width_m=float(params.get("min_width_m", OverlapSettings().min_width_m)),
    )
    patches = inputs.memoised(
        ("patches", settings, tuple(r.code for r in rules)),
        lambda: find_conflicts(
            layers={name: inputs.layer(name) for name in layers_of(rules)},
            catalog=inputs.catalog,
            rules=rules,
            settings=settings,
        ),
    )
    status = np.array([inputs.marks.get(str(pid), MARK_NONE) for pid in patches["patch_id"]], dtype=object)
    chosen = patches[np.isin(status, list(params["marks"])) & ~exempt_mask(patches)]  # exempt: listed, not counted
    planar = chosen.groupby("rule")["area_m2"].sum()
    ellipsoid = chosen.groupby("rule")["area_ellipsoid_m2"].sum()
    rows: list[tuple[str, str, float, float, str]] = []
    if "district" in scopes:
        rows.append(("district", "", float(planar.sum()), float(ellipsoid.sum()), ""))
    if "rule" in scopes:
        for code in scope_keys([r.code for r in rules], list(planar.index)):
            rows.append(("rule", code, float(planar.get(code, 0.0)), float(ellipsoid.get(code, 0.0)), ""))
    return kind_frame(rows)


def _check_conflict_area(params: Mapping[str, Any], _: Catalog) -> list[str]:
    problems = check_keys(params, ["marks", "min_area_m2", "min_width_m"], required=["marks"])
    marks = params.get("marks")
    if "marks" in params:
        if not isinstance(marks, list) or not _list_of_strings(marks):
            problems.append("marks must be a non-empty list of mark statuses")
        else:
            problems += [
                f"marks: {m!r} is not one of {', '.join(MARK_STATUSES)}" for m in marks if m not in MARK_STATUSES
            ]
    for key in ("min_area_m2", "min_width_m"):
        value = params.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            problems.append(f"{key} must be a number >= 0, not {value!r}")
    return problems


# --------------------------------------------------------------------------------------------- sponge city


LAYER_KINDS: tuple[Kind, ...] = (
    Kind(
        "cultural_coverage",
        cultural_coverage,
        "percent",
        fixed_scopes("district", "town"),
        _coverage_needs,
        _check_coverage,
        "population share within reach of a cultural facility (coverage rules of layers/rules/coverage.yaml)",
    ),
    Kind(
        "library_coverage",
        library_coverage,
        "percent",
        fixed_scopes("district", "town"),
        _coverage_needs,
        lambda params, _: check_keys(params, ["virtual_units"]) + _check_virtual_units(params),
        f"population share within reach of a {SELF_SERVICE_LIBRARY}",
    ),
    Kind(
        "facility_count",
        facility_count,
        "count",
        fixed_scopes("district", "town"),
        layer_needs("culture_facilities", "towns"),
        _check_facility_count,
        "number of cultural facilities of some kinds",
    ),
    Kind(
        "conflict_area",
        conflict_area,
        "area",
        fixed_scopes("district", "rule"),
        lambda _: Needs(conflicts=True),
        _check_conflict_area,
        "area of conflict patches by their mark status",
    ),
)
"""The kinds computed from the layers: coverage, facility counts, conflict areas (areas: `area_indicators`)."""
