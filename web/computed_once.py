"""A small thread-safe memo for the web app's analysis caches: each key is built once, by one thread.

The overlay, the coverage run and the indicators each take about a second; requests arrive on several worker
threads at once. Without a single flight, N simultaneous requests after an edit would compute N times. Keys carry
every input's version, so entries are never invalidated, only pushed out, oldest first, beyond `keep`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")


class ComputedOnce(Generic[V]):
    """`get(key, build)`: the value for `key`, built by exactly one thread; others asking meanwhile wait for it."""

    def __init__(self, *, keep: int) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._keep = keep
        self._guard = threading.Lock()
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._inflight: dict[Hashable, Future[V]] = {}
        self.builds = 0
        """How many values were built (for tests and logs)."""

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)

    def peek(self, key: Hashable) -> V | None:
        """The value if it is already built; never builds."""
        with self._guard:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._guard:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            waiting = self._inflight.get(key)
            if waiting is None:
                future: Future[V] = Future()
                self._inflight[key] = future
                self.builds += 1
        if waiting is not None:
            return waiting.result()
        try:
            value = build()
        except BaseException as exc:
            with self._guard:
                del self._inflight[key]
            future.set_exception(exc)
            raise
        with self._guard:
            self._entries[key] = value
            while len(self._entries) > self._keep:  # old states (before an edit, other settings) go first
                self._entries.popitem(last=False)
            del self._inflight[key]
        future.set_result(value)
        return value


class FileBacked(Generic[V]):
    """A value loaded from a file, re-loaded when the file changes (size or mtime): a rules edit needs no restart."""

    def __init__(self, load: Callable[[Path], V]) -> None:
        self._load = load
        self._cached: tuple[Path, tuple[int, int], V] | None = None

    def get(self, path: Path, *, missing: Callable[[Path], BaseException]) -> V:
        try:
            stat = path.stat()
        except OSError:
            raise missing(path) from None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._cached
        if cached is not None and cached[0] == path and cached[1] == signature:
            return cached[2]
        value = self._load(path)
        self._cached = (path, signature, value)
        return value
