"""A Postgres step that keeps failing costs the account a back-off, not its workflow.

Postgres refuses every health snapshot of one account (a trigger stands in for a broken
table or a long outage); the scan spends its retry budget, the account notes the failure
and keeps accepting signals; once Postgres takes writes again, the next pass after the
back-off scans and writes what waited.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import SupportTicketSignal
from tests.hostile.support import assert_alive, snapshots
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view
from workflows.account import DB_BACKOFF

pytestmark = pytest.mark.slow

BREAK = """
CREATE FUNCTION refuse_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.account_id = '{account}' THEN RAISE EXCEPTION 'injected outage'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_snapshot BEFORE INSERT ON health_snapshots
  FOR EACH ROW EXECUTE FUNCTION refuse_snapshot();
"""
MEND = "DROP TRIGGER refuse_snapshot ON health_snapshots; DROP FUNCTION refuse_snapshot();"


async def test_a_scan_that_keeps_failing_backs_off_and_the_account_keeps_running(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    h = make_handoff(f"outage-{uuid.uuid4().hex[:6]}", today)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(minutes=5))
        assert await snapshots(pool, h.account_id) == 1  # the scan at handoff

        async with pool.acquire() as conn:
            await conn.execute(BREAK.format(account=h.account_id))
        ticket = SupportTicketSignal.model_validate(
            {"ticket_id": "T-9", "opened_at": "2026-11-01T00:00:00Z", "subject": "urgent"}
        )
        await handle.signal("ticket", ticket)  # a rescore: the scan now fails every attempt
        await env.sleep(timedelta(hours=1))  # the retry budget (about 25 minutes) is spent

        v = await view(handle)
        assert any("the health scan failed" in f and "injected outage" in f for f in v.failures)
        await assert_alive(handle)
        assert await snapshots(pool, h.account_id) == 1
        # The ticket was written before the scan: it did not wait behind the failure.
        tickets = await pool.fetchval(
            "SELECT count(*) FROM support_tickets WHERE account_id = $1", h.account_id
        )
        assert tickets == 1

        async with pool.acquire() as conn:
            await conn.execute(MEND)
        await env.sleep(DB_BACKOFF + timedelta(minutes=5))
        assert await snapshots(pool, h.account_id) == 2  # scanned again after the back-off
        await assert_alive(handle)
        await handle.terminate("test done")
