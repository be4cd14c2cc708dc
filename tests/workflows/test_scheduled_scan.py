"""The portfolio scan on a Schedule (issue 16): one set-based pass in chunks hands each
account workflow its summary, the account decides from it without its own score_account,
a ticket still gets an immediate single-account rescore, and the account scans itself
again when the schedule stops delivering. The `starter.py schedule` command creates the
Schedule idempotently on the dev server and a triggered run scans the portfolio."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import starter
from cli.accounts import start_account
from cli.schedule import SCHEDULE_ID
from ingest.store import write_usage
from stack.__main__ import schedule_portfolio_scan
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    make_handoff,
    running_worker,
    settings_for_test,
    six_active_users,
    view,
)
from workflows.account import SCHEDULE_GRACE
from workflows.portfolio import PortfolioScanInput, PortfolioScanResult, PortfolioScanWorkflow
from workflows.search_attributes import HEALTH_BAND


async def _events(handle: WorkflowHandle) -> list[tuple[datetime, str]]:
    """(time, what) of each score_account scheduled ("score_account") and each signal
    (its name), in history order."""
    out = []
    async for e in handle.fetch_history_events():
        at = e.event_time.ToDatetime(tzinfo=UTC)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if e.activity_task_scheduled_event_attributes.activity_type.name == "score_account":
                out.append((at, "score_account"))
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            out.append((at, e.workflow_execution_signaled_event_attributes.signal_name))
    return out


async def _score_account_calls(handle: WorkflowHandle) -> int:
    return sum(1 for _, what in await _events(handle) if what == "score_account")


async def _contract_only_account(pool: asyncpg.Pool, account: str, today: date) -> None:
    """An account with a contract in force and no workflow (scored, not signalled)."""
    await pool.execute("INSERT INTO accounts (account_id, name) VALUES ($1, $1)", account)
    await pool.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
                                  price_per_seat)
           VALUES ($1, $2, $3, 6000, 10, 600)""",
        account,
        today - timedelta(days=30),
        today + timedelta(days=300),
    )


@pytest.mark.slow
async def test_accounts_decide_from_the_scheduled_scan_and_rescore_after_a_ticket(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"sched-{uuid.uuid4().hex[:6]}"
    quiet = f"quiet-{uuid.uuid4().hex[:6]}"  # sorts after `account`: its own chunk
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR[:5])
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        await _contract_only_account(pool, quiet, now.date())
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        before = await view(handle)
        assert before.band == "UNSCORED"  # a contract alone: too little data
        assert await _score_account_calls(handle) == 1  # the scan at handoff

        # Six users active today (rows straight to Postgres, no signal): enough data for a
        # band, >= 5 users and >= 40% of 10 seats.
        rows = six_active_users(account, now)
        await write_usage(pool, rows, "test")

        as_of = await env.get_current_time()
        result: PortfolioScanResult = await env.client.execute_workflow(
            PortfolioScanWorkflow.run,
            PortfolioScanInput(as_of=as_of, chunk_size=1),
            id=f"scan-{uuid.uuid4().hex[:6]}",
            task_queue=settings.task_queue,
        )
        assert (result.accounts, result.chunks) == (2, 2)
        assert (result.signalled, result.not_running) == (1, 1)
        await env.sleep(timedelta(minutes=5))

        snap = await pool.fetchrow(
            "SELECT band, score FROM health_snapshots WHERE account_id = $1 AND as_of = $2",
            account,
            as_of,
        )
        assert snap is not None and snap["band"] in ("RED", "AMBER", "GREEN")
        assert await pool.fetchval(
            "SELECT count(*) FROM health_snapshots WHERE account_id = $1 AND as_of = $2",
            quiet,
            as_of,
        )
        after = await view(handle)
        # The account decided from the summary: band, score and milestones from the scan,
        # and no score_account of its own.
        assert (after.band, after.score) == (snap["band"], float(snap["score"]))
        assert {"onboarding_complete", "first_value"} <= set(after.milestones)
        assert any(
            e.kind == "decision" and f"UNSCORED -> {snap['band']}" in e.text for e in after.timeline
        )
        assert await _score_account_calls(handle) == 1
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(HEALTH_BAND) == snap["band"]

        # The account's own daily scan is not run while the schedule stands in: none
        # within the schedule's interval plus the grace period after the summary.
        await env.sleep(timedelta(hours=25))
        events = await _events(handle)
        summary_at = next(at for at, what in events if what == "portfolio_summary")
        stands_in = timedelta(days=1) + SCHEDULE_GRACE
        assert not [
            at
            for at, what in events
            if what == "score_account" and summary_at < at < summary_at + stands_in
        ]

        # A ticket matters: an immediate single-account rescore.
        await handle.signal(
            "ticket",
            {
                "ticket_id": "T-1",
                "opened_at": (await env.get_current_time()).isoformat(),
                "priority": "urgent",
                "sentiment": -0.8,
            },
        )
        await env.sleep(timedelta(minutes=5))
        events = await _events(handle)
        ticket_at = next(at for at, what in events if what == "ticket")
        assert [
            at
            for at, what in events
            if what == "score_account" and ticket_at <= at < ticket_at + timedelta(minutes=1)
        ]
        assert (await view(handle)).signals_rejected == 0

        # No summary since: past the interval plus the grace period, and a day after its
        # last scan, the account scans itself again.
        await env.sleep(timedelta(hours=30))
        events = await _events(handle)
        assert [
            at for at, what in events if what == "score_account" and at >= summary_at + stands_in
        ]

        # Another account's summary is refused with the reason, never applied here.
        band = (await view(handle)).band
        other = {"account_id": quiet, "as_of": (await env.get_current_time()).isoformat()}
        await handle.signal(
            "portfolio_summary",
            {
                "summary": {
                    **other,
                    "config_version": "v1",
                    "score": 99.0,
                    "band": "GREEN" if band != "GREEN" else "RED",
                    "coverage": 0.9,
                    "churn_level": "LOW",
                    "decision": {"outcome": "routine"},
                }
            },
        )
        await env.sleep(timedelta(minutes=5))
        last = await view(handle)
        assert last.band == band and last.signals_rejected == 1
        assert any(e.kind == "rejected" and quiet in e.text for e in last.timeline)


@pytest.mark.devserver
async def test_schedule_command_creates_once_describes_triggers_and_deletes(
    dev_client: Client, db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for_test(tmp_path)

    async def run(*argv: str) -> tuple[int, str]:
        code = await starter.main(["schedule", *argv], client=dev_client, settings=settings)
        return code, capsys.readouterr().out

    assert (
        await starter.main(
            ["schedule", "create", "--at", "25:00"], client=dev_client, settings=settings
        )
        == 2
    )
    assert "--at" in capsys.readouterr().err
    assert (await run("describe"))[0] == 3  # none yet
    try:
        code, out = await run("create", "--every-hours", "24", "--at", "02:30", "--chunk", "500")
        assert code == 0 and "created" in out
        assert "product-feedback not created: no product owner" in out
        code, out = await run("create", "--every-hours", "24", "--at", "02:30")
        assert code == 0 and "already exists" in out
        code, out = await run("describe")
        assert code == 0
        assert "every         1 day, 0:00:00 at offset 2:30:00" in out
        assert "PortfolioScanWorkflow" in out and settings.task_queue in out
        assert "02:30 UTC" in out  # the next run

        async with running_worker(dev_client, db_dsn, settings) as pool:
            today = (await pool.fetchval("SELECT now()")).date()
            for n in range(3):
                await _contract_only_account(pool, f"acct-{n}-{uuid.uuid4().hex[:4]}", today)
            code, out = await run("trigger")
            assert code == 0
            handle = dev_client.get_schedule_handle(SCHEDULE_ID)
            for _ in range(100):
                recent = (await handle.describe()).info.recent_actions
                if recent:
                    break
                await asyncio.sleep(0.1)
            wid = recent[0].action.workflow_id  # type: ignore[attr-defined]
            result = await dev_client.get_workflow_handle(
                wid, result_type=PortfolioScanResult
            ).result()
            assert result.accounts == 3 and result.not_running == 3
        code, out = await run("delete")
        assert code == 0 and "deleted" in out
        assert (await run("describe"))[0] == 3

        # The quarterly product feedback digest: created with a recipient, once.
        code, out = await run("create", "--feedback-to", "pm@example.com")
        assert code == 0 and "schedule product-feedback created" in out
        code, out = await run("create", "--feedback-to", "pm@example.com")
        assert code == 0 and "schedule product-feedback already exists" in out
        code, out = await run("describe", "--feedback")
        assert code == 0 and "first day of each quarter, 06:00 UTC" in out
        assert "QuarterlyFeedbackWorkflow" in out and "06:00 UTC" in out.split("next")[1]
        code, out = await run("delete", "--feedback")
        assert code == 0 and "product-feedback deleted" in out
        assert (await run("describe", "--feedback"))[0] == 3
        code, out = await run("delete")  # the scan's, created again above
        assert code == 0

        # `make demo`'s path: created once, then left alone.
        demo = dataclasses.replace(
            settings, temporal_address=dev_client.service_client.config.target_host
        )
        assert "created" in await schedule_portfolio_scan(demo)
        assert "already there" in await schedule_portfolio_scan(demo)
    finally:
        for schedule_id in (SCHEDULE_ID, "product-feedback"):
            try:
                await dev_client.get_schedule_handle(schedule_id).delete()
            except Exception:
                pass
