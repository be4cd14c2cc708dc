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
from temporalio.exceptions import FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.delivery import (
        BusEvent,
        DeliveryFailure,
        DeliveryKind,
        DeliveryRequest,
        DeliveryResult,
        DeliverySection,
        delivery_key,
    )
    from domain.digest import Category, DigestItem, page_link
    from domain.narrative import (
        FactsModel,
        Narrative,
        NarrativeFacts,
        NarrativeRequest,
        narrative_delivery,
        render_template,
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


# No delivery, narrative, bus event or child start can fail or stall the
# workflow that asked for it: each building block classifies the failure (the
# activity raises a non-retryable error for a permanent refusal, and retries a
# transient one within a bounded budget), and `survived` turns what is left into
# a recorded failure the operator sees.


def failure_reason(err: BaseException) -> str:
    """The innermost message of a failure chain: the channel's own words and fix."""
    messages: list[str] = []
    cause: BaseException | None = err
    while cause is not None:
        text = str(getattr(cause, "message", "") or cause).strip()
        if text:
            messages.append(text)
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return (messages[-1] if messages else type(err).__name__)[:300]


async def survived(what: str, err: FailureError, failure: DeliveryFailure | None = None) -> str:
    """Record a failed step instead of failing the workflow; re-raise only a cancellation.

    The workflow instance gets an operator-visible note (``note_failure``: the
    account's timeline, view and current details; a child's current details);
    a failed delivery is also marked failed in ``deliveries`` and announced as
    ``delivery.failed`` on the bus.
    """
    if is_cancelled_exception(err):
        raise err
    reason = failure_reason(err)
    note = getattr(workflow.instance(), "note_failure", None)
    if note is not None:
        note(f"{what} failed: {reason}")
    if failure is not None:
        try:
            await workflow.execute_activity(
                act.fail_delivery,
                failure.model_copy(update={"reason": reason}),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DELIVERY_RETRY,
                summary=f"mark failed: {failure.kind} {failure.purpose}",
            )
        except FailureError as again:
            if is_cancelled_exception(again):
                raise
            if note is not None:
                note(f"recording that failure failed too: {failure_reason(again)}")
    return reason


def key(purpose: str, *parts: object) -> str:
    """Idempotency key of a delivery: this workflow's id + purpose (+ occurrence)."""
    return delivery_key(workflow.info().workflow_id, purpose, *parts)


async def narrative(ctx: PlaybookContext, facts: FactsModel) -> Narrative:
    """Words for a draft: the model when configured, else (or on failure) a template."""
    try:
        return await workflow.execute_activity(
            act.write_narrative,
            NarrativeRequest(facts=facts, max_attempts=NARRATIVE_ATTEMPTS),
            task_queue=ctx.llm_task_queue,
            start_to_close_timeout=timedelta(seconds=90),
            retry_policy=NARRATIVE_RETRY,
            summary=f"narrative: {facts.purpose}",
        )
    except FailureError as err:
        reason = await survived(f"narrative {facts.purpose}", err)
        out = render_template(facts, fallback=True, reason=f"the narrative step failed: {reason}")
        return Narrative.model_validate(out.model_dump())


async def deliver(ctx: PlaybookContext, req: DeliveryRequest) -> DeliveryResult:
    """One draft/page/message; the key makes a retry or a replay a no-op.

    A delivery that cannot be made (refused by the channel, or still failing
    after the bounded retries) comes back with status "failed" and the
    channel's reason in `note`: the caller carries on.
    """
    try:
        return await workflow.execute_activity(
            act.deliver,
            req,
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DELIVERY_RETRY,
            summary=f"{req.kind}: {req.purpose}" + (f" to {req.to}" if req.to else ""),
        )
    except FailureError as err:
        failure = DeliveryFailure(
            idempotency_key=req.idempotency_key,
            account_id=req.account_id,
            kind=req.kind,
            purpose=req.purpose,
            reason="",
            occurred_at=workflow.now(),
        )
        reason = await survived(f"{req.kind} {req.purpose}", err, failure)
        return DeliveryResult(
            idempotency_key=req.idempotency_key,
            account_id=req.account_id,
            kind=req.kind,
            status="failed",
            note=reason,
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
    extra_sections: list[DeliverySection] | None = None,
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
        extra_sections=extra_sections,
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
    try:
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
    except FailureError as err:
        await survived(f"event {event_type}", err)


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
    extra_sections: list[DeliverySection] | None = None,
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
        extra_sections=extra_sections,
    )
    if ctx.policy.digest == "off" or not workflow.patched(DIGEST):
        return "drafted", await deliver(ctx, email)
    page = await deliver(
        ctx,
        narrative_request(
            n,
            facts,
            kind="account_page",
            occurrence=occurrence,
            subject=subject,
            purpose=purpose,
            extra_sections=extra_sections,
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


async def draft_for_csm(
    ctx: PlaybookContext,
    facts: FactsModel,
    *,
    category: Category,
    occurrence: str,
    subject: str,
    urgent: bool = False,
) -> tuple[str, DeliveryResult]:
    """The words for ``facts``, then a draft to the account's CSM (or a page and a digest line)."""
    h = ctx.s.handoff
    n = await narrative(ctx, facts)
    return await draft_or_digest(
        ctx,
        n,
        facts,
        category=category,
        urgent=urgent,
        occurrence=occurrence,
        to=str(h.csm_email),
        to_name=h.csm_owner,
        subject=subject,
        headline=n.headline.removeprefix(f"{h.name}: "),
    )
