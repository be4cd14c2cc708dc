"""An account workflow rescored by bulk ingestion's `usage_arrived` signal, not the next
daily scan: rows written straight to Postgres, one small signal, milestones from telemetry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from ingest.notify import Coalescer
from ingest.store import write_usage
from tests.workflows.helpers import (
    make_handoff,
    running_worker,
    settings_for_test,
    six_active_users,
    view,
)

pytestmark = pytest.mark.slow


async def test_bulk_rows_and_one_signal_rescore_the_account_at_once(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"bulk-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, now.date(), seats=10)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        before = await view(handle)
        assert "onboarding_complete" not in before.milestones  # no usage yet

        # Six users active in the last day: >= 5 users and >= 40% of 10 seats.
        rows = six_active_users(account, now)
        coalescer = Coalescer(env.client, interval=3600)
        result = await write_usage(pool, rows, "test")
        coalescer.add(result.arrived)
        assert (await coalescer.flush()).signalled == 1
        # Well before the next daily scan (23 h away): the signal caused the rescore.
        await env.sleep(timedelta(minutes=5))
        after = await view(handle)
        assert {"onboarding_complete", "first_value"} <= set(after.milestones)
        assert after.signals_rejected == 0
