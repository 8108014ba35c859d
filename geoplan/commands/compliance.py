"""`geoplan check-site`: the site compliance check (合规性审查) of a proposed project site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from geoplan.commands.common import (
    StoreOption,
    err,
    open_configured,
    out,
    settings_for,
)
from geoplan.errors import InputError

# --------------------------------------------------------------------------------------------- check-site
# The site compliance check (合规性审查). Exit 0 for a completed check whatever the verdict (the verdict is
# data: read it from the output or the JSON report), 2 for bad input (the site, an option, the rules file).

_REPORT_SUFFIXES = (".html", ".htm", ".json")
_SEVERITY_STYLE = {"high": "bold red", "medium": "dark_orange", "low": "yellow"}
_VERDICT_LINE = {
    "fail": "[bold red]FAIL (不通过)[/bold red]",
    "pass_with_warnings": "[bold yellow]PASS with warnings (通过，有提示事项)[/bold yellow]",
    "pass": "[bold green]PASS (通过)[/bold green]",
}


def check_site_command(
    file: Annotated[Path, typer.Argument(help="The site: one Polygon feature (GeoJSON, GeoPackage, zip, KML, CSV…).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report: .html (printable) or .json.")
    ] = None,
    crs: Annotated[
        str | None, typer.Option(help="CRS when the file has none: EPSG:4490, EPSG:4547, gcj02 (AMap)…")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Conflict rules YAML (default: rules/conflicts.yaml in the layers folder)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse an invalid outline instead of repairing.")] = False,
    store: StoreOption = None,
) -> None:
    """Check a proposed project site against the control layers (合规性审查); exit 0 whatever the verdict."""
    import json

    from geoplan.reporting.compliance_html import render_html
    from geoplan.services.compliance import check_site_in_store, layer_colours, site_context, site_from_file
    from geoplan.services.rule_files import default_rules_path, load_rules
    from geoplan.storage import is_postgis_url

    if output is not None:
        if output.suffix.lower() not in _REPORT_SUFFIXES:
            raise InputError(f"-o {output.name}: the report is written as .html or .json, not {output.suffix!r}")
        if not output.parent.is_dir():
            raise InputError(f"-o {output}: folder {output.parent} does not exist")
    settings = settings_for(store)
    if not is_postgis_url(settings.store) and not Path(settings.store).is_file():
        raise InputError(f"no store at {settings.store}; build it with `geoplan demo` or pass --store")
    rules_path = rules or default_rules_path(settings.layers_dir)
    site = site_from_file(file, crs=crs, strict=strict, max_bytes=settings.max_import_bytes)
    _, backend = open_configured(store)
    try:
        rule_list = load_rules(rules_path, backend.catalog)
        with err.status(f"checking {file.name}…"):
            report = check_site_in_store(
                backend, site.frame, rules=rule_list, notes=site.notes, source=file.name, rules_source=rules_path.name
            )
        colours = layer_colours(backend.catalog)
        context = site_context(backend, report.site_geometry) if output is not None else None
    finally:
        backend.close()

    area = f"{report.site_area_m2:,.0f} m² ({report.site_area_m2 / 1e4:,.2f} ha)"
    out.print(f"site {file.name}: {area}; verdict: {_VERDICT_LINE[report.verdict]}")
    if report.site_name:
        out.print(Text(f"name: {report.site_name}"))
    if report.hits:
        table = Table(title="conflicts and warnings")
        for column in ("rule", "severity", "title", "layer", "overlap m²", "% of site", "features"):
            table.add_column(column, justify="right" if column in ("overlap m²", "% of site") else "left")
        for hit in report.hits:
            ids = ", ".join(hit.feature_ids[:8]) + (" …" if len(hit.feature_ids) > 8 else "")
            table.add_row(
                Text(hit.rule),
                Text(hit.severity, style=_SEVERITY_STYLE.get(hit.severity, "")),
                Text(hit.title_zh),
                Text(hit.layer),
                f"{hit.overlap_m2:,.0f}",
                f"{hit.overlap_pct:.2f}",
                Text(ids or "–"),
            )
        out.print(table)
    clear = ", ".join(r.rule for r in report.rules_without_hits) or "–"
    out.print(Text(f"checked without a hit: {clear}"))
    for note in report.notes:
        out.print(Text(f"note: {note}"))
    if report.synthetic:
        out.print(f"[yellow]SYNTHETIC demo data: {', '.join(report.synthetic_layers)}; not for approvals[/yellow]")
    if output is not None:
        if output.suffix.lower() == ".json":
            text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
        else:
            text = render_html(report, layer_colours=colours, context=context)
        output.write_text(text, encoding="utf-8")
        out.print(Text(f"report written to {output}"))


def register(app: typer.Typer) -> None:
    app.command("check-site")(check_site_command)
