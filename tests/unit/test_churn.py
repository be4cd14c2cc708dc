"""Churn rules: both triggers, every behavioral flag at its edge, every level rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from domain.churn import CHURN_LEVELS, ChurnRisk, assess_churn, churn_level_rank
from domain.health import score_health
from tests.unit.builders import AS_OF, FORMULA_CONFIG, empty_facts, make_contract, make_facts

C = FORMULA_CONFIG


def churn(
    band: str | None = "USE_SCORE", score: float | None = None, **overrides: Any
) -> ChurnRisk:
    """assess_churn on make_facts(**overrides); band/score forced when given."""
    facts = make_facts(**overrides)
    snap = score_health(facts, C)
    if band != "USE_SCORE":
        snap = snap.model_copy(update={"band": band, "score": score})
    return assess_churn(facts, snap, C)


def codes(risk: ChurnRisk) -> list[str]:
    return [f.code for f in risk.flags]


def renewal_in(days: int) -> dict[str, Any]:
    return {"end_date": AS_OF.date() + timedelta(days=days)}


def test_healthy_account_is_low_with_no_flags() -> None:
    risk = churn()
    assert risk.level == "LOW"
    assert risk.flags == []
    assert risk.days_to_renewal == 182
    assert risk.renewal_date == date(2026, 12, 29)
    assert risk.contract_ended is False
    assert risk.summary == "LOW: health GREEN (97); no churn trigger fired"


# ----------------------------------------------------------- trigger 1: proximity


@pytest.mark.parametrize("days", [0, 30, 60])
def test_amber_within_60_days_is_high(days: int) -> None:
    risk = churn("AMBER", 58.2, contract=renewal_in(days))
    assert codes(risk) == ["renewal_proximity"]
    assert risk.flags[0].trigger == "contract_proximity"
    assert f"health AMBER (58.2) with renewal in {days} day" in risk.flags[0].evidence
    assert risk.level == "HIGH"


def test_amber_61_days_out_does_not_trigger() -> None:
    risk = churn("AMBER", 58.2, contract=renewal_in(61))
    assert risk.flags == [] and risk.level == "LOW"


def test_red_within_60_days_is_critical() -> None:
    risk = churn("RED", 30.0, contract=renewal_in(45))
    assert codes(risk) == ["renewal_proximity"]
    assert risk.level == "CRITICAL"


def test_green_within_60_days_does_not_trigger() -> None:
    risk = churn(contract=renewal_in(45))
    assert risk.flags == [] and risk.level == "LOW"


def test_proximity_through_real_score() -> None:
    # A real AMBER score (TAM AMBER caps at 69) with renewal in 30 days.
    risk = churn(tam_rag="AMBER", contract=renewal_in(30))
    assert risk.band == "AMBER" and risk.score == 69.0
    assert risk.level == "HIGH"


def test_contract_already_ended_is_said_and_high() -> None:
    risk = churn(contract={"end_date": date(2026, 6, 18)})
    assert risk.contract_ended is True
    assert risk.days_to_renewal == -12
    assert codes(risk) == ["contract_ended"]
    assert "contract ended on 2026-06-18, 12 days before as_of" in risk.flags[0].evidence
    assert risk.level == "HIGH"


def test_no_band_cannot_trigger_proximity() -> None:
    facts = empty_facts(active_users_prev=None)
    snap = score_health(facts, C)
    risk = assess_churn(facts, snap, C)
    assert risk.band is None and risk.level == "LOW" and risk.days_to_renewal is None


# --------------------------------------------------------- trigger 2: behavioral


def test_usage_drop_edge() -> None:
    risk = churn(usage_quantity=700.0)  # exactly 30% down
    assert codes(risk) == ["usage_drop"]
    assert risk.flags[0].trigger == "behavioral"
    assert risk.flags[0].weight == 2
    assert risk.flags[0].evidence == (
        "usage fell 30% in the last 30 days: 700 units vs 1,000 in the 30 days before"
    )
    assert churn(usage_quantity=701.0).flags == []


def test_active_user_drop_edge_and_small_base() -> None:
    risk = churn(active_users=60)  # 80 -> 60: exactly 25%
    assert codes(risk) == ["active_user_drop"]
    assert risk.flags[0].evidence == "active users fell from 80 to 60 (25% fewer) in 30 days"
    assert churn(active_users=61).flags == []
    # previous window below min_prev_users (5): 4 -> 1 is noise
    assert churn(active_users=1, active_users_prev=4).flags == []


def test_champion_left_within_window() -> None:
    risk = churn(champion_left_on=date(2026, 5, 2), champion_active=False)
    assert codes(risk) == ["champion_left"]
    assert "champion left on 2026-05-02 (59 days ago)" in risk.flags[0].evidence
    edge = AS_OF.date() - timedelta(days=180)
    assert codes(churn(champion_left_on=edge)) == ["champion_left"]
    assert churn(champion_left_on=edge - timedelta(days=1)).flags == []


def test_nps_detractor() -> None:
    risk = churn(nps_latest=6)
    assert codes(risk) == ["nps_detractor"]
    assert risk.flags[0].weight == 1
    assert "latest NPS response 6/10" in risk.flags[0].evidence
    assert churn(nps_latest=7).flags == []
    # a detractor answer older than the NPS window is not current evidence
    assert churn(nps_latest=2, nps_latest_at=AS_OF - timedelta(days=366)).flags == []
    # no latest response: the window mean decides
    assert codes(churn(nps_latest=None, nps_mean=5.5)) == ["nps_detractor"]


def test_invoice_overdue_edge() -> None:
    risk = churn(invoices_open_overdue=1, max_days_overdue=30, overdue_amount=5000.0)
    assert codes(risk) == ["invoice_overdue"]
    assert (
        risk.flags[0].evidence == "1 invoice overdue, the oldest 30 days past due ($5,000 overdue)"
    )
    assert churn(invoices_open_overdue=1, max_days_overdue=29).flags == []


def test_escalations_support_plus_tam() -> None:
    risk = churn(escalations=1, tam_escalations=1)
    assert codes(risk) == ["escalations"]
    assert risk.flags[0].evidence == "2 escalations in the last 180 days (1 support, 1 TAM)"
    assert churn(escalations=1, tam_escalations=0).flags == []


# ------------------------------------------------------------------------ levels


def test_one_point_is_medium() -> None:
    risk = churn(nps_latest=3)
    assert risk.behavioral_points == 1 and risk.level == "MEDIUM"


def test_two_points_is_medium() -> None:
    risk = churn(usage_quantity=500.0)
    assert risk.behavioral_points == 2 and risk.level == "MEDIUM"


def test_three_points_is_high() -> None:
    risk = churn(usage_quantity=500.0, nps_latest=3)
    assert risk.behavioral_points == 3 and risk.level == "HIGH"


def test_five_points_is_critical_regardless_of_renewal() -> None:
    risk = churn(usage_quantity=500.0, active_users=40, nps_latest=3)
    assert risk.days_to_renewal == 182
    assert risk.behavioral_points == 5 and risk.level == "CRITICAL"
    assert all(f.trigger == "behavioral" for f in risk.flags)


def test_red_band_alone_is_medium_and_with_a_flag_high() -> None:
    assert churn("RED", 40.0).level == "MEDIUM"
    assert churn("RED", 40.0, nps_latest=3).level == "HIGH"


def test_amber_far_from_renewal_with_one_flag_is_medium() -> None:
    assert churn("AMBER", 60.0, nps_latest=3).level == "MEDIUM"


def test_thresholds_are_configuration() -> None:
    config = C.with_overrides({"churn": {"renewal_days": 90, "flag_weights": {"nps_detractor": 3}}})
    facts = make_facts(nps_latest=3, contract=renewal_in(75))
    snap = score_health(facts, config).model_copy(update={"band": "AMBER", "score": 60.0})
    risk = assess_churn(facts, snap, config)
    assert codes(risk) == ["renewal_proximity", "nps_detractor"]
    assert risk.behavioral_points == 3 and risk.level == "HIGH"


def test_summary_lists_evidence() -> None:
    risk = churn("RED", 30.0, contract=renewal_in(45), nps_latest=3)
    assert risk.summary.startswith("CRITICAL: health RED (30); health RED (30) with renewal in 45")
    assert "latest NPS response 3/10" in risk.summary


def test_churn_level_rank() -> None:
    assert [churn_level_rank(x) for x in CHURN_LEVELS] == [0, 1, 2, 3]
    assert churn_level_rank("HIGH") > churn_level_rank("MEDIUM")
    with pytest.raises(ValueError, match="unknown churn level 'SEVERE'"):
        churn_level_rank("SEVERE")


def test_churn_risk_round_trips_through_json() -> None:
    risk = churn("RED", 30.0, contract=renewal_in(45), nps_latest=3)
    assert ChurnRisk.model_validate_json(risk.model_dump_json()) == risk
    assert risk.rank == 3


# ------------------------------------------------------------------ the notice


def test_a_known_notice_is_critical_with_its_dates_even_for_a_green_account() -> None:
    risk = churn(contract={"notice_on": date(2026, 6, 1)})
    assert risk.band == "GREEN"  # the score cannot see it; the notice is the fact
    assert risk.level == "CRITICAL"
    assert codes(risk) == ["notice_given"]
    assert risk.flags[0].trigger == "notice"
    assert risk.flags[0].evidence == "customer gave notice on 2026-06-01; contract ends 2026-12-29"
    assert "customer gave notice on 2026-06-01" in risk.summary


def test_a_notice_dated_after_as_of_is_not_known_yet() -> None:
    risk = churn(contract={"notice_on": AS_OF.date() + timedelta(days=1)})
    assert risk.level == "LOW" and risk.flags == []


def test_notice_on_as_of_day_counts() -> None:
    assert churn(contract={"notice_on": AS_OF.date()}).level == "CRITICAL"


# ------------------------------------------------------------------- unscored


def test_unscored_band_fires_no_proximity_trigger_and_is_not_red() -> None:
    # A new account with only a contract ending in 30 days and a low forced score:
    # unscored, so neither "RED near renewal" nor "RED alone" applies.
    facts = empty_facts(contract=make_contract(end_date=AS_OF.date() + timedelta(days=30)))
    snap = score_health(facts, C).model_copy(update={"score": 20.0})
    assert snap.band == "UNSCORED"
    risk = assess_churn(facts, snap, C)
    assert risk.level == "LOW" and risk.flags == []
    assert risk.summary.startswith("LOW: health UNSCORED (4% coverage)")


def test_unscored_account_still_gets_its_notice_and_behavioral_flags() -> None:
    facts = empty_facts(
        contract=make_contract(notice_on=AS_OF.date() - timedelta(days=3)),
        nps_latest=2,
        nps_latest_at=AS_OF - timedelta(days=5),
    )
    snap = score_health(facts, C)
    assert snap.band == "UNSCORED"
    risk = assess_churn(facts, snap, C)
    assert risk.level == "CRITICAL"
    assert codes(risk) == ["notice_given", "nps_detractor"]
