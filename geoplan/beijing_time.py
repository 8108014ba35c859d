"""Times as people read them: Beijing time (Asia/Shanghai, UTC+8), in one place.

The store keeps instants in UTC (the audit log compares them as text, and the as-of replay reads them). Every
time that leaves geoplan goes through here: the API gives ISO 8601 with the +08:00 offset, and pages, reports
and command-line tables show `2026-12-07 07:30:00` with the label 北京时间. China has kept UTC+8 without
daylight saving since 1991, so a fixed offset is exact for every date the plan can hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8), "CST")
"""Asia/Shanghai as a fixed offset (China Standard Time)."""
LABEL = "北京时间"


def instant(value: str | datetime) -> datetime | None:
    """An aware instant from stored text or a datetime; a time without an offset is UTC (the store's own
    zone). None for text that is not a time."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def api_time(value: str | datetime | None) -> str | None:
    """ISO 8601 in Beijing time with its offset, to the second (2026-12-07T07:30:00+08:00); None stays None,
    text that is no time is passed on unchanged."""
    if value is None or value == "":
        return None
    moment = instant(value)
    if moment is None:
        return str(value)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def shown_time(value: str | datetime | None, *, label: bool = False, seconds: bool = True) -> str:
    """`2026-12-07 07:30:00` in Beijing time (with `（北京时间）` when `label`); "–" for no time."""
    if value is None or value == "":
        return "–"
    moment = instant(value)
    if moment is None:
        return str(value)
    text = moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text}（{LABEL}）" if label else text


def now_beijing() -> datetime:
    return datetime.now(UTC).astimezone(BEIJING)


TIME_FIELDS = frozenset(
    {"at", "as_of", "taken_at", "recorded_at", "mark_at", "created_at", "revoked_at", "generated_at"}
)
"""Field names that hold stored instants (UTC text) wherever geoplan sends a record."""


def api_times(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` with every TIME_FIELDS value in Beijing time with its offset."""
    return {k: api_time(v) if k in TIME_FIELDS and isinstance(v, str | datetime) else v for k, v in record.items()}
