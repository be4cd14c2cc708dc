"""Drill: stop and restart the Temporal dev server (persistent SQLite) with timers pending.

A private dev server (free ports, its SQLite file under the test's temp
folder) runs short-timer workflows and an account workflow. The drill stops
the server while timers are pending and some fall due during the outage,
starts it again on the same file, and checks: every timer fired exactly
once (history and Postgres), none was lost, and the account workflow still
answers queries and reacts to a signal. The worker keeps running through the
outage and must reconnect on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from cli.accounts import start_account
from domain.messages import SupportTicketSignal
from stack.settings import Settings, load_settings
from stack.temporal_dev import start_dev_server, stop_dev_server
from tests.drills.drill_workflows import TickerInput, TickerWorkflow
from tests.drills.support import events, failed_workflow_tasks, free_port, wait_for
from tests.workflows.helpers import make_handoff, running_worker, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

TICKERS = 4
TICKS = 6
EVERY_S = 1.5
OUTAGE_S = 4.0  # longer than EVERY_S: every ticker has a timer fall due while the server is down


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    q = uuid.uuid4().hex[:8]
    return load_settings(
        {
            "VIM_DATA_DIR": str(tmp_path / "data"),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "VIM_UI_PORT": str(free_port()),
            "VIM_TASK_QUEUE": f"accounts-{q}",
            "VIM_SALES_TASK_QUEUE": f"sales-{q}",
            "VIM_LLM_TASK_QUEUE": f"llm-{q}",
        }
    )


class OwnServer:
    """A private dev server; stop/start keep the same SQLite file and ports."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = await asyncio.to_thread(start_dev_server, self.settings)
        assert self.proc is not None, (
            "the drill needs its own dev server, not one already listening"
        )

    async def stop(self) -> None:
        # With the Popen object, so the exited server is reaped rather than waited on.
        await asyncio.to_thread(stop_dev_server, self.settings, self.proc)
        self.proc = None


@pytest_asyncio.fixture
async def own_server(server_settings: Settings) -> AsyncIterator[OwnServer]:
    server = OwnServer(server_settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class TickRecorder:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name="record_tick")
    async def record_tick(self, workflow_id: str, tick: int) -> None:
        await self.pool.execute(
            """INSERT INTO drill_ticks (workflow_id, tick) VALUES ($1, $2)
               ON CONFLICT (workflow_id, tick) DO UPDATE SET calls = drill_ticks.calls + 1""",
            workflow_id,
            tick,
        )


async def test_dev_server_restart_loses_no_timer_and_fires_none_twice(
    own_server: OwnServer, db_dsn: str
) -> None:
    settings = own_server.settings
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    h = make_handoff(f"restart-{uuid.uuid4().hex[:6]}", datetime.now(UTC).date())
    async with running_worker(client, db_dsn, settings) as pool:
        await pool.execute(
            "CREATE TABLE drill_ticks (workflow_id text, tick int, calls int NOT NULL DEFAULT 1, "
            "at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (workflow_id, tick))"
        )
        ticker_worker = Worker(
            client,
            task_queue=f"{settings.task_queue}-ticker",
            workflows=[TickerWorkflow],
            activities=[TickRecorder(pool).record_tick],
        )
        async with ticker_worker:
            account = client.get_workflow_handle(await start_account(client, h, settings))
            tickers = [
                await client.start_workflow(
                    TickerWorkflow.run,
                    TickerInput(ticks=TICKS, every_seconds=EVERY_S),
                    id=f"ticker-{uuid.uuid4().hex[:8]}",
                    task_queue=ticker_worker.task_queue,
                )
                for _ in range(TICKERS)
            ]

            async def first_ticks() -> bool:
                n = await pool.fetchval("SELECT count(DISTINCT workflow_id) FROM drill_ticks")
                return n == TICKERS

            await wait_for(first_ticks, timeout=30, what="a first tick of every ticker")
            await wait_for(lambda: _scanned(pool, h.account_id), what="the account's first scan")

            # --- the outage: timers are pending, some fall due while the server is down
            await own_server.stop()
            await asyncio.sleep(OUTAGE_S)
            restarted_at = datetime.now(UTC)
            await own_server.start()

            results = await asyncio.wait_for(
                asyncio.gather(*(t.result() for t in tickers)), timeout=60
            )
            assert results == [list(range(TICKS))] * TICKERS
            rows = await pool.fetch("SELECT workflow_id, tick, at FROM drill_ticks")
            assert sorted((r["workflow_id"], r["tick"]) for r in rows) == sorted(
                (t.id, i) for t in tickers for i in range(TICKS)
            )
            # Every ticker had timers pending across the outage (ticks before and after it).
            for t in tickers:
                at = [r["at"] for r in rows if r["workflow_id"] == t.id]
                assert min(at) < restarted_at < max(at)
            for t in tickers:
                history = await events(t)
                assert failed_workflow_tasks(history) == []
                fired = [
                    e.timer_fired_event_attributes.timer_id
                    for e in history
                    if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
                ]
                assert len(fired) == len(set(fired)) == TICKS, fired

            # The account workflow resumed: its timer is still pending (not fired early or
            # twice), it answers queries and reacts to a signal with a new scan.
            await account.signal(
                "ticket",
                SupportTicketSignal(ticket_id="T-1", opened_at=datetime.now(UTC), priority="high"),
            )
            await wait_for(lambda: _scanned(pool, h.account_id, 2), what="a rescore after restart")
            v = await view(account)
            assert v.signals_received == 1 and v.signals_rejected == 0
            history = await events(account)
            assert failed_workflow_tasks(history) == []
            assert not [e for e in history if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
            with contextlib.suppress(Exception):
                await account.terminate("drill done")


async def _scanned(pool: asyncpg.Pool, account_id: str, n: int = 1) -> bool:
    got = await pool.fetchval(
        "SELECT count(*) FROM health_snapshots WHERE account_id = $1", account_id
    )
    return got >= n
