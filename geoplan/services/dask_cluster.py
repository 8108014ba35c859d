"""A dask.distributed client for the partitioned and out-of-core runs: a real cluster's scheduler, or a local one.

The engines take a client and never start one; the CLI, the benchmarks and the tests open it here, with the
workers' memory policy below, and close it with its cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from geoplan.errors import InputError

__all__ = ["WORKER_MEMORY", "local_client"]

WORKER_MEMORY = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.95,
}
"""dask's memory policy for our workers. Tasks keep no data in worker memory (inputs are scattered per task or
read from files, results are small), so there is nothing to spill; and pausing a worker at 80 % waits for
memory the allocator may never hand back, which stalled whole runs. The limit is enforced by the nanny instead:
a worker at 95 % of it is restarted. Set the same on the workers of a real cluster (DASK_DISTRIBUTED__WORKER__
MEMORY__PAUSE=False and so on)."""


@contextmanager
def local_client(
    *, scheduler: str | None = None, workers: int = 2, memory_limit: str | int = "auto", processes: bool = True
) -> Iterator[Any]:
    """A dask client: to the scheduler at `scheduler` (a real cluster), else to a LocalCluster of `workers`
    single-threaded workers, each held to `memory_limit` (bytes or '2GB': its nanny restarts a worker that
    reaches 95 % of it, and the task is retried). Closed, with its cluster, on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, not {workers!r}")
    # The p2p shuffle logs every shuffle's start and end as a warning: routine here, not a problem.
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    with dask.config.set(WORKER_MEMORY):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            processes=processes,
            dashboard_address=":0",  # any free port: several clusters may run on one host
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
