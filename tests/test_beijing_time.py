"""Beijing time (UTC+8) as people read it and as the API sends it, checked against a zone computed apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geoplan.beijing_time import api_time, api_times, shown_time


@pytest.mark.parametrize(
    ("stored", "api", "shown"),
    [
        ("2026-12-06T23:30:00+00:00", "2026-12-07T07:30:00+08:00", "2026-12-07 07:30:00"),  # a new day in Beijing
        ("2020-12-31T15:59:59+00:00", "2020-12-31T23:59:59+08:00", "2020-12-31 23:59:59"),  # a quarter's last second
        ("2018-03-31T16:00:00Z", "2018-04-01T00:00:00+08:00", "2018-04-01 00:00:00"),
        ("2019-06-01T08:00:00", "2019-06-01T16:00:00+08:00", "2019-06-01 16:00:00"),  # stored text without offset: UTC
        ("2019-06-01T08:00:00+08:00", "2019-06-01T08:00:00+08:00", "2019-06-01 08:00:00"),
    ],
)
def test_stored_instants_become_beijing_time(stored: str, api: str, shown: str) -> None:
    assert api_time(stored) == api
    assert shown_time(stored) == shown
    assert shown_time(stored, label=True) == f"{shown}（北京时间）"
    assert shown_time(stored, seconds=False) == shown[:16]
    # the same instant, whichever way it is written
    original = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    assert datetime.fromisoformat(api) == (original if original.tzinfo else original.replace(tzinfo=UTC))


def test_every_offset_is_eight_hours_and_nothing_is_shown_as_none() -> None:
    moment = datetime(2017, 7, 1, 0, 0, tzinfo=UTC)
    for hours in range(0, 24 * 366, 7):  # a year and a bit, hour by hour in steps: no daylight saving anywhere
        stamp = moment + timedelta(hours=hours)
        sent = api_time(stamp.isoformat())
        assert sent is not None and sent.endswith("+08:00")
        assert datetime.fromisoformat(sent) == stamp
        assert shown_time(stamp) == (stamp + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    assert api_time(None) is None and api_time("") is None
    assert shown_time(None) == "–" and shown_time("") == "–"
    assert api_time("not a time") == "not a time" and shown_time("2026Q4") == "2026Q4"


def test_api_times_converts_only_the_time_fields() -> None:
    record = {"at": "2026-12-06T23:30:00+00:00", "taken_at": None, "quarter": "2026Q4", "note": "2026-12-06T23:30:00"}
    assert api_times(record) == {
        "at": "2026-12-07T07:30:00+08:00",
        "taken_at": None,
        "quarter": "2026Q4",
        "note": "2026-12-06T23:30:00",
    }
