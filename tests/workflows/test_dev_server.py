"""On the real dev server: continue-as-new under a burst of signals, and what operators see."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_args
from domain.messages import UsageEvent, UsageEventsSignal
from domain.state import AccountWorkflowInput
from tests.conftest import _binary
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

BURST = 40


async def _wait_for(predicate, timeout: float = 60.0, every: float = 0.3):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def test_continue_as_new_keeps_state_and_loses_no_signal_in_a_burst(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client: Client = dev_env.client
    settings = settings_for_test(tmp_path)
    today = datetime.now(UTC).date()
    account = f"can-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, today, milestones=["questionnaire_answered"])
    async with running_worker(client, db_dsn, settings) as pool:
        handle = await client.start_workflow(
            "AccountLifecycleWorkflow",
            # Continue as new every 2 loop passes, so the burst crosses several run boundaries.
            AccountWorkflowInput(
                handoff=h,
                max_passes_per_run=2,
                sales_task_queue=settings.sales_task_queue,
                llm_task_queue=settings.llm_task_queue,
            ),
            **start_args(h, settings),
        )
        now = datetime.now(UTC)
        for i in range(BURST):
            if i % 8 == 7:
                await asyncio.sleep(0.3)  # let runs roll over between waves
            await handle.signal(
                "usage",
                UsageEventsSignal(
                    batch_id=f"b{i}",
                    events=[
                        UsageEvent(
                            user_id=f"u{i % 7}",
                            occurred_at=now - timedelta(minutes=i),
                            event_type="reports.create",
                            quantity=2,
                        )
                    ],
                ),
            )

        async def all_written() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM usage_events WHERE account_id = $1", account
            )
            return n == BURST

        await _wait_for(all_written)
        v = await _wait_for(lambda: _settled(handle))
        assert v.runs > 1, "the burst should have crossed at least one continue-as-new"
        assert v.signals_received == BURST
        assert v.signals_rejected == 0
        assert "questionnaire_answered" in v.milestones and "handoff_complete" in v.milestones
        assert v.phase == "2 Discovery & Assessment"
        # Every batch exactly once, even though runs restarted mid-burst.
        assert (
            await pool.fetchval(
                "SELECT sum(quantity) FROM usage_events WHERE account_id = $1", account
            )
            == 2 * BURST
        )
        await handle.terminate("test done")


async def _settled(handle):
    try:
        v = await view(handle)
    except Exception:
        return None
    return v if v.signals_received == BURST else None


async def test_search_attributes_and_current_details_are_visible_to_operators(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    today = datetime.now(UTC).date()
    account = f"vis-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, today, days_to_end=45)
    async with running_worker(client, db_dsn, settings):
        handle = await client.start_workflow(
            "AccountLifecycleWorkflow",
            AccountWorkflowInput(
                handoff=h,
                sales_task_queue=settings.sales_task_queue,
                llm_task_queue=settings.llm_task_queue,
            ),
            **start_args(h, settings),
        )
        await _wait_for(lambda: _has_band(handle))
        # The first pass drafts what phase 2 owes after its scan; then the workflow sleeps.
        await _wait_for(lambda: _sleeping(handle))
        target = dev_env.client.service_client.config.target_host
        cli = [_binary("temporal"), "--address", target, "--namespace", client.namespace]
        described = json.loads(
            await _cli(*cli, "workflow", "describe", "--workflow-id", handle.id, "-o", "json")
        )
        text = json.dumps(described)
        for name in (
            "AccountPhase",
            "HealthBand",
            "HealthScore",
            "ChurnRisk",
            "RenewalDate",
            "ARR",
            "CsmOwner",
        ):
            assert name in text, f"{name} missing from `temporal workflow describe`"
        assert h.name in text  # static summary
        # Run the CLI without blocking the loop: the worker in this process answers the query.
        metadata = await _cli(*cli, "workflow", "metadata", "--workflow-id", handle.id)
        assert (
            "waiting for daily health scan" in metadata
        )  # set_current_details, as the UI shows it

        async def listed() -> bool:
            query = (
                "CsmOwner = 'Dana Reyes' AND AccountPhase = '2-discovery' "
                f"AND WorkflowId = '{handle.id}'"
            )
            out = await _cli(*cli, "workflow", "list", "--query", query, "-o", "json")
            return handle.id in out

        await _wait_for(listed)
        await handle.terminate("test done")


async def _cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _sleeping(handle) -> bool:
    meta = await handle.query("__temporal_workflow_metadata")
    return "waiting for" in (meta.current_details or "")


async def _has_band(handle) -> bool:
    desc = await handle.describe()
    return any(p.key.name == "HealthBand" for p in desc.typed_search_attributes)
