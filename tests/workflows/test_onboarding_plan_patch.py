"""The onboarding plan behind `workflow.patched`: accounts approved before it replay unchanged.

A history is recorded with the `onboarding-plan` patch switched off (what the
worker before this change did: an approval, then scans, and no plan). Replayed
by today's code it passes, because the plan is only drafted where the history
has the patch marker; the same code without the guard breaks that replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import CsPlanUpdate
from tests.workflows.helpers import (
    deliveries,
    make_handoff,
    replayer,
    running_worker,
    settings_for_test,
)
from workflows.activation import ONBOARDING_PLAN_PATCH

pytestmark = pytest.mark.slow


def _patched(plan: bool, original: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda patch_id: plan if patch_id == ONBOARDING_PLAN_PATCH else original(patch_id)


async def test_an_approval_recorded_before_the_onboarding_plan_replays_without_one(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    h = make_handoff(
        f"oldplan-{uuid.uuid4().hex[:4]}",
        now.date(),
        seats=10,
        milestones=["questionnaire_answered", "maturity_assessed"],
    )
    original = workflow.patched
    monkeypatch.setattr(workflow, "patched", _patched(False, original))  # the old worker
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        await handle.execute_update(
            "approve_cs_plan", CsPlanUpdate(approved_by="VP Ops", objectives=["Cut reporting time"])
        )
        await env.sleep(timedelta(days=2))
        history = await handle.fetch_history()
        purposes = {r["purpose"] for r in await deliveries(pool, h.account_id)}
        await handle.terminate("recorded")
    assert "cs_plan_draft" in purposes and "onboarding_plan" not in purposes
    assert "onboarding_audience" not in history.to_json()

    monkeypatch.setattr(workflow, "patched", original)  # today's code
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure

    monkeypatch.setattr(workflow, "patched", _patched(True, original))  # no guard
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert (
        "nondetermin" in f"{type(result.replay_failure).__name__} {result.replay_failure}".lower()
    )
