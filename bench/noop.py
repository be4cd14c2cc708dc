"""The bare baselines: workflows that do nothing but what Temporal itself must do.

- `BenchNoopWorkflow`: returns at once. Starting N of them is the server's
  bare start rate, the limit a handoff can never beat.
- `BenchTimerYearWorkflow`: sleeps one day, `days` times. On the time-skipping
  server it is the bare cost of a simulated year of daily timers, the limit of
  an account-year.

`python -m bench.noop` runs a worker for them (TEMPORAL_ADDRESS,
BENCH_NOOP_TASK_QUEUE), so the no-op baseline has its own worker process just
as the account workflows do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

READY = "bench no-op worker polling"


@workflow.defn(name="BenchNoop")
class BenchNoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn(name="BenchTimerYear")
class BenchTimerYearWorkflow:
    @workflow.run
    async def run(self, days: int) -> int:
        for _ in range(days):
            await workflow.sleep(timedelta(days=1))
        return days


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    worker = Worker(
        client,
        task_queue=os.environ["BENCH_NOOP_TASK_QUEUE"],
        workflows=[BenchNoopWorkflow, BenchTimerYearWorkflow],
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.shutdown()))
    logging.info(READY)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
