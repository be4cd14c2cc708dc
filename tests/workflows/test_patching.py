"""Changing running workflows safely: the `churn.risk_changed` event behind `workflow.patched`.

The change publishes an event when an account's churn risk level moves. A
history recorded before it (tests/histories/account_lifecycle_latest_run.json,
where churn risk goes LOW -> HIGH) has no activity at that point, so:
- with the guard, the old history replays (running accounts keep working);
- the same change without the guard breaks that replay (what a deploy would do
  to every running account: their workflow tasks would fail);
- a new run takes the new path and publishes the event.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import NpsSignal
from tests.workflows.helpers import make_handoff, replayer, running_worker, settings_for_test, skip
from workflows.account import CHURN_RISK_EVENT_PATCH

RECORDED_BEFORE = Path(__file__).parent.parent / "histories" / "account_lifecycle_latest_run.json"


async def _replay(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    return await replayer().replay_workflow(history, raise_on_replay_failure=False)


async def test_a_history_recorded_before_the_change_replays_with_the_guard() -> None:
    assert CHURN_RISK_EVENT_PATCH not in RECORDED_BEFORE.read_text()  # recorded before it
    result = await _replay(RECORDED_BEFORE)
    assert result.replay_failure is None


async def test_the_same_change_without_the_guard_breaks_running_accounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `patched` always True = the change deployed unguarded.
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)
    result = await _replay(RECORDED_BEFORE)
    assert result.replay_failure is not None
    assert (
        "nondetermin" in f"{type(result.replay_failure).__name__} {result.replay_failure}".lower()
    )


@pytest.mark.slow
async def test_a_new_run_publishes_churn_risk_changes(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    h = make_handoff(f"patch-{uuid.uuid4().hex[:4]}", today, days_to_end=200)
    async with running_worker(env.client, db_dsn, settings):
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        now = await env.get_current_time()
        await handle.signal("nps", NpsSignal(response_id="n1", responded_at=now, score=2))
        await skip(env, timedelta(days=3))
        history = await handle.fetch_history()
        await handle.terminate("test done")
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert markers and all(m.marker_name == "core_patch" for m in markers)
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE account_id = $1 AND event_type = 'churn.risk_changed'",
            h.account_id,
        )
    finally:
        await conn.close()
    assert len(rows) >= 1
