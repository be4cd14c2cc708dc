"""Drill: stop and restart Postgres in the middle of a portfolio scan.

A private embedded Postgres (its own data folder, not the session's) holds a
small demo portfolio. The portfolio scan (``scan_portfolio``, saving in
batches of 10) is held inside its second batch's transaction, after the first
batch committed; the drill then stops Postgres, hands off two accounts while
it is down, and starts it again. Activities fail, Temporal retries them with
backoff, and in the end every active account has exactly one snapshot at the
scan's ``as_of``, and each handed-off account exactly one row and one scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.telemetry import fetch_account_ids
from cli.accounts import start_account
from demo.load import load_portfolio
from demo.portfolio import generate_portfolio
from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded
from tests.conftest import _with_database
from tests.drills.drill_workflows import ScanDrillInput, ScanDrillWorkflow
from tests.drills.support import (
    SNAPSHOT_GATE,
    DbGate,
    activity_attempts,
    events,
    failed_attempts,
    failed_workflow_tasks,
    wait_for,
)
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

# Before the drill's handoffs start their contracts (today - 30 days): the scan's
# portfolio is the demo one only, whenever the handoffs get recorded.
AS_OF = datetime.combine(datetime.now(UTC).date() - timedelta(days=60), time(), UTC)
ACCOUNTS = 30
BATCH = 10
OUTAGE_S = 3.0


class OwnPostgres:
    """An embedded Postgres in a temp folder; stop/start keep its data and its socket path."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pgdata"

    async def start(self) -> str:
        return await asyncio.to_thread(start_embedded, self.pgdata)

    async def stop(self) -> None:
        await asyncio.to_thread(stop_embedded, self.pgdata)


@pytest_asyncio.fixture
async def own_pg(tmp_path: Path) -> AsyncIterator[tuple[OwnPostgres, str]]:
    pg = OwnPostgres(tmp_path / "pg")
    server = await pg.start()
    try:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute('CREATE DATABASE "drill"')
        finally:
            await conn.close()
        dsn = _with_database(server, "drill")
        await migrate_dsn(dsn)
        portfolio = await asyncio.to_thread(generate_portfolio, 7, AS_OF.date(), ACCOUNTS)
        conn = await asyncpg.connect(dsn)
        try:
            await load_portfolio(conn, portfolio)
        finally:
            await conn.close()
        yield pg, dsn
    finally:
        await pg.stop()


async def test_postgres_restart_mid_scan_misses_no_snapshot_and_writes_none_twice(
    dev_env: WorkflowEnvironment, own_pg: tuple[OwnPostgres, str], tmp_path: Path
) -> None:
    pg, dsn = own_pg
    client = dev_env.client
    settings = settings_for_test(tmp_path / "data")
    async with contextlib.AsyncExitStack() as stack:
        conn = await asyncpg.connect(dsn)
        active = sorted(await fetch_account_ids(conn, AS_OF))
        assert len(active) > 2 * BATCH
        gate = DbGate(conn)
        # Hold the scan on the first account of its second batch: batch 1 has committed.
        await gate.install(snapshot_account=active[BATCH])
        await gate.close(SNAPSHOT_GATE)

        await stack.enter_async_context(running_worker(client, dsn, settings))
        drill_queue = f"{settings.task_queue}-drill"
        await stack.enter_async_context(
            Worker(client, task_queue=drill_queue, workflows=[ScanDrillWorkflow])
        )
        scan = await client.start_workflow(
            ScanDrillWorkflow.run,
            ScanDrillInput(as_of=AS_OF, batch_size=BATCH, task_queue=settings.task_queue),
            id=f"scan-drill-{uuid.uuid4().hex[:8]}",
            task_queue=drill_queue,
        )
        await wait_for(lambda: gate.waiting(SNAPSHOT_GATE), what="the scan held in batch 2")
        assert await conn.fetchval("SELECT count(*) FROM health_snapshots") == BATCH

        # --- the outage: the scan's transaction dies with the server; handoffs arrive meanwhile
        await pg.stop()
        today = datetime.now(UTC).date()
        handoffs = [make_handoff(f"pgdown-{uuid.uuid4().hex[:6]}", today) for _ in range(2)]
        accounts: list[WorkflowHandle] = [
            client.get_workflow_handle(await start_account(client, h, settings)) for h in handoffs
        ]
        await asyncio.sleep(OUTAGE_S)
        for handle in accounts:  # each handoff has failed at least once against the dead server
            await wait_for(
                lambda handle=handle: failed_attempts(handle, "record_handoff"),
                timeout=30,
                what="record_handoff failing while Postgres is down",
            )
        assert _with_database(await pg.start(), "drill") == dsn  # same socket, same data
        conn = await asyncpg.connect(dsn)  # the gate's session died with the server
        stack.push_async_callback(conn.close)

        result = await asyncio.wait_for(scan.result(), timeout=60)
        assert result["accounts"] == len(active)
        snaps = await conn.fetch(
            "SELECT account_id, count(*) AS n FROM health_snapshots WHERE as_of = $1 "
            "GROUP BY account_id ORDER BY account_id",
            AS_OF,
        )
        assert [r["account_id"] for r in snaps] == active  # none missing
        assert {r["n"] for r in snaps} == {1}  # none twice
        history = await events(scan)
        assert failed_workflow_tasks(history) == []
        assert activity_attempts(history, "scan_portfolio")[0] >= 2  # it failed and was retried

        # The handoffs made while Postgres was down: recorded once and scanned once.
        for h, handle in zip(handoffs, accounts, strict=True):

            async def scanned(account_id: str = h.account_id) -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM health_snapshots WHERE account_id = $1", account_id
                    )
                )

            await wait_for(scanned, timeout=60, what=f"first scan of {h.account_id}")
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM accounts WHERE account_id = $1", h.account_id
                )
                == 1
            )
            history = await events(handle)
            assert failed_workflow_tasks(history) == []
            assert activity_attempts(history, "record_handoff")[0] >= 2
            assert len(activity_attempts(history, "score_account")) == 1
            await handle.terminate("drill done")
