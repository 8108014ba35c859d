"""The planner map at `/planner` (多规合一冲突图斑): a public skeleton, and the token-only config its script fetches.

Like every page, the skeleton is public: a browser sends no bearer token on a page load. So it holds the map,
the basemap and a few fixed labels, and nothing the public may not see: no layer names, fields or rules (the
public API answers 404 for private layers, and a page must not reveal them either). Once a planner has entered
a token, geoplan-planner.js fetches `planner_config` from `GET /api/overlaps/config` (planner role), then the
plan layers from the OGC API and the patches from `/api/overlaps`, all with the token.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from geoplan.access import Role, visible_fields
from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule, layers_of
from geoplan.catalog import Catalog, LayerDef
from geoplan.reporting.compliance_html import VERDICT_ZH
from geoplan.services.overlap_marks import STATUS_TITLES, STATUSES
from geoplan.services.provenance import synthetic_banner, synthetic_now
from geoplan.storage import LayerStore
from web.maps.basemap import Basemap
from web.maps.client import PageScript, layer_config, page_config, tiles_url
from web.maps.layer_map import LargeLayerPolicy
from web.maps.legend import REAL_LABEL, SYNTHETIC_LABEL
from web.maps.offline import OfflineMap, new_map
from web.maps.style import layer_style

# Strong colours, apart from the plan layers' own (the patches are drawn on top of them), in rule order.
RULE_PALETTE = (
    "#d7191c",
    "#7b3294",
    "#e66101",
    "#0571b0",
    "#00a5b5",
    "#8c2d04",
    "#f0027f",
    "#4d4d4d",
    "#1b7837",
    "#b8860b",
)
SEVERITY_ZH = {"high": "高", "medium": "中", "low": "低"}
DRAW_ORDER = ("landuse_plan", "urban_plan", "basic_farmland", "eco_redlines", "dev_boundary", "projects")
"""Bottom to top: the wall-to-wall plans underneath, the control lines and the projects above them."""
TILED = ("landuse_plan", "urban_plan", "basic_farmland")
"""Plan layers drawn from vector tiles (with any layer over EAGER_MAX_FEATURES): the wall-to-wall plans and the
farmland, thousands of parcels each on real data."""
LAND_USE_PLANS = ("landuse_plan", "urban_plan")
"""Plans coloured by land-use class: the legend lists their classes while they are on the map."""
EAGER_MAX_FEATURES = 1_000
"""Layers up to this size are shown at once; larger ones (the two plans, thousands of parcels that cover the
whole district) load when switched on in the layer control, so the first view is quick and the patches legible."""

API = {
    "config": "/api/overlaps/config",
    "patches": "/api/overlaps",
    "summary": "/api/overlaps/summary",
    "patch": "/api/overlaps/",
    "compliance": "/api/compliance",
    "reportViewer": "/planner/report",
    "scenarios": "/api/scenarios",
}


def build_planner_map(*, basemap: Basemap, policy: LargeLayerPolicy) -> OfflineMap:
    """The empty map and the call into geoplan-planner.js; the script creates its layer groups itself."""
    m = new_map(basemap)
    config = page_config(
        basemap,
        {},
        basemapNote=basemap.note_zh,
        api=API,
        largeLayer=policy.to_json(),
        statuses=[{"value": s, "title": STATUS_TITLES[s]} for s in STATUSES],
        severities=SEVERITY_ZH,
        verdicts=VERDICT_ZH,
        syntheticLabel=SYNTHETIC_LABEL,
        realLabel=REAL_LABEL,
    )
    PageScript("plannerMap", {}, config).add_to(m)
    return m


def plan_layers(rules: Sequence[ConflictRule], catalog: Catalog) -> list[LayerDef]:
    """The layers the rules compare, bottom to top."""
    names = layers_of(rules)
    ordered = [n for n in DRAW_ORDER if n in names] + [n for n in names if n not in DRAW_ORDER]
    return [catalog.get(name) for name in ordered]


def planner_layer_config(
    layer: LayerDef, store: LayerStore, *, page_size: int, role: Role, synthetic: Collection[str]
) -> dict[str, Any]:
    """`layer_config` with every field the role may read (planners see private fields), plus the facts the page
    needs to choose between whole-layer and by-view loading."""
    count = store.count(layer.name)
    extent = store.bounds(layer.name)
    style = layer_style(layer)
    return {
        **layer_config(layer, page_size=page_size, synthetic=layer.name in synthetic),
        "fields": [{"name": n, "label": layer.field(n).title_zh or n} for n in visible_fields(layer, role)],
        "featureCount": count,
        "extent": list(extent) if extent is not None else None,
        "tilesUrl": tiles_url(layer),
        "tiled": layer.name in TILED or count > EAGER_MAX_FEATURES,
        "categoryTitle": layer.field(style.category_field).title_zh if style.category_field else "",
        "classLegend": bool(style.categories) and layer.name in LAND_USE_PLANS,
        "shown": count <= EAGER_MAX_FEATURES,
    }


def rule_config(rule: ConflictRule, index: int, synthetic_layers: Collection[str]) -> dict[str, Any]:
    """A rule as the page draws it; synthetic when either of its layers holds demo data now."""
    synthetic = rule.layer_a in synthetic_layers or rule.layer_b in synthetic_layers
    return {
        "code": rule.code,
        "title": rule.title_zh,
        "titleEn": rule.title_en,
        "severity": rule.severity,
        "relation": rule.relation,
        "layerA": rule.layer_a,
        "layerB": rule.layer_b,
        "basis": rule.basis,
        "description": rule.description,
        "color": RULE_PALETTE[index % len(RULE_PALETTE)],
        "synthetic": synthetic,
    }


def planner_config(
    *, rules: Sequence[ConflictRule], store: LayerStore, page_size: int, role: Role = Role.PLANNER
) -> dict[str, Any]:
    """What the planner page draws with: rules (colours, titles, synthetic flag), plan layers, defaults and the
    banner naming the plan layers that still hold synthetic demo data ('' when none does)."""
    catalog = store.catalog
    layers = plan_layers(rules, catalog)
    defaults = OverlapSettings()
    synthetic = synthetic_now(store)
    district = catalog.get("district") if "district" in catalog else None
    return {
        "rules": [rule_config(rule, i, synthetic) for i, rule in enumerate(rules)],
        "layers": {
            layer.name: planner_layer_config(layer, store, page_size=page_size, role=role, synthetic=synthetic)
            for layer in layers
        },
        "order": [layer.name for layer in layers],
        "district": None
        if district is None
        else layer_config(district, page_size=page_size, synthetic=district.name in synthetic),
        "syntheticNote": synthetic_banner(
            store, tuple(layer.name for layer in layers), tail="，非官方数据，冲突图斑不得作为审批依据"
        ),
        "thresholds": {"min_area_m2": defaults.min_area_m2, "min_width_m": defaults.min_width_m},
    }
