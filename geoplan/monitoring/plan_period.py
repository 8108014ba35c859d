"""The action plan's period as data (layers/plan.yaml): start, end, the last monitored quarter, milestone years.

The monitoring's default moment follows it: while the plan is monitored, "now"; once today is past the last
monitored quarter, that quarter's end (the plan's own timeline is what there is to show, and 2026's "now"
would judge a 2017–2019 plan by years it never had). Overdue projects are judged no later than that quarter.
The file is checked when loaded, like the other rule files: a mistake names the key and the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from geoplan.errors import InputError, StoreError
from geoplan.monitoring.asof import AsOf, as_of_either, as_of_now, as_of_quarter
from geoplan.monitoring.ledger_quarters import Quarter, quarter_range

__all__ = [
    "PLAN_FILE",
    "Milestone",
    "PlanPeriod",
    "chosen_moment",
    "default_plan_path",
    "load_plan",
    "plan_for",
    "plan_from_dict",
]

PLAN_FILE = Path("plan.yaml")
_KEYS = {"title_zh", "title_en", "start", "end", "monitored_until", "milestones"}


@dataclass(frozen=True)
class Milestone:
    year: int
    title_zh: str
    note: str = ""


@dataclass(frozen=True)
class PlanPeriod:
    """The plan's quarters: `start`..`end`, monitored to `monitored_until`; targets fall due in milestone years."""

    title_zh: str
    title_en: str
    start: Quarter
    end: Quarter
    monitored_until: Quarter
    milestones: tuple[Milestone, ...]

    @property
    def milestone_years(self) -> tuple[int, ...]:
        return tuple(m.year for m in self.milestones)

    def quarters(self) -> list[Quarter]:
        """Every quarter of the plan and its monitoring, oldest first."""
        return quarter_range(self.start, self.monitored_until)

    def default_as_of(self, *, now: datetime | None = None) -> AsOf:
        """Now while the plan is monitored (or before it starts); the end of `monitored_until` once past it."""
        current = as_of_now(now)
        if current.quarter > self.monitored_until:
            return as_of_quarter(self.monitored_until, now=current.at)
        return current

    def judged_quarter(self, quarter: Quarter) -> Quarter:
        """The quarter overdue projects are judged at: the as-of quarter, never later than the monitoring's end."""
        return min(quarter, self.monitored_until)

    def stray_target_years(self, targets: Iterable[tuple[str, int | None]]) -> list[str]:
        """(indicator id, target year) pairs whose year is no milestone: one line each, for a check."""
        years = set(self.milestone_years)
        return [
            f"indicator {ident}: target year {year} is not a milestone year of the plan ({_years(years)})"
            for ident, year in targets
            if year is not None and year not in years
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "start": str(self.start),
            "end": str(self.end),
            "monitored_until": str(self.monitored_until),
            "milestones": [{"year": m.year, "title_zh": m.title_zh, "note": m.note} for m in self.milestones],
        }


def chosen_moment(
    as_of: str | None,
    quarter: str | None,
    *,
    plan: PlanPeriod | None,
    names: tuple[str, str] = ("as_of", "quarter"),
    now: datetime | None = None,
) -> AsOf:
    """The moment a caller chose (`as_of_either`), or when neither is given the plan's default (`default_as_of`;
    now without a plan)."""
    if as_of is None and quarter is None and plan is not None:
        return plan.default_as_of(now=now)
    return as_of_either(as_of, quarter, names=names, now=now)


def _years(years: set[int]) -> str:
    return ", ".join(str(y) for y in sorted(years))


def default_plan_path(layers_dir: Path) -> Path:
    return Path(layers_dir) / PLAN_FILE


def plan_for(layers_dir: Path) -> PlanPeriod | None:
    """The plan in the layers folder, or None when it has no plan.yaml (the default moment is then now)."""
    path = default_plan_path(layers_dir)
    return load_plan(path) if path.is_file() else None


def load_plan(path: Path) -> PlanPeriod:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StoreError(f"cannot read the plan period {path}: {exc}") from None
    return plan_from_dict(raw, source=Path(path).name)


def plan_from_dict(raw: Any, *, source: str = "plan.yaml") -> PlanPeriod:
    """Parse and check; every problem is listed in one InputError."""
    problems: list[str] = []
    body = raw.get("plan") if isinstance(raw, dict) else None
    if not isinstance(body, dict):
        raise InputError(f"{source}: expected a mapping under `plan:`")
    unknown = sorted(str(k) for k in body if k not in _KEYS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    quarters: dict[str, Quarter] = {}
    for key in ("start", "end", "monitored_until"):
        try:
            quarters[key] = Quarter.parse(str(body.get(key, "")))
        except InputError:
            problems.append(f"{key} must be a quarter YYYYQn, not {body.get(key)!r}")
    titles = {key: body.get(key) for key in ("title_zh", "title_en")}
    for key, value in titles.items():
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key} must be a non-empty text")
    if len(quarters) == 3:
        if quarters["end"] < quarters["start"]:
            problems.append(f"end {quarters['end']} is before start {quarters['start']}")
        if quarters["monitored_until"] < quarters["end"]:
            problems.append(f"monitored_until {quarters['monitored_until']} is before end {quarters['end']}")
    milestones = _milestones(body.get("milestones"), quarters, problems)
    if problems:
        raise InputError(
            f"{source}: " + "; ".join(problems), zh=f"{source}：行动计划期设置有误：" + "；".join(problems)
        )
    return PlanPeriod(
        title_zh=str(titles["title_zh"]).strip(),
        title_en=str(titles["title_en"]).strip(),
        start=quarters["start"],
        end=quarters["end"],
        monitored_until=quarters["monitored_until"],
        milestones=milestones,
    )


def _milestones(raw: Any, quarters: dict[str, Quarter], problems: list[str]) -> tuple[Milestone, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("milestones must be a non-empty list of {year, title_zh, note}")
        return ()
    out: list[Milestone] = []
    for number, item in enumerate(raw, start=1):
        where = f"milestone {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping {{year, title_zh, note}}")
            continue
        unknown = sorted(str(k) for k in item if k not in ("year", "title_zh", "note"))
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        year, title, note = item.get("year"), item.get("title_zh"), item.get("note", "")
        if isinstance(year, bool) or not isinstance(year, int):
            problems.append(f"{where}: year must be a whole year, not {year!r}")
            continue
        bounded = "start" in quarters and "monitored_until" in quarters
        if bounded and not quarters["start"].year <= year <= quarters["monitored_until"].year:
            problems.append(
                f"{where}: year {year} lies outside the plan "
                f"({quarters['start'].year}–{quarters['monitored_until'].year})"
            )
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{where}: title_zh must be a non-empty text")
            continue
        out.append(Milestone(year=year, title_zh=title.strip(), note=str(note or "").strip()))
    years = [m.year for m in out]
    if len(set(years)) != len(years):
        problems.append("milestones: two milestones for the same year")
    return tuple(sorted(out, key=lambda m: m.year))
