"""The fixed 20 % classes of the life-circle map and heat table, against a plain loop over the bounds."""

from __future__ import annotations

import numpy as np
import pytest

from geoplan.analysis.coverage_classes import NO_PEOPLE_COLOR, PALETTES, STEPS, step_classes


def by_loop(value: float) -> int:
    """The first class whose upper bound holds the value (the first class from 0)."""
    for i, upper in enumerate(STEPS):
        if value <= upper:
            return i
    return len(STEPS) - 1


def test_every_value_falls_in_the_first_class_that_holds_it() -> None:
    rng = np.random.default_rng(7)
    values: list[float | None] = [0.0, 20.0, 20.05, 40.0, 59.99, 80.0, 80.1, 100.0, None]
    values += [float(v) for v in rng.uniform(0, 100, 200).round(1)]
    classes = step_classes(values)
    for i, value in enumerate(values):
        assert classes.classes[i] == (None if value is None else by_loop(value)), value
    assert classes.upper == STEPS and classes.lower == (0.0, 20.0, 40.0, 60.0, 80.0)
    assert list(classes.counts) == [sum(1 for v in values if v is not None and by_loop(v) == k) for k in range(5)]
    assert classes.colors == PALETTES[5]
    assert classes.color_of(len(values) - 201) == NO_PEOPLE_COLOR  # the None


def test_the_same_value_has_the_same_class_whatever_the_others() -> None:
    """Unlike natural breaks, the classes do not move with the other villages' values: one colour, one range."""
    assert step_classes([55.0, 1.0]).classes[0] == step_classes([55.0, 99.0, 98.0]).classes[0] == 2


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        step_classes([1.0], upper=(50.0, 20.0))
