"""`geoplan scenario create | add | list | diff | adopt | discard`: draft plan changes (规划方案) and weigh them.

A scenario holds draft edits of the live layers; `diff` runs the overlaps, the life circles and the indicators on
live and on live + scenario and shows what changes; `adopt` applies every edit in one transaction (refused, with
the features named, when a feature it edits changed live since); `discard` drops it. Errors are given in Chinese
and English.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from geoplan.beijing_time import shown_time
from geoplan.commands.common import StoreOption, check_output, err, existing_store, out
from geoplan.errors import InputError

_SHOWN = 20


def _actor() -> str:
    """Who runs the command, as the audit log names a command-line user."""
    return f"cli:{os.environ.get('USER', 'unknown')}"


@contextmanager
def _bilingual() -> Iterator[None]:
    """Say a refusal in Chinese too (the English line follows from the root command)."""
    try:
        yield
    except InputError as exc:
        if exc.zh:
            err.print(f"错误：{exc.zh}", markup=False, highlight=False)
        raise


def scenario_create(
    name: Annotated[str, typer.Argument(help="The scenario's name (unique), e.g. 新建图书馆方案.")],
    store: StoreOption = None,
) -> None:
    """Create an empty scenario (方案)."""
    from geoplan.services.scenarios import create_scenario

    with _bilingual(), existing_store(store) as (_, backend):
        scenario = create_scenario(backend, name, author=_actor())
    out.print(f"scenario {scenario.name!r} created（方案已创建）", markup=False, highlight=False)


def scenario_add(
    name: Annotated[str, typer.Argument(help="The scenario.")],
    layer: Annotated[str, typer.Argument(help="The layer to edit, e.g. culture_facilities.")],
    file: Annotated[
        Path | None, typer.Argument(help="Features to add (or with --replace, to replace); any format import reads.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="The file's features replace features of their ids.")
    ] = False,
    delete_ids: Annotated[
        str | None, typer.Option("--delete-ids", help="Delete these features instead (ids, comma-separated).")
    ] = None,
    crs: Annotated[
        str | None, typer.Option("--crs", help="The file's CRS when it has none (EPSG:4547, gcj02, …).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Add edits to a scenario: new features from FILE, replacements (--replace) or deletions (--delete-ids)."""
    from geoplan.services.scenarios import add_file, remove_features

    with _bilingual(), existing_store(store) as (_, backend):
        if (file is None) == (delete_ids is None) or (replace and delete_ids is not None):
            raise InputError(
                "give either FILE (with --replace to replace features) or --delete-ids",
                zh="请给出要素文件 FILE（替换已有要素时加 --replace），或用 --delete-ids 指明要删除的要素，二者选一。",
            )
        if delete_ids is not None:
            report = remove_features(backend, name, layer, delete_ids.split(","), actor=_actor())
        else:
            assert file is not None
            report = add_file(backend, name, layer, file, actor=_actor(), replace=replace, crs=crs)
    counts = ", ".join(f"{op} {n}" for op, n in report.ops.items() if n)
    out.print(f"scenario {report.scenario!r}, layer {report.layer}: {counts or 'nothing'}", markup=False)
    for repair in report.repairs[:_SHOWN]:
        err.print(f"  repaired: {repair}", markup=False, highlight=False)


def scenario_list(store: StoreOption = None) -> None:
    """List the scenarios: name, author, when made, the layers they edit and how many edits."""
    from geoplan.services.scenarios import list_scenarios

    with _bilingual(), existing_store(store) as (_, backend):
        scenarios = list_scenarios(backend)
    table = Table(title=f"scenarios（方案）: {len(scenarios)}")
    for column in ("name 名称", "author 创建人", "created 创建时间（北京时间）", "layers 图层", "edits 修改数"):
        table.add_column(column)
    for s in scenarios:
        table.add_row(s.name, s.author, shown_time(s.created_at), ", ".join(sorted(s.bases)) or "–", str(s.edit_count))
    out.print(table)


def scenario_diff(
    name: Annotated[str, typer.Argument(help="The scenario.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the comparison: .xlsx, .csv, .geojson or .gpkg (patches)."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Compare a scenario with today: conflict patches added and removed, life-circle coverage per village and
    service, indicators (values and targets)."""
    from geoplan.services.scenario_diff import DIFF_SUFFIXES, scenario_diff, write_diff

    check_output(output, DIFF_SUFFIXES)
    with _bilingual(), existing_store(store) as (settings, backend):
        diff = scenario_diff(backend, name, layers_dir=settings.layers_dir)
    patches = diff.patches
    table = Table(title=f"scenario {diff.scenario!r}: conflict patches（冲突图斑）")
    for column in ("change 变化", "rule 规则", "patch", "area m²", "town 镇街"):
        table.add_column(column)
    for row in patches.head(_SHOWN).itertuples():
        table.add_row(
            str(row.change_zh), str(row.rule), str(row.patch_id), _text(round(float(row.area_m2))), str(row.town or "–")
        )
    out.print(table)
    added = int((patches["change"] == "added").sum())
    out.print(f"patches added 新增 {added}, removed 消除 {len(patches) - added}", markup=False)
    _print_coverage(diff.coverage_changed())
    _print_indicators(diff.indicators_changed())
    if output is not None:
        write_diff(diff, output)
        out.print(f"wrote {output}", markup=False, highlight=False)


def _print_coverage(changed: pd.DataFrame) -> None:
    table = Table(title=f"life-circle coverage that changes（生活圈覆盖变化）: {len(changed)}")
    for column in ("village 村居", "town 镇街", "service 服务", "covered 覆盖人口", "coverage % 覆盖率", "Δ pp"):
        table.add_column(column)
    for row in changed.head(_SHOWN).itertuples():
        table.add_row(
            str(row.village_name),
            str(row.town),
            str(row.service),
            f"{_text(row.covered_live)} → {_text(row.covered_scenario)}",
            f"{_text(row.coverage_pct_live)} → {_text(row.coverage_pct_scenario)}",
            _text(row.delta_pp, signed=True),
        )
    out.print(table)


def _print_indicators(changed: pd.DataFrame) -> None:
    table = Table(title=f"indicators that change（指标变化）: {len(changed)}")
    for column in ("indicator 指标", "scope 范围", "value 数值", "Δ", "target met 达标"):
        table.add_column(column)
    for row in changed.head(_SHOWN).itertuples():
        table.add_row(
            str(row.indicator),
            f"{row.scope} {row.scope_key}".strip(),
            f"{_text(row.value_live)} → {_text(row.value_scenario)} {row.unit}",
            _text(row.delta, signed=True),
            f"{_met(row.target_met_live)} → {_met(row.target_met_scenario)}",
        )
    out.print(table)


def _text(value: object, *, signed: bool = False) -> str:
    """A number for a person: empty values as "–", never NaN; whole numbers without a decimal point."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "–"
    number = float(value)  # type: ignore[arg-type]
    text = f"{number:,.2f}".rstrip("0").rstrip(".")
    return f"+{text}" if signed and number > 0 else text


def _met(value: object) -> str:
    if value is None or value is pd.NA:
        return "–"
    return "是" if bool(value) else "否"


def scenario_adopt(
    name: Annotated[str, typer.Argument(help="The scenario.")],
    store: StoreOption = None,
) -> None:
    """Adopt a scenario: every edit lands in the live layers in one transaction, or none does."""
    from geoplan.services.scenarios import adopt_scenario

    with _bilingual(), existing_store(store) as (_, backend):
        report = adopt_scenario(backend, name, actor=_actor())
    written = ", ".join(f"{layer} {n}" for layer, n in report.written.items())
    out.print(f"scenario {report.scenario!r} adopted（方案已采纳）: {written}", markup=False, highlight=False)
    if report.moved_layers:
        out.print(
            f"note: other features of {', '.join(report.moved_layers)} changed live since the scenario was drafted"
            "（这些图层中方案未涉及的要素在此期间有改动）",
            markup=False,
            highlight=False,
        )


def scenario_discard(
    name: Annotated[str, typer.Argument(help="The scenario.")],
    store: StoreOption = None,
) -> None:
    """Discard a scenario and its edits; the live layers are untouched."""
    from geoplan.services.scenarios import discard_scenario

    with _bilingual(), existing_store(store) as (_, backend):
        discard_scenario(backend, name, actor=_actor())
    out.print(f"scenario {name!r} discarded（方案已放弃）", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    scenario_app = typer.Typer(
        help="Scenarios (规划方案): draft edits, compare with today, adopt or discard.", no_args_is_help=True
    )
    app.add_typer(scenario_app, name="scenario")
    scenario_app.command("create")(scenario_create)
    scenario_app.command("add")(scenario_add)
    scenario_app.command("list")(scenario_list)
    scenario_app.command("diff")(scenario_diff)
    scenario_app.command("adopt")(scenario_adopt)
    scenario_app.command("discard")(scenario_discard)
