"""What the account workflow does once a rule has decided: plays, alerts, children.

Orchestration only. Rules live in `domain/`; the words come from the
narrative activity (Claude, or a template without a key); deliveries are
drafts through the idempotent `deliver` activity, keyed on the workflow and
the purpose so a retry or a replay never makes a second draft.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from domain import lifecycle as lc
    from domain.delivery import (
        BusEvent,
        DeliveryFailure,
        DeliveryRequest,
        DeliveryResult,
        delivery_key,
    )
    from domain.narrative import (
        Narrative,
        NarrativeFacts,
        NarrativeRequest,
        narrative_delivery,
        render_template,
    )
    from domain.summary import AssessmentSummary, FindingLine
    from workflows.child_models import ChurnSaveInput, ExpansionInput, QbrInput

if TYPE_CHECKING:
    from workflows.account import AccountLifecycleWorkflow

DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5), maximum_attempts=8
)
NARRATIVE_ATTEMPTS = 3
NARRATIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=NARRATIVE_ATTEMPTS,
)
DELIVERY_TIMEOUT = timedelta(minutes=2)  # children; the account workflow sets its own
REALERT_AFTER = timedelta(days=30)
EXPANSION_COOLDOWN = timedelta(days=90)
DIRECTOR_OF_CS = "director-of-cs@example.com"


# ------------------------------------------------------------ building blocks
#
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
                "fail_delivery",
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


async def narrative(wf: Any, facts: NarrativeFacts) -> Narrative:
    """Words for a draft: the model when configured, else (or on failure) a template."""
    try:
        return await workflow.execute_activity(
            "write_narrative",
            NarrativeRequest(facts=facts, max_attempts=NARRATIVE_ATTEMPTS),
            result_type=Narrative,
            task_queue=wf.llm_task_queue,
            start_to_close_timeout=timedelta(seconds=90),
            retry_policy=NARRATIVE_RETRY,
            summary=f"narrative: {facts.purpose}",
        )
    except FailureError as err:
        reason = await survived(f"narrative {facts.purpose}", err)
        out = render_template(facts, fallback=True, reason=f"the narrative step failed: {reason}")
        return Narrative(**out.model_dump())


async def deliver(req: DeliveryRequest) -> DeliveryResult:
    """One draft/page/message; the key makes a retry or a replay a no-op.

    A delivery that cannot be made (refused by the channel, or still failing
    after the bounded retries) comes back with status "failed" and the
    channel's reason in `note`: the caller carries on.
    """
    try:
        return await workflow.execute_activity(
            "deliver",
            req,
            result_type=DeliveryResult,
            start_to_close_timeout=getattr(
                workflow.instance(), "activity_timeout", DELIVERY_TIMEOUT
            ),
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


async def deliver_narrative(
    n: Narrative,
    facts: NarrativeFacts,
    *,
    kind: str,
    occurrence: str,
    to: str | None = None,
    to_name: str | None = None,
    subject: str | None = None,
    purpose: str | None = None,
) -> DeliveryResult:
    purpose = purpose or n.purpose
    req = narrative_delivery(
        n,
        idempotency_key=key(purpose, occurrence, kind),
        kind=kind,  # type: ignore[arg-type]
        to=to,
        to_name=to_name,
        subject=subject,
        facts=facts,
    )
    if req.purpose != purpose:
        req = req.model_copy(update={"purpose": purpose})
    return await deliver(req)


async def publish(wf: Any, event_type: str, payload: dict, occurrence: str | None = None) -> None:
    """Every decision goes on the event bus (Postgres outbox + NOTIFY)."""
    now = workflow.now()
    try:
        await workflow.execute_activity(
            "publish_event",
            BusEvent(
                event_key=key(event_type, occurrence or now.isoformat()),
                account_id=wf.account_id,
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


# ----------------------------------------------------------------- playbooks


async def run_risk_playbooks(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    """Risk -> prevention playbook: churn alert on four channels, a Lean play per finding."""
    s = wf.s
    now = workflow.now()
    if summary.churn_level in ("HIGH", "CRITICAL"):
        alert = f"churn:{summary.churn_level}"
        if _due(s.alerts_sent.get(alert), now):
            s.alerts_sent[alert] = now.date().isoformat()
            await churn_alert(wf, summary)
    for f in summary.findings:
        if f.kind not in LEAN_PURPOSE or f.severity == "low":
            continue
        alert = f"lean:{f.kind}"
        if _due(s.alerts_sent.get(alert), now):
            s.alerts_sent[alert] = now.date().isoformat()
            await lean_play(wf, summary, f)


def _due(last_sent: str | None, now: datetime) -> bool:
    return last_sent is None or now.date() - date.fromisoformat(last_sent) >= REALERT_AFTER


def _facts(
    wf: AccountLifecycleWorkflow, purpose: str, summary: AssessmentSummary | None = None, **kw: Any
) -> NarrativeFacts:
    s = wf.s
    h = s.handoff
    metrics = _metrics(summary) if summary is not None else {}
    metrics.update(kw.pop("metrics", {}))
    return NarrativeFacts(
        account_id=s.account_id,
        account_name=h.name,
        purpose=purpose,  # type: ignore[arg-type]
        as_of=workflow.now().date().isoformat(),
        csm_name=h.csm_owner,
        csm_email=str(h.csm_email),
        rep_name=h.rep_owner,
        rep_email=str(h.rep_email) if h.rep_email else None,
        stakeholders=[f"{x.name} ({x.title or x.role})" for x in h.stakeholders][:6],
        metrics=metrics,
        **kw,
    )


async def churn_alert(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    """Seed 001's four channels: Notion health update, Gmail draft to the rep, chat alert, event bus."""
    s = wf.s
    facts = _facts(wf, "churn_risk", summary, evidence=[*summary.churn_flags, *summary.drivers])
    n = await narrative(wf, facts)
    health = (
        f"health UNSCORED ({summary.coverage:.0%} coverage)"
        if summary.band == "UNSCORED"
        else f"health {summary.score} {summary.band}"
    )
    subject = f"[{summary.churn_level} churn risk] {s.handoff.name}: {health}"
    occurrence = f"{summary.churn_level}:{workflow.now():%Y-%m-%d}"
    rep = str(s.handoff.rep_email or s.handoff.csm_email)
    for kind, to in (("health_update", None), ("email_draft", rep), ("chat_alert", None)):
        await deliver_narrative(
            n,
            facts,
            kind=kind,
            occurrence=occurrence,
            to=to,
            to_name=s.handoff.rep_owner if to else None,
            subject=subject,
            purpose="churn_alert",
        )
    await publish(
        wf,
        "churn.alert",
        {
            "level": summary.churn_level,
            "score": summary.score,
            "band": summary.band,
            "flags": summary.churn_flags,
        },
        occurrence,
    )
    wf._log(
        "delivery",
        f"churn alert ({summary.churn_level}): Notion update, Gmail draft to {rep}, chat, event bus",
    )


LEAN_PURPOSE = {
    "muda": "muda_license_plan",
    "mura": "mura_adoption_plan",
    "muri": "muri_escalation_brief",
}


async def lean_play(
    wf: AccountLifecycleWorkflow, summary: AssessmentSummary, finding: FindingLine
) -> None:
    s = wf.s
    purpose = LEAN_PURPOSE[finding.kind]
    extra = {"dollar_impact": finding.dollar_impact} if finding.dollar_impact else {}
    facts = _facts(
        wf,
        purpose,
        summary,
        metrics=extra,
        evidence=[finding.title, *finding.evidence],
        recommended_actions=[finding.play],
    )
    n = await narrative(wf, facts)
    to = DIRECTOR_OF_CS if finding.kind == "muri" else str(s.handoff.csm_email)
    dollars = f" (${finding.dollar_impact:,.0f}/yr)" if finding.dollar_impact else ""
    await deliver_narrative(
        n,
        facts,
        kind="email_draft",
        occurrence=finding.finding_id,
        to=to,
        subject=f"{finding.play}: {s.handoff.name}{dollars}",
    )
    await publish(
        wf,
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
    wf._log("delivery", f"{finding.kind} play drafted for {to}: {finding.title}")


def _metrics(summary: AssessmentSummary) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {
        "churn_level": summary.churn_level,
        "coverage": round(summary.coverage, 2),
    }
    # An UNSCORED account's score rests on too little data to quote to a person: the
    # draft says UNSCORED and the coverage instead.
    if summary.score is not None and summary.band != "UNSCORED":
        out["health_score"] = summary.score
    if summary.band:
        out["band"] = summary.band
    if summary.days_to_renewal is not None:
        out["days_to_renewal"] = summary.days_to_renewal
    if summary.arr is not None:
        out["arr"] = summary.arr
    return out


# ------------------------------------------------------------------ children


async def dispatch_expansions(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    """Opportunity -> ExpansionDispatchWorkflow on the Sales queue, once per opportunity per 90 days."""
    s = wf.s
    today = workflow.now().date()
    for o in summary.opportunities:
        last = s.dispatched.get(o.opportunity_id) or s.declined.get(o.opportunity_id)
        if last is not None and today - last < EXPANSION_COOLDOWN:
            continue
        s.dispatched[o.opportunity_id] = today
        child_id = f"expansion-{s.account_id}-{o.opportunity_type}-{o.key}-{today:%Y%m%d}"
        inp = ExpansionInput(
            account_id=s.account_id,
            account_name=s.handoff.name,
            opportunity_id=o.opportunity_id,
            opportunity_type=o.opportunity_type,
            evidence=o.evidence,
            estimated_arr_impact=o.estimated_arr_impact,
            talk_track=o.talk_track,
            rep_owner=s.handoff.rep_owner,
            rep_email=str(s.handoff.rep_email or s.handoff.csm_email),
            llm_task_queue=wf.llm_task_queue,
        )
        await _start_child(
            "ExpansionDispatchWorkflow",
            inp,
            child_id,
            wf.sales_task_queue,
            f"dispatch {o.opportunity_type} expansion (~${o.estimated_arr_impact:,.0f} ARR) to Sales",
        )
        wf._log(
            "child",
            f"expansion {o.opportunity_type}/{o.key} (~${o.estimated_arr_impact:,.0f} ARR) "
            f"dispatched to Sales ({child_id})",
        )


async def start_qbr(wf: AccountLifecycleWorkflow, cp: lc.Checkpoint) -> None:
    s = wf.s
    if s.phase in (lc.Phase.CHURN_HANDLING, lc.Phase.CHURNED) and cp.days_before_end is None:
        wf._log("decision", f"{cp.label} skipped: account is in churn handling")
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
        llm_task_queue=wf.llm_task_queue,
    )
    if await _start_child("QBRWorkflow", inp, child_id, workflow.info().task_queue, f"QBR {label}"):
        s.qbrs_started.append(child_id)
        wf._log("child", f"QBR {label} started ({child_id})")
        # A QBR under way is the Value Proof gate's evidence.
        wf._milestone("first_qbr_delivered", child_id)


async def start_churn_save(wf: AccountLifecycleWorkflow, reason: str) -> None:
    s = wf.s
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
        llm_task_queue=wf.llm_task_queue,
    )
    if await _start_child(
        "ChurnSaveWorkflow", inp, child_id, workflow.info().task_queue, "churn save playbook"
    ):
        s.save_workflow_id = child_id
        wf._log(
            "child",
            f"churn save playbook started ({child_id}): decide with `starter.py decide-save`",
        )
    await publish(
        wf, "churn.handling_started", {"reason": reason, "save_workflow_id": child_id}, child_id
    )


async def _start_child(name: str, inp: Any, child_id: str, task_queue: str, summary: str) -> bool:
    """Start a child and let it run on its own.

    ABANDON on purpose: QBRs, Sales dispatches and save playbooks are
    deliverables people wait for; they must finish even when the parent
    continues as new (children never follow a parent into its next run) or
    completes. The ids are deterministic, so a second start of the same QBR
    or dispatch is rejected by the server and nothing runs twice.
    """
    try:
        await workflow.start_child_workflow(
            name,
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
        await survived(f"starting {name} {child_id}", err)
        return False


# ---------------------------------------------------------- timers and gates


async def renewal_window(wf: AccountLifecycleWorkflow, cp: lc.Checkpoint) -> None:
    s = wf.s
    await publish(
        wf,
        "renewal.window",
        {
            "days_before_end": cp.days_before_end,
            "band": s.band,
            "churn_level": s.churn_level,
            "end_date": str(s.contract.end_date),
        },
        cp.key,
    )
    if cp.days_before_end in (90, 60, 30):
        text = (
            f"Renewal of {s.handoff.name} in {cp.days_before_end} days ({s.contract.end_date}): "
            f"health {s.score} {s.band}, churn risk {s.churn_level}, ARR ${s.contract.arr:,.0f}."
        )
        await deliver(
            DeliveryRequest(
                idempotency_key=key("renewal_window", cp.key),
                account_id=s.account_id,
                kind="email_draft",
                purpose="renewal_window",
                to=str(s.handoff.csm_email),
                to_name=s.handoff.csm_owner,
                subject=f"Renewal T-{cp.days_before_end}d: {s.handoff.name}",
                markdown=text,
            )
        )
    # Scan now: the 60-day window is the contract-proximity trigger of seed 001.
    s.rescore = True


async def nudge(wf: AccountLifecycleWorkflow, due: lc.NudgeDue, count: int) -> None:
    s = wf.s
    phase = lc.Phase(due.phase)
    facts = _facts(
        wf,
        "nudge",
        metrics={"phase": phase.label, "days_in_phase": due.days_in_phase},
        evidence=[f"Missing: {lc.MILESTONES[m]}" for m in due.missing],
    )
    n = await narrative(wf, facts)
    await deliver_narrative(
        n,
        facts,
        kind="email_draft",
        occurrence=f"{due.phase}:{count}",
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        subject=f"{s.handoff.name} is waiting in {phase.label}",
    )
    await publish(
        wf, "gate.nudged", {"phase": phase.label, "missing": due.missing}, f"{due.phase}:{count}"
    )


async def post_mortem(wf: AccountLifecycleWorkflow) -> None:
    s = wf.s
    history = [t.text for t in s.timeline if t.kind in ("decision", "phase")][-8:]
    facts = _facts(
        wf,
        "churn_post_mortem",
        metrics={
            "arr_lost": s.contract.arr,
            **({"last_score": s.score} if s.score is not None else {}),
        },
        evidence=[f"Reason: {s.churn_reason}", *s.drivers, *history],
    )
    n = await narrative(wf, facts)
    res = await deliver_narrative(
        n,
        facts,
        kind="email_draft",
        occurrence="final",
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        subject=f"Post-mortem: {s.handoff.name} churned",
    )
    s.alerts_sent["post_mortem"] = res.target or res.external_id or res.channel or res.status
    if res.status == "delivered":
        wf._log("delivery", f"post-mortem drafted ({res.channel})")
