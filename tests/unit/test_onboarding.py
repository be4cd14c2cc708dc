"""Phases 1-3 as rules (domain/onboarding.py), on hand-computed inputs."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from domain import onboarding as ob
from domain.handoff import Handoff
from domain.lifecycle import Phase
from domain.messages import CsPlanUpdate, QuestionnaireAnswersUpdate


def handoff(**over: object) -> Handoff:
    data: dict[str, object] = {
        "account_id": "acme",
        "name": "Acme Corp",
        "tier": "tier-2",
        "industry": "Logistics",
        "csm_owner": "Dana Reyes",
        "csm_email": "dana@example.com",
        "rep_owner": "Sam Okafor",
        "contract": {
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "arr": 60000,
            "seats_purchased": 100,
            "price_per_seat": 600,
            "licensed_modules": ["core", "reports"],
        },
        "stakeholders": [],
    }
    data.update(over)
    return Handoff.model_validate(data)


# ------------------------------------------------------------------ what is due


def test_deliverables_come_due_in_phase_order_and_once() -> None:
    due = ob.next_due
    assert due(Phase.DISCOVERY, {"handoff_complete"}, set(), False) == "commercial_brief"
    assert due(Phase.DISCOVERY, set(), {"commercial_brief"}, False) == "alignment_questionnaire"
    done = {"commercial_brief", "alignment_questionnaire"}
    assert due(Phase.DISCOVERY, set(), done, False) is None  # waiting for the answers
    assert due(Phase.DISCOVERY, {"questionnaire_answered"}, done, True) == "maturity_assessment"
    done |= {"maturity_assessment"}
    assert due(Phase.EXECUTIVE_ALIGNMENT, set(), done, True) == "kickoff_brief"
    done |= {"kickoff_brief"}
    assert due(Phase.EXECUTIVE_ALIGNMENT, set(), done, True) == "cs_plan_draft"
    assert due(Phase.EXECUTIVE_ALIGNMENT, {"cs_plan_approved"}, done, True) is None
    # An account imported in Value Activation owes none of them.
    assert due(Phase.VALUE_ACTIVATION, set(), set(), False) is None


# ---------------------------------------------------------------- questionnaire


def test_questionnaire_is_tailored_to_tier_modules_and_industry() -> None:
    qs = ob.questionnaire(handoff())
    ids = [q.question_id for q in qs]
    assert ids[:5] == ["goals-outcome", "goals-measure", "sponsor-engaged", "process-current", "process-rollout"]  # fmt: skip
    assert "process-training" in ids  # tier-2
    assert "reports-audience" in ids and "automation-candidates" not in ids  # licensed only
    industry = next(q for q in qs if q.question_id == "industry-constraints")
    assert "Logistics" in industry.text and industry.dimension is None
    training = next(q for q in qs if q.question_id == "process-training")
    assert "100 seats" in training.text
    t1 = [q.question_id for q in ob.questionnaire(handoff(tier="tier-1", industry=None))]
    assert "sponsor-governance" in t1 and "industry-constraints" not in t1


def test_answers_are_checked_against_the_questions_asked() -> None:
    state = ob.OnboardingState()
    a = [ob.Answer(question_id="goals-outcome", level=3)]
    with pytest.raises(ValueError, match="no alignment questionnaire was sent"):
        ob.check_answers(state, Phase.DISCOVERY, a)
    state.questions = ["goals-outcome", "sponsor-engaged"]
    ob.check_answers(state, Phase.DISCOVERY, a)
    with pytest.raises(ValueError, match=r"unknown question ids \['nope'\]"):
        ob.check_answers(state, Phase.DISCOVERY, [ob.Answer(question_id="nope", level=1)])
    with pytest.raises(ValueError, match="answered twice"):
        ob.check_answers(state, Phase.DISCOVERY, a + a)
    with pytest.raises(ValidationError):
        ob.Answer(question_id="goals-outcome", level=6)
    with pytest.raises(ValidationError):  # bounded at the edge
        QuestionnaireAnswersUpdate(answered_by="Lee", answers=[])
    with pytest.raises(ValidationError):
        QuestionnaireAnswersUpdate(answered_by="Lee", answers=a * (ob.MAX_ANSWERS + 1))
    state.answers = a
    state.answered_on = date(2026, 2, 1)
    with pytest.raises(ValueError, match="already answered on 2026-02-01"):
        ob.check_answers(state, Phase.DISCOVERY, a)


# ---------------------------------------------------------------------- rubric


def test_maturity_rubric_on_hand_computed_answers_and_telemetry() -> None:
    qs = ob.questionnaire(handoff())
    answers = [
        ob.Answer(question_id="goals-outcome", level=4),
        ob.Answer(question_id="goals-measure", level=3),  # goals: (4 + 3) / 2 = 3.5
        ob.Answer(question_id="sponsor-engaged", level=2),  # sponsorship: 2
        ob.Answer(question_id="industry-constraints", note="peak in December"),  # open: unscored
    ]  # process: not answered
    reading = ob.TelemetryReading(
        active_users=30,
        activity_window_days=30,
        seat_utilization=0.30,  # 25% <= 30% < 40%: level 3
        # reports.create by 2 users: self-serve reporting seen; core.search by 2 < 3: not
        feature_users={"core.search": 2, "reports.create": 2, "reports.export": 1},
    )
    r = ob.assess_maturity(qs, answers, reading, 100, ["core", "reports"])
    levels = {d.dimension: d.level for d in r.dimensions}
    # depth: 1 of 5 use cases (core 2, reports 3) = 20%: under a third, level 2
    assert levels == {"goals": 3.5, "sponsorship": 2.0, "process": None, "adoption": 3.0, "depth": 2.0}  # fmt: skip
    assert r.answers_scored == 3
    assert r.overall == 2.6  # (3.5 + 2 + 3 + 2) / 4 = 2.625 -> 2.6
    assert r.stage == "Defined"  # 2.6 rounds to 3
    assert r.weakest is not None and r.weakest.dimension == "sponsorship"
    adoption = next(d for d in r.dimensions if d.dimension == "adoption")
    assert adoption.basis == "30 of 100 seats active in the last 30 days, 30%"
    # A count and its noun agree (was "1 answer(s)" on every maturity page).
    basis = {d.dimension: d.basis for d in r.dimensions}
    assert basis["goals"] == "2 answers, mean level 3.5"
    assert basis["sponsorship"] == "1 answer, mean level 2"


def test_rubric_level_bounds() -> None:
    b = ob.ADOPTION_BOUNDS
    assert [ob.level_from(x, b) for x in (0.0, 0.0999, 0.10, 0.25, 0.3999, 0.40, 0.60, 1.0)] == [
        1, 1, 2, 3, 3, 4, 5, 5,
    ]  # fmt: skip
    d = ob.DEPTH_BOUNDS
    assert [ob.level_from(x, d) for x in (0.0, 0.2, 1 / 3, 0.5, 2 / 3, 0.8, 1.0)] == [
        1, 2, 3, 3, 4, 4, 5,
    ]  # fmt: skip


def test_use_case_discovery_needs_every_event_type_at_its_minimum() -> None:
    cat = {
        "core": [ob.UseCase(use_case_id="collab", label="Collaborate", event_types=["core.comment", "core.upload"], min_users=3)],
        "reports": [ob.UseCase(use_case_id="export", label="Export", event_types=["reports.export"], min_users=3)],
        "api": [ob.UseCase(use_case_id="api", label="API", event_types=["api.call"])],
    }  # fmt: skip
    found = ob.discover_use_cases(
        ["core", "reports"],
        {"core.comment": 5, "core.upload": 2, "reports.export": 3, "api.call": 9},
        cat,
    )
    assert [(u.use_case_id, u.seen, u.users) for u in found.lines] == [
        ("collab", False, 2),  # uploads by only 2 users
        ("export", True, 3),
    ]  # api is not licensed: not listed even though it is used
    assert (found.seen, found.supported) == (1, 2)
    assert ob.USE_CASES["reports"], "the shipped catalogue lists the reports module"


# -------------------------------------------------------------- stakeholder map


def test_stakeholder_gaps_no_sponsor_no_champion_single_threaded() -> None:
    one = handoff(stakeholders=[{"name": "Lee Park", "title": "IT Manager", "role": "admin"}])
    m = ob.stakeholder_map(one)
    assert (m.named, m.covered, m.missing) == (1, ["admin"], ["executive sponsor", "champion"])
    assert m.single_threaded
    assert [g.gap for g in m.gaps] == ["no_executive_sponsor", "no_champion", "single_threaded"]
    assert "Sam Okafor" in m.gaps[0].fix  # the rep introduces the sponsor

    full = handoff(
        stakeholders=[
            {"name": "Ana Ruiz", "title": "COO", "role": "Executive Sponsor"},
            {"name": "Lee Park", "role": "admin", "is_champion": True},
        ]
    )
    m = ob.stakeholder_map(full)
    assert m.gaps == [] and not m.single_threaded
    assert m.by_role == {"executive sponsor": ["Ana Ruiz"], "champion": ["Lee Park"], "admin": ["Lee Park"]}  # fmt: skip
    assert ob.stakeholder_map(handoff()).named == 0
    assert [g.gap for g in ob.stakeholder_map(handoff()).gaps] == [
        "no_executive_sponsor", "no_champion", "no_admin", "single_threaded",
    ]  # fmt: skip


def test_activation_checklist_from_handoff_and_first_scan() -> None:
    items = ob.activation_checklist(handoff(goals=["Cut reporting time by 30%"]), active_users=0)
    open_items = [i.item for i in items if not i.done]
    assert open_items == [
        "Executive sponsor named by Sales",
        "Champion named by Sales",
        "Every named stakeholder has an email on file",
        "First product use seen in telemetry",
    ]
    assert all(i.fix for i in items if not i.done)


# ------------------------------------------------------------ success criteria


def test_proposed_criteria_follow_seats_and_licensed_modules() -> None:
    labels = [c.label for c in ob.propose_criteria(handoff())]
    # 40% of 100 seats by day 60; 60% utilization by day 90; reports' first use case by
    # max(2, ceil(100 * 10%)) = 10 users by day 90. Core has no criterion of its own.
    assert labels == [
        "40 weekly active users by day 60",
        "60% of seats active by day 90",
        "reports.create used by 10 users by day 90",
    ]


def test_criteria_met_on_track_behind_with_the_numbers() -> None:
    start = date(2026, 1, 1)
    wau = ob.SuccessCriterion(metric="weekly_active_users", target=40, by_day=60)
    util = ob.SuccessCriterion(metric="seat_utilization", target=0.6, by_day=90)
    export = ob.SuccessCriterion(metric="feature_users", feature="reports.export", target=3, by_day=90)  # fmt: skip
    reading = ob.TelemetryReading(
        weekly_active_users=22, seat_utilization=0.2, feature_users={"reports.export": 3}
    )
    as_of = date(2026, 1, 31)  # day 30
    got = {s.metric: s for s in ob.evaluate_criteria([wau, util, export], reading, start, as_of)}
    # WAU: expected 40 * 30 / 60 = 20 by today; 22 >= 20: on track
    assert (got["weekly_active_users"].status, got["weekly_active_users"].expected_now) == ("on track", 20.0)  # fmt: skip
    assert got["weekly_active_users"].due_on == date(2026, 3, 2)
    assert got["weekly_active_users"].days_left == 30
    # utilization: expected 0.6 * 30 / 90 = 0.2; 0.2 >= 0.2: on track
    assert got["seat_utilization"].status == "on track"
    assert got["feature_users"].status == "met"
    assert got["weekly_active_users"].line == (
        "40 weekly active users by day 60: on track (22 now, 20 expected by today; due 2026-03-02)"
    )
    # A week later, WAU still 22 but 40 * 37 / 60 = 24.7 expected: behind.
    later = ob.evaluate_criteria([wau], reading, start, date(2026, 2, 7))[0]
    assert (later.status, later.expected_now) == ("behind", 24.7)
    # Past its day without meeting it: behind, whatever the slope.
    late = ob.evaluate_criteria([wau], reading, start, date(2026, 3, 10))[0]
    assert late.status == "behind" and late.days_left == -8
    assert "was due 2026-03-02" in late.line
    # No usage at all reads as zero users, not missing.
    none = ob.evaluate_criteria([wau], ob.TelemetryReading(), start, as_of)[0]
    assert (none.value, none.status) == (0.0, "behind")


def test_cs_plan_update_stays_compatible_and_validates_criteria() -> None:
    old = CsPlanUpdate.model_validate({"approved_by": "VP Ops", "objectives": ["Cut time"]})
    assert old.success_criteria is None  # adopt the draft's criteria
    with pytest.raises(ValidationError, match="feature is required"):
        ob.SuccessCriterion(metric="feature_users", target=3, by_day=30)
    with pytest.raises(ValidationError, match="share between 0 and 1"):
        ob.SuccessCriterion(metric="seat_utilization", target=60, by_day=30)
    with pytest.raises(ValidationError):
        ob.SuccessCriterion(metric="active_users", target=float("nan"), by_day=30)
