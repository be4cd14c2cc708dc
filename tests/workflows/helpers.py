"""Small helpers for workflow tests: a real worker (worker.build_workers) on
private task queues, against a fresh real database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.db import create_pool
from domain.handoff import Handoff
from domain.ingest import IngestEvent, build_event
from stack.settings import Settings, load_settings
from worker import build_workers
from workflows.account import AccountLifecycleWorkflow
from workflows.children import ChurnSaveWorkflow, ExpansionDispatchWorkflow, QBRWorkflow
from workflows.sandbox import workflow_runner

WORKFLOWS = [AccountLifecycleWorkflow, QBRWorkflow, ChurnSaveWorkflow, ExpansionDispatchWorkflow]

# Every milestone up to first value: the account's next gate is its first QBR.
ALL_BUT_QBR = [
    "questionnaire_answered",
    "maturity_assessed",
    "kickoff_held",
    "stakeholders_mapped",
    "cs_plan_approved",
    "onboarding_complete",
    "first_value",
]


def settings_for_test(tmp_path: Path) -> Settings:
    q = uuid.uuid4().hex[:8]
    return load_settings(
        {
            "VIM_DATA_DIR": str(tmp_path),
            "VIM_TASK_QUEUE": f"accounts-{q}",
            "VIM_SALES_TASK_QUEUE": f"sales-{q}",
            "VIM_LLM_TASK_QUEUE": f"llm-{q}",
        }
    )


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, dsn: str, settings: Settings
) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dsn, max_size=5)
    workers = build_workers(client, pool, settings)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers.workers:
            await stack.enter_async_context(w)
        yield pool
    await pool.close()


def bare_account_config(folder: Path) -> str:
    """A health config file for drills that hand off a bare account (a contract and no
    telemetry: 4% of the signal weight) and need its churn alert: with the shipped
    ``bands.min_coverage`` such an account is UNSCORED and fires nothing, so the drill's
    worker keeps it scored (RED near renewal, CRITICAL). Pass as VIM_HEALTH_CONFIG."""
    path = folder / "bare-account-health.json"
    path.write_text('{"version": "drill-bare-account", "bands": {"min_coverage": 0}}')
    return str(path)


def make_handoff(
    account_id: str,
    today: date,
    *,
    days_to_end: int = 365,
    seats: int = 20,
    milestones: list[str] | None = None,
    **extra: object,
) -> Handoff:
    return Handoff.model_validate(
        {
            "account_id": account_id,
            "name": f"{account_id.title()} Inc",
            "tier": "tier-2",
            "csm_owner": "Dana Reyes",
            "csm_email": "dana@example.com",
            "rep_owner": "Sam Okafor",
            "rep_email": "sam@example.com",
            "contract": {
                "start_date": (today - timedelta(days=30)).isoformat(),
                "end_date": (today + timedelta(days=days_to_end)).isoformat(),
                "arr": seats * 600,
                "seats_purchased": seats,
                "price_per_seat": 600,
                "licensed_modules": ["core", "reports"],
            },
            "milestones": milestones or [],
            **extra,
        }
    )


async def insert_usage(pool: asyncpg.Pool, account_id: str, rows: list[tuple[object, ...]]) -> None:
    """The account row and usage events (account_id, user_id, occurred_at, event_type, quantity)."""
    await pool.execute("INSERT INTO accounts (account_id, name) VALUES ($1, $1)", account_id)
    await pool.copy_records_to_table(
        "usage_events",
        records=rows,
        columns=["account_id", "user_id", "occurred_at", "event_type", "quantity"],
    )


def daily_usage(
    account: str, start: datetime, users: int, days: int, every: int = 1
) -> list[tuple[object, ...]]:
    """Every user, every ``every`` days from ``start``: a login, a search and an export."""
    return [
        (account, f"{account}-u{u}", start + timedelta(days=d, minutes=u), event, 1)
        for d in range(0, days, every)
        for u in range(users)
        for event in ("login", "core.search", "reports.export")
    ]


async def struggles(pool: asyncpg.Pool, account: str, now: datetime) -> None:
    """An invoice left unpaid, and an escalated ticket every 60 days (each closed in 2 days)."""
    await pool.execute(
        "INSERT INTO invoices (invoice_id, account_id, issued_on, due_on, amount)"
        " VALUES ('INV-1', $1, $2, $3, 12000)",
        account,
        (now - timedelta(days=60)).date(),
        (now - timedelta(days=30)).date(),
    )
    await pool.executemany(
        "INSERT INTO support_tickets (ticket_id, account_id, opened_at, closed_at, priority,"
        " sentiment, escalated, subject) VALUES ($1, $2, $3, $4, 'urgent', -0.8, true, $5)",
        [
            (f"T-{n}", account, at, at + timedelta(days=2), "Exports keep failing")
            for n in range(8)
            for at in [now + timedelta(days=60 * n - 50)]
        ],
    )


def six_active_users(account_id: str, now: datetime) -> list[IngestEvent]:
    """Logins by six users in the two hours before `now`: >= 5 users and >= 40% of 10
    seats (onboarding complete, first value), and enough usage for a band."""
    return [
        build_event(
            {
                "account_id": account_id,
                "user_id": f"u{u}",
                "occurred_at": now - timedelta(hours=2, minutes=d),
                "event_type": "login",
            }
        )
        for u in range(6)
        for d in range(3)
    ]


async def view(handle: WorkflowHandle):  # -> AccountView
    from domain.state import AccountView

    return await handle.query("view", result_type=AccountView)


async def deliveries(pool: asyncpg.Pool, account_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT idempotency_key, purpose, channel, status, target FROM deliveries WHERE account_id = $1 ORDER BY created_at",
        account_id,
    )


async def skip(
    env: WorkflowEnvironment, delta: timedelta, step: timedelta = timedelta(days=5)
) -> None:
    """Advance the time-skipping server's clock in steps (one long sleep RPC can time out)."""
    remaining = delta
    while remaining > timedelta(0):
        chunk = min(step, remaining)
        await env.sleep(chunk)
        remaining -= chunk


def replayer(data_converter: DataConverter = pydantic_data_converter) -> Replayer:
    """A replayer of every project workflow, set up the way the worker runs them."""
    return Replayer(
        workflows=WORKFLOWS, data_converter=data_converter, workflow_runner=workflow_runner()
    )
