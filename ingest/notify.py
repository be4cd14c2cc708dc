"""One small `usage_arrived` signal per affected account workflow, coalesced.

Writers `add` what they wrote (account -> rows, latest occurred_at); `flush`
sends each account one signal with everything gathered since its last one,
and an account is signalled at most once per `interval` (the rest waits for
the next flush). `run` flushes every interval until cancelled; callers
`flush(force=True)` when they finish. An account with no running workflow is
counted and skipped: its rows are in Postgres for its next scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.messages import UsageArrivedSignal

log = logging.getLogger("vim.ingest")

DEFAULT_INTERVAL_SECONDS = 60.0
SIGNAL_CONCURRENCY = 32


def account_workflow_id(account_id: str) -> str:
    return f"account-{account_id}"


async def signal_accounts(
    client: Client, name: str, messages: Mapping[str, BaseModel]
) -> list[bool]:
    """Signal each account's workflow (account id -> message), a few at a time; per
    account, in order: True if signalled, False if it has no running workflow."""
    sem = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def one(aid: str, msg: BaseModel) -> bool:
        async with sem:
            try:
                await client.get_workflow_handle(account_workflow_id(aid)).signal(name, msg)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                return False
            return True

    return list(await asyncio.gather(*(one(a, m) for a, m in messages.items())))


@dataclass
class FlushResult:
    signalled: int = 0
    not_running: int = 0
    deferred: int = 0


class Coalescer:
    def __init__(
        self,
        client: Client | None,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.interval = interval
        self._clock = clock
        self._pending: dict[str, tuple[int, datetime]] = {}
        self._last_sent: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.totals = FlushResult()

    def add(self, arrived: dict[str, tuple[int, datetime]]) -> None:
        for aid, (n, up_to) in arrived.items():
            m, t = self._pending.get(aid, (0, up_to))
            self._pending[aid] = (m + n, max(t, up_to))

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self, force: bool = False) -> FlushResult:
        async with self._lock:
            now = self._clock()
            due = {
                aid: v
                for aid, v in self._pending.items()
                if force or now - self._last_sent.get(aid, -1e18) >= self.interval
            }
            result = FlushResult(deferred=len(self._pending) - len(due))
            if self.client is None:  # notifications off: rows are in Postgres regardless
                for aid in due:
                    del self._pending[aid]
                return result
            outcomes = await signal_accounts(
                self.client,
                "usage_arrived",
                {
                    aid: UsageArrivedSignal(events=min(n, 2**31 - 1), up_to=up_to)
                    for aid, (n, up_to) in due.items()
                },
            )
            for aid, ok in zip(due, outcomes, strict=True):
                del self._pending[aid]
                self._last_sent[aid] = now
                if ok:
                    result.signalled += 1
                else:
                    result.not_running += 1
            self.totals.signalled += result.signalled
            self.totals.not_running += result.not_running
            return result

    async def run(self) -> None:
        """Flush every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # Temporal down: keep the counts, try again next interval
                log.exception("usage_arrived signals failed; retrying next interval")
