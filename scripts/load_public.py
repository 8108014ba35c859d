#!/usr/bin/env python3
"""Load test of the public layer data endpoint, on loopback only.

Starts the app (uvicorn) on a free 127.0.0.1 port (unless --url is given), then keeps N connections busy with
HTTP/1.1 keep-alive GETs for a fixed time and prints throughput and p50/p95/p99 latency. The client is a
small asyncio one (no HTTP library overhead), so on a 2-core machine it leaves most of the CPU to the server.

    python scripts/load_public.py --store data/gaoming.gpkg --connections 50 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from geoplan.testing import app_command, free_port, serving

DEFAULT_PATH = "/ogc/collections/projects/items?limit=1000"


async def _worker(host: str, port: int, path: str, deadline: float, latencies: list[float], errors: list[str]) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/geo+json\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = None
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                errors.append("response without content-length")
                return
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode("latin-1").strip())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _run(url: str, connections: int, seconds: float) -> tuple[list[float], list[str], float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this load script only targets loopback addresses")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_worker(host, port, path, deadline, latencies, errors) for _ in range(connections)))
    return latencies, errors, time.perf_counter() - started


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


def _percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server's endpoint URL (loopback); default: start one")
    parser.add_argument("--store", default=os.environ.get("GEOPLAN_STORE", "data/gaoming.gpkg"))
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes when starting one")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            url = stack.enter_context(_started_server(args.store, args.workers)) + args.path
            urllib.request.urlopen(url, timeout=30).read()  # warm the layer cache of a worker
        latencies, errors, elapsed = asyncio.run(_run(url, args.connections, args.seconds))
    if not latencies:
        raise SystemExit(f"no successful request; errors: {errors[:5]}")
    ordered = sorted(latencies)
    print(f"endpoint      {url}")
    print(f"connections   {args.connections}, {elapsed:.1f} s")
    print(f"requests      {len(latencies):,}  errors {len(errors)}")
    print(f"throughput    {len(latencies) / elapsed:,.0f} requests/s")
    print(
        "latency ms    "
        f"p50 {_percentile(ordered, 0.50) * 1000:.1f}  p95 {_percentile(ordered, 0.95) * 1000:.1f}  "
        f"p99 {_percentile(ordered, 0.99) * 1000:.1f}  mean {statistics.fmean(ordered) * 1000:.1f}"
    )
    if errors:
        print(f"first errors  {errors[:3]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
