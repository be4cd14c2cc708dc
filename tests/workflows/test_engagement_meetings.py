"""Meeting prep before a scheduled meeting, and a follow-up after it, on the time-skipping server."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.messages import InteractionSignal, MeetingScheduledSignal
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    deliveries,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


async def test_a_prep_brief_before_the_meeting_and_a_follow_up_with_its_action_items(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"meet-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR)
    meeting_at = now + timedelta(days=3, hours=12)
    async with running_worker(env.client, db_dsn, settings) as pool:
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "core.search", 1)
            for u in range(6)
            for d in range(1, 40)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await handle.signal(
            "meeting_scheduled",
            MeetingScheduledSignal(
                meeting_id="M-1",
                scheduled_for=meeting_at,
                title="Monthly check-in",
                attendees=["Ada Park"],
            ),
        )
        await skip(env, timedelta(days=1))
        assert not [r for r in await deliveries(pool, account) if r["purpose"] == "meeting_prep"]

        # The scan of day 3 (12 hours before the meeting) briefs it.
        await skip(env, timedelta(days=2, hours=3))
        assert await env.get_current_time() < meeting_at
        preps = [r for r in await deliveries(pool, account) if r["purpose"] == "meeting_prep"]
        timeline = "; ".join(f"{t.at:%m-%d %H:%M} {t.text}" for t in (await view(handle)).timeline)
        assert preps and all(":M-1:" in r["idempotency_key"] for r in preps), timeline
        assert {r["status"] for r in preps} == {"delivered"}

        await env.sleep(timedelta(hours=10))  # the meeting took place
        await handle.signal(
            "interaction",
            InteractionSignal(
                interaction_id="I-1",
                occurred_at=meeting_at + timedelta(hours=1),
                kind="meeting",
                notes="Good call.\nACTION: Dana to send the export guide\nTODO: book the QBR",
            ),
        )
        await env.sleep(timedelta(hours=2))
        v = await view(handle)
        assert any("follow-up of meeting I-1: 2 action item(s)" in t.text for t in v.timeline)
        # Once: the same meeting is never briefed twice, on later passes.
        await skip(env, timedelta(days=2))
        keys = {r["idempotency_key"] for r in await deliveries(pool, account)}
        assert len([k for k in keys if ":meeting_prep:M-1:" in k]) == len(preps)

        drafts = [
            d
            for d in await read_drafts(db_dsn, settings.outbox_dir)
            if d.purpose in ("meeting_prep", "meeting_followup") and d.account_id == account
        ]
        prep = next(d for d in drafts if d.purpose == "meeting_prep")
        assert (
            "Monthly check-in" in prep.text and "first brief for this account" in prep.text.lower()
        )
        # The open gate by its milestone's label, as the nudge says it (was "first_qbr_delivered").
        assert "close the gate of 8 Value Proof: First QBR delivered" in prep.text, prep.text
        follow = next(d for d in drafts if d.purpose == "meeting_followup")
        assert "Dana: send the export guide" in follow.text
        assert "no owner yet: book the QBR" in follow.text
        sources = await load_sources(db_dsn, [account])
        problems = audit(drafts, sources, now.date(), 10)
        assert not problems, [(p.check, p.detail) for p in problems]
        await handle.terminate("test done")
