"""What the account workflow does once a rule has decided: plays, alerts, children.

Orchestration only. Rules live in `domain/`; the words come from the
narrative activity (Claude, or a template without a key); deliveries are
drafts through the idempotent `deliver` activity (`workflows/drafting.py`).
Every function takes the workflow's `PlaybookContext` (state, log,
timeouts, queues, draft policy): playbooks never import the workflow.

Mail is paced by the context's `DraftPolicy` (`domain/digest.py`): what
cannot wait (a CRITICAL churn risk, the save playbook) is drafted at once,
within the recipient's daily cap; everything else becomes an account page
plus a line in the owner's digest.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain import draft_facts
    from domain import lifecycle as lc
    from domain.delivery import DeliveryRequest
    from domain.summary import AssessmentSummary, FindingLine
    from workflows import renewal
    from workflows.child_models import ChurnSaveInput, ExpansionInput, QbrInput
    from workflows.children import ChurnSaveWorkflow, ExpansionDispatchWorkflow, QBRWorkflow
    from workflows.context import PlaybookContext
    from workflows.drafting import (
        DIGEST,
        deliver,
        draft_or_digest,
        key,
        narrative,
        narrative_request,
        note_for_digest,
        publish,
        survived,
    )

REALERT_AFTER = timedelta(days=30)
EXPANSION_COOLDOWN = timedelta(days=90)
DIRECTOR_OF_CS = "director-of-cs@example.com"
# workflow.patched ids: each guards a change to the commands a running workflow issues.
ONE_TALK_TRACK = "one-talk-track-per-account"
MUDA_RAMP = "no-muda-play-during-onboarding-ramp"


# ----------------------------------------------------------------- playbooks


async def run_risk_playbooks(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """Risk -> prevention playbook: churn alert, a Lean play per finding that fits the lifecycle."""
    s = ctx.s
    now = workflow.now()
    if summary.churn_level in ("HIGH", "CRITICAL"):
        alert = f"churn:{summary.churn_level}"
        if _due(s.alerts_sent.get(alert), now):
            s.alerts_sent[alert] = now.date().isoformat()
            await churn_alert(ctx, summary)
    ramping = lc.in_onboarding_ramp(
        s.phase, s.handoff.contract.start_date, now.date(), ctx.policy.onboarding_ramp_days
    )
    for f in summary.findings:
        if f.kind not in LEAN_PURPOSE or f.severity == "low":
            continue
        alert = f"lean:{f.kind}"
        if f.kind == "muda" and ramping and workflow.patched(MUDA_RAMP):
            if alert not in s.alerts_sent:
                ctx.log(
                    "decision",
                    f"muda play held: onboarding ramp ({s.phase.label}, contract started "
                    f"{s.handoff.contract.start_date}, ramp {ctx.policy.onboarding_ramp_days} days)",
                )
                s.alerts_sent[alert] = "ramp"
            continue
        last = s.alerts_sent.get(alert)
        if _due(None if last == "ramp" else last, now):
            s.alerts_sent[alert] = now.date().isoformat()
            await lean_play(ctx, summary, f)


def _due(last_sent: str | None, now: datetime) -> bool:
    return last_sent is None or now.date() - date.fromisoformat(last_sent) >= REALERT_AFTER


async def churn_alert(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """The account's Notion health update, and the rep's alert: at once when CRITICAL,
    else in the CSM's digest. The event bus gets it either way."""
    s = ctx.s
    facts = draft_facts.churn_risk_facts(s.handoff, summary)
    n = await narrative(ctx, facts)
    subject = f"[{summary.churn_level} churn risk] {s.handoff.name}: health {summary.score} {summary.band}"
    occurrence = f"{summary.churn_level}:{workflow.now():%Y-%m-%d}"
    rep = str(s.handoff.rep_email or s.handoff.csm_email)
    await deliver(ctx, narrative_request(n, facts, kind="health_update", occurrence=occurrence, subject=subject, purpose="churn_alert"))  # fmt: skip
    critical = summary.churn_level == "CRITICAL"
    line = n.headline.removeprefix(f"{s.handoff.name}: ")
    digest_on = ctx.policy.digest != "off" and workflow.patched(DIGEST)
    if digest_on and not critical:
        how, _ = await draft_or_digest(
            ctx,
            n,
            facts,
            category="risk",
            urgent=False,
            occurrence=occurrence,
            to=str(s.handoff.csm_email),
            to_name=s.handoff.csm_owner,
            subject=subject,
            headline=line,
            purpose="churn_alert",
        )
    else:
        how, _ = await draft_or_digest(
            ctx,
            n,
            facts,
            category="risk",
            urgent=True,
            occurrence=occurrence,
            to=rep,
            to_name=s.handoff.rep_owner,
            subject=subject,
            headline=line,
            purpose="churn_alert",
        )
        await deliver(ctx, narrative_request(n, facts, kind="chat_alert", occurrence=occurrence, subject=subject, purpose="churn_alert"))  # fmt: skip
    await publish(
        ctx,
        "churn.alert",
        {
            "level": summary.churn_level,
            "score": summary.score,
            "band": summary.band,
            "flags": summary.churn_flags,
        },
        occurrence,
    )
    ctx.log("delivery", f"churn alert ({summary.churn_level}): Notion update; email {how}")


LEAN_PURPOSE = {
    "muda": "muda_license_plan",
    "mura": "mura_adoption_plan",
    "muri": "muri_escalation_brief",
}


async def lean_play(ctx: PlaybookContext, summary: AssessmentSummary, finding: FindingLine) -> None:
    s = ctx.s
    facts = draft_facts.lean_facts(s.handoff, summary, finding)
    n = await narrative(ctx, facts)
    director = finding.kind == "muri"
    to = DIRECTOR_OF_CS if director else str(s.handoff.csm_email)
    dollars = f" (${finding.dollar_impact:,.0f}/yr)" if finding.dollar_impact else ""
    how, _ = await draft_or_digest(
        ctx,
        n,
        facts,
        category="play",
        urgent=False,
        occurrence=finding.finding_id,
        to=to,
        to_name=None if director else s.handoff.csm_owner,
        subject=f"{finding.play}: {s.handoff.name}{dollars}",
        headline=n.headline.removeprefix(f"{s.handoff.name}: "),
    )
    await publish(
        ctx,
        "finding.created",
        {
            "finding_id": finding.finding_id,
            "kind": finding.kind,
            "severity": finding.severity,
            "dollar_impact": finding.dollar_impact,
            "play": finding.play,
        },
        finding.finding_id,
    )
    ctx.log("delivery", f"{finding.kind} play for {to} {how}: {finding.title}")


# ------------------------------------------------------------------ children


async def dispatch_expansions(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """Opportunity -> ExpansionDispatchWorkflow on the Sales queue, once per opportunity per 90 days.

    Every opportunity due on one day goes to Sales in one dispatch, so the
    rep gets one talk track per account, not one per signal.
    """
    s = ctx.s
    today = workflow.now().date()
    due = []
    for o in summary.opportunities:
        last = s.dispatched.get(o.opportunity_id) or s.declined.get(o.opportunity_id)
        if last is not None and today - last < EXPANSION_COOLDOWN:
            continue
        due.append(o)
    if not due:
        return
    batches = [due] if workflow.patched(ONE_TALK_TRACK) else [[o] for o in due]
    for batch in batches:
        o = max(batch, key=lambda x: x.estimated_arr_impact)
        for x in batch:
            s.dispatched[x.opportunity_id] = today
        total = sum(x.estimated_arr_impact for x in batch)
        child_id = (
            f"expansion-{s.account_id}-{today:%Y%m%d}"
            if len(batches) == 1 and len(batch) > 1
            else f"expansion-{s.account_id}-{o.opportunity_type}-{o.key}-{today:%Y%m%d}"
        )
        inp = ExpansionInput(
            account_id=s.account_id,
            account_name=s.handoff.name,
            opportunity_id=o.opportunity_id,
            opportunity_type=o.opportunity_type,
            evidence=o.evidence,
            estimated_arr_impact=o.estimated_arr_impact,
            talk_track=o.talk_track,
            opportunities=list(batch),
            policy=ctx.policy,
            rep_owner=s.handoff.rep_owner,
            rep_email=str(s.handoff.rep_email or s.handoff.csm_email),
            llm_task_queue=ctx.llm_task_queue,
        )
        what = ", ".join(f"{x.opportunity_type}/{x.key}" for x in batch)
        labels = ", ".join(draft_facts.opportunity_label(x) for x in batch)
        await _start_child(
            ExpansionDispatchWorkflow.run,
            inp,
            child_id,
            ctx.sales_task_queue,
            f"dispatch {what} expansion (~${total:,.0f} ARR) to Sales",
        )
        ctx.log("child", f"expansion {what} (~${total:,.0f} ARR) dispatched to Sales ({child_id})")
        await note_for_digest(
            ctx,
            account_name=s.handoff.name,
            category="opportunity",
            occurrence=child_id,
            to=str(s.handoff.csm_email),
            to_name=s.handoff.csm_owner,
            headline=f"expansion ({labels}), about ${total:,.0f} ARR, sent to "
            f"{s.handoff.rep_owner or 'Sales'} with a talk track",
        )


async def start_qbr(ctx: PlaybookContext, cp: lc.Checkpoint) -> None:
    s = ctx.s
    if s.phase in (lc.Phase.CHURN_HANDLING, lc.Phase.CHURNED) and cp.days_before_end is None:
        ctx.log("decision", f"{cp.label} skipped: account is in churn handling")
        return
    label = cp.key.removeprefix("qbr:")
    child_id = f"qbr-{s.account_id}-{label}"
    inp = QbrInput(
        account_id=s.account_id,
        account_name=s.handoff.name,
        quarter_label=label,
        reason="pre_renewal" if cp.days_before_end else "quarterly",
        as_of=workflow.now(),
        csm_email=str(s.handoff.csm_email),
        csm_owner=s.handoff.csm_owner,
        llm_task_queue=ctx.llm_task_queue,
        activity_timeout_seconds=int(ctx.activity_timeout.total_seconds()),
        policy=ctx.policy,
        success_criteria=list(s.onboarding.criteria_status),
    )
    if await _start_child(QBRWorkflow.run, inp, child_id, ctx.task_queue, f"QBR {label}"):
        s.qbrs_started.append(child_id)
        ctx.log("child", f"QBR {label} started ({child_id})")
        # A QBR under way is the Value Proof gate's evidence.
        ctx.mark_milestone("first_qbr_delivered", child_id)


async def start_churn_save(ctx: PlaybookContext, reason: str) -> None:
    s = ctx.s
    child_id = f"churn-save-{s.account_id}-{workflow.now():%Y%m%d}"
    inp = ChurnSaveInput(
        account_id=s.account_id,
        account_name=s.handoff.name,
        reason=reason,
        csm_owner=s.handoff.csm_owner,
        csm_email=str(s.handoff.csm_email),
        score=s.score,
        band=s.band,
        churn_level=s.churn_level,
        drivers=s.drivers,
        renewal_date=s.contract.end_date,
        arr=s.contract.arr,
        llm_task_queue=ctx.llm_task_queue,
        activity_timeout_seconds=int(ctx.activity_timeout.total_seconds()),
    )
    if await _start_child(
        ChurnSaveWorkflow.run, inp, child_id, ctx.task_queue, "churn save playbook"
    ):
        s.save_workflow_id = child_id
        s.save_decision_due = workflow.now().date() + timedelta(days=inp.approval_sla_days)
        ctx.log(
            "child",
            f"churn save playbook started ({child_id}): {s.handoff.csm_owner} decides by "
            f"{s.save_decision_due} with `starter.py decide-save`",
        )
    await publish(
        ctx, "churn.handling_started", {"reason": reason, "save_workflow_id": child_id}, child_id
    )


async def _start_child(run: Any, inp: Any, child_id: str, task_queue: str, summary: str) -> bool:
    """Start a child (by reference to its run method) and let it run on its own.

    ABANDON on purpose: QBRs, Sales dispatches and save playbooks are
    deliverables people wait for; they must finish even when the parent
    continues as new (children never follow a parent into its next run) or
    completes. The ids are deterministic, so a second start of the same QBR
    or dispatch is rejected by the server and nothing runs twice.
    """
    try:
        await workflow.start_child_workflow(
            run,
            inp,
            id=child_id,
            task_queue=task_queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary,
        )
        return True
    except WorkflowAlreadyStartedError:
        return False
    except FailureError as err:
        await survived(f"starting {child_id}", err)
        return False


# ---------------------------------------------------------- timers and gates


async def renewal_window(ctx: PlaybookContext, cp: lc.Checkpoint) -> None:
    s = ctx.s
    await publish(
        ctx,
        "renewal.window",
        {
            "days_before_end": cp.days_before_end,
            "band": s.band,
            "churn_level": s.churn_level,
            "end_date": str(s.contract.end_date),
        },
        cp.key,
    )
    if cp.days_before_end in (90, 60, 30) and not renewal.replaces_window(cp):
        # The days actually left (a checkpoint can fire late, e.g. for an account handed off
        # inside the window), never the checkpoint's label.
        days_left = (s.contract.end_date - workflow.now().date()).days
        health = (
            f"health {s.score:.0f}/100 {s.band}" if s.score is not None else "no health score yet"
        )
        text = (
            f"Renewal of {s.handoff.name} in {days_left} days ({s.contract.end_date}): "
            f"{health}, churn risk {s.churn_level or 'not assessed'}, ARR ${s.contract.arr:,.0f}."
        )
        req = DeliveryRequest(
            idempotency_key=key("renewal_window", cp.key),
            account_id=s.account_id,
            kind="email_draft",
            purpose="renewal_window",
            to=str(s.handoff.csm_email),
            to_name=s.handoff.csm_owner,
            subject=f"Renewal in {days_left} days: {s.handoff.name}",
            markdown=text,
        )
        if ctx.policy.digest == "off" or not workflow.patched(DIGEST):
            await deliver(ctx, req)
        else:
            await note_for_digest(
                ctx,
                account_name=s.handoff.name,
                category="renewal",
                occurrence=cp.key,
                to=str(s.handoff.csm_email),
                to_name=s.handoff.csm_owner,
                headline=text.removeprefix(f"Renewal of {s.handoff.name} ").rstrip("."),
            )
    # Scan now: the 60-day window is the contract-proximity trigger of seed 001.
    s.rescore = True


async def nudge(ctx: PlaybookContext, due: lc.NudgeDue, count: int) -> None:
    s = ctx.s
    phase = lc.Phase(due.phase)
    facts = draft_facts.nudge_facts(
        s.handoff,
        workflow.now(),
        phase_label=phase.label,
        days_in_phase=due.days_in_phase,
        sla_days=lc.GATES[phase].sla_days if phase in lc.GATES else None,
        missing=[lc.MILESTONES[m] for m in due.missing],
        nudges_sent=count,
    )
    n = await narrative(ctx, facts)
    await draft_or_digest(
        ctx,
        n,
        facts,
        category="reminder",
        urgent=False,
        occurrence=f"{due.phase}:{count}",
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        subject=f"{s.handoff.name} is waiting in {phase.label}",
        headline=f"waiting {due.days_in_phase} days in {phase.label}; needs "
        + ", ".join(lc.MILESTONES[m] for m in due.missing),
    )
    await publish(
        ctx, "gate.nudged", {"phase": phase.label, "missing": due.missing}, f"{due.phase}:{count}"
    )


async def post_mortem(ctx: PlaybookContext) -> None:
    s = ctx.s
    history = [t.text for t in s.timeline if t.kind in ("decision", "phase")][-8:]
    facts = draft_facts.post_mortem_facts(
        s.handoff,
        s.contract,
        workflow.now(),
        reason=s.churn_reason,
        last_score=s.score,
        drivers=s.drivers,
        history=history,
    )
    n = await narrative(ctx, facts)
    req = narrative_request(
        n,
        facts,
        kind="email_draft",
        occurrence="final",
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        subject=f"Post-mortem: {s.handoff.name} churned",
    )
    res = await deliver(ctx, req)
    s.alerts_sent["post_mortem"] = res.target or res.external_id or res.channel or res.status
    ctx.log("delivery", f"post-mortem drafted ({res.channel})")
