"""Value Activation, orchestrated: the onboarding plan drafted once the CS plan is approved.

``approve_cs_plan`` calls ``on_plan_approved`` (state only); the scan that
follows at once calls ``after_scan``, which reads who works in which module
(``onboarding_audience``), lets ``domain/onboarding_plan.py`` decide the
plan (dated milestones, training per licensed module, workflow embedding of
the use cases telemetry does not show yet) and delivers it like the phase
1-3 drafts: an account page plus a line in the CSM's digest. Everything that
issues a command is behind the ``ONBOARDING_PLAN_PATCH`` marker, so histories
recorded before it (with an approval in them) replay unchanged.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import Phase
    from domain.onboarding_plan import AudienceRequest, plan_draft, plan_onboarding
    from domain.summary import AssessmentSummary
    from workflows import activity_defs as act
    from workflows.context import PlaybookContext
    from workflows.drafting import survived
    from workflows.engagement import DB_RETRY_POLICY
    from workflows.phases import _draft

# workflow.patched id of the onboarding plan (never reuse or rename it).
ONBOARDING_PLAN_PATCH = "onboarding-plan"
MAX_ATTEMPTS = 3  # scans that try to read the audience before the plan is given up (logged)


def on_plan_approved(ctx: PlaybookContext) -> None:
    """The CS plan was approved: the onboarding plan is due, once (a second approval adds none)."""
    a = ctx.s.activation
    if not a.plan_requested:
        a.plan_requested = True


def view_line(ctx: PlaybookContext) -> str | None:
    """What ``view`` and ``describe`` show of the onboarding plan."""
    a, tier = ctx.s.activation, ctx.s.handoff.tier
    if a.plan_drafted_on is None:
        return None
    return (
        f"drafted {a.plan_drafted_on}; first value targeted by {a.first_value_target_on} "
        f"({a.ttfv_target_days}-day {tier} target)"
    )


async def after_scan(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """Draft the onboarding plan when one is due; nothing otherwise (no marker either)."""
    s, a = ctx.s, ctx.s.activation
    if not a.plan_requested or a.plan_drafted_on is not None or a.plan_attempts >= MAX_ATTEMPTS:
        return
    if not workflow.patched(ONBOARDING_PLAN_PATCH):
        a.plan_attempts = MAX_ATTEMPTS  # approved before this existed: no plan, ever
        return
    if s.phase in (Phase.CHURN_HANDLING, Phase.CHURNED):
        a.plan_attempts = MAX_ATTEMPTS
        ctx.log("decision", f"onboarding plan not drafted: the account is in {s.phase.label}")
        return
    now = workflow.now()
    as_of = s.last_scan_at or now
    try:
        audience = await workflow.execute_activity(
            act.onboarding_audience,
            AudienceRequest(account_id=s.account_id, as_of=as_of),
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary="onboarding plan: who works in which module",
        )
    except FailureError as err:
        a.plan_attempts += 1
        await survived(f"onboarding plan (attempt {a.plan_attempts} of {MAX_ATTEMPTS})", err)
        return
    e, ob = s.engagement, s.onboarding
    handed_off_on = ob.handed_off_on or (e.handed_off_at or now).date()
    plan = plan_onboarding(
        tier=s.handoff.tier,
        licensed_modules=list(s.contract.licensed_modules),
        handed_off_on=handed_off_on,
        as_of=as_of.date(),
        milestones_reached=set(s.milestones),
        first_value_on=e.first_value_at.date() if e.first_value_at else None,
        criteria=list(ob.criteria_status),
        feature_users=dict(summary.feature_users or {}),
        audience=audience,
    )
    a.plan_drafted_on = as_of.date()
    a.ttfv_target_days = plan.ttfv_target_days
    a.first_value_target_on = plan.first_value_target_on
    ctx.log(
        "decision",
        f"onboarding plan: first value by {plan.first_value_target_on} "
        f"({plan.ttfv_target_days}-day {s.handoff.tier} target), {len(plan.training)} module(s) "
        f"to train, {len(plan.embedding)} use case(s) to embed",
    )
    await _draft(ctx, *plan_draft(s.handoff, as_of, plan))
