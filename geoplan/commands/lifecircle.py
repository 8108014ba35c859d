"""`geoplan lifecircle`: per village and public service, the share of people within the life-circle radius."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from geoplan.analysis.life_circle_rules import ServiceRule
from geoplan.analysis.life_circles import LifeCircleResult
from geoplan.commands.common import StoreOption, check_output, open_configured, out, settings_for, write_table
from geoplan.errors import InputError

_SUFFIXES = (".csv", ".xlsx", ".gpkg")
_MATRIX_SUFFIXES = (".csv", ".xlsx")
_SHOWN_LACKING = 12


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
    matrix: Annotated[
        Path | None,
        typer.Option("--matrix", help="Write the villages × services matrix (coverage %): .csv or .xlsx"),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Life circles (生活圈): per village and service, covered people and coverage %; per town, completeness per
    circle, and the villages without a 综合性文化服务中心."""

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
    check_output(matrix, _MATRIX_SUFFIXES)
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
    _print_groups(table, rules)
    _print_completeness(villages, result)
    if "culture_facilities" in layers:
        _print_centres(villages, layers["culture_facilities"])
    if matrix is not None:
        from geoplan.analysis.life_circle_matrix import village_matrix

        write_table(village_matrix(table), matrix, sheet="villages_x_services")
        out.print(Text(f"villages × services matrix written to {matrix}"))
    if output is not None:
        # every row carries its village's outline, as `geoplan coverage -o` does (WKT in .csv and .xlsx)
        geoms = villages.set_index(villages["village_code"].astype(str)).geometry
        frame = gpd.GeoDataFrame(table, geometry=geoms.loc[table["village_code"]].to_numpy(), crs=villages.crs)
        write_file(frame, output, layer_name="life_circles")
        out.print(Text(f"{len(table)} row(s) written to {output}"))


def _pct(value: Any) -> str:
    return "—" if value is None or value is pd.NA or value != value else f"{float(value):.1f}"


def _print_groups(table: pd.DataFrame, rules: dict[str, ServiceRule]) -> None:
    """Coverage % per town (virtual units in their own group, the district last) and service."""
    from geoplan.analysis.life_circle_matrix import service_rollup

    rollup = service_rollup(table)
    grid = rollup.pivot(index="group", columns="service", values="coverage_pct")
    grid = grid.reindex(index=list(dict.fromkeys(rollup["group"])), columns=list(dict.fromkeys(rollup["service"])))
    view = Table(title="coverage % by town (虚拟单位: prisons and farms, counted in 全区 only)")
    view.add_column("镇街", justify="left")
    for service in grid.columns:
        view.add_column(rules[str(service)].title_zh, justify="right")
    for group, row in grid.iterrows():
        view.add_row(Text(str(group)), *(_pct(v) for v in row), style="bold" if group == "全区" else None)
    out.print(view)


def _print_completeness(villages: gpd.GeoDataFrame, result: LifeCircleResult) -> None:
    """Per circle, the share of people who reach every service of that circle."""
    from geoplan.analysis.life_circle_matrix import circle_services, completeness, completeness_rollup

    rollup = completeness_rollup(completeness(villages, result))
    names = circle_services(result)
    view = Table(title="completeness: people who reach every service of the circle, %")
    view.add_column("镇街", justify="left")
    for circle, services in names.items():
        titles = "、".join(result.services[n].rule.title_zh for n in services)
        view.add_column(f"{circle} 分钟（{titles}）", justify="right")
    grid = rollup.pivot(index="group", columns="circle", values="completeness_pct")
    for group in dict.fromkeys(rollup["group"]):
        cells = [_pct(grid.loc[group, circle]) for circle in names]
        view.add_row(Text(str(group)), *cells, style="bold" if group == "全区" else None)
    out.print(view)


def _print_centres(villages: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> None:
    """Which villages and communities have a 综合性文化服务中心 inside their boundary."""
    from geoplan.analysis.culture_centres import culture_centres

    centres = culture_centres(villages=villages, facilities=facilities)
    expected = centres[centres["expected"]]
    lacking = expected[~expected["has_centre"]]
    shown = "、".join(lacking["village_name"].head(_SHOWN_LACKING))
    more = f" …（另 {len(lacking) - _SHOWN_LACKING} 个）" if len(lacking) > _SHOWN_LACKING else ""
    out.print(
        Text(
            f"综合性文化服务中心: {int(expected['has_centre'].sum())} of {len(expected)} villages and communities "
            f"have one inside their boundary" + (f"; without: {shown}{more}" if len(lacking) else "")
        )
    )


def register(app: typer.Typer) -> None:
    app.command("lifecircle")(lifecircle)
