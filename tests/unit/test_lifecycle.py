"""The lifecycle state machine and its calendar, without Temporal."""

from datetime import UTC, date, datetime, timedelta

from domain import lifecycle as lc
from domain.lifecycle import Phase

NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def test_gates_walk_the_linear_phases_only_as_far_as_data_allows() -> None:
    moves = lc.advance(Phase.TRANSITION, {"handoff_complete", "questionnaire_answered"})
    assert [m.to_phase for m in moves] == [Phase.DISCOVERY]  # maturity assessment still missing
    done = {
        "handoff_complete",
        "questionnaire_answered",
        "maturity_assessed",
        "kickoff_held",
        "stakeholders_mapped",
        "cs_plan_approved",
        "onboarding_complete",
        "first_value",
        "first_qbr_delivered",
    }
    moves = lc.advance(Phase.TRANSITION, done)
    assert [m.to_phase for m in moves] == [
        Phase.DISCOVERY,
        Phase.EXECUTIVE_ALIGNMENT,
        Phase.VALUE_ACTIVATION,
        Phase.VALUE_PROOF,
        Phase.RELATIONSHIP_CAPITAL,
    ]
    assert "CS plan approved" in moves[2].reason


def test_relationship_capital_is_the_end_of_the_linear_path() -> None:
    assert lc.advance(Phase.RELATIONSHIP_CAPITAL, set(lc.MILESTONES)) == []


def test_loop_runs_from_phase_three_on() -> None:
    assert not lc.loop_active(Phase.DISCOVERY)
    assert lc.loop_active(Phase.EXECUTIVE_ALIGNMENT)
    assert lc.loop_active(Phase.CHURN_HANDLING)
    assert not lc.loop_active(Phase.CHURNED)


def test_churn_handling_is_entered_once() -> None:
    assert lc.enter_churn_handling(Phase.VALUE_PROOF, "notice").to_phase == Phase.CHURN_HANDLING
    assert lc.enter_churn_handling(Phase.CHURN_HANDLING, "again") is None


def test_stalled_gate_nudges_after_sla_then_every_sla() -> None:
    first = lc.next_nudge(Phase.DISCOVERY, NOW, 0, {"handoff_complete"})
    assert first is not None and first.due_at == NOW + timedelta(days=21)
    assert first.missing == ["questionnaire_answered", "maturity_assessed"]
    second = lc.next_nudge(Phase.DISCOVERY, NOW, 1, {"handoff_complete"})
    assert second.due_at == NOW + timedelta(days=42)
    assert (
        lc.next_nudge(Phase.DISCOVERY, NOW, 0, {"questionnaire_answered", "maturity_assessed"})
        is None
    )


def test_data_milestones_from_telemetry() -> None:
    assert lc.data_milestones(0.5, 12) == {"onboarding_complete", "first_value"}
    assert lc.data_milestones(0.2, 3) == set()
    assert lc.data_milestones(None, None) == set()


def test_calendar_has_renewal_windows_qbrs_and_term_end_in_order() -> None:
    cps = lc.calendar(NOW, date(2027, 6, 30), set())
    keys = [c.key for c in cps]
    assert keys[0] == "qbr:2027-Q1"
    assert cps[0].at == datetime(2027, 1, 1, tzinfo=UTC)
    assert "qbr:renewal-2027-06-30" in keys
    pre = next(c for c in cps if c.key == "qbr:renewal-2027-06-30")
    assert pre.at.date() == date(2027, 4, 1)  # 90 days before the end
    windows = [c.days_before_end for c in cps if c.kind == "renewal_window"]
    assert windows == [120, 90, 60, 30]
    assert cps[-1].kind == "renewal_outcome" and cps[-1].at.date() == date(2027, 6, 30)


def test_moving_the_end_date_creates_new_checkpoints() -> None:
    old = {c.key for c in lc.calendar(NOW, date(2027, 6, 30), set())}
    new = {c.key for c in lc.calendar(NOW, date(2027, 9, 30), set())}
    assert "renewal_window:2027-09-30:90" in new and "renewal_window:2027-09-30:90" not in old


def test_done_checkpoints_are_not_listed_again() -> None:
    cps = lc.calendar(NOW, date(2027, 6, 30), {"qbr:2027-Q1"})
    assert "qbr:2027-Q1" not in [c.key for c in cps]


def test_past_renewal_windows_collapse_to_the_latest() -> None:
    stale = lc.stale_checkpoints(NOW, date(2027, 1, 5), set())  # 45 days out
    assert stale == {"renewal_window:2027-01-05:120", "renewal_window:2027-01-05:90"}


def test_next_quarter_start_rolls_over_the_year() -> None:
    assert lc.next_quarter_start(datetime(2026, 12, 31, 23, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert lc.next_quarter_start(datetime(2027, 1, 1, tzinfo=UTC)) == datetime(
        2027, 4, 1, tzinfo=UTC
    )
    assert lc.quarter_label(date(2027, 5, 2)) == "2027-Q2"


def test_risk_is_confirmed_only_on_enough_data() -> None:
    assert lc.risk_confirmed("CRITICAL", "RED", 0.8)
    assert not lc.risk_confirmed("CRITICAL", "RED", 0.04)  # a new account with no telemetry
    assert not lc.risk_confirmed("HIGH", "RED", 0.9)
    assert not lc.risk_confirmed("CRITICAL", "AMBER", 0.9)


def test_a_quarterly_qbr_stays_due_just_after_its_timer_fires() -> None:
    fired = datetime(2027, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)
    due = [c for c in lc.calendar(fired, date(2027, 12, 31), set()) if c.at <= fired]
    assert [c.key for c in due] == ["qbr:2027-Q1"]
    # Weeks into a quarter (e.g. a handoff on Nov 21), that quarter's QBR is not owed.
    assert "qbr:2026-Q4" not in [c.key for c in lc.calendar(NOW, date(2027, 12, 31), set())]
