"""Child workflows: QBR, Sales expansion dispatch, churn save playbook.

Each is started by AccountLifecycleWorkflow with a deterministic id
(see workflows/playbooks.py) and runs to completion on its own.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import lifecycle as lc
    from domain.messages import DecisionUpdate
    from domain.narrative import NarrativeFacts
    from domain.qbr import (
        QbrDocument,
        QbrRequest,
        apply_narratives,
        narrative_facts,
        qbr_cover_note_request,
        qbr_page_request,
    )
    from workflows import playbooks
    from workflows.child_models import (
        ChurnSaveInput,
        ChurnSaveResult,
        ExpansionInput,
        ExpansionResult,
        QbrInput,
        QbrResult,
    )


class _Child:
    """What playbooks.narrative/publish need from a workflow."""

    llm_task_queue: str
    account_id: str

    def note_failure(self, text: str) -> None:
        """A failed delivery or event (playbooks.survived): say so where an operator looks."""
        workflow.logger.warning("%s", text)
        workflow.set_current_details(f"carried on after a failed step: {text}")


@workflow.defn
class QBRWorkflow(_Child):
    @workflow.run
    async def run(self, inp: QbrInput) -> QbrResult:
        self.llm_task_queue, self.account_id = inp.llm_task_queue, inp.account_id
        workflow.set_current_details(f"assembling QBR {inp.quarter_label} for {inp.account_name}")
        doc: QbrDocument = await workflow.execute_activity(
            "prepare_qbr",
            QbrRequest(
                account_id=inp.account_id,
                quarter_label=lc.quarter_label(inp.as_of.date()),
                as_of=inp.as_of,
                reason=inp.reason,  # type: ignore[arg-type]
            ),
            result_type=QbrDocument,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=playbooks.DELIVERY_RETRY,
            summary=f"gather health history, findings and adoption for QBR {inp.quarter_label}",
        )
        workflow.set_current_details(f"writing the four QBR narratives for {inp.account_name}")
        sections = narrative_facts(doc)
        written = await asyncio.gather(*(playbooks.narrative(self, f) for f in sections.values()))
        narratives = dict(zip(sections, written, strict=True))
        doc = apply_narratives(doc, narratives)
        workflow.set_current_details(f"delivering QBR {inp.quarter_label}")
        page = await playbooks.deliver(qbr_page_request(doc, playbooks.key("qbr", "page")))
        cover = await playbooks.deliver(
            qbr_cover_note_request(
                doc,
                playbooks.key("qbr_cover_note"),
                to=inp.csm_email,
                to_name=inp.csm_owner,
                page_link=page.target,
            )
        )
        await playbooks.publish(
            self,
            "qbr.ready",
            {
                "quarter": inp.quarter_label,
                "reason": inp.reason,
                "page": page.target,
                "score": doc.score,
                "band": doc.band,
            },
            inp.quarter_label,
        )
        from_model = sum(1 for n in written if n.generated_by == "model")
        return QbrResult(
            account_id=inp.account_id,
            quarter_label=inp.quarter_label,
            page=page,
            cover_note=cover,
            narratives_from_model=from_model,
            narratives_from_template=len(written) - from_model,
        )


@workflow.defn
class ExpansionDispatchWorkflow(_Child):
    """Runs on the Sales task queue: records the opportunity and drafts the rep's email."""

    @workflow.run
    async def run(self, inp: ExpansionInput) -> ExpansionResult:
        self.llm_task_queue, self.account_id = inp.llm_task_queue, inp.account_id
        await playbooks.publish(
            self, "expansion.dispatched", inp.model_dump(mode="json"), inp.opportunity_id
        )
        facts = NarrativeFacts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            purpose="expansion_talk_track",
            as_of=workflow.now().date().isoformat(),
            rep_name=inp.rep_owner,
            rep_email=inp.rep_email,
            metrics={
                "opportunity_type": inp.opportunity_type,
                "estimated_arr_impact": inp.estimated_arr_impact,
            },
            evidence=inp.evidence,
            recommended_actions=[inp.talk_track],
        )
        n = await playbooks.narrative(self, facts)
        draft = await playbooks.deliver_narrative(
            n,
            facts,
            kind="email_draft",
            occurrence=inp.opportunity_id,
            to=inp.rep_email,
            to_name=inp.rep_owner,
            subject=f"Expansion ({inp.opportunity_type}, ~${inp.estimated_arr_impact:,.0f} ARR): {inp.account_name}",
        )
        return ExpansionResult(opportunity_id=inp.opportunity_id, draft=draft)


@workflow.defn
class ChurnSaveWorkflow(_Child):
    """The save playbook: a plan drafted for the CSM, a human decision, escalation when it stalls."""

    def __init__(self) -> None:
        self._decision: DecisionUpdate | None = None

    @workflow.signal
    def decision(self, d: DecisionUpdate) -> None:
        self._decision = d

    @workflow.query
    def status(self) -> str:
        if self._decision is None:
            return "waiting for a save-plan decision"
        return "approved" if self._decision.approve else "declined"

    async def _wait_decision(self, days: int, what: str) -> bool:
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(days=days),
                timeout_summary=what,
            )
            return True
        except TimeoutError:
            return False

    @workflow.run
    async def run(self, inp: ChurnSaveInput) -> ChurnSaveResult:
        self.llm_task_queue, self.account_id = inp.llm_task_queue, inp.account_id
        steps: list[str] = []
        metrics: dict[str, float | int | str] = {
            "arr": inp.arr,
            "renewal_date": inp.renewal_date.isoformat(),
        }
        for k, v in (
            ("health_score", inp.score),
            ("band", inp.band),
            ("churn_level", inp.churn_level),
        ):
            if v is not None:
                metrics[k] = v
        facts = NarrativeFacts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            purpose="churn_save_plan",
            as_of=workflow.now().date().isoformat(),
            csm_name=inp.csm_owner,
            csm_email=inp.csm_email,
            metrics=metrics,
            evidence=[f"Why: {inp.reason}", *inp.drivers],
        )
        plan = await playbooks.narrative(self, facts)
        await playbooks.deliver_narrative(
            plan,
            facts,
            kind="email_draft",
            occurrence="plan",
            to=inp.csm_email,
            to_name=inp.csm_owner,
            subject=f"Save plan for approval: {inp.account_name} "
            f"(decide: starter.py decide-save {inp.account_id} --approve|--decline --by NAME)",
        )
        steps.append("save plan drafted for the CSM")
        workflow.set_current_details(
            f"waiting up to {inp.approval_sla_days} days for a save-plan decision"
        )
        if not await self._wait_decision(inp.approval_sla_days, "save-plan approval SLA"):
            await playbooks.deliver_narrative(
                plan,
                facts,
                kind="email_draft",
                occurrence="escalation",
                to=playbooks.DIRECTOR_OF_CS,
                subject=f"Escalation: no decision on the save plan for {inp.account_name} "
                f"after {inp.approval_sla_days} days",
                purpose="churn_save_escalation",
            )
            steps.append("approval stalled: escalated to the Director of CS")
            workflow.set_current_details("escalated to the Director of CS; waiting for a decision")
            if not await self._wait_decision(inp.escalation_sla_days, "escalated approval SLA"):
                steps.append("no decision: playbook closed")
                await playbooks.publish(
                    self, "churn.save_decided", {"outcome": "no_decision"}, "decision"
                )
                return ChurnSaveResult(
                    account_id=inp.account_id, outcome="no_decision", steps_done=steps
                )
        d = self._decision
        assert d is not None
        steps.append(f"{'approved' if d.approve else 'declined'} by {d.decided_by}")
        if d.approve:
            await playbooks.deliver_narrative(
                plan,
                facts,
                kind="chat_alert",
                occurrence="approved",
                subject=f"Save plan approved for {inp.account_name} by {d.decided_by}: run it now",
                purpose="churn_save_approved",
            )
            steps.append("team alerted to run the save plan")
        await playbooks.publish(
            self, "churn.save_decided", {"approved": d.approve, "by": d.decided_by}, "decision"
        )
        return ChurnSaveResult(
            account_id=inp.account_id,
            outcome="approved" if d.approve else "declined",
            decided_by=d.decided_by,
            steps_done=steps,
        )
