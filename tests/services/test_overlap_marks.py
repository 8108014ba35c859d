"""Resolution marks: append-only history, the latest mark wins, bad input is refused before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa

from geoplan.errors import InputError
from geoplan.services.overlap_marks import MARKS_TABLE, MarkRegistry, attach_marks

P1, P2 = "0123456789abcdef", "fedcba9876543210"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[MarkRegistry]:
    marks = MarkRegistry(sa.create_engine(f"sqlite:///{tmp_path / 'marks.sqlite'}"))
    yield marks
    marks.close()


def test_latest_mark_is_current_and_history_keeps_every_mark(registry: MarkRegistry) -> None:
    registry.mark(P1, rule="ECO_PROJECT", status="to_adjust", note="核减用地", actor="张工")
    registry.mark(P2, rule="FARMLAND_PROJECT", status="accepted", note="", actor="李工")
    registry.mark(P1, rule="ECO_PROJECT", status="resolved", note="已调整\n见会议纪要", actor="王工")
    current = registry.current()
    assert set(current) == {P1, P2}
    assert (current[P1].status, current[P1].actor, current[P1].note) == ("resolved", "王工", "已调整\n见会议纪要")
    assert current[P2].status == "accepted"
    assert [(m.status, m.actor) for m in registry.history(P1)] == [("to_adjust", "张工"), ("resolved", "王工")]
    assert registry.history("aaaaaaaaaaaaaaaa") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patch_id": "0123"}, "16 hexadecimal digits"),
        ({"patch_id": "0123456789ABCDEF"}, "16 hexadecimal digits"),
        ({"status": "done"}, "accepted, to_adjust, resolved"),
        ({"note": "x" * 2001}, "at most 2000"),
        ({"note": "bell\x07"}, "control characters"),
        ({"actor": "  "}, "must not be empty"),
        ({"actor": "a\nb"}, "control characters"),
        ({"rule": "no such rule!"}, "invalid rule code"),
    ],
)
def test_bad_marks_are_refused_and_nothing_is_written(
    registry: MarkRegistry, changes: dict[str, str], message: str
) -> None:
    arguments = {"patch_id": P1, "rule": "ECO_PROJECT", "status": "accepted", "note": "ok", "actor": "张工", **changes}
    patch = arguments.pop("patch_id")
    with pytest.raises(InputError, match=message):
        registry.mark(patch, **arguments)
    with registry.engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(*) FROM {MARKS_TABLE}")).scalar_one() == 0


def test_attach_marks_adds_the_current_mark_to_each_patch(registry: MarkRegistry) -> None:
    registry.mark(P1, rule="T", status="to_adjust", note="n1", actor="a1")
    patches = gpd.GeoDataFrame(
        {"patch_id": [P1, P2], "rule": ["T", "T"]}, geometry=[shapely.box(0, 0, 1, 1)] * 2, crs="EPSG:4490"
    )
    marked = attach_marks(patches, registry.current())
    assert marked["mark_status"].tolist() == ["to_adjust", None]
    assert marked["mark_note"].tolist() == ["n1", None]
    assert marked["mark_actor"].tolist() == ["a1", None]
    assert marked["mark_at"].iloc[0].startswith("20") and marked["mark_at"].iloc[1] is None
    assert "mark_status" not in patches.columns  # a copy, not the caller's frame
