"""A worker that keeps no workflow in memory (VIM_MAX_CACHED_WORKFLOWS=0) still runs accounts.

The worker caches at most `max_cached_workflows` instances; past that an account is
rebuilt from its history at its next task. With a cache of 0 every task is a replay, so
any non-determinism in the account workflow (or its patches) would fail a workflow task
and stall the account. The account must score, take a ticket and rescore as usual.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import SupportTicketSignal
from stack.settings import load_settings
from tests.drills.support import failed_workflow_tasks
from tests.workflows.helpers import insert_usage, make_handoff, running_worker, skip, view

pytestmark = pytest.mark.slow


def test_the_cache_size_is_read_from_the_environment_and_refused_when_not_a_count() -> None:
    assert load_settings({}).max_cached_workflows == 250
    assert load_settings({"VIM_MAX_CACHED_WORKFLOWS": "0"}).max_cached_workflows == 0
    for bad in ("-1", "lots", "1.5"):
        with pytest.raises(ValueError, match="VIM_MAX_CACHED_WORKFLOWS"):
            load_settings({"VIM_MAX_CACHED_WORKFLOWS": bad})


async def test_an_account_rebuilt_from_history_at_every_task_scores_and_takes_signals(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    q = uuid.uuid4().hex[:8]
    settings = load_settings(
        {
            "VIM_DATA_DIR": str(tmp_path),
            "VIM_TASK_QUEUE": f"accounts-{q}",
            "VIM_SALES_TASK_QUEUE": f"sales-{q}",
            "VIM_LLM_TASK_QUEUE": f"llm-{q}",
            "VIM_MAX_CACHED_WORKFLOWS": "0",
        }
    )
    now = await env.get_current_time()
    account = f"nocache-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, now.date(), seats=10)
    async with running_worker(env.client, db_dsn, settings) as pool:
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "core.search", 1)
            for u in range(6)
            for d in range(1, 30)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await skip(env, timedelta(days=3))
        first = await view(handle)
        assert first.band is not None and first.score is not None, first.timeline

        await handle.signal(
            "ticket",
            SupportTicketSignal(
                ticket_id="T-1", opened_at=now + timedelta(days=3), priority="urgent"
            ),
        )
        await skip(env, timedelta(days=2))
        later = await view(handle)
        assert later.signals_received >= 1 and later.signals_rejected == 0
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM support_tickets WHERE account_id = $1", account
            )
            == 1
        )
        scans = await pool.fetchval(
            "SELECT count(*) FROM health_snapshots WHERE account_id = $1", account
        )
        assert scans >= 4  # the handoff's, then one a day, all from replayed instances
        history = list((await handle.fetch_history()).events)
        assert failed_workflow_tasks(history) == []
