"""Building blocks every workflow drafts with: words, deliveries, events, idempotency keys.

Orchestration only: the words come from the narrative activity (Claude, or a
template without a key); deliveries are drafts through the idempotent
``deliver`` activity, keyed on the workflow and the purpose so a retry or a
replay never makes a second draft. Activities are called by reference
(``workflows/activity_defs.py``), with the caller's ``PlaybookContext``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.delivery import (
        BusEvent,
        DeliveryKind,
        DeliveryRequest,
        DeliveryResult,
        delivery_key,
    )
    from domain.digest import Category, DigestItem, page_link
    from domain.narrative import (
        FactsModel,
        Narrative,
        NarrativeFacts,
        NarrativeRequest,
        narrative_delivery,
    )
    from workflows import activity_defs as act
    from workflows.context import PlaybookContext

DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5), maximum_attempts=8
)
# workflow.patched id: mail paced by a digest (workflows started before it draft everything).
DIGEST = "digest-instead-of-drafts"
NARRATIVE_ATTEMPTS = 3
NARRATIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=NARRATIVE_ATTEMPTS,
)


def key(purpose: str, *parts: object) -> str:
    """Idempotency key of a delivery: this workflow's id + purpose (+ occurrence)."""
    return delivery_key(workflow.info().workflow_id, purpose, *parts)


async def narrative(ctx: PlaybookContext, facts: FactsModel) -> Narrative:
    """Words for a draft: the model when configured, else (or on failure) a template."""
    return await workflow.execute_activity(
        act.write_narrative,
        NarrativeRequest(facts=facts, max_attempts=NARRATIVE_ATTEMPTS),
        task_queue=ctx.llm_task_queue,
        start_to_close_timeout=timedelta(seconds=90),
        retry_policy=NARRATIVE_RETRY,
        summary=f"narrative: {facts.purpose}",
    )


async def deliver(ctx: PlaybookContext, req: DeliveryRequest) -> DeliveryResult:
    """One draft/page/message; the key makes a retry or a replay a no-op."""
    return await workflow.execute_activity(
        act.deliver,
        req,
        start_to_close_timeout=ctx.activity_timeout,
        retry_policy=DELIVERY_RETRY,
        summary=f"{req.kind}: {req.purpose}" + (f" to {req.to}" if req.to else ""),
    )


def narrative_request(
    n: Narrative,
    facts: NarrativeFacts,
    *,
    kind: DeliveryKind,
    occurrence: str,
    to: str | None = None,
    to_name: str | None = None,
    subject: str | None = None,
    purpose: str | None = None,
) -> DeliveryRequest:
    purpose = purpose or n.purpose
    req = narrative_delivery(
        n,
        idempotency_key=key(purpose, occurrence, kind),
        kind=kind,
        to=to,
        to_name=to_name,
        subject=subject,
        facts=facts,
    )
    return req if req.purpose == purpose else req.model_copy(update={"purpose": purpose})


async def deliver_narrative(
    ctx: PlaybookContext, n: Narrative, facts: NarrativeFacts, **request: Any
) -> DeliveryResult:
    """``deliver`` of ``narrative_request(n, facts, **request)`` (kind, occurrence, to, ...)."""
    return await deliver(ctx, narrative_request(n, facts, **request))


async def publish(
    ctx: PlaybookContext, event_type: str, payload: dict, occurrence: str | None = None
) -> None:
    """Every decision goes on the event bus (Postgres outbox + NOTIFY)."""
    now = workflow.now()
    await workflow.execute_activity(
        act.publish_event,
        BusEvent(
            event_key=key(event_type, occurrence or now.isoformat()),
            account_id=ctx.account_id,
            event_type=event_type,
            payload=payload,
            occurred_at=now,
        ),
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=DELIVERY_RETRY,
        summary=f"event bus: {event_type}",
    )


# ------------------------------------------------------------------- pacing


async def draft_or_digest(
    ctx: PlaybookContext,
    n: Narrative,
    facts: NarrativeFacts,
    *,
    category: Category,
    urgent: bool,
    occurrence: str,
    to: str,
    to_name: str | None,
    subject: str,
    headline: str,
    purpose: str | None = None,
) -> tuple[str, DeliveryResult]:
    """Draft the email at once, or file the detail as an account page and a digest line.

    Returns what happened ("drafted" or "in the digest") and the delivery (the
    email, or the page). With the digest off, or for a workflow that started
    before digests, every draft goes at once.
    """
    email = narrative_request(
        n,
        facts,
        kind="email_draft",
        occurrence=occurrence,
        to=to,
        to_name=to_name,
        subject=subject,
        purpose=purpose,
    )
    if ctx.policy.digest == "off" or not workflow.patched(DIGEST):
        return "drafted", await deliver(ctx, email)
    page = await deliver(
        ctx,
        narrative_request(
            n, facts, kind="account_page", occurrence=occurrence, subject=subject, purpose=purpose
        ),
    )
    now = await workflow.execute_activity(
        act.add_digest_item,
        DigestItem(
            item_key=email.idempotency_key,
            recipient=to,
            recipient_name=to_name,
            account_id=ctx.account_id,
            account_name=facts.account_name,
            category=category,
            headline=headline,
            link=page_link(page.target),
            as_of=workflow.now(),
            urgent=urgent,
            immediate_cap=ctx.policy.immediate_cap_per_day,
        ),
        start_to_close_timeout=ctx.activity_timeout,
        retry_policy=DELIVERY_RETRY,
        summary=f"digest line for {to}: {category}",
    )
    if now:
        return "drafted", await deliver(ctx, email)
    return "in the digest", page


async def note_for_digest(
    ctx: PlaybookContext,
    *,
    account_name: str,
    category: Category,
    occurrence: str,
    to: str,
    to_name: str | None,
    headline: str,
    link: str | None = None,
) -> None:
    """A digest line with no draft of its own (e.g. an expansion sent to Sales)."""
    if ctx.policy.digest == "off" or not workflow.patched(DIGEST):
        return
    await workflow.execute_activity(
        act.add_digest_item,
        DigestItem(
            item_key=key(f"digest_{category}", occurrence),
            recipient=to,
            recipient_name=to_name,
            account_id=ctx.account_id,
            account_name=account_name,
            category=category,
            headline=headline,
            link=link,
            as_of=workflow.now(),
        ),
        start_to_close_timeout=ctx.activity_timeout,
        retry_policy=DELIVERY_RETRY,
        summary=f"digest line for {to}: {category}",
    )
