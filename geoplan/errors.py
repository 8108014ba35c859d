"""Typed errors. Every user-facing failure is one of these; interfaces map them to exit codes / HTTP codes.

`InputError` and its subclasses are the user's to fix (CLI exit 2, HTTP 4xx); anything else is ours (exit 1, 5xx).
"""

from __future__ import annotations

from dataclasses import dataclass


class GeoplanError(Exception):
    """Base class of every error geoplan raises on purpose."""


class InputError(GeoplanError):
    """The user's input is wrong: a bad file, option, value or request.

    `zh`: the same in Chinese, for the pages people read (the API sends it as `detail_zh` beside `detail`); given
    where a page's user can meet the error (a quarter the data cannot answer, say).
    """

    def __init__(self, message: str, *, zh: str = "") -> None:
        super().__init__(message)
        self.zh = zh


class NotFoundError(InputError):
    """A named layer, feature or resource does not exist."""


class ConflictError(InputError):
    """The request conflicts with the data as it is now (a scenario drafted against features changed since).
    `features`: what conflicts, as (layer, feature id, reason) triples, so a page can list them."""

    def __init__(self, message: str, *, zh: str = "", features: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__(message, zh=zh)
        self.features = features or []


class CRSError(InputError):
    """The coordinate reference system of some input is unknown, unsupported or contradicts its coordinates."""


class UnreadableFileError(InputError):
    """A file could not be read as geodata (wrong format, truncated, garbage, unsafe archive)."""


class StoreError(GeoplanError):
    """The layer store failed (connection, schema mismatch). Not the user's input."""


@dataclass(frozen=True)
class Problem:
    """One finding about one feature (or the whole file when `feature` is None)."""

    message: str
    feature: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.feature is not None:
            where.append(f"feature {self.feature}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ValidationFailed(InputError):
    """A dataset broke the catalogue's rules. Carries every problem found, not only the first.

    `titles`: the catalogue's Chinese field titles (name -> title_zh), so a page can name the fields people know.
    """

    def __init__(self, source: str, problems: list[Problem], *, titles: dict[str, str] | None = None) -> None:
        self.source = source
        self.problems = problems
        self.titles = titles or {}
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{source}: {len(problems)} problem(s): {shown}{more}")


READ_ONLY_SQLSTATE = "25006"
"""PostgreSQL's read_only_sql_transaction: a write reached a hot-standby replica (or a read-only database)."""


def is_read_only_refusal(exc: BaseException) -> bool:
    """Whether an error is (or was caused by) a write refused because the database is read-only (a replica)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the driver's error, SQLAlchemy's wrapper, a store's StoreError around it
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) == READ_ONLY_SQLSTATE:
            return True
        if getattr(getattr(seen, "orig", None), "sqlstate", None) == READ_ONLY_SQLSTATE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


READ_ONLY_MESSAGE = "this database is read-only (a replica): make changes on the primary"
