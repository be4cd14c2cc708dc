"""Workflows the drills run next to the product's (kept apart from test modules for the sandbox).

- ``TickerWorkflow``: a short timer in a loop, each firing recorded by an
  activity: a timer that fired twice or never shows in Postgres and in history.
- ``NarrativeDrillWorkflow``: the product's narrative + delivery path
  (``workflows.drafting``) on its own, with the real retry policy.
- ``ScanDrillWorkflow``: the product's ``scan_portfolio`` activity with a
  retry policy that outlasts a Postgres restart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.delivery import DeliveryResult
    from domain.narrative import AnyFacts, Narrative
    from workflows import drafting
    from workflows.context import PlaybookContext

TICK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=1.5)


class TickerInput(BaseModel):
    ticks: int
    every_seconds: float


@workflow.defn
class TickerWorkflow:
    @workflow.run
    async def run(self, inp: TickerInput) -> list[int]:
        fired: list[int] = []
        for i in range(inp.ticks):
            await workflow.sleep(timedelta(seconds=inp.every_seconds), summary=f"tick {i}")
            await workflow.execute_activity(
                "record_tick",
                args=[workflow.info().workflow_id, i],
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=TICK_RETRY,
            )
            fired.append(i)
        return fired


class NarrativeDrillInput(BaseModel):
    facts: AnyFacts
    llm_task_queue: str
    to: str


class NarrativeDrillResult(BaseModel):
    narrative: Narrative
    delivery: DeliveryResult


@workflow.defn
class NarrativeDrillWorkflow:
    """What a playbook does: words from the narrative activity, then an email draft."""

    @workflow.run
    async def run(self, inp: NarrativeDrillInput) -> NarrativeDrillResult:
        ctx = PlaybookContext(
            account_id=inp.facts.account_id,
            llm_task_queue=inp.llm_task_queue,
            task_queue=workflow.info().task_queue,
        )
        n = await drafting.narrative(ctx, inp.facts)
        d = await drafting.deliver_narrative(
            ctx, n, inp.facts, kind="email_draft", occurrence="drill", to=inp.to, subject="drill"
        )
        return NarrativeDrillResult(narrative=n, delivery=d)


class ScanDrillInput(BaseModel):
    as_of: datetime
    batch_size: int
    task_queue: str


@workflow.defn
class ScanDrillWorkflow:
    """The portfolio scan as a scheduled job would run it: retried until Postgres is back."""

    @workflow.run
    async def run(self, inp: ScanDrillInput) -> dict:
        return await workflow.execute_activity(
            "scan_portfolio",
            {"as_of": inp.as_of.isoformat(), "batch_size": inp.batch_size},
            result_type=dict,
            task_queue=inp.task_queue,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=500),
                backoff_coefficient=2,
                maximum_interval=timedelta(seconds=4),
            ),
        )
