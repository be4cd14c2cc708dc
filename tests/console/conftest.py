"""A small demo portfolio in a fresh test database, scored three times like the daily scan
does, and the console app over it (httpx through the ASGI interface)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

from activities.db import create_pool
from activities.health import assess_portfolio
from activities.snapshots import save_assessments
from cli.accounts import start_account
from console.app import create_app
from console.data import Console
from demo.load import load_portfolio
from demo.portfolio import REFERENCE_ACCOUNT_ID, Portfolio, generate_portfolio
from domain.config import DEFAULT_CONFIG
from domain.handoff import Handoff
from domain.messages import PauseUpdate
from stack.settings import Settings, load_settings

AS_OF = date(2026, 11, 21)
SCAN_DAYS_BEFORE = (28, 14, 0)


def at_noon(d: date) -> datetime:
    return datetime.combine(d, time(12), tzinfo=UTC)


@functools.cache
def portfolio() -> Portfolio:
    return generate_portfolio(7, AS_OF, 60)


async def score_portfolio(conn: asyncpg.Connection, as_of: date) -> None:
    """What the daily portfolio scan writes: one explained snapshot per account per date."""
    for days in SCAN_DAYS_BEFORE:
        when = at_noon(as_of - timedelta(days=days))
        assessments = await assess_portfolio(conn, when, DEFAULT_CONFIG)
        await save_assessments(conn, list(assessments.values()))


@pytest_asyncio.fixture
async def demo_dsn(db: asyncpg.Connection, db_dsn: str) -> str:
    await load_portfolio(db, portfolio())
    await score_portfolio(db, AS_OF)
    return db_dsn


def console_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"VIM_DATA_DIR": str(tmp_path), **env})


@pytest_asyncio.fixture
async def pool(demo_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(demo_dsn, max_size=4)
    yield p
    await p.close()


@contextlib.asynccontextmanager
async def live_accounts(
    client: Client, settings: Settings, first: int = 0
) -> AsyncIterator[tuple[Handoff, Handoff]]:
    """Two account workflows of the demo portfolio, the ``first`` and the next in the list
    (the reference account, then the others by id): the first paused by ops, the second
    just past discovery, its CS plan waiting for a person. The dev server is shared by the
    session and rejects a workflow id twice, so each test picks its own ``first``; the
    workflows are terminated on exit."""
    handoffs = {h.account_id: h for h in portfolio().handoffs()}
    order = [REFERENCE_ACCOUNT_ID, *sorted(set(handoffs) - {REFERENCE_ACCOUNT_ID})]
    ref = handoffs[order[first]]
    planning = handoffs[order[first + 1]].model_copy(
        update={"milestones": ["questionnaire_answered", "maturity_assessed"]}
    )
    try:
        for h in (ref, planning):
            await start_account(client, h, settings)
        await client.get_workflow_handle(ref.workflow_id).execute_update(
            "set_paused", PauseUpdate(paused=True, by="ops", reason="M&A freeze")
        )
        yield ref, planning
    finally:
        for h in (ref, planning):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(h.workflow_id).terminate("test over")


def make_console(settings: Settings, pool: asyncpg.Pool, client: object = None) -> Console:
    return Console(settings=settings, pool=pool, client=client, clock=lambda: at_noon(AS_OF))  # type: ignore[arg-type]


def http(console: Console) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(console)), base_url="http://console.test"
    )
