"""Replay recorded histories of real runs: a non-deterministic change to a workflow fails here.

Histories live in tests/histories/. To record them again after an intended,
patched change: `VIM_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_replay.py`.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import (
    ChurnNoticeSignal,
    MilestoneSignal,
    NpsSignal,
    UsageEvent,
    UsageEventsSignal,
)
from tests.workflows.helpers import (
    make_handoff,
    replayer,
    running_worker,
    settings_for_test,
    skip,
)

HISTORIES = Path(__file__).parent.parent / "histories"


def _recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.skipif(not _recorded(), reason="no recorded histories")
async def test_recorded_histories_replay_deterministically() -> None:
    for path in _recorded():
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        await replayer().replay_workflow(history)  # raises on non-determinism


@pytest.mark.skipif(os.environ.get("VIM_RECORD_HISTORIES") != "1", reason="recording is on demand")
async def test_record_histories(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    HISTORIES.mkdir(exist_ok=True)
    async with running_worker(env.client, db_dsn, settings):
        # A lifecycle run: signals (one malformed), a milestone, daily scans.
        h = make_handoff(f"replay-{uuid.uuid4().hex[:4]}", today, days_to_end=200)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        now = await env.get_current_time()
        await handle.signal("milestone", MilestoneSignal(milestone="questionnaire_answered"))
        await handle.signal(
            "usage",
            UsageEventsSignal(
                batch_id="b1",
                events=[UsageEvent(user_id="u1", occurred_at=now, event_type="reports.create")],
            ),
        )
        await handle.signal(
            "nps", NpsSignal(response_id="n1", responded_at=now, score=4, comment="slow")
        )
        await handle.signal("nps", {"response_id": "n2", "score": 99})  # rejected, recorded
        await skip(env, timedelta(days=25))
        hist = await handle.fetch_history()
        (HISTORIES / "account_lifecycle_latest_run.json").write_text(hist.to_json())
        await handle.terminate("recorded")

        # The churn path to completion, with its save playbook.
        h2 = make_handoff(f"replay-churn-{uuid.uuid4().hex[:4]}", today, days_to_end=15)
        await start_account(env.client, h2, settings)
        handle2 = env.client.get_workflow_handle(h2.workflow_id)
        await env.sleep(timedelta(hours=1))
        await handle2.signal("churn_notice", ChurnNoticeSignal(reason="consolidating vendors"))
        await skip(env, timedelta(days=50))
        await handle2.result()
        (HISTORIES / "account_churned.json").write_text((await handle2.fetch_history()).to_json())
        qbr_id = f"qbr-{h2.account_id}-renewal-{h2.contract.end_date}"
        qbr = await env.client.get_workflow_handle(qbr_id).fetch_history()
        (HISTORIES / "qbr_pre_renewal.json").write_text(qbr.to_json())
