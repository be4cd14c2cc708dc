"""The dev-server stack shared by the handoff, ingestion and memory scenarios.

Real parts only: the bench's embedded Postgres, the Temporal dev server
(SQLite file, like `make demo`), `worker.py` as a subprocess on private task
queues, and a second subprocess running the no-op baseline workflows.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.noop import READY as NOOP_READY
from bench.probe import Probe
from bench.stack import DevServer, Postgres, ProcessWatch, WorkerProcess, wait_until_polling
from stack.settings import Settings, load_settings

WORKER_READY = "worker polling"


@dataclass
class DevStack:
    root: Path
    dsn: str
    pool: asyncpg.Pool  # the bench's own reads (progress polls), apart from the worker's
    dev: DevServer
    client: Client
    settings: Settings
    worker: WorkerProcess
    noop: WorkerProcess
    noop_queue: str
    probe: Probe
    watch: ProcessWatch
    worker_idle_rss: int = 0
    # bench-h-<i> accounts handed off so far (the next id to use).
    handed_off: int = 0
    # Account workflows running on the worker (every scenario's): the memory
    # scenario tops them up to its targets instead of starting over.
    running: int = 0
    rss_peak_at: dict[int, int] | None = None  # running accounts -> worker peak RSS seen

    def check(self) -> None:
        self.worker.check()
        self.noop.check()


async def start_dev_stack(
    root: Path, pg: Postgres, watch: ProcessWatch, profile: bool, *, server_in_memory: bool = False
) -> DevStack:
    dsn = await pg.create_database("vim_bench_dev")
    dev = DevServer(root, in_memory=server_in_memory)
    env = await dev.start()
    q = uuid.uuid4().hex[:6]
    settings = load_settings(
        {
            "VIM_DATA_DIR": str(root / "worker-data"),
            "TEMPORAL_ADDRESS": dev.address,
            "DATABASE_URL": dsn,
            "VIM_TASK_QUEUE": f"bench-accounts-{q}",
            "VIM_SALES_TASK_QUEUE": f"bench-sales-{q}",
            "VIM_LLM_TASK_QUEUE": f"bench-llm-{q}",
        }
    )
    worker_env = {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "DATABASE_URL": dsn,
        "VIM_DATA_DIR": str(settings.data_dir),
        "VIM_TASK_QUEUE": settings.task_queue,
        "VIM_SALES_TASK_QUEUE": settings.sales_task_queue,
        "VIM_LLM_TASK_QUEUE": settings.llm_task_queue,
    }
    worker = WorkerProcess("worker", ["worker.py"], worker_env, root / "worker.log").start()
    noop_queue = f"bench-noop-{q}"
    noop = WorkerProcess(
        "no-op worker",
        ["-m", "bench.noop"],
        {"TEMPORAL_ADDRESS": settings.temporal_address, "BENCH_NOOP_TASK_QUEUE": noop_queue},
        root / "noop-worker.log",
    ).start()
    await wait_until_polling(worker, WORKER_READY)
    await wait_until_polling(noop, NOOP_READY)

    watch.watch("worker", lambda: [worker.pid])
    watch.watch("no-op worker", lambda: [noop.pid])
    server_pid = dev.pid()
    watch.watch("dev server", lambda: [server_pid], descendants=True)
    probe = Probe(
        watch=watch,
        workdir=root,
        dsn=dsn,
        dev=dev,
        profile_pid=worker.pid,
        profile_label="worker",
        profile=profile,
    )
    st = DevStack(
        root=root,
        dsn=dsn,
        pool=await asyncpg.create_pool(dsn, min_size=1, max_size=4),
        dev=dev,
        client=env.client,
        settings=settings,
        worker=worker,
        noop=noop,
        noop_queue=noop_queue,
        probe=probe,
        watch=watch,
        rss_peak_at={},
    )
    # Idle RSS: the worker has connected, migrated and polls, with 0 workflows.
    # Sampled for a few seconds so a late import or GC is not mistaken for it.
    samples = []
    for _ in range(10):
        await asyncio.sleep(0.3)
        samples.append(worker.rss())
    st.worker_idle_rss = max(samples)
    return st


async def stop_dev_stack(st: DevStack) -> None:
    st.watch.unwatch("worker")
    st.watch.unwatch("no-op worker")
    st.watch.unwatch("dev server")
    # Stop the workers before the server, so they do not log reconnect errors.
    await asyncio.to_thread(st.worker.stop)
    await asyncio.to_thread(st.noop.stop)
    await st.pool.close()
    await st.dev.stop()


async def gather_limited(n: int, concurrency: int, make: Any) -> list[float]:
    """Run `make(i)` for i in range(n), `concurrency` at a time; return each call's latency."""
    latencies: list[float] = [0.0] * n
    it = iter(range(n))
    loop = asyncio.get_running_loop()

    async def lane() -> None:
        for i in it:
            t0 = loop.time()
            await make(i)
            latencies[i] = loop.time() - t0

    await asyncio.gather(*(lane() for _ in range(min(concurrency, n))))
    return latencies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def wait_for(
    predicate: Any, *, within: float, every: float = 0.25, check: Any = None
) -> float:
    """Poll `await predicate()` until true; returns the loop time it became true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await predicate():
            return loop.time()
        if check is not None:
            check()
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met in {within:.0f}s")
        await asyncio.sleep(every)
