"""Adopting a health config changes running account workflows at their next scan; rollback
restores it. The real worker reads the config in force from Postgres at every scan."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities import config_store
from cli.accounts import start_account
from domain.config import DEFAULT_CONFIG
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


async def _latest_version(pool: asyncpg.Pool, account: str) -> str:
    return await pool.fetchval(
        "SELECT config_version FROM health_snapshots WHERE account_id = $1 "
        "ORDER BY as_of DESC LIMIT 1",
        account,
    )


async def test_adopted_config_changes_bands_at_the_next_scan_and_rollback_restores_them(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"adopt-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR)
    # a lenient config: every score from 1 up is GREEN
    lenient = DEFAULT_CONFIG.with_overrides(
        {"version": "test-lenient", "bands": {"green_min": 1.0, "amber_min": 0.5}}
    )
    async with running_worker(env.client, db_dsn, settings) as pool:
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "core.search", 2)
            for u in range(6)
            for d in range(1, 61)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await skip(env, timedelta(days=1))
        before = await view(handle)
        assert before.band in ("RED", "AMBER") and before.score is not None
        assert before.score >= 1
        assert await _latest_version(pool, account) == DEFAULT_CONFIG.version

        async with pool.acquire() as conn:
            await config_store.store_and_adopt(conn, lenient, "ops lead", "test")
        await skip(env, timedelta(days=1))  # the next daily scan
        adopted = await view(handle)
        assert adopted.band == "GREEN"
        assert await _latest_version(pool, account) == "test-lenient"

        async with pool.acquire() as conn:
            assert await config_store.rollback(conn, "ops lead") is None  # the environment's
        await skip(env, timedelta(days=1))
        restored = await view(handle)
        assert restored.band == before.band
        assert await _latest_version(pool, account) == DEFAULT_CONFIG.version
        await handle.terminate("test done")
