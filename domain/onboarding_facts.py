"""The typed facts and the computed sections of the phase 1-3 drafts.

Pure (no I/O, no clock: ``as_of`` comes from the summary the workflow holds).
``workflows/phases.py`` calls one builder per deliverable; each returns the
narrative's facts (what the model or the template writes from) and the
sections the rules computed (the questions with their ids, the rubric, the
use cases, the stakeholder map, the criteria with today's values), which go
below the narrative unchanged.
"""

from __future__ import annotations

from datetime import date

from domain.delivery import DeliverySection, DeliveryTable
from domain.draft_facts import common
from domain.handoff import Handoff
from domain.health import fmt_num, fmt_pct
from domain.narrative import (
    CommercialBriefFacts,
    CsPlanFacts,
    KickoffFacts,
    MaturityFacts,
    QuestionnaireFacts,
)
from domain.onboarding import (
    MUTUAL_EXPECTATIONS,
    RUBRIC,
    Answer,
    CriterionStatus,
    MaturityResult,
    Question,
    StakeholderMap,
    SuccessCriterion,
    TelemetryReading,
    UseCaseDiscovery,
    activation_checklist,
)
from domain.summary import AssessmentSummary

Built = tuple[
    CommercialBriefFacts | QuestionnaireFacts | MaturityFacts | KickoffFacts | CsPlanFacts,
    list[DeliverySection],
]


def reading(summary: AssessmentSummary) -> TelemetryReading:
    """The scan's figures phases 1-3 use."""
    return TelemetryReading(
        active_users=summary.active_users,
        activity_window_days=summary.activity_window_days,
        weekly_active_users=summary.weekly_active_users,
        seat_utilization=summary.seat_utilization,
        feature_users=dict(summary.feature_users or {}),
        adoption_window_days=summary.adoption_window_days,
    )


def _modules(handoff: Handoff) -> str:
    return ", ".join(handoff.contract.licensed_modules)


def commercial_brief(handoff: Handoff, summary: AssessmentSummary) -> Built:
    c = handoff.contract
    checklist = activation_checklist(handoff, summary.active_users)
    people = [f"{p.name} ({p.title or p.role})" for p in handoff.stakeholders]
    evidence = [
        f"Stakeholders named by Sales: {', '.join(people[:6])}"
        if people
        else "Sales named no stakeholders",
        f"Tier: {handoff.tier}" + (f"; industry: {handoff.industry}" if handoff.industry else ""),
    ]
    facts = CommercialBriefFacts(
        **common(handoff, summary.as_of),
        tier=handoff.tier,
        industry=handoff.industry,
        arr=c.arr,
        seats_purchased=c.seats_purchased,
        price_per_seat=c.price_per_seat,
        contract_start=c.start_date,
        renewal_date=summary.renewal_date or c.end_date,
        days_to_renewal=summary.days_to_renewal,
        licensed_modules=_modules(handoff),
        goals=list(handoff.goals),
        checklist_done=sum(1 for i in checklist if i.done),
        checklist_open=sum(1 for i in checklist if not i.done),
        evidence=evidence,
        recommended_actions=[i.fix for i in checklist if not i.done],
        # Sales' own notes (promises made): quoted data for the model, never instructions.
        customer_quotes=[handoff.notes] if handoff.notes else [],
    )
    sections = [
        DeliverySection(
            heading="Account activation checklist",
            table=DeliveryTable(
                columns=["Item", "Status"],
                rows=[[i.item, "done" if i.done else f"open: {i.fix}"] for i in checklist],
            ),
        )
    ]
    if handoff.notes:
        sections.append(
            DeliverySection(heading="Sales notes (promises made)", paragraphs=[handoff.notes])
        )
    return facts, sections


def questionnaire_draft(handoff: Handoff, summary: AssessmentSummary, qs: list[Question]) -> Built:
    scored = [q for q in qs if q.dimension is not None]
    facts = QuestionnaireFacts(
        **common(handoff, summary.as_of),
        tier=handoff.tier,
        industry=handoff.industry,
        licensed_modules=_modules(handoff),
        seats_purchased=handoff.contract.seats_purchased,
        questions_count=len(qs),
        scored_questions=len(scored),
        evidence=[
            f"Rubric dimensions asked: {', '.join(dict.fromkeys(RUBRIC[q.dimension].label for q in scored if q.dimension))}"
        ],
    )
    scale = "; ".join(
        f"{RUBRIC[d].label}: 1 = {RUBRIC[d].levels[1]}, 5 = {RUBRIC[d].levels[5]}"
        for d in dict.fromkeys(q.dimension for q in scored if q.dimension)
    )
    sections = [
        DeliverySection(
            heading="Questions",
            table=DeliveryTable(
                columns=["Id", "Question", "Scored on"],
                rows=[
                    [q.question_id, q.text, RUBRIC[q.dimension].label if q.dimension else "open"]
                    for q in qs
                ],
            ),
            paragraphs=[
                "Each scored answer gets a level from 1 to 5 on the maturity rubric (README, "
                f"Maturity rubric). {scale}."
            ],
        ),
        DeliverySection(
            heading="Recording the answers",
            paragraphs=[
                f"starter.py questionnaire {handoff.account_id} answers.json, with "
                '{"answered_by": "...", "answers": [{"question_id": "goals-outcome", '
                '"level": 3, "note": "..."}]}'
            ],
        ),
    ]
    return facts, sections


def maturity_draft(
    handoff: Handoff,
    summary: AssessmentSummary,
    result: MaturityResult,
    use_cases: UseCaseDiscovery,
    answers: list[Answer],
) -> Built:
    weakest = result.weakest
    facts = MaturityFacts(
        **common(handoff, summary.as_of),
        maturity_level=result.overall,
        stage=result.stage,
        answers_scored=result.answers_scored,
        seats_purchased=handoff.contract.seats_purchased,
        active_users=summary.active_users or 0,
        seat_utilization=summary.seat_utilization,
        activity_window_days=summary.activity_window_days,
        use_cases_supported=use_cases.supported,
        use_cases_seen=use_cases.seen,
        weakest_dimension=weakest.label if weakest else None,
        evidence=[
            f"{d.label}: {'level ' + fmt_num(d.level) if d.level is not None else 'not scored'} ({d.basis})"
            for d in result.dimensions
        ],
        recommended_actions=[
            f"Raise {d.label.lower()} from level {fmt_num(d.level)}: next level is "
            f"'{RUBRIC[d.dimension].levels[min(5, int(d.level or 1) + 1)]}'"
            for d in sorted(
                (d for d in result.dimensions if d.level is not None and d.level < 3),
                key=lambda d: d.level or 0,
            )
        ][:3],
    )
    sections = [
        DeliverySection(
            heading="Maturity rubric",
            table=DeliveryTable(
                columns=["Dimension", "Level (1-5)", "Source", "Basis"],
                rows=[
                    [
                        d.label,
                        fmt_num(d.level) if d.level is not None else "not scored",
                        RUBRIC[d.dimension].source,
                        d.basis,
                    ]
                    for d in result.dimensions
                ],
            ),
        ),
        DeliverySection(
            heading="Use cases of the licensed modules",
            table=DeliveryTable(
                columns=["Module", "Use case", "In telemetry", "Users"],
                rows=[
                    [u.module, u.label, "yes" if u.seen else "not yet", str(u.users)]
                    for u in use_cases.lines
                ],
            ),
        ),
    ]
    notes = [f"{a.question_id}: {a.note}" for a in answers if a.note]
    if notes:
        sections.append(DeliverySection(heading="What the customer said", bullets=notes[:20]))
    return facts, sections


def kickoff_draft(
    handoff: Handoff,
    summary: AssessmentSummary,
    smap: StakeholderMap,
    maturity: MaturityResult | None,
) -> Built:
    facts = KickoffFacts(
        **common(handoff, summary.as_of),
        stakeholders_named=smap.named,
        roles_covered=", ".join(smap.covered) or None,
        roles_missing=", ".join(smap.missing) or None,
        stakeholder_gaps=len(smap.gaps),
        maturity_level=maturity.overall if maturity else None,
        stage=maturity.stage if maturity else None,
        goals=list(handoff.goals),
        evidence=[*[g.text for g in smap.gaps], *smap.people][:8],
        recommended_actions=[g.fix for g in smap.gaps],
    )
    exp = MUTUAL_EXPECTATIONS[handoff.tier]
    sections = [
        DeliverySection(
            heading="Stakeholder map",
            table=DeliveryTable(
                columns=["Role", "Covered by"],
                rows=[
                    [role, ", ".join(smap.by_role.get(role, [])) or "nobody"]
                    for role in ("executive sponsor", "champion", "admin", "economic buyer")
                ],
            ),
            bullets=[f"Gap: {g.text}. Fix: {g.fix}" for g in smap.gaps],
        ),
        DeliverySection(
            heading="Mutual expectations",
            table=DeliveryTable(
                columns=["We commit to", "We ask you for"],
                rows=[
                    [w, y]
                    for w, y in zip(
                        exp["we"] + [""] * (len(exp["you"]) - len(exp["we"])),
                        exp["you"] + [""] * (len(exp["we"]) - len(exp["you"])),
                        strict=True,
                    )
                ],
            ),
        ),
    ]
    return facts, sections


def _value(status: CriterionStatus, value: float) -> str:
    return fmt_pct(value) if status.metric == "seat_utilization" else fmt_num(value)


def criteria_table(statuses: list[CriterionStatus]) -> DeliverySection:
    """The criteria with today's value and status (CS plan draft, and wherever they are shown)."""
    return DeliverySection(
        heading="Success criteria, measured from telemetry",
        table=DeliveryTable(
            columns=["Criterion", "Due", "Today", "Status"],
            rows=[[s.label, str(s.due_on), _value(s, s.value), s.status] for s in statuses],
        ),
    )


def cs_plan_draft(
    handoff: Handoff,
    summary: AssessmentSummary,
    criteria: list[SuccessCriterion],
    statuses: list[CriterionStatus],
    handed_off_on: date,
) -> Built:
    facts = CsPlanFacts(
        **common(handoff, summary.as_of),
        criteria_count=len(criteria),
        seats_purchased=handoff.contract.seats_purchased,
        handed_off_on=handed_off_on,
        goals=list(handoff.goals),
        criteria=[c.label for c in criteria],
    )
    sections = [
        criteria_table(statuses),
        DeliverySection(
            heading="Approving the plan",
            paragraphs=[
                f"starter.py approve-plan {handoff.account_id} plan.json with approved_by, "
                "objectives and success_criteria (each: metric, target, by_day, feature for "
                "feature_users); leave success_criteria out to adopt the criteria above."
            ],
        ),
    ]
    return facts, sections
