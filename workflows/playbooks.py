"""What the account workflow does once a rule has decided: plays, alerts, children.

Orchestration only. Rules live in `domain/`; the words come from the
narrative activity (Claude, or a template without a key); deliveries are
drafts through the idempotent `deliver` activity, keyed on the workflow and
the purpose so a retry or a replay never makes a second draft.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain import lifecycle as lc
    from domain.narrative import NarrativeFacts
    from domain.summary import AssessmentSummary
    from workflows.child_models import ChurnSaveInput, ExpansionInput, QbrInput

if TYPE_CHECKING:
    from workflows.account import AccountLifecycleWorkflow

DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5), maximum_attempts=8
)
NARRATIVE_ATTEMPTS = 3
NARRATIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=NARRATIVE_ATTEMPTS
)
REALERT_AFTER = timedelta(days=30)
EXPANSION_COOLDOWN = timedelta(days=90)
DIRECTOR_OF_CS = "director-of-cs@example.com"


# ------------------------------------------------------------ building blocks


async def narrative(wf: Any, facts: NarrativeFacts) -> dict:
    """Words for a draft: the model when configured, else (or on failure) a template."""
    return await workflow.execute_activity(
        "write_narrative",
        {"facts": facts.model_dump(mode="json"), "max_attempts": NARRATIVE_ATTEMPTS},
        result_type=dict,
        task_queue=wf.llm_task_queue,
        start_to_close_timeout=timedelta(seconds=90),
        retry_policy=NARRATIVE_RETRY,
        summary=f"narrative: {facts.purpose}",
    )


async def deliver(
    wf: Any,
    *,
    kind: str,
    purpose: str,
    key: str,
    account_id: str,
    to: str | None,
    subject: str,
    markdown: str,
    sections: list[dict] | None = None,
    metadata: dict | None = None,
) -> dict:
    """One draft/page/message. `key` must be unique per purpose and occurrence."""
    return await workflow.execute_activity(
        "deliver",
        {
            "idempotency_key": f"{workflow.info().workflow_id}:{key}:{kind}",
            "account_id": account_id,
            "kind": kind,
            "purpose": purpose,
            "to": to,
            "subject": subject,
            "title": subject,
            "markdown": markdown,
            "sections": sections or [],
            "metadata": metadata or {},
        },
        result_type=dict,
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=DELIVERY_RETRY,
        summary=f"{kind} draft: {purpose}",
    )


async def publish(wf: Any, event_type: str, payload: dict, key: str | None = None) -> None:
    """Every decision goes on the event bus (Postgres outbox + NOTIFY)."""
    info = workflow.info()
    await workflow.execute_activity(
        "publish_event",
        {
            "event_key": f"{info.workflow_id}:{key or event_type}:{workflow.now().isoformat()}",
            "account_id": wf.s.account_id if hasattr(wf, "s") else payload.get("account_id"),
            "event_type": event_type,
            "payload": payload,
            "occurred_at": workflow.now().isoformat(),
        },
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=DELIVERY_RETRY,
        summary=f"event bus: {event_type}",
    )


def _paragraphs(n: dict) -> str:
    parts = [n.get("headline", "")] + list(n.get("paragraphs", [])) + [f"- {b}" for b in n.get("bullets", [])]
    note = n.get("note")
    if note:
        parts.append(f"_{note}_")
    return "\n\n".join(p for p in parts if p)


# ----------------------------------------------------------------- playbooks


async def run_risk_playbooks(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    """Risk -> prevention playbook: churn alert on four channels, Lean plays per finding."""
    s = wf.s
    today = workflow.now()
    if summary.churn_level in ("HIGH", "CRITICAL"):
        key = f"churn:{summary.churn_level}"
        if _due(s.alerts_sent.get(key), today):
            s.alerts_sent[key] = today.date().isoformat()
            await churn_alert(wf, summary)
    for f in summary.findings:
        if f.kind not in ("muda", "mura", "muri") or f.severity == "low":
            continue
        key = f"lean:{f.kind}"
        if not _due(s.alerts_sent.get(key), today):
            continue
        s.alerts_sent[key] = today.date().isoformat()
        await lean_play(wf, summary, f)


def _due(last_sent: str | None, now: Any) -> bool:
    if last_sent is None:
        return True
    from datetime import date as _date

    return now.date() - _date.fromisoformat(last_sent) >= REALERT_AFTER


async def churn_alert(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    s = wf.s
    facts = NarrativeFacts(
        account_id=s.account_id,
        account_name=s.handoff.name,
        purpose="churn_risk",
        csm_name=s.handoff.csm_owner,
        rep_name=s.handoff.rep_owner,
        metrics=_metrics(summary),
        bullets=[*summary.churn_flags, *summary.drivers],
    )
    n = await narrative(wf, facts)
    body = _paragraphs(n)
    subject = f"[{summary.churn_level} churn risk] {s.handoff.name}: health {summary.score} {summary.band}"
    occurrence = f"churn:{summary.churn_level}:{workflow.now():%Y-%m-%d}"
    to_rep = str(s.handoff.rep_email or s.handoff.csm_email)
    await deliver(wf, kind="health_update", purpose="churn_alert", key=occurrence, account_id=s.account_id,
                  to=None, subject=subject, markdown=body, metadata=_metrics(summary))
    await deliver(wf, kind="email_draft", purpose="churn_alert", key=occurrence, account_id=s.account_id,
                  to=to_rep, subject=subject, markdown=body)
    await deliver(wf, kind="chat_alert", purpose="churn_alert", key=occurrence, account_id=s.account_id,
                  to=None, subject=subject, markdown=body)
    await publish(wf, "churn.alert", {"level": summary.churn_level, "score": summary.score,
                                      "band": summary.band, "flags": summary.churn_flags}, key=occurrence)
    wf._log("delivery", f"churn alert ({summary.churn_level}) on Notion, Gmail draft to {to_rep}, chat, event bus")


LEAN_PURPOSE = {"muda": "muda_license_plan", "mura": "mura_adoption_plan", "muri": "muri_escalation_brief"}


async def lean_play(wf: AccountLifecycleWorkflow, summary: AssessmentSummary, finding: Any) -> None:
    s = wf.s
    purpose = LEAN_PURPOSE[finding.kind]
    facts = NarrativeFacts(
        account_id=s.account_id,
        account_name=s.handoff.name,
        purpose=purpose,
        csm_name=s.handoff.csm_owner,
        rep_name=s.handoff.rep_owner,
        metrics={**_metrics(summary), **({"dollar_impact": finding.dollar_impact} if finding.dollar_impact else {})},
        bullets=[finding.title, *finding.evidence, f"Recommended play: {finding.play}"],
    )
    n = await narrative(wf, facts)
    to = DIRECTOR_OF_CS if finding.kind == "muri" else str(s.handoff.csm_email)
    subject = f"{finding.play}: {s.handoff.name}" + (
        f" (${finding.dollar_impact:,.0f}/yr)" if finding.dollar_impact else ""
    )
    await deliver(wf, kind="email_draft", purpose=purpose, key=finding.finding_id, account_id=s.account_id,
                  to=to, subject=subject, markdown=_paragraphs(n))
    await publish(wf, "finding.raised", {"finding_id": finding.finding_id, "kind": finding.kind,
                                         "severity": finding.severity, "dollar_impact": finding.dollar_impact},
                  key=finding.finding_id)
    wf._log("delivery", f"{finding.kind} play drafted for {to}: {finding.title}")


def _metrics(summary: AssessmentSummary) -> dict:
    return {
        "health_score": summary.score if summary.score is not None else "n/a",
        "band": summary.band or "n/a",
        "churn_level": summary.churn_level,
        "coverage": round(summary.coverage, 2),
        "days_to_renewal": summary.days_to_renewal if summary.days_to_renewal is not None else "n/a",
        "arr": summary.arr if summary.arr is not None else "n/a",
    }


# ------------------------------------------------------------------ children


async def dispatch_expansions(wf: AccountLifecycleWorkflow, summary: AssessmentSummary) -> None:
    """Opportunity -> ExpansionDispatchWorkflow on the Sales queue, once per opportunity per 90 days."""
    s = wf.s
    today = workflow.now().date()
    for o in summary.opportunities:
        key = o.opportunity_id
        last = s.dispatched.get(key) or s.declined.get(key)
        if last is not None and today - last < EXPANSION_COOLDOWN:
            continue
        s.dispatched[key] = today
        child_id = f"expansion-{s.account_id}-{o.opportunity_type}-{o.key}-{today:%Y%m%d}"
        inp = ExpansionInput(
            account_id=s.account_id,
            account_name=s.handoff.name,
            opportunity_id=key,
            opportunity_type=o.opportunity_type,
            evidence=o.evidence,
            estimated_arr_impact=o.estimated_arr_impact,
            talk_track=o.talk_track,
            rep_owner=s.handoff.rep_owner,
            rep_email=str(s.handoff.rep_email or s.handoff.csm_email),
            llm_task_queue=wf.llm_task_queue,
        )
        await _start_child("ExpansionDispatchWorkflow", inp, child_id, wf.sales_task_queue,
                           f"dispatch {o.opportunity_type} expansion (${o.estimated_arr_impact:,.0f} ARR) to Sales")
        wf._log("child", f"expansion {o.opportunity_type}/{o.key} dispatched to Sales ({child_id})")


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
    started = await _start_child("QBRWorkflow", inp, child_id, workflow.info().task_queue, f"QBR {label}")
    if started:
        s.qbrs_started.append(child_id)
        wf._log("child", f"QBR {label} started ({child_id})")
        # The first QBR delivered opens the Value Proof gate.
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
    if await _start_child("ChurnSaveWorkflow", inp, child_id, workflow.info().task_queue, "churn save playbook"):
        s.save_workflow_id = child_id
        wf._log("child", f"churn save playbook started ({child_id}): approve with `starter.py decide-save`")
    await publish(wf, "churn.handling_started", {"reason": reason, "save_workflow_id": child_id})


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


# ---------------------------------------------------------- timers and gates


async def renewal_window(wf: AccountLifecycleWorkflow, cp: lc.Checkpoint) -> None:
    s = wf.s
    text = (
        f"Renewal of {s.handoff.name} in {cp.days_before_end} days ({s.contract.end_date}); "
        f"health {s.score} {s.band}, churn risk {s.churn_level}, ARR ${s.contract.arr:,.0f}."
    )
    await publish(wf, "renewal.window", {"days_before_end": cp.days_before_end, "band": s.band,
                                         "churn_level": s.churn_level}, key=cp.key)
    if cp.days_before_end in (90, 60, 30):
        await deliver(wf, kind="email_draft", purpose="renewal_window", key=cp.key, account_id=s.account_id,
                      to=str(s.handoff.csm_email), subject=f"Renewal T-{cp.days_before_end}d: {s.handoff.name}",
                      markdown=text)
    # A scan right now: the 60-day window is the contract-proximity trigger.
    s.rescore = True


async def nudge(wf: AccountLifecycleWorkflow, due: lc.NudgeDue, count: int) -> None:
    s = wf.s
    facts = NarrativeFacts(
        account_id=s.account_id,
        account_name=s.handoff.name,
        purpose="nudge",
        csm_name=s.handoff.csm_owner,
        metrics={"phase": lc.Phase(due.phase).label, "days_in_phase": due.days_in_phase},
        bullets=[f"Missing: {lc.MILESTONES[m]}" for m in due.missing],
    )
    n = await narrative(wf, facts)
    await deliver(wf, kind="email_draft", purpose="nudge", key=f"nudge:{due.phase}:{count}", account_id=s.account_id,
                  to=str(s.handoff.csm_email), subject=f"{s.handoff.name} is waiting in {lc.Phase(due.phase).label}",
                  markdown=_paragraphs(n))


async def post_mortem(wf: AccountLifecycleWorkflow) -> None:
    s = wf.s
    facts = NarrativeFacts(
        account_id=s.account_id,
        account_name=s.handoff.name,
        purpose="churn_post_mortem",
        csm_name=s.handoff.csm_owner,
        metrics={"arr_lost": s.contract.arr, "last_score": s.score if s.score is not None else "n/a",
                 "last_band": s.band or "n/a"},
        bullets=[f"Reason: {s.churn_reason}", *s.drivers, *[t.text for t in s.timeline if t.kind in ("decision", "phase")][-8:]],
    )
    n = await narrative(wf, facts)
    res = await deliver(wf, kind="email_draft", purpose="churn_post_mortem", key="post_mortem",
                        account_id=s.account_id, to=str(s.handoff.csm_email),
                        subject=f"Post-mortem: {s.handoff.name} churned", markdown=_paragraphs(n))
    s.alerts_sent["post_mortem"] = str(res.get("external_id") or res.get("channel") or "delivered")
    wf._log("delivery", "post-mortem drafted")
