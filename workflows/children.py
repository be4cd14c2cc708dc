"""Child workflows: QBR, Sales expansion dispatch, churn save playbook.

Each is started by AccountLifecycleWorkflow with a deterministic id
(see workflows/playbooks.py) and runs to completion on its own.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import DecisionUpdate
    from domain.narrative import NarrativeFacts
    from workflows import playbooks
    from workflows.child_models import (
        ChurnSaveInput,
        ChurnSaveResult,
        ExpansionInput,
        ExpansionResult,
        QbrInput,
        QbrResult,
    )

QBR_SECTIONS = ["qbr_health_summary", "qbr_roi_impact", "qbr_adoption_scorecard", "qbr_expansion_next_steps"]


class _Child:
    """What playbooks.narrative/deliver/publish need from a workflow."""

    llm_task_queue: str
    account_id: str

    def _log(self, kind: str, text: str) -> None:
        workflow.logger.info("%s: %s", kind, text)


@workflow.defn
class QBRWorkflow(_Child):
    @workflow.run
    async def run(self, inp: QbrInput) -> QbrResult:
        self.llm_task_queue = inp.llm_task_queue
        workflow.set_current_details(f"assembling QBR {inp.quarter_label} for {inp.account_name}")
        doc: dict = await workflow.execute_activity(
            "prepare_qbr",
            {"account_id": inp.account_id, "quarter_label": inp.quarter_label, "as_of": inp.as_of.isoformat(),
             "reason": inp.reason},
            result_type=dict,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=playbooks.DELIVERY_RETRY,
            summary=f"gather health history, findings and adoption for QBR {inp.quarter_label}",
        )
        from_model = from_template = 0
        for section in doc.get("sections", []):
            purpose = section.get("purpose")
            if purpose not in QBR_SECTIONS:
                continue
            facts = NarrativeFacts(
                account_id=inp.account_id,
                account_name=inp.account_name,
                purpose=purpose,
                csm_name=inp.csm_owner,
                metrics={k: v for k, v in (section.get("metrics") or {}).items() if isinstance(v, (int, float, str))},
                bullets=list(section.get("bullets") or []),
            )
            n = await playbooks.narrative(self, facts)
            section["narrative"] = n
            if n.get("fallback") or n.get("generated_by") == "template":
                from_template += 1
            else:
                from_model += 1
        workflow.set_current_details(f"delivering QBR {inp.quarter_label}")
        title = f"QBR {inp.quarter_label}: {inp.account_name}"
        page = await playbooks.deliver(
            self, kind="qbr_page", purpose="qbr", key=f"qbr:{inp.quarter_label}", account_id=inp.account_id,
            to=None, subject=title, markdown=doc.get("markdown", ""), sections=doc.get("sections", []),
            metadata={"quarter": inp.quarter_label, "reason": inp.reason},
        )
        cover = await playbooks.deliver(
            self, kind="email_draft", purpose="qbr_cover_note", key=f"qbr:{inp.quarter_label}",
            account_id=inp.account_id, to=inp.csm_email, subject=f"Ready for review: {title}",
            markdown=f"Hi {inp.csm_owner},\n\nThe {inp.reason.replace('_', '-')} QBR for {inp.account_name} is "
            f"drafted: {page.get('external_id') or page.get('location') or 'see the outbox'}.\n\n"
            "Review the numbers and the narrative before sharing it with the customer.",
        )
        await playbooks.publish(self, "qbr.ready", {"account_id": inp.account_id, "quarter": inp.quarter_label,
                                                    "page": page.get("external_id")}, key=inp.quarter_label)
        return QbrResult(account_id=inp.account_id, quarter_label=inp.quarter_label, page=page, cover_note=cover,
                         narratives_from_model=from_model, narratives_from_template=from_template)


@workflow.defn
class ExpansionDispatchWorkflow(_Child):
    """Runs on the Sales task queue: records the opportunity and drafts the rep's email."""

    @workflow.run
    async def run(self, inp: ExpansionInput) -> ExpansionResult:
        self.llm_task_queue = inp.llm_task_queue
        await playbooks.publish(self, "expansion.dispatched", inp.model_dump(mode="json"), key=inp.opportunity_id)
        facts = NarrativeFacts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            purpose="expansion_talk_track",
            rep_name=inp.rep_owner,
            metrics={"opportunity_type": inp.opportunity_type, "estimated_arr_impact": inp.estimated_arr_impact},
            bullets=[*inp.evidence, f"Suggested talk track: {inp.talk_track}"],
        )
        n = await playbooks.narrative(self, facts)
        draft = await playbooks.deliver(
            self, kind="email_draft", purpose="expansion_talk_track", key=inp.opportunity_id,
            account_id=inp.account_id, to=inp.rep_email,
            subject=f"Expansion ({inp.opportunity_type}, ~${inp.estimated_arr_impact:,.0f} ARR): {inp.account_name}",
            markdown=playbooks._paragraphs(n),
            metadata={"opportunity_id": inp.opportunity_id},
        )
        return ExpansionResult(opportunity_id=inp.opportunity_id, draft=draft)


@workflow.defn
class ChurnSaveWorkflow(_Child):
    """The save playbook: plan drafted, a human approves, stalls escalate."""

    def __init__(self) -> None:
        self.decision: DecisionUpdate | None = None

    @workflow.signal
    def decision(self, d: DecisionUpdate) -> None:
        self.decision = d

    @workflow.query
    def status(self) -> str:
        if self.decision is None:
            return "waiting for a save-plan decision"
        return "approved" if self.decision.approve else "declined"

    @workflow.run
    async def run(self, inp: ChurnSaveInput) -> ChurnSaveResult:
        self.llm_task_queue = inp.llm_task_queue
        steps: list[str] = []
        facts = NarrativeFacts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            purpose="churn_save_plan",
            csm_name=inp.csm_owner,
            metrics={"health_score": inp.score if inp.score is not None else "n/a", "band": inp.band or "n/a",
                     "churn_level": inp.churn_level or "n/a", "arr": inp.arr,
                     "renewal_date": inp.renewal_date.isoformat()},
            bullets=[f"Why: {inp.reason}", *inp.drivers],
        )
        plan = await playbooks.narrative(self, facts)
        await playbooks.deliver(
            self, kind="email_draft", purpose="churn_save_plan", key="plan", account_id=inp.account_id,
            to=inp.csm_email, subject=f"Save plan for approval: {inp.account_name}",
            markdown=playbooks._paragraphs(plan)
            + f"\n\nApprove or decline: `python starter.py decide-save {inp.account_id} --approve|--decline --by NAME`",
        )
        steps.append("save plan drafted for the CSM")
        workflow.set_current_details(f"waiting up to {inp.approval_sla_days} days for a save-plan decision")
        try:
            await workflow.wait_condition(lambda: self.decision is not None,
                                          timeout=timedelta(days=inp.approval_sla_days),
                                          timeout_summary="save-plan approval SLA")
        except TimeoutError:
            await playbooks.deliver(
                self, kind="email_draft", purpose="churn_save_escalation", key="escalation",
                account_id=inp.account_id, to=playbooks.DIRECTOR_OF_CS,
                subject=f"Escalation: save plan for {inp.account_name} has no decision after {inp.approval_sla_days} days",
                markdown=playbooks._paragraphs(plan),
            )
            steps.append("approval stalled: escalated to the Director of CS")
            workflow.set_current_details("escalated to the Director of CS; waiting for a decision")
            try:
                await workflow.wait_condition(lambda: self.decision is not None,
                                              timeout=timedelta(days=inp.escalation_sla_days),
                                              timeout_summary="escalated approval SLA")
            except TimeoutError:
                steps.append("no decision: playbook closed")
                return ChurnSaveResult(account_id=inp.account_id, outcome="no_decision", steps_done=steps)
        assert self.decision is not None
        d = self.decision
        if d.approve:
            steps.append(f"approved by {d.decided_by}")
            await playbooks.deliver(
                self, kind="chat_alert", purpose="churn_save_approved", key="approved", account_id=inp.account_id,
                to=None, subject=f"Save plan approved for {inp.account_name} by {d.decided_by}",
                markdown=playbooks._paragraphs(plan),
            )
            steps.append("team alerted to run the save plan")
        else:
            steps.append(f"declined by {d.decided_by}")
        await playbooks.publish(self, "churn.save_decided", {"account_id": inp.account_id, "approved": d.approve,
                                                             "by": d.decided_by}, key="decision")
        return ChurnSaveResult(account_id=inp.account_id, outcome="approved" if d.approve else "declined",
                               decided_by=d.decided_by, steps_done=steps)
