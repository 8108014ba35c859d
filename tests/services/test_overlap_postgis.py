"""The engine against PostGIS on the real demo data: every default rule, areas checked by an independent SQL.

The SQL is written from the rule table alone, in the database's own GEOS and PROJ: project to EPSG:4547,
intersect (or subtract the union of the intersecting B features), dump the parts, apply the sliver rule with
ST_Area and ST_Buffer(part, -w/2), sum. The demo is built once, with `geoplan demo`, into a fresh database.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geoplan.analysis.overlap import OverlapSettings
from geoplan.analysis.rules import ConflictRule, Filter
from geoplan.analysis.summary import summarise
from geoplan.catalog import Catalog
from geoplan.cli import main
from geoplan.services.overlap import run_overlaps
from geoplan.services.overlap_marks import mark_registry
from geoplan.services.rule_files import rules_for
from geoplan.storage.postgis import PostGISStore, engine_url
from tests.conftest import LAYERS_DIR

pytestmark = pytest.mark.postgis
SETTINGS = OverlapSettings()  # the defaults: 10 m², 2 m
REL = 1e-4  # 0.01 %


def _where(alias: str, rule_filter: Filter, params: dict[str, object]) -> str:
    clauses = ["true"]
    for field, values in rule_filter:
        names = []
        for value in values:
            key = f"{alias}{len(params)}"
            params[key] = value
            names.append(f":{key}")
        clauses.append(f'"{field}" IN ({", ".join(names)})')
    return " AND ".join(clauses)


def _postgis_totals(
    connection: sa.Connection, rule: ConflictRule, catalog: Catalog, *, counted_only: bool = False
) -> tuple[int, float]:
    """(patch count, total area) of one rule computed by PostGIS alone; with `counted_only`, of the A features
    none of the rule's exemptions spares."""
    params: dict[str, object] = {"min_area": SETTINGS.min_area_m2, "half": SETTINGS.min_width_m / 2}
    id_a, id_b = catalog.get(rule.layer_a).id_field, catalog.get(rule.layer_b).id_field
    spared = " OR ".join(f"({_where('x', e.filter_a, params)})" for e in rule.exempt) if counted_only else ""
    sides = f"""
        a AS (SELECT "{id_a}" AS id, ST_Transform(geom, 4547) AS g FROM "{rule.layer_a}"
              WHERE {_where("a", rule.filter_a, params)} {f"AND NOT ({spared})" if spared else ""}),
        b AS (SELECT "{id_b}" AS id, ST_Transform(geom, 4547) AS g FROM "{rule.layer_b}"
              WHERE {_where("b", rule.filter_b, params)})"""
    if rule.relation == "intersection":
        pieces = """
        pieces AS (SELECT a.id AS ida, b.id AS idb, ST_Intersection(a.g, b.g) AS g
                   FROM a JOIN b ON ST_Intersects(a.g, b.g))"""
    else:
        pieces = """
        pieces AS (SELECT a.id AS ida, '' AS idb,
                          CASE WHEN u.g IS NULL THEN a.g ELSE ST_Difference(a.g, u.g) END AS g
                   FROM a LEFT JOIN LATERAL (SELECT ST_Union(b.g) AS g FROM b WHERE ST_Intersects(a.g, b.g)) u
                   ON true)"""
    sql = f"""
        WITH {sides}, {pieces},
        parts AS (SELECT ida, idb, (ST_Dump(g)).geom AS p FROM pieces),
        kept AS (SELECT ida, idb, ST_Area(p) AS area FROM parts
                 WHERE ST_GeometryType(p) = 'ST_Polygon' AND ST_Area(p) >= :min_area
                   AND NOT ST_IsEmpty(ST_Buffer(p, -:half)))
        SELECT count(DISTINCT (ida, idb)), coalesce(sum(area), 0) FROM kept"""
    count, area = connection.execute(sa.text(sql), params).one()
    return int(count), float(area)


def test_every_default_rule_matches_an_independent_postgis_computation(
    postgis_url: str, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--store", postgis_url, "--no-snapshots"]) == 0
    capsys.readouterr()
    rules = rules_for(catalog, LAYERS_DIR)
    store = PostGISStore(postgis_url, catalog)
    try:
        patches = run_overlaps(store, rules=rules, settings=SETTINGS)
        _marks_work_in_postgis(store, rules, patches["patch_id"].iloc[-1])
    finally:
        store.close()
    summary = summarise(patches, rules=rules)
    engine = sa.create_engine(engine_url(postgis_url))
    rows = []
    try:
        with engine.connect() as connection:
            for rule in rules:
                mine = patches[patches["rule"] == rule.code]
                count, area = _postgis_totals(connection, rule, catalog)
                rows.append((rule.code, len(mine), count, float(mine["area_m2"].sum()), area))
                # The totals a planner reads leave the exempt patches out: against PostGIS without those features.
                total = summary.by_rule.set_index("rule").loc[rule.code]
                count, area = _postgis_totals(connection, rule, catalog, counted_only=True)
                rows.append((f"{rule.code} (counted)", int(total["patches"]), count, float(total["area_m2"]), area))
    finally:
        engine.dispose()
    report = "\n".join(
        f"{c:40} engine {n:4d} {a:16.3f} m² | PostGIS {m:4d} {b:16.3f} m² | rel diff {abs(a - b) / b:.1e}"
        for c, n, m, a, b in rows
    )
    print(report)
    assert summary.exempt["rule"].tolist() == ["PROJECT_OUTSIDE_BOUNDARY"]  # roads, villages… on the demo
    for code, n_engine, n_postgis, a_engine, a_postgis in rows:
        assert n_engine > 0, f"{code}: no patch on the demo data\n{report}"
        assert n_engine == n_postgis, f"{code}: patch counts differ\n{report}"
        assert a_engine == pytest.approx(a_postgis, rel=REL), f"{code}: areas differ\n{report}"


def _marks_work_in_postgis(store: PostGISStore, rules: list[ConflictRule], patch_id: str) -> None:
    registry = mark_registry(store)
    try:
        registry.mark(patch_id, rule=rules[-1].code, status="resolved", note="已核实", actor="tester")
    finally:
        registry.close()
    again = run_overlaps(store, rules=rules, settings=SETTINGS)
    marked = again[again["patch_id"] == patch_id]
    assert marked["mark_status"].tolist() == ["resolved"]
    assert marked["mark_note"].tolist() == ["已核实"]
