"""Health scoring: every sub-score formula by hand, renormalization, bands, TAM, drivers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.config import SIGNALS, HealthConfig
from domain.facts import DataIssue, Windows
from domain.health import (
    HealthSnapshot,
    a_or_an,
    band_for,
    feature_adoption_scorecard,
    fmt_money,
    fmt_num,
    lerp,
    round_half_up,
    score_health,
    whole_days_between,
)
from tests.unit.builders import (
    AS_OF,
    AT_BENCHMARK,
    FORMULA_CONFIG,
    empty_facts,
    make_contract,
    make_facts,
)

C = FORMULA_CONFIG


def sub(name: str, **overrides: object) -> float | None:
    signal = score_health(make_facts(**overrides), C).signal(name)
    assert signal is not None
    return signal.sub_score


def only(signal: str) -> HealthConfig:
    """A config that puts all the weight on one signal."""
    return C.with_overrides({"weights": {s: (1 if s == signal else 0) for s in SIGNALS}})


# --------------------------------------------------------------------------- helpers


def test_round_half_up_is_decimal_not_binary() -> None:
    # round(44.95, 1) is 44.9 in binary floating point; the score must say 45.0.
    assert round_half_up(44.95) == 45.0
    assert round_half_up(93.75) == 93.8
    assert round_half_up(69.94) == 69.9
    assert round_half_up(0.05) == 0.1
    assert round_half_up(12.3456, 2) == 12.35


def test_lerp_clamps_and_interpolates() -> None:
    assert lerp(-5, 0, 100, 10, 0) == 100
    assert lerp(15, 0, 100, 10, 0) == 0
    assert lerp(2.5, 0, 100, 10, 0) == 75


def test_formatting() -> None:
    assert fmt_num(1234) == "1,234"
    assert fmt_num(12.0) == "12"
    assert fmt_num(12.345) == "12.3"
    assert fmt_num(None) == "n/a"
    assert fmt_money(45000) == "$45,000"


def test_whole_days_floor_and_naive_as_utc() -> None:
    assert whole_days_between(AS_OF, AS_OF - timedelta(days=75, hours=1)) == 75
    assert whole_days_between(AS_OF, AS_OF - timedelta(hours=23)) == 0
    naive = (AS_OF - timedelta(days=3)).replace(tzinfo=None)
    assert whole_days_between(AS_OF, naive) == 3


# -------------------------------------------------------------------------- baseline


def test_baseline_account_scores_97_green_full_coverage() -> None:
    snap = score_health(make_facts(), C)
    subs = {s.name: s.sub_score for s in snap.signals}
    assert subs == {**dict.fromkeys(SIGNALS, 100.0), "usage_trend": 75.0}
    # (88 * 100 + 12 * 75) / 100
    assert snap.score == 97.0
    assert snap.band == "GREEN"
    assert snap.coverage == 1.0
    assert snap.config_version == C.version
    assert snap.as_of == AS_OF
    assert snap.drivers == []
    assert snap.tam_adjustment is None
    assert [s.name for s in snap.signals] == list(SIGNALS)
    assert sum(s.effective_weight for s in snap.signals) == pytest.approx(1.0)


# ------------------------------------------------------------------ feature_adoption


def test_feature_adoption_all_at_benchmark_is_100() -> None:
    snap = score_health(make_facts(), C)
    fa = snap.signal("feature_adoption")
    assert fa is not None and fa.sub_score == 100.0
    assert fa.value == 8 and fa.value_label == "licensed features in use"
    assert "8 of 8 licensed features used in the last 90 days by 100 users" in fa.detail


def test_feature_adoption_half_of_benchmark_is_50() -> None:
    # Twice the users in the window, same feature users: every rate is half its benchmark.
    assert sub("feature_adoption", adoption_users=200) == 50.0


def test_feature_adoption_unused_module_counts_zero() -> None:
    users = {k: v for k, v in AT_BENCHMARK.items() if not k.startswith("reports.")}
    # 5 features at benchmark, the 3 reports features unused: 5 / 8
    assert sub("feature_adoption", feature_users=users) == 62.5


def test_feature_adoption_partial_and_half_up_rounding() -> None:
    # core.search 40 of 100 users vs 0.8 benchmark: attainment 0.5; others 1 -> 7.5 / 8 = 93.75
    assert sub("feature_adoption", feature_users={**AT_BENCHMARK, "core.search": 40}) == 93.8


def test_feature_adoption_above_benchmark_is_capped() -> None:
    assert sub("feature_adoption", feature_users={**AT_BENCHMARK, "core.search": 100}) == 100.0


def test_feature_adoption_fallback_denominator_is_largest_feature() -> None:
    # No adoption_users: N = max(feature users) = 10. core only:
    # search 10/10 vs 0.8 -> 1; comment 2/10 = 0.2 vs 0.5 -> 0.4; upload 0 -> 0. (1.4 / 3)
    value = sub(
        "feature_adoption",
        adoption_users=None,
        feature_users={"core.search": 10, "core.comment": 2},
        contract={"licensed_modules": ["core"]},
    )
    assert value == 46.7


def test_feature_adoption_only_licensed_modules_count() -> None:
    # Heavy use of an unlicensed module does not lift adoption; it is an expansion signal.
    users = {**AT_BENCHMARK, "automation.run": 90}
    assert sub("feature_adoption", feature_users=users) == 100.0


def test_feature_adoption_without_contract_uses_core_and_seen_modules() -> None:
    # core (3 features at benchmark) + dashboards seen (2 at benchmark); reports unused
    # and therefore not assumed licensed.
    users = {k: v for k, v in AT_BENCHMARK.items() if not k.startswith("reports.")}
    assert sub("feature_adoption", contract=None, feature_users=users) == 100.0


def test_feature_adoption_empty_dict_is_data_and_zero() -> None:
    assert sub("feature_adoption", feature_users={}, adoption_users=0) == 0.0


def test_feature_adoption_missing_is_left_out() -> None:
    assert sub("feature_adoption", feature_users=None) is None
    assert sub("feature_adoption", contract={"licensed_modules": ["legacy"]}) is None


def test_feature_adoption_scorecard_rates() -> None:
    card = {
        f.event_type: f
        for f in feature_adoption_scorecard(
            make_facts(feature_users={**AT_BENCHMARK, "core.comment": 20, "automation.run": 5}),
            C,
        )
    }
    assert card["core.comment"].rate == 0.2
    assert card["core.comment"].attainment == 0.4
    assert card["core.comment"].status == "below"
    assert card["core.search"].status == "at_or_above"
    assert card["automation.run"].licensed is False
    assert card["api.call"].status == "unused"


# ------------------------------------------------------------------ support_tickets


@pytest.mark.parametrize(
    ("recent", "baseline", "sentiment", "urgent", "expected"),
    [
        (2, 2.0, 1.0, 0, 100.0),  # at baseline, happy
        (4, 2.0, 0.0, 0, 50.0),  # r=2 -> volume 50; neutral sentiment 50
        (5, 2.0, 0.5, 0, 45.0),  # r=2.5 -> volume 25; sentiment 75: 0.6*25 + 0.4*75
        (4, 2.0, None, 0, 50.0),  # no sentiment: volume only
        (2, 0.5, None, 0, 50.0),  # baseline floored at 1 -> r=2
        (2, 2.0, 1.0, 2, 80.0),  # 2 urgent open: -10 each
        (9, 3.0, -1.0, 1, 0.0),  # r=3 -> 0, angry, urgent: floored at 0
        (0, 2.0, None, 0, 100.0),  # no tickets this month
    ],
)
def test_support_tickets_formula(
    recent: int, baseline: float, sentiment: float | None, urgent: int, expected: float
) -> None:
    value = sub(
        "support_tickets",
        tickets_recent=recent,
        tickets_baseline=baseline,
        ticket_sentiment_recent=sentiment,
        urgent_open=urgent,
    )
    assert value == expected


def test_support_tickets_missing_is_left_out() -> None:
    assert sub("support_tickets", tickets_recent=None) is None


# ------------------------------------------------------------------ last_interaction


@pytest.mark.parametrize(
    ("days", "expected"), [(0, 100.0), (10, 100.0), (30, 100.0), (75, 50.0), (120, 0.0), (300, 0.0)]
)
def test_last_interaction_formula(days: int, expected: float) -> None:
    at = AS_OF - timedelta(days=days)
    assert sub("last_interaction", last_meaningful_interaction_at=at) == expected


def test_last_interaction_missing_or_future_is_left_out() -> None:
    assert sub("last_interaction", last_meaningful_interaction_at=None) is None
    future = make_facts(last_meaningful_interaction_at=AS_OF + timedelta(days=1))
    snap = score_health(future, C)
    assert snap.signal("last_interaction").sub_score is None  # type: ignore[union-attr]
    assert any(i.table == "interactions" for i in snap.data_issues)


# ------------------------------------------------------------------ login_frequency


@pytest.mark.parametrize(
    ("login_days", "expected"), [(0, 0.0), (9, 50.0), (18, 100.0), (30, 100.0)]
)
def test_login_frequency_formula(login_days: int, expected: float) -> None:
    # 0.6 * 30 = 18 login days scores 100
    assert sub("login_frequency", login_days=login_days) == expected


def test_login_frequency_scales_with_window() -> None:
    # 60-day window: 36 days for 100; 18 -> 50
    assert sub("login_frequency", windows=Windows(activity_days=60), login_days=18) == 50.0


def test_login_frequency_missing_is_left_out() -> None:
    assert sub("login_frequency", login_days=None) is None


# ----------------------------------------------------------------------- usage_trend


@pytest.mark.parametrize(
    ("q", "q_prev", "u", "u_prev", "expected"),
    [
        (1000.0, 1000.0, 80, 80, 75.0),  # flat
        (1100.0, 1000.0, 88, 80, 85.0),  # +10%: 75 + 25 * 0.1 / 0.25
        (800.0, 1000.0, 80, 80, 60.0),  # mean(-20%, 0) = -10%: 75 * (1 - 0.1 / 0.5)
        (500.0, 1000.0, 40, 80, 0.0),  # -50%
        (1300.0, 1000.0, 100, 80, 100.0),  # +30% / +25%
        (500.0, 0.0, 10, 0, 100.0),  # from nothing to something: +100%
        (0.0, 0.0, 0, 0, 0.0),  # no usage in either window: -100%
    ],
)
def test_usage_trend_formula(q: float, q_prev: float, u: int, u_prev: int, expected: float) -> None:
    value = sub(
        "usage_trend",
        usage_quantity=q,
        usage_quantity_prev=q_prev,
        active_users=u,
        active_users_prev=u_prev,
    )
    assert value == expected


def test_usage_trend_users_only() -> None:
    # quantity missing: users 60 vs 80 = -25% -> 75 * 0.5 = 37.5; value is the active users
    snap = score_health(make_facts(usage_quantity=None, active_users=60, active_users_prev=80), C)
    trend = snap.signal("usage_trend")
    assert trend is not None
    assert trend.sub_score == 37.5
    assert trend.value == 60 and trend.value_label == "active users in the last 30 days"


def test_usage_trend_missing_is_left_out() -> None:
    assert sub("usage_trend", usage_quantity_prev=None, active_users_prev=None) is None


# -------------------------------------------------------------------- invoice_status


@pytest.mark.parametrize(
    ("n", "days", "expected"),
    [
        (0, 0, 100.0),
        (1, 0, 80.0),  # just overdue
        (1, 45, 40.0),  # 80 - 80 * 45 / 90
        (2, 45, 30.0),  # one extra invoice: -10
        (1, 90, 0.0),
        (3, 80, 0.0),  # 8.9 - 20 floored
    ],
)
def test_invoice_status_formula(n: int, days: int, expected: float) -> None:
    value = sub("invoice_status", invoices_open_overdue=n, max_days_overdue=days)
    assert value == expected


def test_invoice_status_missing_is_left_out() -> None:
    assert sub("invoice_status", invoices_total=None, invoices_open_overdue=None) is None


# ------------------------------------------------------------ stakeholder_engagement


def test_stakeholder_engagement_formula() -> None:
    assert sub("stakeholder_engagement") == 100.0
    # 2 of 4 engaged: 70 * 0.5 + champion 15, no sponsor
    assert sub("stakeholder_engagement", stakeholders_engaged=2, exec_sponsor_active=False) == 50.0
    # champion left 59 days ago, none since: 70 + 0 + 15 - 30
    assert (
        sub(
            "stakeholder_engagement",
            champion_active=False,
            champion_left_on=date(2026, 5, 2),
        )
        == 55.0
    )
    # departure outside the 180-day window: no penalty, still no champion: 70 + 15
    assert (
        sub(
            "stakeholder_engagement",
            champion_active=False,
            champion_left_on=date(2025, 12, 1),
        )
        == 85.0
    )
    # everybody left
    assert (
        sub(
            "stakeholder_engagement",
            stakeholders_active=0,
            stakeholders_engaged=0,
            champion_active=False,
            exec_sponsor_active=False,
        )
        == 0.0
    )


def test_stakeholder_engagement_missing_is_left_out() -> None:
    assert sub("stakeholder_engagement", stakeholders_active=None) is None


def test_champion_left_after_as_of_is_a_data_issue() -> None:
    snap = score_health(make_facts(champion_left_on=date(2026, 7, 2)), C)
    assert snap.signal("stakeholder_engagement").sub_score == 100.0  # type: ignore[union-attr]
    assert any(i.table == "stakeholders" for i in snap.data_issues)


# ------------------------------------------------------------------------------ nps


@pytest.mark.parametrize(
    ("mean", "expected"),
    [
        (10.0, 100.0),
        (9.0, 90.0),
        (8.0, 75.0),
        (7.5, 67.5),
        (7.0, 60.0),
        (6.5, 50.0),
        (6.0, 40.0),
        (3.0, 20.0),
        (0.0, 0.0),
    ],
)
def test_nps_curve(mean: float, expected: float) -> None:
    assert sub("nps", nps_mean=mean) == expected


def test_nps_latest_used_when_no_mean_and_recent() -> None:
    assert sub("nps", nps_mean=None, nps_latest=8) == 75.0
    old = AS_OF - timedelta(days=400)
    assert sub("nps", nps_mean=None, nps_latest=8, nps_latest_at=old) is None


def test_nps_missing_is_left_out() -> None:
    assert sub("nps", nps_mean=None, nps_latest=None) is None


# ---------------------------------------------------------------- renewal_proximity


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (date(2026, 12, 29), 100.0),  # 182 days
        (date(2026, 12, 27), 100.0),  # 180 days
        (date(2026, 9, 28), 50.0),  # 90 days
        (date(2026, 8, 14), 25.0),  # 45 days
        (date(2026, 6, 30), 0.0),  # today
        (date(2026, 6, 20), 0.0),  # ended
    ],
)
def test_renewal_proximity_formula(end: date, expected: float) -> None:
    assert sub("renewal_proximity", contract={"end_date": end}) == expected


def test_renewal_proximity_missing_is_left_out() -> None:
    assert sub("renewal_proximity", contract=None) is None


# ------------------------------------------------------------------- seat_utilization


@pytest.mark.parametrize(
    ("active", "expected"), [(0, 0.0), (25, 31.3), (40, 50.0), (80, 100.0), (120, 100.0)]
)
def test_seat_utilization_formula(active: int, expected: float) -> None:
    # 100 * min(1, (active / 100) / 0.8); 25 -> 31.25 -> 31.3 (half-up)
    assert sub("seat_utilization", active_users=active) == expected


def test_seat_utilization_detail_and_value() -> None:
    snap = score_health(make_facts(active_users=18), C)
    seat = snap.signal("seat_utilization")
    assert seat is not None
    assert seat.value == 18 and seat.value_label == "active users"
    assert seat.detail.startswith("18 of 100 seats active in the last 30 days (18%)")


def test_seat_utilization_missing_is_left_out() -> None:
    assert sub("seat_utilization", active_users=None) is None
    assert sub("seat_utilization", contract=None) is None


# ------------------------------------------------------------------------ escalations


@pytest.mark.parametrize(
    ("support", "tam", "expected"),
    [(0, 0, 100.0), (1, 0, 75.0), (1, 1, 50.0), (5, 0, 0.0), (None, 1, 75.0), (2, None, 50.0)],
)
def test_escalations_formula(support: int | None, tam: int | None, expected: float) -> None:
    assert sub("escalations", escalations=support, tam_escalations=tam) == expected


def test_escalations_missing_is_left_out() -> None:
    assert sub("escalations", escalations=None, tam_escalations=None) is None


# ------------------------------------------------------------------ renormalization


def test_no_data_at_all_gives_no_score_and_no_band() -> None:
    snap = score_health(empty_facts(), C)
    assert snap.score is None and snap.band is None and snap.coverage == 0.0
    assert all(s.sub_score is None and s.effective_weight == 0 for s in snap.signals)


def test_renormalization_with_two_signals() -> None:
    # Only renewal (weight 4, sub 100) and seats (weight 12, 40 of 100 -> 50) have data.
    facts = empty_facts(contract=make_contract(), active_users=40)
    snap = score_health(facts, C)
    assert snap.coverage == 0.16
    assert snap.signal("renewal_proximity").effective_weight == 0.25  # type: ignore[union-attr]
    assert snap.signal("seat_utilization").effective_weight == 0.75  # type: ignore[union-attr]
    assert snap.score == 62.5  # 0.25 * 100 + 0.75 * 50, not diluted by the missing nine
    # 16% of the weight is below the 30% minimum: the score is kept, the band says so
    assert snap.band == "UNSCORED"
    assert snap.band_reason is not None and "16%" in snap.band_reason
    assert "30%" in snap.band_reason
    lenient = C.with_overrides({"bands": {"min_coverage": 0.1}})
    assert score_health(facts, lenient).band == "AMBER"


def test_a_new_account_with_only_a_contract_is_unscored_not_green() -> None:
    # The issue's case: renewal proximity alone (4% of the weight) scores 100.
    snap = score_health(empty_facts(contract=make_contract()), C)
    assert snap.score == 100.0 and snap.coverage == 0.04
    assert snap.band == "UNSCORED"
    assert band_for(100.0, C, 0.04) == "UNSCORED"
    assert band_for(100.0, C, 0.3) == "GREEN"  # the minimum itself is enough
    assert band_for(100.0, C) == "GREEN"  # without a coverage: thresholds only


def test_missing_signals_are_not_zero() -> None:
    # Without NPS and escalation data: (74 * 100 + 12 * 75) / 86 = 96.51, coverage 0.86.
    snap = score_health(
        make_facts(nps_mean=None, nps_latest=None, escalations=None, tam_escalations=None), C
    )
    assert snap.coverage == 0.86
    assert snap.score == 96.5
    assert snap.signal("nps").effective_weight == 0.0  # type: ignore[union-attr]


def test_zero_weight_signal_with_data_does_not_count() -> None:
    config = C.with_overrides({"weights": {"usage_trend": 0}})
    snap = score_health(make_facts(), config)
    assert snap.score == 100.0
    assert snap.coverage == 1.0  # all the (non-zero) weight has data


# ------------------------------------------------------------------------------- bands


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (100.0, "GREEN"),
        (70.0, "GREEN"),
        (69.9, "AMBER"),
        (45.0, "AMBER"),
        (44.9, "RED"),
        (0.0, "RED"),
        (None, None),
    ],
)
def test_band_edges(score: float | None, band: str | None) -> None:
    assert band_for(score, C) == band


@pytest.mark.parametrize(
    ("seats", "active", "score", "band"),
    [
        (100, 56, 70.0, "GREEN"),  # 0.56 / 0.8 = 70.0 exactly at green_min
        (10000, 5592, 69.9, "AMBER"),
        (100, 36, 45.0, "AMBER"),  # exactly at amber_min
        (10000, 3592, 44.9, "RED"),
    ],
)
def test_band_edges_through_scoring(seats: int, active: int, score: float, band: str) -> None:
    facts = make_facts(contract={"seats_purchased": seats}, active_users=active)
    snap = score_health(facts, only("seat_utilization"))
    assert snap.score == score
    assert snap.band == band


def test_band_uses_the_rounded_score() -> None:
    # 69.96 rounds to 70.0, which is GREEN: the band never disagrees with the shown score.
    facts = make_facts(contract={"seats_purchased": 100000}, active_users=55968)
    snap = score_health(facts, only("seat_utilization"))
    assert snap.score == 70.0 and snap.band == "GREEN"


# --------------------------------------------------------------------------------- TAM


def test_tam_red_caps_at_amber_min_minus_one() -> None:
    snap = score_health(make_facts(tam_rag="RED", tam_score=30), C)
    assert snap.score_before_tam == 97.0
    assert snap.score == 44.0
    assert snap.band == "RED"
    assert snap.tam_adjustment is not None and "capped at 44" in snap.tam_adjustment


def test_tam_amber_caps_at_green_min_minus_one() -> None:
    snap = score_health(make_facts(tam_rag="amber", tam_score=60), C)
    assert snap.score == 69.0 and snap.band == "AMBER"


def test_tam_rag_derived_from_score_when_missing() -> None:
    assert score_health(make_facts(tam_rag=None, tam_score=39), C).score == 44.0
    assert score_health(make_facts(tam_rag=None, tam_score=40), C).score == 69.0
    assert score_health(make_facts(tam_rag=None, tam_score=70), C).score == 97.0


def test_tam_cap_not_binding_below_cap() -> None:
    snap = score_health(make_facts(tam_rag="AMBER", active_users=0, login_days=0), C)
    assert snap.score_before_tam is not None and snap.score_before_tam < 69
    assert snap.score == snap.score_before_tam
    assert snap.tam_adjustment is not None and "not binding" in snap.tam_adjustment


def test_tam_stale_or_disabled_is_not_applied() -> None:
    stale = make_facts(tam_rag="RED", tam_measured_at=AS_OF - timedelta(days=121))
    snap = score_health(stale, C)
    assert snap.score == 97.0
    assert snap.tam_adjustment is not None and "not applied" in snap.tam_adjustment
    off = C.with_overrides({"tam": {"enabled": False}})
    assert score_health(make_facts(tam_rag="RED"), off).score == 97.0


def test_tam_offsets_are_configurable() -> None:
    config = C.with_overrides({"tam": {"red_cap_offset": 10}})
    assert score_health(make_facts(tam_rag="RED"), config).score == 35.0


# ----------------------------------------------------------------------------- drivers


def _previous() -> HealthSnapshot:
    return score_health(make_facts(active_users=41, active_users_prev=41), C)


def test_drivers_pick_the_largest_weighted_moves_with_raw_numbers() -> None:
    prev = _previous()  # seat 41/100 -> 51.3; usage flat 75; tickets 100; nps 100
    cur = score_health(
        make_facts(
            active_users=18,
            active_users_prev=41,
            tickets_recent=6,  # r = 3 -> volume 0; sentiment 1 -> 0.4 * 100 = 40
            nps_mean=6.0,  # 40
            last_meaningful_interaction_at=AS_OF - timedelta(days=40),  # 88.9
        ),
        C,
        previous=prev,
    )
    # weighted deltas: seat 0.12*(22.5-51.3) = -3.5; usage 0.12*(32.9-75) = -5.1
    # (t = mean(0, -56.1%) = -0.2805 -> 75 * (0.5 - 0.2805) / 0.5 = 32.9);
    # tickets 0.1*(40-100) = -6.0; nps 0.08*(40-100) = -4.8; last interaction -0.9
    assert [d.signal for d in cur.drivers] == ["support_tickets", "usage_trend", "nps"]
    assert [d.delta for d in cur.drivers] == [-6.0, -5.1, -4.8]
    assert cur.drivers[0].text.startswith("tickets in the last 30 days rose from 2 to 6")
    assert cur.drivers[2].text.startswith("mean NPS score fell from 10 to 6")
    assert cur.drivers[1].previous_sub_score == 75.0


def test_driver_text_active_users_fell() -> None:
    prev = _previous()
    cur = score_health(make_facts(active_users=18, active_users_prev=41), C, previous=prev)
    seat = next(d for d in cur.drivers if d.signal == "seat_utilization")
    assert seat.text.startswith("active users fell from 41 to 18")
    assert seat.previous_value == 41 and seat.current_value == 18


def test_drivers_respect_max_and_min_points() -> None:
    prev = _previous()
    facts = make_facts(active_users=18, active_users_prev=41, tickets_recent=6, nps_mean=6.0)
    two = C.with_overrides({"drivers": {"max_drivers": 2}})
    assert len(score_health(facts, two, prev).drivers) == 2
    picky = C.with_overrides({"drivers": {"min_points": 5.5}})
    assert [d.signal for d in score_health(facts, picky, prev).drivers] == ["support_tickets"]


def test_driver_for_signal_gaining_data() -> None:
    prev = score_health(make_facts(nps_mean=None, nps_latest=None), C)
    cur = score_health(make_facts(nps_mean=2.0), C, previous=prev)
    nps = next(d for d in cur.drivers if d.signal == "nps")
    assert nps.text.startswith("NPS now has data")
    assert nps.previous_sub_score is None


def test_no_previous_no_drivers_and_identical_previous_no_drivers() -> None:
    snap = score_health(make_facts(), C)
    assert snap.drivers == []
    assert score_health(make_facts(), C, previous=snap).drivers == []


def test_champion_left_driver_explains_in_words() -> None:
    prev = score_health(make_facts(), C)
    cur = score_health(
        make_facts(champion_active=False, champion_left_on=date(2026, 5, 2)), C, previous=prev
    )
    # 100 -> 55 at 10% weight = -4.5 points; the value (engaged) did not move, so say why.
    d = next(d for d in cur.drivers if d.signal == "stakeholder_engagement")
    assert d.delta == -4.5
    assert "champion left on 2026-05-02" in d.text


# ------------------------------------------------------------------------ data issues


def test_data_issues_pass_through() -> None:
    issue = DataIssue(table="usage_events", row="u1@2026-06-01", problem="negative quantity")
    snap = score_health(make_facts(data_issues=[issue]), C)
    assert snap.data_issues == [issue]


def test_snapshot_round_trips_through_json() -> None:
    snap = score_health(make_facts(tam_rag="RED"), C, previous=_previous())
    assert HealthSnapshot.model_validate_json(snap.model_dump_json()) == snap


def test_a_figure_takes_the_article_it_is_read_with() -> None:
    assert [a_or_an(x) for x in ("80%", "8%", "11%", "18.5%", "11,000")] == ["an"] * 5
    assert [a_or_an(x) for x in ("50%", "1%", "180%", "110%", "$80", "n/a")] == ["a"] * 6
