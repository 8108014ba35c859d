"""`geoplan coverage` and `suggest-sites`: the ten-minute cultural circle per village, and where to add sites."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from geoplan.commands.common import (
    SchedulerOption,
    StoreOption,
    check_output,
    cluster_options,
    err,
    open_configured,
    out,
    settings_for,
)
from geoplan.errors import InputError
from geoplan.services.coverage_inputs import CoverageInputs, coverage_inputs, uses_network

# --------------------------------------------------------------------------------------------- coverage
# The ten-minute cultural circle (issue 5). Options given explicitly apply to urban and rural units alike.

_TABLE_SUFFIXES = (".csv", ".xlsx", ".gpkg", ".geojson")


def _coverage_rules(  # type: ignore[no-untyped-def]
    store: str | None,
    rules_file: Path | None,
    mode: str | None,
    minutes: float | None,
    speed_kmh: float | None,
    access_m: float | None,
):
    """The rules file (default: rules/coverage.yaml in the layers folder) with the explicit options applied."""
    from geoplan.analysis.coverage_config import rules_with_overrides
    from geoplan.services.rule_files import default_coverage_rules_path, load_coverage_rules

    if mode is not None and mode not in ("network", "euclidean"):
        raise InputError(f"--mode must be network or euclidean, not {mode!r}")
    path = rules_file if rules_file is not None else default_coverage_rules_path(settings_for(store).layers_dir)
    base = load_coverage_rules(path)
    return rules_with_overrides(base, mode=mode, minutes=minutes, speed_kmh=speed_kmh, access_m=access_m)


def _rules_title(rules) -> str:  # type: ignore[no-untyped-def]
    def one(s) -> str:  # type: ignore[no-untyped-def]
        access = f", access {s.access_m:g} m" if s.mode == "network" else ""
        return f"{s.mode}, {s.minutes:g} min at {s.speed_kmh:g} km/h{access}"

    if rules.urban == rules.rural:
        return one(rules.urban)
    return f"urban: {one(rules.urban)}; rural: {one(rules.rural)}"


def _read_inputs(store: str | None, *, network: bool) -> CoverageInputs:
    """The store's coverage inputs, read and the store closed again before the computing starts."""
    _, backend = open_configured(store)
    try:
        return coverage_inputs(backend, network=network)
    finally:
        backend.close()


def _number_option(name: str):  # type: ignore[no-untyped-def]
    """A float parser that reports a malformed number as InputError (exit 2, one line)."""

    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{name} must be a number, not {text!r}") from None

    return parse


ModeOption = Annotated[
    str | None,
    typer.Option("--mode", help="network or euclidean, for urban and rural units (default: the rules file's)"),
]
MinutesOption = Annotated[
    float | None,
    typer.Option(
        "--minutes", parser=_number_option("--minutes"), help="Time limit, minutes (default: the rules file's, 10)"
    ),
]
SpeedOption = Annotated[
    float | None,
    typer.Option(
        "--speed-kmh", parser=_number_option("--speed-kmh"), help="Speed, km/h (default: the rules file's, 4.5)"
    ),
]
AccessOption = Annotated[
    float | None,
    typer.Option(
        "--access-m",
        parser=_number_option("--access-m"),
        help="Largest straight link to the network, m (default: the rules file's, 200)",
    ),
]
CoverageRulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Urban and rural coverage rules, YAML (default: layers/rules/coverage.yaml)",
    ),
]


def coverage(
    mode: ModeOption = None,
    minutes: MinutesOption = None,
    speed_kmh: SpeedOption = None,
    access_m: AccessOption = None,
    rules_file: CoverageRulesOption = None,
    kinds: Annotated[
        str | None, typer.Option("--kinds", help="Facility kinds, comma-separated, e.g. 自助图书馆 [default: all]")
    ] = None,
    below: Annotated[float, typer.Option("--below", help="Count the villages under this coverage %.")] = 50.0,
    capacity: Annotated[
        bool,
        typer.Option("--capacity", help="Add 2SFCA accessibility (facility capacity per 1,000 residents in reach)."),
    ] = False,
    norm: Annotated[
        float | None,
        typer.Option(
            "--norm",
            parser=_number_option("--norm"),
            help="With --capacity: accessibility norm per 1,000 residents (default: the district's own supply)",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the village table: .csv, .xlsx, .gpkg or .geojson")
    ] = None,
    partitioned: Annotated[
        bool, typer.Option("--partitioned", help="Villages in spatial partitions on a dask cluster (local by default).")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="With --partitioned: local dask workers [GEOPLAN_DASK_WORKERS].")
    ] = None,
    scheduler: SchedulerOption = None,
    store: StoreOption = None,
) -> None:
    """Ten-minute cultural-circle coverage: per town, the district total, the villages below --below %.

    With --capacity, also the two-step floating catchment accessibility (2SFCA) of the facilities' capacity.
    """
    import geopandas as gpd
    import pandas as pd
    from rich.text import Text

    from geoplan.analysis.capacity import capacity_accessibility, town_accessibility
    from geoplan.analysis.coverage import CoverageResult, compute_coverage, district_total, town_rollup
    from geoplan.analysis.coverage_tables import NO_ROUTE_NOTE_ZH, NO_ROUTE_ZH, no_route_words, village_output, whole
    from geoplan.analysis.life_circle_scorecard import whole_people
    from geoplan.analysis.unit_groups import VIRTUAL_GROUP
    from geoplan.io import write_file

    if norm is not None and not capacity:
        raise InputError("--norm needs --capacity")
    rules = _coverage_rules(store, rules_file, mode, minutes, speed_kmh, access_m)
    kind_list = None if kinds is None else [k.strip() for k in kinds.split(",") if k.strip()]
    check_output(output, _TABLE_SUFFIXES)
    if (workers is not None or scheduler is not None) and not partitioned:
        raise InputError("--workers and --scheduler go with --partitioned")
    settings = settings_for(store)
    gathered = _read_inputs(store, network=uses_network(rules))
    inputs: dict[str, Any] = {**gathered.engine_args(), "rules": rules, "kinds": kind_list}
    with err.status("computing coverage…"):
        if partitioned:
            from geoplan.analysis.coverage_partitioned import PartitionedCoverage, coverage_partitioned
            from geoplan.services.dask_cluster import local_client

            with local_client(**cluster_options(settings, workers, scheduler)) as client:
                result: CoverageResult | PartitionedCoverage = coverage_partitioned(**inputs, client=client)
        else:
            result = compute_coverage(**inputs)
        access = None
        if capacity:
            access = capacity_accessibility(**inputs, norm=norm)
    table = result.table
    if access is not None:
        table = pd.concat([table, access.table.drop(columns="village_code")], axis=1)
    town_table = Table(title=f"coverage by town 各镇街覆盖 ({_rules_title(rules)})")
    columns = ["镇街 town", "村居 villages", "人口 population", "覆盖 covered", "覆盖率 %", "平均分钟 mean min"]
    columns += ["无路径 no route"]
    if access is not None:
        columns += ["access /1000", "below norm %"]
    for column in columns:
        town_table.add_column(column, justify="left" if column.startswith("镇街") else "right")

    def row(name: str, r: dict[str, float]) -> list[Text | str]:
        no_route = no_route_words(r["no_route_population"], r["population"]).removeprefix(NO_ROUTE_ZH).strip()
        cells: list[Text | str] = [
            Text(name),
            f"{int(r['villages']):,}",
            f"{whole(r['population']):,}",
            f"{whole(r['covered_population']):,}",
            _number(r["coverage_pct"], "—（无人口）"),
            _number(r["mean_minutes"], "—（无路径）"),
            no_route or "0",
        ]
        if access is not None:
            cells += [_number(r["accessibility"], "—"), _number(r["below_norm_pct"], "—")]
        return cells

    towns = town_rollup(table)
    total = district_total(table)
    if access is not None:
        from geoplan.analysis.unit_groups import group_of

        towns = towns.merge(town_accessibility(table.assign(town=group_of(table))), on="town", how="left")
        overall = town_accessibility(table.assign(town="district")).iloc[0]
        total = {
            **total,
            "accessibility": float(overall["accessibility"]),
            "below_norm_pct": float(overall["below_norm_pct"]),
        }
    for record in towns.to_dict("records"):
        town_table.add_row(*row(str(record["town"]), {str(key): v for key, v in record.items()}))
    town_table.add_row(*row("全区 district", total), style="bold")
    out.print(town_table)
    out.print(Text(f"{VIRTUAL_GROUP}：监狱、林场、茶场等，不作镇街统计，计入全区。{NO_ROUTE_NOTE_ZH}"))
    pct = result.table["coverage_pct"]
    low = int((pct < below).sum())
    out.print(
        Text(
            f"district: {whole(total['covered_population']):,} of {whole(total['population']):,} people covered "
            f"({total['coverage_pct']:.1f} %); {low} of {len(result.table)} villages below {below:g} %"
        )
    )
    if access is not None:
        out.print(
            Text(
                f"capacity (2SFCA): {total['accessibility']:.1f} visits/day per 1,000 residents in reach on average; "
                f"{total['below_norm_pct']:.1f} % of people below the norm of {access.norm:.1f}"
                f"{'' if norm is not None else ' (the district supply)'}"
            )
        )
        if access.facilities_without_capacity:
            left_out = ", ".join(access.facilities_without_capacity)
            err.print(Text(f"facilities without a capacity, left out of the capacity check: {left_out}"))
    if result.facilities_off_network:
        err.print(Text(f"facilities off the network: {', '.join(result.facilities_off_network)}"))
    if output is not None:
        villages = gathered.villages
        facilities = gathered.facilities
        names = dict(zip(facilities["facility_id"].astype(str), facilities["name"].astype(str), strict=True))
        readable = village_output(result.table, facility_names=names)
        if access is not None:
            extra = access.table.drop(columns="village_code")
            if "below_norm_population" in extra.columns:
                extra = extra.assign(below_norm_population=whole_people(extra["below_norm_population"]))
            readable = pd.concat([readable, extra], axis=1)
        frame = gpd.GeoDataFrame(readable, geometry=villages.geometry.to_numpy(), crs=villages.crs)
        write_file(frame, output, layer_name="village_coverage")
        out.print(Text(f"{len(frame)} village(s) written to {output}"))


def _number(value: float, missing: str) -> str:
    """One decimal, or `missing` (in words) where the value is undefined: never nan or inf."""
    return f"{value:.1f}" if isinstance(value, int | float) and math.isfinite(value) else missing


def suggest_sites_command(
    k: Annotated[int, typer.Option("--k", help="How many new sites.")],
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="A life-circle service of layers/rules/life_circles.yaml (e.g. kindergarten, clinic), with its "
            "urban and rural radius [default: the cultural circle of the coverage rules]",
        ),
    ] = None,
    mode: ModeOption = None,
    minutes: MinutesOption = None,
    speed_kmh: SpeedOption = None,
    access_m: AccessOption = None,
    rules_file: CoverageRulesOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the sites: .geojson, .gpkg or .csv")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Greedily the K new sites (network nodes) that newly cover the most uncovered people, with their gains.

    With --service, for that life-circle service (its facilities and radii from life_circles.yaml)."""
    from rich.text import Text

    from geoplan.analysis.coverage import compute_coverage
    from geoplan.analysis.siting import suggest_sites
    from geoplan.io import write_file

    if k < 1:
        raise InputError(f"--k must be at least 1, not {k}")
    check_output(output, (".geojson", ".gpkg", ".csv"))
    if service is not None:
        options = {"--mode": mode, "--minutes": minutes, "--speed-kmh": speed_kmh, "--access-m": access_m}
        given = [name for name, v in {**options, "--rules": rules_file}.items() if v is not None]
        if given:
            raise InputError(f"--service takes its radii from life_circles.yaml; {', '.join(given)} go without it")
        result, rules, graph, title = _service_inputs(store, service)
    else:
        rules = _coverage_rules(store, rules_file, mode, minutes, speed_kmh, access_m)
        # the candidate sites are the network's nodes, so even a Euclidean study needs the graph
        gathered = _read_inputs(store, network=True)
        graph = gathered.graph
        title = "文化设施"
        with err.status("computing coverage…"):
            result = compute_coverage(**gathered.engine_args(), rules=rules)
    with err.status("choosing sites…"):
        sites = suggest_sites(result=result, rules=rules, k=k, graph=graph)
    table = Table(title=f"{len(sites)} suggested site(s) for {title}, greedy by newly covered people")
    for column in ("rank", "site", "lon", "lat", "gain", "covered", "coverage %"):
        table.add_column(column, justify="left" if column == "site" else "right")
    for record, point in zip(sites.to_dict("records"), sites.geometry, strict=True):
        table.add_row(
            str(record["rank"]),
            Text(str(record["site_id"])),
            f"{point.x:.5f}",
            f"{point.y:.5f}",
            f"{record['gain_population']:,.0f}",
            f"{record['cumulative_covered_population']:,.0f}",
            f"{record['cumulative_coverage_pct']:.1f}",
        )
    out.print(table)
    if len(sites) < k:
        out.print(Text(f"only {len(sites)} site(s) add coverage"))
    if output is not None:
        write_file(sites, output, layer_name="suggested_sites")
        out.print(Text(f"{len(sites)} site(s) written to {output}"))


def _service_inputs(store: str | None, service: str):  # type: ignore[no-untyped-def]
    """The service's current coverage, the rules a new site is judged by, the graph and the service's title."""
    from geoplan.analysis.service_siting import new_site_rules, service_coverage
    from geoplan.catalog import load_catalog
    from geoplan.services.coverage_inputs import life_circle_inputs
    from geoplan.services.rule_files import DEFAULT_LIFE_CIRCLES_FILE, load_life_circles

    settings = settings_for(store)
    services = load_life_circles(settings.layers_dir / DEFAULT_LIFE_CIRCLES_FILE, load_catalog(settings.layers_dir))
    if service not in services:
        raise InputError(f"--service: unknown service {service!r}; choose from {', '.join(services)}")
    rule = services[service]
    _, backend = open_configured(store)
    try:
        villages, layers, population, graph = life_circle_inputs(backend, [rule.layer], network=True)
    finally:
        backend.close()
    with err.status("computing coverage…"):
        result = service_coverage(
            villages=villages, layer=layers[rule.layer], population=population, graph=graph, rule=rule
        )
    return result, new_site_rules(rule), graph, f"{rule.title_zh} ({service})"


def register(app: typer.Typer) -> None:
    app.command("coverage")(coverage)
    app.command("suggest-sites")(suggest_sites_command)
