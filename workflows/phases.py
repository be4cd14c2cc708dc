"""Phases 1-3 of the lifecycle, orchestrated: the drafts each phase owes its CSM.

After every scan the account workflow calls ``after_scan``: the rules of
``domain/onboarding.py`` say which deliverable is due (commercial brief and
activation checklist, alignment questionnaire, maturity assessment with
use-case discovery, kickoff brief with the stakeholder map, CS plan draft),
``domain/onboarding_facts.py`` builds its facts and computed sections,
Claude (or the template) writes the words, and the draft goes out as an
account page plus a digest line (or an email draft with the digest off).
Then the approved CS plan's success criteria are evaluated against the scan.

People answer through updates: ``submit_questionnaire`` (``record_answers``)
and ``approve_cs_plan`` (``adopt_criteria``). Orchestration only: no rule here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import onboarding as ob_rules
    from domain import onboarding_facts as build
    from domain.delivery import DeliverySection
    from domain.lifecycle import Phase
    from domain.messages import CsPlanUpdate, QuestionnaireAnswersUpdate
    from domain.narrative import NarrativeFacts
    from domain.summary import AssessmentSummary
    from workflows.context import PlaybookContext
    from workflows.drafting import draft_or_digest, narrative, publish

# workflow.patched id: accounts that ran before phases 1-3 drafted anything replay without it.
PHASE_WORK = "phase-1-3-drafts"
SUBJECTS: dict[str, str] = {
    "commercial_brief": "Commercial brief and activation checklist",
    "alignment_questionnaire": "Alignment questionnaire to send",
    "maturity_assessment": "Maturity assessment and use cases",
    "kickoff_brief": "Kickoff brief: stakeholder map and expectations",
    "cs_plan_draft": "CS plan draft with success criteria",
    "onboarding_plan": "Onboarding plan to first value",  # workflows/activation.py
}


async def after_scan(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """Draft whatever phases 1-3 owe now, then track the approved criteria."""
    if not workflow.patched(PHASE_WORK):
        return
    s = ctx.s
    ob = s.onboarding
    if ob.handed_off_on is None:
        ob.handed_off_on = workflow.now().date()
    if s.phase not in (Phase.CHURN_HANDLING, Phase.CHURNED):
        for _ in ob_rules.DELIVERABLES:
            due = ob_rules.next_due(s.phase, set(s.milestones), set(ob.delivered), bool(ob.answers))
            if due is None:
                break
            ob.delivered.append(due)  # once, whatever the delivery's fate (it is survived)
            await DRAFTERS[due](ctx, summary)
    track_criteria(ctx, summary)


async def _draft(
    ctx: PlaybookContext,
    facts: NarrativeFacts,
    sections: list[DeliverySection],
) -> None:
    s = ctx.s
    n = await narrative(ctx, facts)  # type: ignore[arg-type]
    how, _ = await draft_or_digest(
        ctx,
        n,
        facts,
        category="onboarding",
        urgent=False,
        occurrence=facts.purpose,
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        subject=f"{SUBJECTS[facts.purpose]}: {s.handoff.name}",
        headline=n.headline.removeprefix(f"{s.handoff.name}: "),
        extra_sections=sections,
    )
    await publish(ctx, f"onboarding.{facts.purpose}", {"phase": s.phase.label}, facts.purpose)
    ctx.log("delivery", f"{SUBJECTS[facts.purpose].lower()} {how}")


async def commercial_brief(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    await _draft(ctx, *build.commercial_brief(ctx.s.handoff, summary))


async def alignment_questionnaire(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    s = ctx.s
    qs = ob_rules.questionnaire(s.handoff)
    s.onboarding.questions = [q.question_id for q in qs]
    await _draft(ctx, *build.questionnaire_draft(s.handoff, summary, qs))


async def maturity_assessment(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    s = ctx.s
    ob = s.onboarding
    asked = set(ob.questions)
    qs = [q for q in ob_rules.questionnaire(s.handoff) if q.question_id in asked]
    reading = build.reading(summary)
    modules = list(s.contract.licensed_modules)
    result = ob_rules.assess_maturity(qs, ob.answers, reading, s.contract.seats_purchased, modules)
    ob.maturity = result
    use_cases = ob_rules.discover_use_cases(modules, reading.feature_users)
    await _draft(ctx, *build.maturity_draft(s.handoff, summary, result, use_cases, ob.answers))
    ctx.log(
        "decision",
        f"maturity {result.overall} of 5 ({result.stage}); "
        f"{use_cases.seen} of {use_cases.supported} use cases seen in telemetry",
    )
    ctx.mark_milestone("maturity_assessed", "maturity assessment")


async def kickoff_brief(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    s = ctx.s
    smap = ob_rules.stakeholder_map(s.handoff)
    await _draft(ctx, *build.kickoff_draft(s.handoff, summary, smap, s.onboarding.maturity))
    if smap.gaps:
        ctx.log("decision", "stakeholder gaps: " + "; ".join(g.text for g in smap.gaps))
    else:
        # Every required role is named and the account is not single-threaded.
        ctx.mark_milestone("stakeholders_mapped", "stakeholder map without gaps")


async def cs_plan_draft(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    s = ctx.s
    ob = s.onboarding
    assert ob.handed_off_on is not None
    criteria = ob_rules.propose_criteria(s.handoff)
    ob.proposed_criteria = criteria
    statuses = ob_rules.evaluate_criteria(
        criteria, build.reading(summary), ob.handed_off_on, workflow.now().date()
    )
    await _draft(
        ctx, *build.cs_plan_draft(s.handoff, summary, criteria, statuses, ob.handed_off_on)
    )


DRAFTERS: dict[str, Callable[[PlaybookContext, AssessmentSummary], Awaitable[None]]] = {
    "commercial_brief": commercial_brief,
    "alignment_questionnaire": alignment_questionnaire,
    "maturity_assessment": maturity_assessment,
    "kickoff_brief": kickoff_brief,
    "cs_plan_draft": cs_plan_draft,
}


def track_criteria(ctx: PlaybookContext, summary: AssessmentSummary) -> None:
    """The approved criteria against this scan; a change of status goes on the timeline."""
    ob = ctx.s.onboarding
    if not ob.criteria or ob.handed_off_on is None:
        return
    before = {c.label: c.status for c in ob.criteria_status}
    ob.criteria_status = ob_rules.evaluate_criteria(
        ob.criteria, build.reading(summary), ob.handed_off_on, workflow.now().date()
    )
    for c in ob.criteria_status:
        if before.get(c.label) != c.status:
            ctx.log("decision", f"success criterion {c.line}")


# ------------------------------------------------------------------ updates


def check_answers(ctx: PlaybookContext, upd: QuestionnaireAnswersUpdate) -> None:
    ob_rules.check_answers(ctx.s.onboarding, ctx.s.phase, upd.answers)


def record_answers(ctx: PlaybookContext, upd: QuestionnaireAnswersUpdate) -> str:
    """Keep the answers; the next scan (now) writes the maturity assessment."""
    s = ctx.s
    ob = s.onboarding
    ob.answers = list(upd.answers)
    ob.answered_by = upd.answered_by
    ob.answered_on = workflow.now().date()
    ctx.log("update", f"questionnaire answered by {upd.answered_by}: {len(upd.answers)} answer(s)")
    ctx.mark_milestone("questionnaire_answered", f"answers from {upd.answered_by}")
    s.rescore = True
    return f"{len(upd.answers)} answer(s) recorded; the maturity assessment follows the next scan"


def adopt_criteria(ctx: PlaybookContext, upd: CsPlanUpdate) -> str:
    """The approved plan's criteria become the targets (the draft's, unless the update has its own)."""
    if not workflow.patched(PHASE_WORK):
        return ""  # a history from before phase 1-3 work: nothing to track, no extra scan
    ob = ctx.s.onboarding
    ob.criteria = list(
        upd.success_criteria if upd.success_criteria is not None else ob.proposed_criteria
    )
    ob.criteria_status = []
    ctx.s.rescore = True
    if not ob.criteria:
        return "no success criteria tracked"
    ctx.log(
        "update",
        "success criteria tracked: " + "; ".join(c.label for c in ob.criteria),
    )
    return f"{len(ob.criteria)} success criteria tracked on every scan"
