"""Child workflows: QBR, Sales expansion dispatch, churn save playbook.

Each is started by AccountLifecycleWorkflow, by reference, with a
deterministic id (see workflows/playbooks.py) and runs to completion on its
own. Each builds its own ``PlaybookContext`` for the drafting building blocks
(workflows/drafting.py); none imports the account workflow or the playbooks.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import draft_facts
    from domain import lifecycle as lc
    from domain.digest import DigestItem, DraftPolicy, page_link
    from domain.messages import DecisionUpdate
    from domain.qbr import (
        QbrDocument,
        QbrRequest,
        apply_narratives,
        narrative_facts,
        qbr_cover_note_request,
        qbr_page_request,
    )
    from domain.summary import OpportunityLine
    from workflows import activity_defs as act
    from workflows import drafting
    from workflows.child_models import (
        ChurnSaveInput,
        ChurnSaveResult,
        ExpansionInput,
        ExpansionResult,
        QbrInput,
        QbrResult,
    )
    from workflows.context import PlaybookContext

DIRECTOR_OF_CS = "director-of-cs@example.com"


def _context(account_id: str, llm_task_queue: str, timeout_seconds: int) -> PlaybookContext:
    return PlaybookContext(
        account_id=account_id,
        llm_task_queue=llm_task_queue,
        task_queue=workflow.info().task_queue,
        activity_timeout=timedelta(seconds=timeout_seconds),
    )

    def note_failure(self, text: str) -> None:
        """A failed delivery or event (playbooks.survived): say so where an operator looks."""
        workflow.logger.warning("%s", text)
        workflow.set_current_details(f"carried on after a failed step: {text}")


@workflow.defn
class QBRWorkflow:
    @workflow.run
    async def run(self, inp: QbrInput) -> QbrResult:
        ctx = _context(inp.account_id, inp.llm_task_queue, inp.activity_timeout_seconds)
        workflow.set_current_details(f"assembling QBR {inp.quarter_label} for {inp.account_name}")
        doc: QbrDocument = await workflow.execute_activity(
            act.prepare_qbr,
            QbrRequest(
                account_id=inp.account_id,
                quarter_label=lc.quarter_label(inp.as_of.date()),
                as_of=inp.as_of,
                reason=inp.reason,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=drafting.DELIVERY_RETRY,
            summary=f"gather health history, findings and adoption for QBR {inp.quarter_label}",
        )
        workflow.set_current_details(f"writing the four QBR narratives for {inp.account_name}")
        sections = narrative_facts(doc)
        written = await asyncio.gather(*(drafting.narrative(ctx, f) for f in sections.values()))
        narratives = dict(zip(sections, written, strict=True))
        doc = apply_narratives(doc, narratives)
        if inp.success_criteria:
            doc = doc.model_copy(update={"plan_criteria": inp.success_criteria})
        workflow.set_current_details(f"delivering QBR {inp.quarter_label}")
        page = await drafting.deliver(ctx, qbr_page_request(doc, drafting.key("qbr", "page")))
        cover = None
        policy = inp.policy
        if policy is not None and policy.digest != "off" and workflow.patched(drafting.DIGEST):
            await workflow.execute_activity(
                act.add_digest_item,
                DigestItem(
                    item_key=drafting.key("qbr_ready"),
                    recipient=inp.csm_email,
                    recipient_name=inp.csm_owner,
                    account_id=inp.account_id,
                    account_name=inp.account_name,
                    category="qbr",
                    headline=f"{doc.title.split(': ', 1)[-1]} ready for review: {doc.summary}",
                    link=page_link(page.target),
                    as_of=workflow.now(),
                ),
                start_to_close_timeout=ctx.activity_timeout,
                retry_policy=drafting.DELIVERY_RETRY,
                summary=f"digest line for {inp.csm_email}: QBR ready",
            )
        else:
            cover = await drafting.deliver(
                ctx,
                qbr_cover_note_request(
                    doc,
                    drafting.key("qbr_cover_note"),
                    to=inp.csm_email,
                    to_name=inp.csm_owner,
                    page_link=page.target,
                ),
            )
        await drafting.publish(
            ctx,
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
class ExpansionDispatchWorkflow:
    """Runs on the Sales task queue: records the opportunity and drafts the rep's email."""

    @workflow.run
    async def run(self, inp: ExpansionInput) -> ExpansionResult:
        ctx = _context(inp.account_id, inp.llm_task_queue, inp.activity_timeout_seconds)
        await drafting.publish(
            ctx, "expansion.dispatched", inp.model_dump(mode="json"), inp.opportunity_id
        )
        opportunities = inp.opportunities or [
            OpportunityLine(
                opportunity_id=inp.opportunity_id,
                opportunity_type=inp.opportunity_type,
                key=inp.opportunity_id.rsplit(":", 1)[-1],
                estimated_arr_impact=inp.estimated_arr_impact,
                evidence=inp.evidence,
                talk_track=inp.talk_track,
            )
        ]
        facts = draft_facts.talk_track_facts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            as_of=workflow.now(),
            rep_name=inp.rep_owner,
            rep_email=inp.rep_email,
            opportunities=opportunities,
        )
        n = await drafting.narrative(ctx, facts)
        kinds = ", ".join(dict.fromkeys(o.opportunity_type for o in opportunities))
        policy = inp.policy or DraftPolicy(digest="off")  # a dispatch from before digests
        ctx.policy = policy
        how, draft = await drafting.draft_or_digest(
            ctx,
            n,
            facts,
            category="opportunity",
            urgent=False,
            occurrence=inp.opportunity_id,
            to=inp.rep_email,
            to_name=inp.rep_owner,
            subject=f"Expansion ({kinds}, ~${facts.estimated_arr_impact:,.0f} ARR): {inp.account_name}",
            headline=n.headline.removeprefix(f"{inp.account_name}: ") + " (talk track on the page)",
        )
        return ExpansionResult(
            opportunity_id=inp.opportunity_id, draft=draft, in_digest=how == "in the digest"
        )


@workflow.defn
class ChurnSaveWorkflow:
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
        ctx = _context(inp.account_id, inp.llm_task_queue, inp.activity_timeout_seconds)
        steps: list[str] = []
        now = workflow.now()
        facts = draft_facts.save_plan_facts(
            account_id=inp.account_id,
            account_name=inp.account_name,
            as_of=now,
            csm_name=inp.csm_owner,
            csm_email=inp.csm_email,
            reason=inp.reason,
            arr=inp.arr,
            renewal_date=inp.renewal_date,
            score=inp.score,
            band=inp.band,
            churn_level=inp.churn_level,
            drivers=inp.drivers,
            decision_due=(now + timedelta(days=inp.approval_sla_days)).date(),
        )
        plan = await drafting.narrative(ctx, facts)
        await drafting.deliver_narrative(
            ctx,
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
            await drafting.deliver_narrative(
                ctx,
                plan,
                facts,
                kind="email_draft",
                occurrence="escalation",
                to=DIRECTOR_OF_CS,
                subject=f"Escalation: no decision on the save plan for {inp.account_name} "
                f"after {inp.approval_sla_days} days",
                purpose="churn_save_escalation",
            )
            steps.append("approval stalled: escalated to the Director of CS")
            workflow.set_current_details("escalated to the Director of CS; waiting for a decision")
            if not await self._wait_decision(inp.escalation_sla_days, "escalated approval SLA"):
                steps.append("no decision: playbook closed")
                await drafting.publish(
                    ctx, "churn.save_decided", {"outcome": "no_decision"}, "decision"
                )
                return ChurnSaveResult(
                    account_id=inp.account_id, outcome="no_decision", steps_done=steps
                )
        d = self._decision
        assert d is not None
        steps.append(f"{'approved' if d.approve else 'declined'} by {d.decided_by}")
        if d.approve:
            await drafting.deliver_narrative(
                ctx,
                plan,
                facts,
                kind="chat_alert",
                occurrence="approved",
                subject=f"Save plan approved for {inp.account_name} by {d.decided_by}: run it now",
                purpose="churn_save_approved",
            )
            steps.append("team alerted to run the save plan")
        await drafting.publish(
            ctx, "churn.save_decided", {"approved": d.approve, "by": d.decided_by}, "decision"
        )
        return ChurnSaveResult(
            account_id=inp.account_id,
            outcome="approved" if d.approve else "declined",
            decided_by=d.decided_by,
            steps_done=steps,
        )
