"""A test module's own copy of the Gaoming demo store with a token of each role, as module fixtures.

For modules whose tests share one copy, because they serve it (a live server lives as long as the module) or
build on each other's writes (edits, marks, snapshots); the session's demo store (`demo_store_path`) is never
written to, and tests/web/conftest.py's `demo_copy` is a copy per test. Import `demo` and `tokens` into the module
and list them in its `__all__` (so the linter sees them used); this `tokens` then replaces conftest's tokens of
the small sample store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.conftest import Tokens, demo_store_with_tokens


@pytest.fixture(scope="module")
def demo(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokens]:
    """The copy's path and its tokens."""
    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    return path, demo_store_with_tokens(path, source=demo_store_path)


@pytest.fixture(scope="module")
def tokens(demo: tuple[Path, Tokens]) -> Tokens:
    return demo[1]
