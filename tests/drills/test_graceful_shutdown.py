"""Drill: SIGTERM while an activity is in flight lets it finish (VIM_SHUTDOWN_GRACE_SECONDS).

The worker runs as a real subprocess. A trigger in the test's database holds
the first health scan while it saves its snapshot; the drill sends SIGTERM
there, then releases the scan. The scan completes on its first attempt (its
snapshot is saved once, nothing is retried) and the worker exits cleanly
once it is done, well before the grace period ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from tests.drills.support import (
    SNAPSHOT_GATE,
    DbGate,
    WorkerProcess,
    activity_attempts,
    connected,
    events,
    pending_activity,
    wait_for,
)
from tests.workflows.helpers import make_handoff, settings_for_test

pytestmark = [pytest.mark.devserver, pytest.mark.slow]


async def test_sigterm_lets_an_in_flight_health_scan_finish(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path / "data")
    worker = WorkerProcess(
        WorkerProcess.environment_for(
            client, db_dsn, settings, VIM_SHUTDOWN_GRACE_SECONDS="60", VIM_METRICS_ADDRESS=""
        ),
        tmp_path / "worker.log",
    )
    h = make_handoff(f"term-{uuid.uuid4().hex[:6]}", datetime.now(UTC).date())
    handle: WorkflowHandle | None = None
    async with connected(db_dsn) as conn:
        gate = DbGate(conn)
        await gate.install()
        await gate.close(SNAPSHOT_GATE)
        try:
            await worker.start()
            await start_account(client, h, settings)
            handle = client.get_workflow_handle(h.workflow_id)

            async def scan_in_flight() -> bool:
                return bool(await gate.waiting(SNAPSHOT_GATE)) and (
                    await pending_activity(handle, "score_account") is not None
                )

            await wait_for(scan_in_flight, timeout=60, what="health scan held at the gate")
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGTERM)
            await wait_for(
                lambda: asyncio.sleep(0, "stopped polling" in worker.log()),
                timeout=20,
                what="worker acknowledged SIGTERM",
            )
            assert worker.proc.poll() is None, "the worker quit with an activity in flight"
            await gate.open(SNAPSHOT_GATE)

            async def exited() -> bool:
                return worker.proc is not None and worker.proc.poll() is not None

            await wait_for(exited, timeout=45, what="worker exit after the scan finished")
            assert worker.proc.returncode == 0, worker.log()
            saved = await conn.fetchval(
                "SELECT count(*) FROM health_snapshots WHERE account_id = $1", h.account_id
            )
            assert saved == 1
            # Completed by the attempt that was running at SIGTERM: not cancelled, not retried.
            assert activity_attempts(await events(handle), "score_account") == [1]
        finally:
            await gate.open(SNAPSHOT_GATE)
            if handle is not None:
                with contextlib.suppress(RPCError):
                    await handle.terminate("drill done")
            worker.stop()
