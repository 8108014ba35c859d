"""geoplan.cql2 on its own: the checks before anything runs, and the frame evaluator's SQL-like NULL logic,
LIKE wildcards and escapes, and filter geometries moved into stored lon/lat."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoplan.cql2 import GEOMETRY, frame_mask, parse_filter
from geoplan.errors import InputError

QUERYABLES = {"name": "string", "num": "integer", "town": "string", GEOMETRY: "geometry"}


@pytest.fixture
def frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": ["a_b", "axb", "50%", "A_B", None],
            "num": [1, 2, 3, 4, 5],
            "town": ["x", None, "y", "x", None],
        },
        geometry=[shapely.Point(112.0 + i, 22.0) for i in range(5)],
        crs="EPSG:4490",
    )


def _rows(text: str, frame: gpd.GeoDataFrame, **kwargs: object) -> list[int]:
    node = parse_filter(text, lang=str(kwargs.pop("lang", "cql2-text")), queryables=QUERYABLES, **kwargs)  # type: ignore[arg-type]
    return list(np.flatnonzero(frame_mask(node, frame)))


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("name LIKE 'a_b'", [0, 1]),  # '_' is one character
        ("name LIKE 'a\\_b'", [0]),  # an escaped '_' is itself
        ("name LIKE '50\\%'", [2]),
        ("CASEI(name) LIKE casei('a\\_b')", [0, 3]),
        ("town = 'x'", [0, 3]),
        ("NOT (town = 'x')", [2]),  # NULL towns: unknown, and NOT unknown is unknown
        ("town <> 'x' OR num = 5", [2, 4]),
        ("NOT (town = 'x' AND num > 100)", [0, 1, 2, 3, 4]),  # unknown AND false is false
        ("town IS NULL", [1, 4]),
        ("num BETWEEN 2 AND 4 AND town IS NOT NULL", [2, 3]),
        ("name IN ('a_b', 'A_B')", [0, 3]),
        ("name NOT IN ('a_b')", [1, 2, 3]),
    ],
)
def test_frame_evaluator(frame: gpd.GeoDataFrame, text: str, rows: list[int]) -> None:
    assert _rows(text, frame) == rows


def test_the_standard_grammar(frame: gpd.GeoDataFrame) -> None:
    """What pygeofilter 0.4's own cql2-text grammar refuses: NOT over AND/OR, the '' escape."""
    assert _rows("NOT (town = 'x' OR num > 3)", frame) == [2]
    frame.loc[2, "name"] = "O'Brien"
    assert _rows("name = 'O''Brien'", frame) == [2]
    bbox = '{"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [111.5, 21.5, 113.5, 22.5]}]}'
    assert _rows(bbox, frame, lang="cql2-json") == [0, 1]


def test_filter_geometries_move_into_stored_lon_lat(frame: gpd.GeoDataFrame) -> None:
    def swap(coords: np.ndarray) -> np.ndarray:  # lat,lon -> lon,lat (EPSG:4490's axis order to stored)
        return coords[:, ::-1]

    assert _rows("S_INTERSECTS(geometry, BBOX(111.5, 21.5, 113.5, 22.5))", frame) == [0, 1]
    assert _rows("S_INTERSECTS(geometry, BBOX(21.5, 111.5, 22.5, 113.5))", frame, to_storage=swap) == [0, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("secret = 1", "not a queryable"),
        ("num = 'one'", "type mismatch"),
        ("name > 1", "type mismatch"),
        ("CASEI(num) = 1", "CASEI needs a string"),
        ("ACCENTI(name) = 'a'", "accenti"),
        ("S_WITHIN(geometry, POINT(1 2))", "unsupported filter expression"),
        ("num =", "cannot parse"),
        ("n = 1", "'n' is not a queryable"),  # a one-letter name parses (pygeofilter's own grammar refused it),
    ],
)
def test_refusals(frame: gpd.GeoDataFrame, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _rows(text, frame)
