"""CRM hygiene findings as drafts for the CSM (orchestration only; rules in
``domain/hygiene.py``, read by the ``account_hygiene`` activity).

From the kickoff on (before it, the kickoff brief carries the stakeholder map), on a
scanned pass after a ``stakeholder`` signal, and at least weekly, the account's findings
are read as known at the scan; the ones not open at the last check (a champion or sponsor
who left, a contact gone quiet, missing renewal data) go to the CSM as one draft with their
fixes (an account page plus a digest line). The same findings on later days draft nothing;
findings that disappear are noted in the timeline. Behind ``HYGIENE_PATCH``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from domain.hygiene import (
        HygieneFinding,
        HygieneRequest,
        finding_key,
        hygiene_change,
        hygiene_facts,
    )
    from domain.messages import StakeholderChangeSignal
    from workflows import activity_defs as act
    from workflows.context import PlaybookContext
    from workflows.drafting import draft_for_csm, publish, survived

# workflow.patched id: CRM hygiene drafts (never reuse or rename it).
HYGIENE_PATCH = "crm-hygiene-drafts"
CHECK_EVERY = timedelta(days=7)
DB_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


def on_signal(ctx: PlaybookContext, msg: object) -> None:
    """A stakeholder change re-evaluates the stakeholder map at the next scan (state only)."""
    if isinstance(msg, StakeholderChangeSignal):
        ctx.s.hygiene.stale = True


def view_lines(ctx: PlaybookContext) -> list[str]:
    return list(ctx.s.hygiene.lines)


async def run_due(ctx: PlaybookContext) -> None:
    """Called on scanned passes: check when due, draft what is new."""
    s, st = ctx.s, ctx.s.hygiene
    now = workflow.now()
    if "kickoff_held" not in s.milestones:
        return
    if not st.stale and st.checked_at is not None and now - st.checked_at < CHECK_EVERY:
        return
    if not workflow.patched(HYGIENE_PATCH):
        return
    as_of = s.last_scan_at or now
    try:
        found: list[HygieneFinding] = await workflow.execute_activity(
            act.account_hygiene,
            HygieneRequest(account_id=s.account_id, as_of=as_of),
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary="CRM hygiene: stakeholders, engagement, contract in force",
        )
    except FailureError as err:
        await survived("CRM hygiene check", err)
        return
    change = hygiene_change(st.open, found)
    st.checked_at, st.stale = now, False
    st.open = [finding_key(f) for f in found]
    st.lines = [f"[{f.check}] {f.detail} (fix: {f.fix})" for f in found]
    if change.resolved:
        ctx.log("decision", "CRM hygiene: no longer found: " + ", ".join(change.resolved))
    if not change.new:
        return
    ctx.log("decision", "CRM hygiene: new: " + "; ".join(f.detail for f in change.new))
    facts = hygiene_facts(s.handoff, as_of, change, len(found))
    occurrence = f"{now:%Y%m%d%H%M}"
    await draft_for_csm(
        ctx,
        facts,
        category="reminder",
        occurrence=occurrence,
        subject=f"CRM hygiene: {s.handoff.name} ({len(change.new)} new)",
    )
    await publish(
        ctx,
        "crm.hygiene",
        {
            "new": [finding_key(f) for f in change.new],
            "resolved": change.resolved,
            "open": len(found),
        },
        occurrence,
    )
