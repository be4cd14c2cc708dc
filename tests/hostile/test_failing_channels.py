"""Class 1: a delivery that cannot be made never fails or stalls the account workflow.

The real worker (worker.build_workers) with Gmail pointed at a fake that
answers 403 (a revoked gmail.compose scope) to every call: the stalled-gate
nudge of a new account cannot be drafted. The workflow must record the
failure (deliveries row failed with the fix, a `delivery.failed` event, a
note in the view and current details), keep running and keep scanning.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.digest import DraftPolicy
from domain.messages import SupportTicketSignal
from tests.fakes.google_api import GmailFake
from tests.hostile.support import assert_alive, channel_env, snapshots
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view
from workflows.digest import DIGEST_WORKFLOW_ID

pytestmark = pytest.mark.slow


@pytest.fixture
def gmail() -> Iterator[GmailFake]:
    fake = GmailFake().start()
    try:
        yield fake
    finally:
        fake.stop()


async def test_a_refused_nudge_draft_is_recorded_and_the_account_keeps_running(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    gmail: GmailFake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    h = make_handoff(f"refused-{uuid.uuid4().hex[:6]}", today)
    gmail.fail(403, times=100)  # every drafts.create: insufficient permission
    with channel_env(monkeypatch, GMAIL_TOKEN=gmail.token, GMAIL_BASE_URL=gmail.url):
        async with running_worker(env.client, db_dsn, settings) as pool:
            # immediate drafts (no digest): the nudge is the account workflow's own delivery
            immediate = dataclasses.replace(settings, policy=DraftPolicy(digest="off"))
            handle = env.client.get_workflow_handle(await start_account(env.client, h, immediate))
            # Discovery's 21-day SLA passes with no milestone: the CSM nudge is due.
            await env.sleep(timedelta(days=22))
            await assert_alive(handle)
            v = await view(handle)
            assert v.failures_total >= 1, v.timeline[-10:]
            assert any("email_draft nudge failed: Gmail: 403" in f for f in v.failures), v.failures
            assert any("gmail.compose" in f for f in v.failures)  # the fix, in the operator's view
            assert any(t.kind == "failed" for t in v.timeline)
            row = await pool.fetchrow(
                "SELECT status, error FROM deliveries WHERE account_id = $1 AND purpose = 'nudge'",
                h.account_id,
            )
            assert row["status"] == "failed" and "gmail.compose" in row["error"]
            event = await pool.fetchrow(
                "SELECT payload FROM events WHERE account_id = $1 AND event_type = 'delivery.failed'",
                h.account_id,
            )
            assert event is not None and "gmail.compose" in event["payload"]
            # The current details the Web UI shows (the built-in metadata query).
            meta = await handle.query("__temporal_workflow_metadata")
            assert "failed step(s), last: " in meta.current_details, meta.current_details
            assert "gmail.compose" in meta.current_details

            # Still scanning and still taking signals.
            before = await snapshots(pool, h.account_id)
            await handle.signal(
                "ticket",
                SupportTicketSignal(
                    ticket_id="T-after", opened_at=datetime.now(UTC), priority="urgent"
                ),
            )
            await env.sleep(timedelta(days=1))
            assert await snapshots(pool, h.account_id) > before
            assert await pool.fetchval(
                "SELECT count(*) FROM support_tickets WHERE account_id = $1 AND ticket_id = 'T-after'",
                h.account_id,
            )
            await assert_alive(handle)


async def test_a_refused_digest_never_ends_the_digest_loop(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    gmail: GmailFake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the daily digest on, the nudge goes into the CSM's digest; Gmail refuses every
    digest, and the digest workflow records the refusal and keeps its daily loop."""
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    h = make_handoff(f"digest-{uuid.uuid4().hex[:6]}", today)
    gmail.fail(403, times=1000)
    with channel_env(monkeypatch, GMAIL_TOKEN=gmail.token, GMAIL_BASE_URL=gmail.url):
        async with running_worker(env.client, db_dsn, settings):
            handle = env.client.get_workflow_handle(await start_account(env.client, h, settings))
            for _ in range(6):  # past the 21-day nudge and a few digest hours after it
                await env.sleep(timedelta(days=5))
            await assert_alive(handle)
            digests = env.client.get_workflow_handle(DIGEST_WORKFLOW_ID)
            await assert_alive(digests)
            assert await digests.query("next_digest"), "the loop waits for its next digest"
            drafts = [r for r in gmail.requests if r.method == "POST" and "drafts" in r.path]
            assert len(drafts) >= 2, "digests were attempted on more than one day"
            await handle.terminate("test done")
            await digests.terminate("test done")
