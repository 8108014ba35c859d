"""`geoplan lifecircle`: per village and public service, the share of people within the life-circle radius."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from geoplan.commands.common import StoreOption, check_output, open_configured, out, settings_for
from geoplan.errors import InputError

_SUFFIXES = (".csv", ".xlsx", ".gpkg")


def lifecircle(
    services: Annotated[
        str | None,
        typer.Option("--services", help="Services, comma-separated, e.g. kindergarten,clinic [default: all]"),
    ] = None,
    rules_file: Annotated[
        Path | None, typer.Option("--rules", help="Life-circle rules, YAML (default: layers/rules/life_circles.yaml)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write one row per village and service: .csv, .xlsx, .gpkg")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Life circles (生活圈): per village and service, covered people and coverage %, with the district per service."""
    import geopandas as gpd

    from geoplan.analysis.life_circle_scorecard import scorecard
    from geoplan.analysis.life_circles import life_circle_coverage
    from geoplan.catalog import load_catalog
    from geoplan.io import write_file
    from geoplan.services.coverage_inputs import life_circle_inputs
    from geoplan.services.rule_files import DEFAULT_LIFE_CIRCLES_FILE, load_life_circles

    settings = settings_for(store)
    path = rules_file if rules_file is not None else settings.layers_dir / DEFAULT_LIFE_CIRCLES_FILE
    rules = load_life_circles(path, load_catalog(settings.layers_dir))
    if services is not None:
        wanted = [s.strip() for s in services.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in rules]
        if unknown or not wanted:
            raise InputError(
                f"--services: unknown service(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(rules)}"
            )
        rules = {name: rules[name] for name in wanted}
    check_output(output, _SUFFIXES)
    _, backend = open_configured(store)
    try:
        network = any(rule.mode == "network" for rule in rules.values())
        villages, layers, population, graph = life_circle_inputs(
            backend, sorted({rule.layer for rule in rules.values()}), network=network
        )
    finally:
        backend.close()
    result = life_circle_coverage(villages=villages, layers=layers, population=population, graph=graph, rules=rules)
    table = scorecard(villages, result)

    summary = Table(title=f"life circles: {len(rules)} service(s), {result.searches} search(es)")
    for column in ("service", "名称", "circle", "covered", "population", "coverage %", "villages < 50 %"):
        summary.add_column(column, justify="left" if column in ("service", "名称") else "right")
    for name, rows in table.groupby("service", sort=False):
        people, covered = int(rows["population"].sum()), int(rows["covered_population"].sum())
        low = int((rows["coverage_pct"].fillna(100.0) < 50.0).sum())
        summary.add_row(
            Text(str(name)),
            Text(rules[str(name)].title_zh),
            f"{rules[str(name)].circle} min",
            f"{covered:,}",
            f"{people:,}",
            f"{100.0 * covered / people:.1f}" if people else "—",
            str(low),
        )
    out.print(summary)
    if output is not None:
        # every row carries its village's outline, as `geoplan coverage -o` does (WKT in .csv and .xlsx)
        geoms = villages.set_index(villages["village_code"].astype(str)).geometry
        frame = gpd.GeoDataFrame(table, geometry=geoms.loc[table["village_code"]].to_numpy(), crs=villages.crs)
        write_file(frame, output, layer_name="life_circles")
        out.print(Text(f"{len(table)} row(s) written to {output}"))


def register(app: typer.Typer) -> None:
    app.command("lifecircle")(lifecircle)
