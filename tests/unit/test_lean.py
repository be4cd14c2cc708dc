"""Lean waste: Muda (seats, shelfware), Mura, Muri, with the seed-000 $45,000 reference case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.config import DEFAULT_CONFIG
from domain.lean import (
    PLAY_ADOPTION,
    PLAY_ESCALATE,
    PLAY_LICENSE,
    PLAY_REDEPLOY,
    Finding,
    detect_waste,
    muri_weighted_ratio,
    weekly_cv,
)
from tests.unit.builders import AS_OF, make_facts

C = DEFAULT_CONFIG


def waste(**overrides: Any) -> list[Finding]:
    return detect_waste(make_facts(**overrides), C)


def one(findings: list[Finding], kind: str, shelfware: bool = False) -> Finding:
    matches = [
        f for f in findings if f.kind == kind and f.finding_id.endswith(":shelfware") == shelfware
    ]
    assert len(matches) == 1, findings
    return matches[0]


def renewal_in(days: int) -> dict[str, Any]:
    return {"end_date": AS_OF.date() + timedelta(days=days)}


def test_healthy_account_has_no_waste() -> None:
    assert waste() == []


# ---------------------------------------------------------------------------- Muda


def test_reference_case_45000_redeployment() -> None:
    """Seed 000: a Tier-1 account, 75% unused capacity, ~$45,000/yr, six months out."""
    findings = waste(
        active_users=25,
        contract={"seats_purchased": 100, "price_per_seat": 600.0, **renewal_in(182)},
    )
    muda = one(findings, "muda")
    assert muda.finding_id == "muda:acme:2026-06-30"
    assert muda.dollar_impact == 45000.0
    assert muda.play == PLAY_REDEPLOY == "Re-deployment strategy"
    assert muda.severity == "high"  # 25% utilization < 30%
    assert muda.metrics["unused_seats"] == 75
    assert muda.metrics["utilization"] == 0.25
    assert muda.metrics["framing"] == "redeployment"
    assert muda.metrics["days_to_renewal"] == 182
    assert muda.title == "75% of seats unused: $45,000 a year"
    assert "75 unused seats x $600 per seat per year = $45,000 a year" in muda.evidence
    assert any("182 days away" in e and "re-deploy" in e for e in muda.evidence)


def test_near_renewal_is_a_license_optimization_plan() -> None:
    muda = one(waste(active_users=25, contract=renewal_in(90)), "muda")
    assert muda.play == PLAY_LICENSE
    assert muda.metrics["framing"] == "license_optimization"
    assert any("90 days away (< 120)" in e for e in muda.evidence)


@pytest.mark.parametrize(("days", "play"), [(120, PLAY_REDEPLOY), (119, PLAY_LICENSE)])
def test_redeployment_threshold_edge(days: int, play: str) -> None:
    assert one(waste(active_users=25, contract=renewal_in(days)), "muda").play == play


def test_ended_contract_is_license_optimization() -> None:
    muda = one(waste(active_users=25, contract=renewal_in(-5)), "muda")
    assert muda.play == PLAY_LICENSE
    assert any("contract ended on" in e for e in muda.evidence)


@pytest.mark.parametrize(
    ("active", "severity"),
    [
        (60, None),
        (59, "low"),
        (45, "low"),
        (44, "medium"),
        (30, "medium"),
        (29, "high"),
        (0, "high"),
    ],
)
def test_muda_utilization_edges(active: int, severity: str | None) -> None:
    findings = [f for f in waste(active_users=active) if f.kind == "muda"]
    if severity is None:
        assert findings == []
    else:
        assert findings[0].severity == severity
        assert findings[0].dollar_impact == (100 - active) * 600


def test_shelfware_without_seat_waste_counts_all_seats() -> None:
    # reports licensed, unused for 90 days; utilization 80%: 60 * 100 seats = 6,000
    findings = waste(module_usage={"core": 5000.0, "dashboards": 600.0})
    shelf = one(findings, "muda", shelfware=True)
    assert shelf.finding_id == "muda:acme:2026-06-30:shelfware"
    assert shelf.dollar_impact == 6000.0
    assert shelf.severity == "low"
    assert shelf.metrics["idle_modules"] == "reports"
    assert shelf.play == PLAY_REDEPLOY


def test_shelfware_with_seat_waste_does_not_double_count() -> None:
    # 25 of 100 active: seat waste 45,000 counted once; shelfware only on the 25 seats in use:
    # reports 60 * 25 + dashboards 48 * 25 = 2,700
    findings = waste(active_users=25, module_usage={"core": 100.0})
    assert one(findings, "muda").dollar_impact == 45000.0
    shelf = one(findings, "muda", shelfware=True)
    assert shelf.dollar_impact == 2700.0
    assert shelf.severity == "medium"  # two idle modules
    assert shelf.metrics["seats_in_use"] == 25


def test_shelfware_core_exempt_and_unknown_module_has_no_price() -> None:
    findings = waste(
        contract={"licensed_modules": ["core", "legacy"]},
        module_usage={"reports": 10.0},
    )
    shelf = one(findings, "muda", shelfware=True)
    assert shelf.metrics["idle_modules"] == "legacy"
    assert shelf.dollar_impact is None


def test_muda_needs_contract_and_usage() -> None:
    assert waste(contract=None, active_users=1) == []
    assert [f for f in waste(active_users=None, module_usage=None) if f.kind == "muda"] == []


# ---------------------------------------------------------------------------- Mura


def test_weekly_cv_population_std_and_leading_zeros() -> None:
    assert weekly_cv([10, 30] * 6, 4) == ([10, 30] * 6, 0.5)
    trimmed, cv = weekly_cv([0, 0, 0, 20, 20, 20, 20], 4)
    assert trimmed == [20, 20, 20, 20] and cv == 0.0
    assert weekly_cv([0, 0, 10, 10, 10], 4) == ([10, 10, 10], None)  # too few weeks
    assert weekly_cv([0, 0, 0, 0], 4) == ([], None)
    assert weekly_cv(None, 4) == ([], None)


def test_mura_spiky_adoption_cv_half_is_medium() -> None:
    mura = one(waste(weekly_active_users=[10, 30] * 6), "mura")
    assert mura.finding_id == "mura:acme:2026-06-30"
    assert mura.severity == "medium"  # CV 0.50 = cv_medium
    assert mura.play == PLAY_ADOPTION == "Targeted adoption & training plan"
    assert mura.metrics["weekly_cv"] == 0.5
    assert mura.metrics["weekly_mean"] == 20.0
    assert "coefficient of variation 0.50" in mura.evidence[1]
    assert mura.dollar_impact is None


@pytest.mark.parametrize(
    ("series", "severity"),
    [
        ([20] * 12, None),  # steady
        ([14, 26] * 6, None),  # CV 0.30 < 0.35
        ([13, 27] * 6, "low"),  # CV 0.35
        ([6, 34] * 6, "high"),  # CV 0.70
        ([0, 0, 0, 0, 5, 10, 15, 20, 20, 20, 20, 20], None),  # ramp-up: CV 0.33 after trim
    ],
)
def test_mura_cv_edges(series: list[int], severity: str | None) -> None:
    found = [f for f in waste(weekly_active_users=series) if f.kind == "mura"]
    assert (found[0].severity if found else None) == severity


@pytest.mark.parametrize(
    ("gap", "severity"), [(13, None), (14, "low"), (21, "medium"), (29, "medium"), (30, "high")]
)
def test_mura_gap_edges(gap: int, severity: str | None) -> None:
    found = [f for f in waste(max_gap_days=gap) if f.kind == "mura"]
    assert (found[0].severity if found else None) == severity
    if found:
        assert found[0].metrics["max_gap_days"] == gap
        assert f"a {gap}-day usage gap" in found[0].title


def test_mura_takes_the_worse_of_cv_and_gap() -> None:
    mura = one(waste(weekly_active_users=[13, 27] * 6, max_gap_days=30), "mura")
    assert mura.severity == "high"


# ---------------------------------------------------------------------------- Muri


def test_muri_weighted_ratio() -> None:
    assert muri_weighted_ratio(2.0, None, 90) == 2.0
    assert muri_weighted_ratio(2.0, 182, 90) == 2.0
    assert muri_weighted_ratio(2.0, 90, 90) == 2.0
    assert muri_weighted_ratio(2.0, 45, 90) == 3.0
    assert muri_weighted_ratio(2.0, 0, 90) == 4.0
    assert muri_weighted_ratio(2.0, -3, 90) == 2.0  # ended: no renewal ahead


@pytest.mark.parametrize(
    ("recent", "baseline", "days", "severity"),
    [
        (3, 2.0, 182, None),  # 1.5x
        (5, 2.0, 182, "low"),  # 2.5x, far from renewal
        (6, 2.0, 182, "medium"),  # 3.0x
        (8, 2.0, 182, "high"),  # 4.0x
        (5, 2.0, 45, "medium"),  # 2.5x * 1.5 = 3.75
        (5, 2.0, 30, "high"),  # 2.5x * 1.667 = 4.17
        (5, 2.0, 0, "high"),  # 2.5x * 2
        (4, 0.5, 0, None),  # below min_tickets (5) even though 4x the floored baseline
        (4, 0.0, 182, None),  # a GREEN account's 3-4 tickets are no overload
        (5, 0.0, 182, "high"),  # no baseline: floored at 1 -> 5.0x
    ],
)
def test_muri_severity(recent: int, baseline: float, days: int, severity: str | None) -> None:
    found = [
        f
        for f in waste(tickets_recent=recent, tickets_baseline=baseline, contract=renewal_in(days))
        if f.kind == "muri"
    ]
    assert (found[0].severity if found else None) == severity


def test_muri_finding_content() -> None:
    muri = one(
        waste(
            tickets_recent=5,
            tickets_baseline=2.0,
            contract=renewal_in(30),
            ticket_sentiment_recent=-0.4,
            urgent_open=2,
            escalations=1,
        ),
        "muri",
    )
    assert muri.finding_id == "muri:acme:2026-06-30"
    assert muri.play == PLAY_ESCALATE == "Escalate to Director of CS + QBR & support alignment"
    assert muri.metrics["spike_ratio"] == 2.5
    assert muri.metrics["renewal_weighted_ratio"] == 4.167
    assert muri.evidence[0] == (
        "5 tickets in the last 30 days vs a baseline of 2 per 30 days: 2.50x (spike at 2x)"
    )
    assert "renewal in 30 days: spike weighted x1.67 to 4.17" in muri.evidence
    assert "mean ticket sentiment -0.40 (-1..1)" in muri.evidence
    assert "2 high/urgent tickets open" in muri.evidence


# --------------------------------------------------------------------------- shared


def test_all_three_kinds_with_unique_deterministic_ids() -> None:
    overrides: dict[str, Any] = {
        "active_users": 25,
        "weekly_active_users": [6, 34] * 6,
        "tickets_recent": 8,
        "module_usage": {"core": 1.0},
    }
    first = waste(**overrides)
    assert [f.kind for f in first] == ["muda", "muda", "mura", "muri"]
    ids = [f.finding_id for f in first]
    assert len(set(ids)) == len(ids)
    assert waste(**overrides) == first
    for f in first:
        assert Finding.model_validate_json(f.model_dump_json()) == f
        assert f.as_of == AS_OF and f.account_id == "acme"


def test_thresholds_are_configuration() -> None:
    config = C.with_overrides({"lean": {"muda": {"utilization_below": 0.9}}})
    found = detect_waste(make_facts(active_users=80), config)
    assert [f.kind for f in found] == ["muda"]
    assert found[0].dollar_impact == 12000.0
