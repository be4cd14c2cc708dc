"""Drill: the model endpoint answers 429, 500, malformed JSON, or hangs.

The product's narrative + delivery path (``workflows.playbooks``: the real
``write_narrative`` activity on an LLM task queue with the real retry policy,
then the idempotent ``deliver`` activity) runs against a fake Anthropic API
that fails every attempt in one way. Each narrative must fall back to the
template on its final attempt, well inside the activity's timeout, and the
email draft in the outbox must say "Generated without the model". A control
run that fails once and then answers shows the retries do reach the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db import create_pool
from activities.deliveries import DeliveryActivities
from activities.narrative import LlmConfig, NarrativeActivities
from domain.narrative import FALLBACK_NOTE, ChurnRiskFacts
from tests.drills.drill_workflows import (
    NarrativeDrillInput,
    NarrativeDrillResult,
    NarrativeDrillWorkflow,
)
from tests.drills.support import events, failed_workflow_tasks
from tests.fakes.anthropic_api import AnthropicFake
from tests.workflows.helpers import settings_for_test
from workflows.drafting import NARRATIVE_ATTEMPTS

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

CLIENT_TIMEOUT_S = 1.0  # VIM_LLM_TIMEOUT_S of the drill's narrative workers

FAILURES: dict[str, Callable[[AnthropicFake], None]] = {
    "rate_limited": lambda f: f.fail(429, headers={"Retry-After": "1"}, times=NARRATIVE_ATTEMPTS),
    "server_error": lambda f: f.fail(500, times=NARRATIVE_ATTEMPTS),
    "malformed_json": lambda f: f.answer('{"headline": "cut off', times=NARRATIVE_ATTEMPTS),
    "hangs": lambda f: [f.hang(CLIENT_TIMEOUT_S + 2) for _ in range(NARRATIVE_ATTEMPTS)],
    "recovers": lambda f: f.fail(500),  # control: one failure, then a valid answer
}


def _facts(account_id: str) -> ChurnRiskFacts:
    return ChurnRiskFacts(
        account_id=account_id,
        account_name="Acme Corp",
        csm_name="Riley Chen",
        rep_name="Jordan Park",
        score=38,
        band="RED",
        churn_level="HIGH",
        days_to_renewal=48,
        evidence=["active users fell from 41 to 18 in 30 days"],
    )


def _draft_text(path: Path) -> str:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(("plain",))
    assert body is not None
    return body.get_content()


async def test_model_failures_fall_back_to_the_template_within_the_timeout_and_say_so(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    fakes = {mode: AnthropicFake() for mode in FAILURES}
    pool = await create_pool(db_dsn, max_size=4)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(pool.close)
        for mode, fake in fakes.items():
            stack.enter_context(fake)
            FAILURES[mode](fake)
            narratives = NarrativeActivities(
                pool,
                LlmConfig(
                    api_key=fake.api_key,
                    base_url=fake.url,
                    model="claude-drill",
                    timeout_s=CLIENT_TIMEOUT_S,
                ),
            )
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=f"{settings.llm_task_queue}-{mode}",
                    activities=[narratives.write_narrative],
                )
            )
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=settings.task_queue,
                workflows=[NarrativeDrillWorkflow],
                activities=[DeliveryActivities(pool, settings).deliver],
            )
        )
        handles = {
            mode: await client.start_workflow(
                NarrativeDrillWorkflow.run,
                NarrativeDrillInput(
                    facts=_facts(f"{mode}-{uuid.uuid4().hex[:6]}"),
                    llm_task_queue=f"{settings.llm_task_queue}-{mode}",
                    to="jordan@example.com",
                ),
                id=f"narrative-drill-{mode}-{uuid.uuid4().hex[:6]}",
                task_queue=settings.task_queue,
                result_type=NarrativeDrillResult,
            )
            for mode in FAILURES
        }
        results = dict(
            zip(
                handles,
                await asyncio.wait_for(
                    asyncio.gather(*(h.result() for h in handles.values())), timeout=90
                ),
                strict=True,
            )
        )

        for mode, r in results.items():
            fake, n = fakes[mode], r.narrative
            history = await events(handles[mode])
            assert failed_workflow_tasks(history) == []
            scheduled = next(
                e.activity_task_scheduled_event_attributes
                for e in history
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and e.activity_task_scheduled_event_attributes.activity_type.name
                == "write_narrative"
            )
            # Every attempt ended on the client's timeout, never on the activity's.
            budget = scheduled.start_to_close_timeout.ToTimedelta()
            assert timedelta(seconds=LlmConfig.from_env({}).timeout_s) < budget
            assert not [
                e for e in history if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
            ]
            assert not fake.violations, fake.violations
            text = _draft_text(Path(r.delivery.external_id or ""))
            rows = await pool.fetch(
                "SELECT fallback, error FROM llm_usage WHERE account_id = $1 ORDER BY id",
                n.account_id,
            )
            if mode == "recovers":
                assert (n.generated_by, n.attempt, len(fake.requests)) == ("model", 2, 2)
                assert FALLBACK_NOTE not in text
                continue
            # One request per Temporal attempt (the SDK's own retries are off), then the template.
            assert len(fake.requests) == NARRATIVE_ATTEMPTS, mode
            assert (n.generated_by, n.fallback, n.attempt) == ("template", True, NARRATIVE_ATTEMPTS)
            assert n.note and n.note.startswith(FALLBACK_NOTE), n.note
            assert f"_{n.note}_" in text or n.note in text, text  # the draft says so
            assert r.delivery.status == "delivered" and r.delivery.channel == "outbox"
            assert [row["fallback"] for row in rows] == [False] * (NARRATIVE_ATTEMPTS - 1) + [True]
            assert all(row["error"] for row in rows), rows
