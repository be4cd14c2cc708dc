"""Every narrative purpose, rendered from the typed facts the workflow really builds.

The facts come from ``domain/draft_facts.py`` (what workflows/playbooks.py and
workflows/children.py call) fed with a real ``AssessmentSummary`` of a real
assessment, and from ``build_qbr`` for the QBR sections: no hand-made facts,
so a fact renamed on one side fails here, not in a customer's inbox.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from domain import draft_facts, engagement_facts
from domain.actions import ActionConfig, Contact, chase_facts, new_actions
from domain.activation import FeatureGap, campaign_features
from domain.assess import assess_account
from domain.config import DEFAULT_CONFIG
from domain.engagement import AdvocacyConfig, AdvocacyInputs, FeedbackConfig, advocacy_eligibility
from domain.feedback import FeedbackItem, group_themes, quarter_of
from domain.forecast import ForecastInput, forecast_renewal
from domain.handoff import Handoff
from domain.hygiene import (
    ContractRecord,
    StakeholderRecord,
    crm_hygiene,
    hygiene_change,
    hygiene_facts,
)
from domain.messages import FeatureReleasedSignal
from domain.narrative import (
    BODY_MODELS,
    PURPOSES,
    REGISTRY,
    ActionChaseFacts,
    CrmHygieneFacts,
    MudaFacts,
    NarrativeFacts,
    RenewalBriefFacts,
    check_body,
    narrative_delivery,
    render_template,
)
from domain.qbr import QbrConfig, build_qbr
from domain.renewal_brief import renewal_brief_facts
from domain.summary import AssessmentSummary, summarize
from domain.touchpoints import Baseline, ScheduledMeeting, changes_since, parse_actions
from stack.settings import ROOT
from tests.unit.builders import AS_OF, make_facts
from tests.unit.test_qbr import data as qbr_data

HANDOFF = Handoff.model_validate(
    {
        "account_id": "acme",
        "name": "Acme Corp",
        "tier": "tier-1",
        "csm_owner": "Dana Reyes",
        "csm_email": "dana@example.com",
        "rep_owner": "Sam Okafor",
        "rep_email": "sam@example.com",
        "contract": {
            "start_date": "2025-12-30",
            "end_date": "2026-12-29",
            "arr": 60000,
            "seats_purchased": 100,
            "price_per_seat": 600,
            "licensed_modules": ["core", "reports", "dashboards"],
        },
        "stakeholders": [
            {"name": "Sam Ortiz", "email": "sam.ortiz@acme.example", "title": "CFO",
             "role": "executive_sponsor"}
        ],
    }
)  # fmt: skip


def _summary(**over: object) -> AssessmentSummary:
    facts = make_facts(**over)
    return summarize(assess_account(facts, DEFAULT_CONFIG), facts)


REFERENCE = _summary(active_users=25, active_users_prev=25)  # seed 000: 75 unused seats
RISKY = _summary(
    active_users=25,
    active_users_prev=60,
    tam_rag="RED",
    nps_latest=2,
    tickets_recent=14,
    tickets_baseline=2.0,
    max_gap_days=25,
    contract={"end_date": AS_OF.date() + timedelta(days=40)},
)
GROWING = _summary(
    active_users=98,
    active_users_prev=96,
    limit_hits={"reports": 5},
    module_usage={"core": 5000.0, "reports": 800.0, "dashboards": 600.0, "automation": 80.0},
)


def _lean(summary: AssessmentSummary, kind: str) -> NarrativeFacts:
    finding = next(f for f in summary.findings if f.kind == kind)
    return draft_facts.lean_facts(HANDOFF, summary, finding)


def workflow_facts() -> dict[str, NarrativeFacts]:
    """Per purpose, the facts as the workflow and its children build them."""
    doc = build_qbr(qbr_data())
    qbr = {s.purpose: s.facts for s in doc.sections}
    return {
        "churn_risk": draft_facts.churn_risk_facts(HANDOFF, RISKY),
        "muda_license_plan": _lean(REFERENCE, "muda"),
        "mura_adoption_plan": _lean(RISKY, "mura"),
        "muri_escalation_brief": _lean(RISKY, "muri"),
        "expansion_talk_track": draft_facts.talk_track_facts(
            account_id="acme",
            account_name="Acme Corp",
            as_of=AS_OF,
            rep_name="Sam Okafor",
            rep_email="sam@example.com",
            opportunities=GROWING.opportunities,
        ),
        "churn_save_plan": draft_facts.save_plan_facts(
            account_id="acme",
            account_name="Acme Corp",
            as_of=AS_OF,
            csm_name="Dana Reyes",
            csm_email="dana@example.com",
            reason="risk confirmed: CRITICAL churn risk, RED health",
            arr=60000,
            renewal_date=AS_OF.date() + timedelta(days=40),
            score=RISKY.score,
            band=RISKY.band,
            churn_level=RISKY.churn_level,
            drivers=RISKY.drivers,
            decision_due=AS_OF.date() + timedelta(days=3),
        ),
        "churn_post_mortem": draft_facts.post_mortem_facts(
            HANDOFF,
            HANDOFF.contract,
            AS_OF,
            reason="contract ended without renewal",
            last_score=RISKY.score,
            drivers=RISKY.drivers,
            history=["Churn handling: term ended with no renewal on file"],
        ),
        "nudge": draft_facts.nudge_facts(
            HANDOFF,
            AS_OF,
            phase_label="2 Discovery & Assessment",
            days_in_phase=21,
            sla_days=21,
            missing=["Maturity assessed"],
            nudges_sent=1,
        ),
        **qbr,
        **onboarding_facts_as_built(),
        **engagement_workflow_facts(),
    }


def onboarding_facts_as_built() -> dict[str, NarrativeFacts]:
    """Phases 1-3, as workflows/phases.py builds them (domain/onboarding_facts.py)."""
    from domain import onboarding as ob
    from domain import onboarding_facts as build

    qs = ob.questionnaire(HANDOFF)
    answers = [ob.Answer(question_id=q.question_id, level=2) for q in qs if q.dimension]
    reading = build.reading(REFERENCE)
    modules = HANDOFF.contract.licensed_modules
    result = ob.assess_maturity(qs, answers, reading, 100, modules)
    use_cases = ob.discover_use_cases(modules, reading.feature_users)
    criteria = ob.propose_criteria(HANDOFF)
    start = AS_OF.date() - timedelta(days=20)
    statuses = ob.evaluate_criteria(criteria, reading, start, AS_OF.date())
    built = [
        build.commercial_brief(HANDOFF, REFERENCE),
        build.questionnaire_draft(HANDOFF, REFERENCE, qs),
        build.maturity_draft(HANDOFF, REFERENCE, result, use_cases, answers),
        build.kickoff_draft(HANDOFF, REFERENCE, ob.stakeholder_map(HANDOFF), result),
        build.cs_plan_draft(HANDOFF, REFERENCE, criteria, statuses, start),
        onboarding_plan_as_built(start, statuses, reading.feature_users),
    ]
    return {facts.purpose: facts for facts, _ in built}


def onboarding_plan_as_built(
    start: date, statuses: list, feature_users: dict[str, int]
) -> tuple[NarrativeFacts, list]:
    """Value Activation's onboarding plan, as workflows/activation.py builds it."""
    from domain import onboarding_plan as op

    audience = op.group_audience(
        {"u1": {"reports.create", "login"}, "u2": {"core.search"}, "u3": {"reports.export"}},
        {"u1": ("ana@acme.example", "analyst"), "u2": ("bo@acme.example", "admin")},
        window_days=90,
        config=op.OnboardingPlanConfig(),
    )
    plan = op.plan_onboarding(
        tier=HANDOFF.tier,
        licensed_modules=list(HANDOFF.contract.licensed_modules),
        handed_off_on=start,
        as_of=AS_OF.date(),
        milestones_reached={"onboarding_complete"},
        first_value_on=None,
        criteria=statuses,
        feature_users=feature_users,
        audience=audience,
    )
    return op.plan_draft(HANDOFF, AS_OF, plan)


def engagement_workflow_facts() -> dict[str, NarrativeFacts]:
    """The later-phase purposes, from the rules' own outputs (workflows/engagement.py)."""
    inp = AdvocacyInputs(
        as_of=AS_OF.date(),
        band="GREEN",
        churn_level="LOW",
        first_value_reached=True,
        nps_latest=10,
        nps_latest_on=AS_OF.date() - timedelta(days=12),
        days_to_renewal=(HANDOFF.contract.end_date - AS_OF.date()).days,
    )
    cfg = AdvocacyConfig()
    decision = advocacy_eligibility(inp, cfg)
    assert decision.kind is not None
    items = [
        FeedbackItem(account_id="acme", source="ticket", at=AS_OF, text="CSV export times out"),
        FeedbackItem(
            account_id="globex", source="nps", at=AS_OF, text="Reports are slow", nps_score=5
        ),
        FeedbackItem(account_id="globex", source="ticket", at=AS_OF, text="SSO login loop"),
    ]
    digest = group_themes(quarter_of(AS_OF.date()), items, FeedbackConfig())
    before = Baseline(at=AS_OF - timedelta(days=30), score=71.0, band="GREEN", churn_level="LOW")
    now = Baseline(
        at=AS_OF,
        score=RISKY.score,
        band=RISKY.band,
        churn_level=RISKY.churn_level,
        findings=[f.title for f in RISKY.findings],
    )
    gaps = [
        FeatureGap(module="reports", event_type="reports.export", label="Report export", users=4,
                   rate=0.1, benchmark=0.3, audience=3, audience_sample=["a@acme.example", "b@acme.example"],
                   audience_roles={"analyst": 2, "admin": 1}),
        FeatureGap(module="core", event_type="core.search", label="Search", users=30, rate=0.75,
                   benchmark=0.8, audience=10, audience_sample=["c@acme.example"]),
    ]  # fmt: skip
    campaign = campaign_features(
        gaps, {}, AS_OF.date(), underused_share=QbrConfig().underused_share, interval_days=90
    )
    assert [g.event_type for g in campaign.features] == [
        "reports.export"
    ]  # search is near its benchmark
    return {
        "advocacy_ask": engagement_facts.advocacy_ask_facts(
            HANDOFF,
            AS_OF,
            inp,
            cfg,
            kind=decision.kind,
            score=84.0,
            renewal_date=HANDOFF.contract.end_date,
            first_value_on=AS_OF.date() - timedelta(days=100),
            promoter="Sam Ortiz (CFO)",
        ),
        "product_feedback_digest": engagement_facts.product_feedback_facts(
            digest, AS_OF, owner_name="Pat Lee", owner_email="pat@example.com"
        ),
        "adoption_campaign": engagement_facts.adoption_campaign_facts(
            HANDOFF,
            AS_OF,
            campaign.features,
            window_days=90,
            active_users=40,
            plays=QbrConfig().plays,
        ),
        "meeting_prep": engagement_facts.meeting_prep_facts(
            HANDOFF,
            AS_OF,
            ScheduledMeeting(
                meeting_id="M-1",
                scheduled_for=AS_OF + timedelta(hours=20),
                title="Monthly check-in",
                attendees=["Sam Ortiz"],
            ),
            changes=changes_since(before, now),
            since=before.at.date(),
            score=RISKY.score,
            band=RISKY.band,
            churn_level=RISKY.churn_level,
            renewal_date=HANDOFF.contract.end_date,
            open_risks=[f"{f.severity} {f.kind}: {f.title}" for f in RISKY.findings],
            asks=["Get the decision on the save plan by 2026-07-03"],
        ),
        "meeting_followup": engagement_facts.meeting_followup_facts(
            HANDOFF,
            AS_OF,
            kind="meeting",
            occurred_on=AS_OF.date(),
            actions=parse_actions(
                "ACTION: Dana to send the export guide\nTODO: book the QBR\nnot an action"
            ),
        ),
        "action_chase": _chase_facts(),
        "renewal_brief": _brief_facts(),
        "crm_hygiene": _hygiene_facts(),
        "feature_intro": engagement_facts.feature_intro_facts(
            HANDOFF,
            AS_OF,
            FeatureReleasedSignal(
                feature_id="F-7",
                module="reports",
                title="Scheduled exports",
                released_on=AS_OF.date(),
                summary="Send any report as a CSV on a schedule",
            ),
        ),
    }


def _chase_facts() -> ActionChaseFacts:
    cfg = ActionConfig()
    agreed = AS_OF.date() - timedelta(days=12)
    a = new_actions(
        parse_actions(
            "ACTION: Ada Park to send the user list by " + str(agreed + timedelta(days=5))
        ),
        interaction_id="I-9",
        interaction_kind="meeting",
        agreed_on=agreed,
        first_number=1,
        cfg=cfg,
    )[0]
    a.chases = 1
    return chase_facts(
        HANDOFF, AS_OF, a, cfg, to=Contact(name="Ada Park", email="ada@acme.example")
    )


def _brief_facts() -> RenewalBriefFacts:
    end = AS_OF.date() + timedelta(days=88)
    f = forecast_renewal(
        ForecastInput(
            account_id="acme",
            as_of=AS_OF.date(),
            renewal_date=end,
            days_before_end=90,
            arr=120000,
            band="AMBER",
            score=58,
            churn_level="MEDIUM",
            churn_probability=0.125,
            probability_horizon_days=365,
        )
    )
    return renewal_brief_facts(
        HANDOFF,
        AS_OF,
        checkpoint_days=90,
        days_to_renewal=88,
        forecast=f,
        score=58,
        band="AMBER",
        churn_level="MEDIUM",
        arr=120000,
        renewal_date=end,
    )


def _hygiene_facts() -> CrmHygieneFacts:
    today = AS_OF.date()
    people = [
        StakeholderRecord(stakeholder_id="s1", name="Ada Park", title="VP Ops", is_champion=True,
                          left_on=today - timedelta(days=2)),
        StakeholderRecord(stakeholder_id="s2", name="Sam Ortiz", role="executive_sponsor",
                          last_engaged_at=AS_OF - timedelta(days=95)),
    ]  # fmt: skip
    found = crm_hygiene(people, ContractRecord(start_date=today, end_date=today, arr=1, seats_purchased=1), today)  # fmt: skip
    return hygiene_facts(HANDOFF, AS_OF, hygiene_change(["not_engaged:s1"], found), len(found))


FACTS = workflow_facts()


def test_every_purpose_is_registered_with_facts_body_template_and_prompt() -> None:
    assert set(REGISTRY) == set(PURPOSES) == set(FACTS)
    for purpose, entry in REGISTRY.items():
        assert (ROOT / "prompts" / f"{entry.prompt}.md").exists(), purpose
        assert entry.facts.model_fields["purpose"].default == purpose
        assert isinstance(FACTS[purpose], entry.facts), purpose


@pytest.mark.parametrize("purpose", PURPOSES)
def test_template_renders_the_workflow_facts(purpose: str) -> None:
    facts = FACTS[purpose]
    out = render_template(facts, fallback=True, reason="no ANTHROPIC_API_KEY set")
    body = BODY_MODELS[purpose].model_validate(
        out.model_dump(include={"headline", "paragraphs", "bullets", "actions", "questions"})
    )
    assert check_body(purpose, body, facts) == [], out
    prose = " ".join([out.headline, *out.paragraphs])
    assert re.search(r"\d", prose), prose
    text = " ".join([*out.paragraphs, *out.bullets, *out.actions])
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]
    assert len(sentences) == len(set(sentences)), f"a sentence repeats: {sentences}"
    assert not re.search(r"\b(signals|evidence|details|steps|numbers) below\b", text), text
    # Every set figure of the facts is in the Key numbers table, money with its currency.
    req = narrative_delivery(
        out, idempotency_key="k", kind="email_draft", to="x@y.example", facts=facts
    )
    for k, v in facts.metrics().items():
        if k in ("arr", "annual_waste", "price_per_seat", "estimated_arr_impact", "value_usd"):
            assert f"${float(v):,.0f}" in req.markdown, (k, v)


def test_reference_muda_states_seats_dollars_and_redeployment() -> None:
    out = render_template(FACTS["muda_license_plan"])
    assert out.headline == "Acme Corp: 75 unused seats, about $45,000 a year"
    para = out.paragraphs[0]
    assert "25 of 100 seats were active in the last 30 days (25% utilization)" in para
    assert "re-deploy" in para and "182 days (2026-12-29)" in para


def test_the_mura_plan_lists_its_steps_not_the_plays_name() -> None:
    """'Targeted adoption & training plan' was listed as a step and crowded out three steps."""
    facts = FACTS["mura_adoption_plan"]
    assert facts.recommended_actions == ["Targeted adoption & training plan"]
    actions = render_template(facts).actions
    assert "Targeted adoption & training plan" not in actions
    assert len(actions) == 4 and actions[-1] == "Check weekly active users again in 4 weeks"


def test_a_renamed_or_missing_fact_is_an_error_not_an_empty_sentence() -> None:
    with pytest.raises(ValidationError):
        MudaFacts(account_id="a", account_name="A", unused_seat=75)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        draft_facts.MuriFacts(account_id="a", account_name="A")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        render_template(
            NarrativeFacts(account_id="a", account_name="A", purpose="muda_license_plan")
        )


def test_several_opportunities_make_one_talk_track() -> None:
    facts = FACTS["expansion_talk_track"]
    assert len(GROWING.opportunities) >= 2
    out = render_template(facts)
    total = sum(o.estimated_arr_impact for o in GROWING.opportunities)
    assert f"${total:,.0f}" in out.headline
    assert len(out.bullets) >= len(GROWING.opportunities)


def test_qbr_trend_needs_two_snapshots() -> None:
    one = qbr_data(score_history=qbr_data().score_history[-1:])
    out = render_template(next(s.facts for s in build_qbr(one).sections if s.key == "health"))
    assert "no trend yet" in out.paragraphs[0] and "held steady" not in out.paragraphs[0]


def test_next_qbr_is_before_the_renewal() -> None:
    near = qbr_data()  # renewal 2026-12-31, 91 days after the QBR
    steps = build_qbr(near).section("expansion").recommendations
    when = [s for s in steps if s.startswith("Schedule the next QBR")]
    assert when and date.fromisoformat(when[0].rsplit(" ", 1)[1]) < date(2026, 12, 31)
