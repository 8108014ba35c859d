#!/usr/bin/env python3
"""Load test of the public GETs, on loopback only.

Starts the app (uvicorn) on a free 127.0.0.1 port (unless --url is given), then keeps N connections busy with
HTTP/1.1 keep-alive GETs for a fixed time and prints throughput, p50/p95/p99 latency, time-outs and errors. The
client is a small asyncio one (no HTTP library overhead), so on a 2-core machine it leaves most of the CPU to
the server. It reads Content-Length, chunked and body-less (304, 204) answers, and reconnects when the server
closes a connection or a request times out.

Two modes:

- one endpoint (`--path`, default the projects' items), as before;
- `--mixed`: every public GET in turn, found from the server itself (`/ogc/collections` as the public sees it):
  the landing page, /layers and each public layer's page, /ogc, its conformance and collections, each public
  collection, a bounded page of its items, a bbox query, one item by id, /healthz and the static assets. Each
  connection walks the list from its own starting point, so every path is under load at once; the figures come
  per path and in total.

`--workers 1 2` runs once per server size (a fresh server each).

    python scripts/load_public.py --store data/gaoming.gpkg --connections 50 --seconds 15
    python scripts/load_public.py --store data/gaoming.gpkg --mixed --workers 1 2 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from geoplan.testing import app_command, free_port, serving

DEFAULT_PATH = "/ogc/collections/projects/items?limit=1000"
ITEMS_LIMIT = 100
"""The page size of the mixed run's items requests: bounded, as a map page's by-view requests are."""
STATIC_ASSETS = (
    "/static/geoplan.css",
    "/static/geoplan-gcj02.js",
    "/static/geoplan-map.js",
    "/static/geoplan-by-view.js",
    "/static/vendor/leaflet/leaflet.js",
)
OK_STATUSES = (200, 304)


class ResponseError(Exception):
    """The server closed the connection or sent something that is not an HTTP/1.1 response."""


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    timeouts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    body_bytes: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors[path] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{path}: {message}")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response whole: its status, body size and whether the connection stays open."""
    status_line = await reader.readline()
    if not status_line:
        raise ResponseError("connection closed by the server")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ResponseError(f"bad status line {status_line[:80]!r}") from None
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if status in (204, 304) or 100 <= status < 200:
        return status, 0, keep_alive  # no body, whatever the headers say
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = 0
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return status, total, keep_alive
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            total += size
    if "content-length" in headers:
        length = int(headers["content-length"])
        await reader.readexactly(length)
        return status, length, keep_alive
    body = await reader.read()  # neither: the body ends with the connection
    return status, len(body), False


async def _connection(
    host: str, port: int, paths: list[str], start: int, deadline: float, timeout: float, results: Results
) -> None:
    """One client connection: GETs of `paths` in turn from `start` until `deadline`, reconnecting when needed."""
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    index = start
    try:
        while time.perf_counter() < deadline:
            path = paths[index % len(paths)]
            index += 1
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
            started = time.perf_counter()
            try:
                if streams is None:
                    streams = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                reader, writer = streams
                writer.write(request)
                status, size, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
            except TimeoutError:
                results.timeouts[path] += 1
                streams = _closed(streams)
                continue
            except (OSError, asyncio.IncompleteReadError, ResponseError) as exc:
                results.error(path, f"{type(exc).__name__}: {exc}")
                streams = _closed(streams)
                continue
            results.latencies[path].append(time.perf_counter() - started)
            results.body_bytes[path] += size
            if status not in OK_STATUSES:
                results.error(path, f"HTTP {status}")
            if not keep_alive:
                streams = _closed(streams)
    finally:
        _closed(streams)


def _closed(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if streams is not None:
        streams[1].close()


async def _run(base: str, paths: list[str], connections: int, seconds: float, timeout: float) -> tuple[Results, float]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this load script only targets loopback addresses")
    results = Results()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(host, port, paths, i, deadline, timeout, results) for i in range(connections)))
    return results, time.perf_counter() - started


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def _centre_box(extent: list[float]) -> str:
    """The middle quarter of an extent (half its width and height): a map view's worth of a layer."""
    x0, y0, x1, y1 = extent
    dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
    return ",".join(f"{v:.6f}" for v in (x0 + dx, y0 + dy, x1 - dx, y1 - dy))


def public_paths(base: str) -> list[str]:
    """Every public GET of the running server at `base`, its public collections found as the public sees them."""
    collections = _get_json(f"{base}/ogc/collections")["collections"]
    ids = [c["id"] for c in collections]
    paths = ["/", "/layers", *(f"/layers/{i}" for i in ids), "/ogc", "/ogc/conformance", "/ogc/collections"]
    for collection in collections:
        cid = collection["id"]
        items = f"/ogc/collections/{cid}/items"
        paths += [f"/ogc/collections/{cid}", f"{items}?limit={ITEMS_LIMIT}"]
        extent = collection.get("extent", {}).get("spatial", {}).get("bbox", [None])[0]
        if extent:
            paths.append(f"{items}?limit={ITEMS_LIMIT}&bbox={_centre_box(extent)}")
        features = _get_json(f"{base}{items}?limit=1")["features"]
        if features and features[0].get("id") is not None:
            paths.append(f"{items}/{quote(str(features[0]['id']), safe='')}")
    return [*paths, "/healthz", *STATIC_ASSETS]


@contextmanager
def _started_server(store: str, workers: int) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "GEOPLAN_STORE": store}
    log_path = Path(tempfile.gettempdir()) / f"geoplan-load-{port}.log"
    with serving(
        app_command(port, workers=workers),
        port=port,
        env=env,
        log_path=log_path,
        name="server",
        timeout=60,
        cwd=Path.cwd(),
    ) as base:
        yield base


def _under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it: /layers takes /layers/roads, and / only itself."""
    return path == prefix or (prefix != "/" and path.startswith((f"{prefix.rstrip('/')}/", f"{prefix}?")))


def _percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def _row(label: str, latencies: list[float], elapsed: float, timeouts: int, errors: int, body_bytes: int) -> str:
    ordered = sorted(latencies)
    if ordered:
        p50, p95, p99 = (_percentile(ordered, s) * 1000 for s in (0.50, 0.95, 0.99))
        figures = f"{p50:8.1f} {p95:8.1f} {p99:8.1f}"
    else:
        figures = f"{'-':>8} {'-':>8} {'-':>8}"
    rate = len(latencies) / elapsed
    kb = body_bytes / max(1, len(latencies)) / 1000
    return f"{label:<72} {len(latencies):>8,} {rate:>8,.1f} {figures} {timeouts:>8} {errors:>6} {kb:>8,.1f}"


def report(title: str, paths: list[str], results: Results, elapsed: float) -> bool:
    """Print the per-path and total figures; True when nothing timed out or failed."""
    print(f"\n{title}, {elapsed:.1f} s")
    columns = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "timeouts")
    print(f"{'path':<72} " + " ".join(f"{c:>8}" for c in columns) + f" {'errors':>6} {'kB/resp':>8}")
    for path in paths:
        latencies, size = results.latencies[path], results.body_bytes[path]
        print(_row(path, latencies, elapsed, results.timeouts[path], results.errors[path], size))
    every = [latency for values in results.latencies.values() for latency in values]
    timeouts, errors = sum(results.timeouts.values()), sum(results.errors.values())
    print(_row("total", every, elapsed, timeouts, errors, sum(results.body_bytes.values())))
    if every:
        print(f"mean latency {statistics.fmean(every) * 1000:.1f} ms")
    if results.first_errors:
        print(f"first errors: {results.first_errors}")
    return bool(every) and timeouts == 0 and errors == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (loopback): its endpoint URL, or its base URL with --mixed")
    parser.add_argument("--store", default=os.environ.get("GEOPLAN_STORE", "data/gaoming.gpkg"))
    parser.add_argument("--path", default=DEFAULT_PATH, help="the one endpoint (without --mixed)")
    parser.add_argument("--mixed", action="store_true", help="every public GET in turn")
    parser.add_argument("--only", nargs="+", default=[], help="with --mixed: only these paths and those below them")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="server worker processes when starting one (one run each)"
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of the same load first, not counted")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds before a request counts as timed out")
    args = parser.parse_args()

    passed = True
    for workers in [None] if args.url else args.workers:
        with contextlib.ExitStack() as stack:
            if args.url:
                parts = urlsplit(args.url)
                base = f"{parts.scheme}://{parts.netloc}"
                single = [args.url[len(base) :] or "/"]
            else:
                base = stack.enter_context(_started_server(args.store, workers))
                single = [args.path]
            paths = public_paths(base) if args.mixed else single
            if args.only:
                paths = [p for p in paths if any(_under(p, prefix) for prefix in args.only)]
            if args.warmup > 0:  # fills every worker's caches; a cold render is not what is measured
                asyncio.run(_run(base, paths, args.connections, args.warmup, args.timeout * 10))
            results, elapsed = asyncio.run(_run(base, paths, args.connections, args.seconds, args.timeout))
        size = f"{workers} worker(s)" if workers else base
        title = f"{'mixed' if args.mixed else 'one endpoint'}, {size}, {args.connections} connections"
        passed = report(title, paths, results, elapsed) and passed
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
