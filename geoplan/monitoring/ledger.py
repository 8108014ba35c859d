"""The project ledger (项目台账): quarterly progress records per project, the five assurances, overdue projects.

The projects layer holds each project's current state (status, progress, the five assured_* flags); the
progress records (`ledger_store`) hold its history, one per project and quarter (a later record for the same
quarter corrects it and supersedes it; nothing is overwritten). Recording progress
validates the record against the project and its history, stores it, and brings the layer's progress and
status up to date through `LayerStore.update_features`, so both the record and the layer change are in the
audit log with the actor and the time (全过程留痕).

The record and the layer live in two transactions (the store opens its own for the layer update), so the
pair is made atomic by compensation: the record is written first; if the layer update then fails, the record
is deleted again (the audit keeps both the record and its withdrawal) and the error is raised. A process
killed between the two steps leaves a record whose layer update never happened: the record is still true
history, and `ledger_table` reads progress from the records, not from the layer. The layer update writes the
project as it was read for the checks: an edit of the same project in the instant between would be overwritten
(both stay in the audit log).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine

from geoplan.actors import MAX_ACTOR
from geoplan.errors import InputError, NotFoundError, Problem, StoreError, ValidationFailed
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.ledger_status import StatusFlow
from geoplan.monitoring.ledger_store import (
    MAX_TEXT,
    MAX_UNIT,
    RECORD_FIELDS,
    has_progress_table,
    insert_record,
    ledger_engine,
    read_records,
    replace_all_records,
    withdraw_record,
)
from geoplan.storage import LayerStore
from geoplan.storage.base import now_utc

PROJECTS = "projects"
ASSURANCES: dict[str, str] = {
    "assured_planning": "规划保障",
    "assured_land": "用地保障",
    "assured_funds": "资金保障",
    "assured_schedule": "进度保障",
    "assured_unit": "责任单位保障",
}
"""The five assurances (五个保障) checked per project: field of the projects layer -> its name."""

INITIAL_STATUS, COMPLETED_STATUS = "前期", "已完工"
LEDGER_COLUMNS = [
    "project_id",
    "name",
    "task_area",
    "town",
    "responsible_unit",
    "start_year",
    "end_year",
    "status",
    "progress_pct",
    "investment_to_date_wan",
    "quarter",
    "source",
    "problems",
    "missing_assurances",
    "missing_count",
    "overdue",
]
_PROJECT_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline are fine in multi-line text


# --------------------------------------------------------------------------------------------- reading


RECORD_TITLES_ZH = {
    "progress_pct": "进度",
    "investment_to_date_wan": "累计投资（万元）",
    "quarter": "季度",
    "status": "状态",
    "note": "备注",
}
"""A progress record's fields by the names its form shows (for the Chinese message of a refused record)."""


def progress_records(
    engine_or_store: Engine | LayerStore, *, until_quarter: str | None = None, project_id: str | None = None
) -> pd.DataFrame:
    """Every progress record, one row each, ordered by project, quarter and record id.

    Columns: record_id, project_id, quarter ("2019Q2"), progress_pct, investment_to_date_wan, problems,
    responsible_unit, status, previous_status, previous_progress_pct, note, recorded_by, recorded_at,
    synthetic, and `superseded` (a later record of the same project and quarter corrects this one).
    `until_quarter` keeps the records up to and including that quarter.
    """
    with ledger_engine(engine_or_store) as engine:
        records = read_records(engine, project_id=project_id)
    if until_quarter is not None:
        last = str(Quarter.parse(until_quarter))
        records = records[records["quarter"] <= last].reset_index(drop=True)  # YYYYQn sorts as text
    last_id = records.groupby(["project_id", "quarter"])["record_id"].transform("max")
    records["superseded"] = (records["record_id"] != last_id).astype(bool)
    return records


def latest_records(records: pd.DataFrame, *, as_of_quarter: str | None = None) -> pd.DataFrame:
    """Each project's latest record up to `as_of_quarter` (corrections count, superseded records do not)."""
    current = records
    if as_of_quarter is not None:
        current = current[current["quarter"].astype(str) <= str(Quarter.parse(as_of_quarter))]
    if "superseded" in current.columns:
        current = current[~current["superseded"].astype(bool)]
    ordered = current.sort_values(["project_id", "quarter", "record_id"])
    return ordered.groupby("project_id", sort=True).tail(1).set_index("project_id")


def missing_assurances(row: pd.Series | dict[str, Any]) -> list[str]:
    """The names of the assurances not confirmed (False or unknown) for one project."""
    return [title for field, title in ASSURANCES.items() if not _is_true(row.get(field))]


def is_overdue(*, end_year: int, progress_pct: float, status: str, as_of: Quarter, completed: str) -> bool:
    """The end year is over at the as-of quarter (its Q4 or later) and the project is not finished."""
    return as_of >= Quarter.last_of(int(end_year)) and float(progress_pct) < 100.0 and status != completed


def ledger_table(
    *, projects: gpd.GeoDataFrame, records: pd.DataFrame, as_of_quarter: str, flow: StatusFlow | None = None
) -> pd.DataFrame:
    """The ledger as of a quarter: one row per project (in the layer's order), without geometry.

    Status and progress come from the project's latest record up to the quarter (`source` "record"). A
    project whose start year is after the quarter is not started yet (the initial status, 0 %, "not_started");
    one with records only after the quarter is taken as not started as well ("before_records"); one without
    any record falls back on the layer's current values ("layer"). The assurances are the layer's current
    flags (unknown counts as missing). Overdue: the end year is over (the quarter is its Q4 or later) and
    progress is below 100 % and the status is not completed.
    """
    as_of = Quarter.parse(as_of_quarter)
    initial = flow.initial if flow else INITIAL_STATUS
    completed = flow.completed if flow else COMPLETED_STATUS
    needed = ["project_id", "name", "task_area", "start_year", "end_year", "status", "progress_pct", *ASSURANCES]
    missing = [c for c in needed if c not in projects.columns]
    if missing:
        raise InputError(f"the projects table lacks column(s) {', '.join(missing)}")
    latest = latest_records(records, as_of_quarter=str(as_of))
    with_records = set(records["project_id"].astype(str))
    rows = []
    for project in projects.to_dict("records"):
        pid = str(project["project_id"])
        row: dict[str, Any] = {
            "project_id": pid,
            "name": project["name"],
            "task_area": project["task_area"],
            "town": project.get("town"),
            "responsible_unit": project.get("responsible_unit"),
            "start_year": int(project["start_year"]),
            "end_year": int(project["end_year"]),
            "investment_to_date_wan": None,
            "quarter": None,
            "problems": None,
        }
        if as_of.year < int(project["start_year"]):
            row.update(status=initial, progress_pct=0.0, source="not_started")
        elif pid in latest.index:
            rec = {str(k): v for k, v in latest.loc[pid].to_dict().items()}
            row.update(
                status=str(rec["status"]),
                progress_pct=float(rec["progress_pct"]),
                source="record",
                quarter=str(rec["quarter"]),
                problems=rec["problems"] or None,
                responsible_unit=rec["responsible_unit"],
                investment_to_date_wan=_float_or_none(rec["investment_to_date_wan"]),
            )
        elif pid in with_records:
            row.update(status=initial, progress_pct=0.0, source="before_records")
        else:
            row.update(status=str(project["status"]), progress_pct=float(project["progress_pct"]), source="layer")
        gaps = missing_assurances(project)
        row["missing_assurances"] = gaps
        row["missing_count"] = len(gaps)
        row["overdue"] = is_overdue(
            end_year=row["end_year"],
            progress_pct=row["progress_pct"],
            status=row["status"],
            as_of=as_of,
            completed=completed,
        )
        rows.append(row)
    table = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
    for name in ("town", "responsible_unit", "quarter", "problems", "investment_to_date_wan"):
        table[name] = table[name].astype(object).where(table[name].notna(), None)  # None, never NaN, in JSON
    table["overdue"] = table["overdue"].astype(bool)
    table["missing_count"] = table["missing_count"].astype("int64")
    table["progress_pct"] = table["progress_pct"].astype("float64")
    return table


def filter_ledger(
    table: pd.DataFrame, *, task_area: str | None = None, town: str | None = None, overdue: bool = False
) -> pd.DataFrame:
    """Rows of one task area, of one town (projects spanning towns list them with 、), or only overdue ones."""
    keep = pd.Series(True, index=table.index)
    if task_area:
        keep &= table["task_area"] == task_area
    if town:
        keep &= table["town"].map(lambda t: town in str(t or "").split("、"))
    if overdue:
        keep &= table["overdue"]
    return table[keep].reset_index(drop=True)


def default_quarter(records: pd.DataFrame, *, today: date | None = None) -> str:
    """The latest recorded quarter, or the current one when nothing is recorded."""
    if len(records):
        return str(records["quarter"].max())
    return str(Quarter.of(today or datetime.now(UTC).date()))


@dataclass(frozen=True)
class LedgerView:
    """The ledger as of a quarter with the filters applied: what `geoplan ledger show` and the API answer."""

    as_of_quarter: str
    table: pd.DataFrame
    """The projects the filters keep (`LEDGER_COLUMNS`)."""
    total: int
    """How many projects the unfiltered ledger holds."""
    synthetic: bool
    """The projects layer or any progress record is synthetic demo data."""


def ledger_view(
    store: LayerStore,
    *,
    flow: StatusFlow,
    quarter: str | None = None,
    task_area: str | None = None,
    town: str | None = None,
    overdue: bool = False,
) -> LedgerView:
    """Read the projects and their records and build the ledger as of `quarter` (default: the latest recorded)."""
    as_of_given = str(Quarter.parse(quarter)) if quarter else None
    projects = store.read(PROJECTS)
    records = progress_records(store)
    as_of = as_of_given or default_quarter(records)
    full = ledger_table(projects=projects, records=records, as_of_quarter=as_of, flow=flow)
    table = filter_ledger(full, task_area=task_area, town=town, overdue=overdue)
    synthetic = store.catalog.get(PROJECTS).synthetic or bool(records["synthetic"].any())
    return LedgerView(as_of_quarter=as_of, table=table, total=len(full), synthetic=synthetic)


# --------------------------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class ProgressRecord:
    """One stored record, as `record_progress` wrote it."""

    record_id: int
    project_id: str
    quarter: str
    progress_pct: float
    investment_to_date_wan: float | None
    problems: str
    responsible_unit: str
    status: str
    previous_status: str | None
    previous_progress_pct: float | None
    note: str
    recorded_by: str
    recorded_at: str
    synthetic: bool
    layer_updated: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_progress(
    store: LayerStore,
    *,
    project_id: str,
    quarter: str,
    progress_pct: Any,
    actor: str,
    flow: StatusFlow,
    investment_to_date_wan: Any = None,
    problems: str | None = "",
    responsible_unit: str | None = None,
    status: str | None = None,
    note: str | None = "",
    today: date | None = None,
) -> ProgressRecord:
    """Record a project's progress for a quarter and update the project in the layer.

    Refused (ValidationFailed, every problem at once; nothing written): a malformed quarter, a quarter before
    the project's start year, after the current quarter or before its latest record; progress outside 0–100
    or below the current progress without a note saying why; a status change the flow does not allow, or
    completion below 100 %; a negative investment; over-long text or control characters. Recording the
    latest quarter again corrects it (the new record supersedes the old). An unknown project is NotFoundError.
    """
    pid = _checked_project_id(project_id)
    with ledger_engine(store) as engine:
        if not has_progress_table(engine):
            raise StoreError(f"the store {store.url} has no progress table; run `geoplan db init`")
    projects = store.read(PROJECTS, where={"project_id": pid})
    if len(projects) != 1:
        raise NotFoundError(f"no project with project_id {pid}")
    project = projects.iloc[0]
    problems_found: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems_found.append(Problem(message, feature=pid, field=field))

    who = _text(actor, "recorded_by", MAX_ACTOR, problem, single_line=True, required=True)
    problems_text = _text(problems, "problems", MAX_TEXT, problem)
    note_text = _text(note, "note", MAX_TEXT, problem)
    unit = _text(
        responsible_unit if responsible_unit is not None else str(project["responsible_unit"] or ""),
        "responsible_unit",
        MAX_UNIT,
        problem,
        single_line=True,
        required=True,
    )
    progress = _number(progress_pct, "progress_pct", problem, required=True)
    if progress is not None and not 0.0 <= progress <= 100.0:
        problem("progress_pct", f"progress must lie in 0–100 %, not {progress:g}")
        progress = None
    investment = _number(investment_to_date_wan, "investment_to_date_wan", problem, required=False)
    if investment is not None and investment < 0:
        problem("investment_to_date_wan", f"investment to date must not be negative, not {investment:g}")

    history = read_history(store, pid)
    layer_status, layer_progress = str(project["status"]), float(project["progress_pct"])
    baseline_status, baseline_progress = layer_status, layer_progress
    try:
        q = Quarter.parse(quarter)
    except InputError as exc:
        problem("quarter", str(exc))
        q = None
    if q is not None:
        start_year = int(project["start_year"])
        current = Quarter.of(today or datetime.now(UTC).date())
        if q.year < start_year:
            problem("quarter", f"{q} is before the project's start year {start_year}")
        if q > current:
            problem("quarter", f"{q} lies in the future (the current quarter is {current})")
        if len(history):
            last = Quarter.parse(str(history["quarter"].max()))
            if q < last:
                problem("quarter", f"{q} is before the project's latest record ({last}); records go forward")
            elif q == last:  # a correction: judge it against the state before this quarter's first record
                first = history[history["quarter"] == str(last)].iloc[0]
                if first["previous_status"] is not None and not pd.isna(first["previous_status"]):
                    baseline_status = str(first["previous_status"])
                if first["previous_progress_pct"] is not None and not pd.isna(first["previous_progress_pct"]):
                    baseline_progress = float(first["previous_progress_pct"])

    new_status = layer_status if status is None or not str(status).strip() else str(status).strip()
    allowed = store.catalog.get(PROJECTS).field("status").allowed or flow.statuses
    try:
        if new_status not in allowed:
            raise InputError(f"unknown status {new_status!r}; use one of {', '.join(map(str, allowed))}")
        flow.check(baseline_status, new_status)
    except InputError as exc:
        problem("status", str(exc))
    if progress is not None:
        if new_status == flow.completed and progress < 100.0:
            problem("status", f"{flow.completed} needs 100 % progress, not {progress:g} %")
        if progress < baseline_progress and not note_text:
            problem("note", f"progress falls from {baseline_progress:g} % to {progress:g} %: add a note saying why")
    if problems_found:
        raise ValidationFailed(f"progress record for {pid}", problems_found, titles=RECORD_TITLES_ZH)
    assert q is not None and progress is not None

    row: dict[str, Any] = {
        "project_id": pid,
        "quarter": str(q),
        "progress_pct": progress,
        "investment_to_date_wan": investment,
        "problems": problems_text,
        "responsible_unit": unit,
        "status": new_status,
        "previous_status": baseline_status,
        "previous_progress_pct": baseline_progress,
        "note": note_text,
        "recorded_by": who,
        "recorded_at": now_utc(),
        "synthetic": False,
    }
    changes_layer = new_status != layer_status or not math.isclose(progress, layer_progress)
    with ledger_engine(store) as engine:
        rule_files = [dict(flow.rule_file)] if flow.rule_file else []
        record_id = insert_record(engine, row, rule_files=rule_files)
        if changes_layer:
            updated = projects.copy()
            updated["status"] = new_status
            updated["progress_pct"] = progress
            try:
                store.update_features(PROJECTS, updated, actor=who)
            except BaseException as exc:
                withdraw_record(engine, record_id, row, reason=f"the layer update failed: {type(exc).__name__}")
                raise
    return ProgressRecord(record_id=record_id, layer_updated=changes_layer, **row)


def load_records(store: LayerStore, records: pd.DataFrame, *, actor: str) -> int:
    """Replace every progress record with `records` (the demo's history): one transaction, one audit entry.

    Bulk loads bypass the per-record checks; the demo's records are checked against the flow by its tests.
    """
    missing = [name for name in RECORD_FIELDS if name not in records.columns]
    if missing:
        raise InputError(f"progress records lack column(s) {', '.join(missing)}")
    rows = [
        {name: _plain(value) for name, value in zip(RECORD_FIELDS, values, strict=True)}
        for values in records[RECORD_FIELDS].itertuples(index=False, name=None)
    ]
    with ledger_engine(store) as engine:
        return replace_all_records(engine, rows, actor=actor)


def read_history(store: LayerStore | Engine, project_id: str) -> pd.DataFrame:
    """One project's records, oldest first (corrections included, marked `superseded`)."""
    return progress_records(store, project_id=_checked_project_id(project_id))


def project_history(store: LayerStore, project_id: str) -> pd.DataFrame:
    """One project's records; NotFoundError when the project is neither in the layer nor in the records."""
    history = read_history(store, project_id)
    if not len(history) and not len(store.read(PROJECTS, where={"project_id": project_id})):
        raise NotFoundError(f"no project with project_id {project_id}")
    return history


# --------------------------------------------------------------------------------------------- helpers


def _checked_project_id(value: Any) -> str:
    if not isinstance(value, str) or not _PROJECT_ID.fullmatch(value.strip()):
        raise InputError(f"invalid project id {value!r}: 1–32 printable characters")
    return value.strip()


def _text(
    value: Any, field: str, limit: int, problem: Any, *, single_line: bool = False, required: bool = False
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        problem(field, "must be text")
        return ""
    text = value.replace("\r\n", "\n").strip()
    if required and not text:
        problem(field, "must not be empty")
    if len(text) > limit:
        problem(field, f"is {len(text)} characters long; at most {limit} are allowed")
    if _CONTROL.search(text) or (single_line and ("\n" in text or "\t" in text)):
        problem(field, "contains control characters")
    return text


def _number(value: Any, field: str, problem: Any, *, required: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problem(field, "is required")
        return None
    if isinstance(value, bool):
        problem(field, f"must be a number, not {value!r}")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problem(field, f"must be a number, not {value!r}")
        return None
    if not math.isfinite(number):
        problem(field, f"must be a finite number, not {value!r}")
        return None
    return number


def _is_true(value: Any) -> bool:
    return (
        value is not None
        and value is not pd.NA
        and not (isinstance(value, float) and math.isnan(value))
        and bool(value)
    )


def _plain(value: Any) -> Any:
    """None for missing values, Python scalars for numpy ones (as the database drivers expect)."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    return value.item() if hasattr(value, "item") else value


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
