"""Drill: kill -9 the worker in the middle of a health scan and of a delivery, then restart it.

The worker runs as a real subprocess (`python worker.py`) against the dev
server. A trigger in the test's database holds each activity at its most
dangerous point: the health scan while it saves its snapshot, the delivery
after its outbox file is written but before it is recorded as delivered. The
drill kills the worker there, ends the orphaned database sessions (so the
half-done statement never commits), restarts the worker and checks that the
workflow carried on with nothing lost and nothing done twice.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_args
from domain.digest import DraftPolicy
from domain.state import AccountWorkflowInput
from tests.drills.support import (
    DELIVERED_GATE,
    SNAPSHOT_GATE,
    DbGate,
    WorkerProcess,
    activity_attempts,
    connected,
    events,
    failed_workflow_tasks,
    pending_activity,
    wait_for,
)
from tests.workflows.helpers import bare_account_config, make_handoff, settings_for_test, view
from workflows.activity_models import ScoreAccountRequest

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

# Start-to-close of the drill workflow's DB and delivery activities: a killed
# attempt is retried after this many seconds (production: 120).
ACTIVITY_TIMEOUT_S = 5
# Milestones that put the account in phase 8, where risk runs the prevention playbook.
ALL_BUT_QBR = [
    "questionnaire_answered",
    "maturity_assessed",
    "kickoff_held",
    "stakeholders_mapped",
    "cs_plan_approved",
    "onboarding_complete",
    "first_value",
]


async def _crash_inside(
    client: Client,
    worker: WorkerProcess,
    gate: DbGate,
    gate_no: int,
    handle: WorkflowHandle,
    activity: str,
) -> None:
    """Wait until `activity` is started and blocked at the gate, then kill -9 the worker there."""

    async def in_flight() -> bool:
        return bool(await gate.waiting(gate_no)) and (
            await pending_activity(handle, activity) is not None
        )

    await wait_for(in_flight, timeout=60, what=f"{activity} in flight at the gate")
    worker.kill9()
    await gate.terminate(await gate.waiting(gate_no))
    await gate.open(gate_no)
    # The next workflow task would wait 10 s on the dead worker's sticky queue before the
    # server moves it to the shared queue; skip that wait (it changes when, not what, runs).
    await client.workflow_service.reset_sticky_task_queue(
        ResetStickyTaskQueueRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )


async def test_kill_9_mid_scan_and_mid_delivery_loses_nothing_and_does_nothing_twice(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path / "data")
    worker = WorkerProcess(
        WorkerProcess.environment_for(
            client, db_dsn, settings, VIM_HEALTH_CONFIG=bare_account_config(tmp_path)
        ),
        tmp_path / "worker.log",
    )
    account = f"kill-{uuid.uuid4().hex[:6]}"
    # Renewal in 20 days with no telemetry, scored although bare (bare_account_config): RED
    # near renewal, CRITICAL churn risk at the first scan, so the churn alert (three drafts
    # and an event) follows it at once.
    h = make_handoff(account, datetime.now(UTC).date(), days_to_end=20, milestones=ALL_BUT_QBR)
    handle: WorkflowHandle | None = None
    async with connected(db_dsn) as conn:
        gate = DbGate(conn)
        await gate.install()
        await gate.close(SNAPSHOT_GATE)
        await gate.close(DELIVERED_GATE)
        try:
            await worker.start()
            handle = await client.start_workflow(
                "AccountLifecycleWorkflow",
                AccountWorkflowInput(
                    handoff=h,
                    sales_task_queue=settings.sales_task_queue,
                    llm_task_queue=settings.llm_task_queue,
                    activity_timeout_seconds=ACTIVITY_TIMEOUT_S,
                    # Every draft at once (no digest): the drill counts each immediate draft.
                    policy=DraftPolicy(digest="off"),
                ),
                **start_args(h, settings),
            )
            await _crash_inside(client, worker, gate, SNAPSHOT_GATE, handle, "score_account")
            await worker.start()
            await _crash_inside(client, worker, gate, DELIVERED_GATE, handle, "deliver")
            await worker.start()

            # The first scan also fires the latest past renewal window and the pre-renewal
            # QBR (a child workflow with its own page and cover note): wait for all of it.
            qbr = client.get_workflow_handle(f"qbr-{account}-renewal-{h.contract.end_date}")
            await wait_for(lambda: _delivered(conn, account, 7), timeout=90, what="all drafts")
            await qbr.result()
            await _assert_nothing_lost_nothing_twice(conn, handle, account, settings.outbox_dir)
            # Still running and answering; the pre-renewal QBR opened the Value Proof gate.
            assert (await view(handle)).phase == "10 Relationship Capital"
        finally:
            if handle is not None:
                for wf_id in (handle.id, f"qbr-{account}-renewal-{h.contract.end_date}"):
                    with contextlib.suppress(RPCError):
                        await client.get_workflow_handle(wf_id).terminate("drill done")
            worker.stop()


async def _delivered(conn: asyncpg.Connection, account: str, n: int) -> bool:
    got = await conn.fetchval(
        "SELECT count(*) FROM deliveries WHERE account_id = $1 AND status = 'delivered'", account
    )
    return got >= n


async def _assert_nothing_lost_nothing_twice(
    conn: asyncpg.Connection, handle: WorkflowHandle, account: str, outbox: Path
) -> None:
    history = await events(handle)
    assert failed_workflow_tasks(history) == []
    # Both killed activities were retried (attempt 2) and completed once.
    assert activity_attempts(history, "score_account")[0] >= 2
    assert activity_attempts(history, "deliver")[0] >= 2

    # Deliveries: every draft delivered once, exactly one outbox file each.
    rows = await conn.fetch(
        "SELECT idempotency_key, purpose, status, channel, external_id, attempts "
        "FROM deliveries WHERE account_id = $1 ORDER BY created_at",
        account,
    )
    assert Counter(r["purpose"] for r in rows) == {
        "churn_alert": 3,  # Notion health update, email to the rep, chat alert
        "renewal_brief": 1,  # the T-30 checkpoint's forecast brief (replaces the window note)
        "crm_hygiene": 1,  # no champion, no sponsor on record (the kickoff is held)
        "qbr": 1,
        "qbr_cover_note": 1,
    }, rows
    assert {(r["status"], r["channel"]) for r in rows} == {("delivered", "outbox")}
    assert rows[0]["attempts"] >= 2  # the health update: written, killed, written again
    files = sorted(p for p in outbox.rglob("*") if p.is_file())
    assert files == sorted(Path(r["external_id"]) for r in rows), files
    alerts = await conn.fetchval(
        "SELECT count(*) FROM events WHERE account_id = $1 AND event_type = 'churn.alert'", account
    )
    assert alerts == 1
    # Every narrative was written once (the churn alert's completed before the second crash).
    narratives = await conn.fetch(
        "SELECT purpose, count(*) AS n FROM llm_usage WHERE account_id = $1 GROUP BY purpose",
        account,
    )
    assert {r["n"] for r in narratives} == {1} and "churn_risk" in {
        r["purpose"] for r in narratives
    }

    # Snapshots: exactly one per scan the workflow scheduled, none left over from the crash.
    scheduled = [
        ScoreAccountRequest.model_validate_json(
            e.activity_task_scheduled_event_attributes.input.payloads[0].data
        ).as_of
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "score_account"
    ]
    snaps = await conn.fetch(
        "SELECT as_of FROM health_snapshots WHERE account_id = $1 ORDER BY as_of", account
    )
    assert [r["as_of"] for r in snaps] == sorted(scheduled)
