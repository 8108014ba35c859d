"""Quarters ("2019Q2"): the unit the action plan is inspected and reported in (按季度巡查抽检).

A quarter's record describes the state at the quarter's end, so "as of 2020Q4" means "at the end of 2020".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from geoplan.errors import InputError

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
MIN_YEAR, MAX_YEAR = 2000, 2100


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter; ordered, so `Quarter(2019, 4) < Quarter(2020, 1)`."""

    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """'2019Q2' (upper or lower case q, surrounding blanks ignored); anything else is an InputError."""
        match = _QUARTER.fullmatch(text.strip().upper()) if isinstance(text, str) else None
        if match is None:
            raise InputError(
                f"invalid quarter {text!r}: write it as YYYYQn, e.g. 2019Q2",
                zh=f"季度“{text}”的写法不对：请写成 YYYYQn，如 2019Q2。",
            )
        year = int(match.group(1))
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise InputError(
                f"invalid quarter {text!r}: the year must lie in {MIN_YEAR}–{MAX_YEAR}",
                zh=f"季度“{text}”的年份须在 {MIN_YEAR}–{MAX_YEAR} 之间。",
            )
        return cls(year, int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def last_of(cls, year: int) -> Quarter:
        return cls(year, 4)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.q == 4 else Quarter(self.year, self.q + 1)

    @classmethod
    def from_index(cls, index: int) -> Quarter:
        """The quarter `index` quarters after year 0 (the inverse of `index`)."""
        return cls(index // 4, index % 4 + 1)

    @property
    def index(self) -> int:
        """Quarters since year 0: differences count quarters."""
        return self.year * 4 + self.q - 1


def quarter_range(first: Quarter, last: Quarter) -> list[Quarter]:
    """Every quarter from `first` to `last`, both included (empty when last < first)."""
    out = []
    current = first
    while current <= last:
        out.append(current)
        current = current.next()
    return out
