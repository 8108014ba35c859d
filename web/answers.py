"""What the analysis APIs (coverage, life circles) share in their answers: plain JSON values (no NaN, inf or
numpy scalars) and the note naming the inputs that hold synthetic demo data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from geoplan.services.provenance import synthetic_banner, synthetic_titles
from geoplan.storage import LayerStore

__all__ = ["plain", "records", "synthetic_facts"]


def plain(value: Any) -> Any:
    """A JSON value: numpy scalars unwrapped, NaN, ±inf and pd.NA as null (JSON has none), containers walked."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `frame` as plain JSON objects."""
    return [plain(row) for row in frame.to_dict(orient="records")]


def synthetic_facts(store: LayerStore, names: tuple[str, ...], *, tail: str) -> dict[str, Any]:
    """Which of the inputs `names` hold synthetic demo data now (a function of their versions, so an ETag over
    the versions still holds): `synthetic`, their Chinese titles and the banner naming them (`tail` says what
    that means for the figures). Reads the store: call it off the event loop."""
    titles = synthetic_titles(store, names)
    note = synthetic_banner(store, names, tail=tail)
    return {"synthetic": bool(titles), "synthetic_layers": list(titles), "synthetic_note": note}
