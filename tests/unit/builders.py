"""Builders for domain unit tests: a fully populated, healthy account to tweak per test.

Baseline sub-scores (FORMULA_CONFIG below): every signal 100 except usage_trend 75 (flat
usage), so the baseline score is (88 * 100 + 12 * 75) / 100 = 97.0, GREEN, coverage 1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.config import DEFAULT_CONFIG
from domain.facts import AccountFacts, ContractFacts

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
RENEWAL_182 = date(2026, 12, 29)  # 182 days after AS_OF

# Exactly at benchmark for every feature of core, reports and dashboards (100 adoption users).
AT_BENCHMARK = {
    "core.search": 80,
    "core.comment": 50,
    "core.upload": 45,
    "reports.create": 40,
    "reports.export": 30,
    "reports.schedule": 15,
    "dashboards.view": 70,
    "dashboards.share": 25,
}


def make_contract(**overrides: Any) -> ContractFacts:
    data: dict[str, Any] = {
        "start_date": date(2025, 12, 30),
        "end_date": RENEWAL_182,
        "arr": 60_000.0,
        "seats_purchased": 100,
        "price_per_seat": 600.0,
        "licensed_modules": ["core", "reports", "dashboards"],
    }
    data.update(overrides)
    return ContractFacts(**data)


def make_facts(**overrides: Any) -> AccountFacts:
    """A healthy account at AS_OF; ``contract`` may be a dict of contract overrides."""
    contract = overrides.pop("contract", {})
    if isinstance(contract, dict):
        contract = make_contract(**contract)
    data: dict[str, Any] = {
        "account_id": "acme",
        "as_of": AS_OF,
        "name": "Acme Corp",
        "tier": "tier-1",
        "contract": contract,
        "active_users": 80,
        "active_users_prev": 80,
        "usage_quantity": 1000.0,
        "usage_quantity_prev": 1000.0,
        "logins": 400,
        "login_days": 18,
        "weekly_active_users": [60] * 12,
        "max_gap_days": 2,
        "first_event_at": AS_OF - timedelta(days=170),
        "last_event_at": AS_OF - timedelta(hours=3),
        "feature_users": dict(AT_BENCHMARK),
        "adoption_users": 100,
        "module_usage": {"core": 5000.0, "reports": 800.0, "dashboards": 600.0},
        "limit_hits": {},
        "provisioned_users": 90,
        "tickets_recent": 2,
        "tickets_baseline": 2.0,
        "ticket_sentiment_recent": 1.0,
        "urgent_open": 0,
        "escalations": 0,
        "any_tickets_ever": True,
        "last_meaningful_interaction_at": AS_OF - timedelta(days=10),
        "stakeholders_active": 4,
        "stakeholders_engaged": 4,
        "champion_active": True,
        "champion_left_on": None,
        "exec_sponsor_active": True,
        "nps_latest": 10,
        "nps_latest_at": AS_OF - timedelta(days=20),
        "nps_mean": 10.0,
        "nps_responses": 3,
        "invoices_open_overdue": 0,
        "overdue_amount": 0.0,
        "max_days_overdue": 0,
        "invoices_total": 6,
        "tam_score": 85,
        "tam_rag": "GREEN",
        "tam_measured_at": AS_OF - timedelta(days=5),
        "tam_escalations": 0,
    }
    data.update(overrides)
    return AccountFacts(**data)


def empty_facts(**overrides: Any) -> AccountFacts:
    """An account with no data at all (every source None)."""
    data: dict[str, Any] = {"account_id": "empty", "as_of": AS_OF}
    data.update(overrides)
    return AccountFacts(**data)


# The weight table the hand-computed expectations of the formula tests use (the shipped
# defaults before 2026.12-1). Formula tests pin it so that a change of the shipped weights,
# which is judged on generated worlds (tests/unit/test_calibration.py), does not rewrite them.
FORMULA_WEIGHTS = {
    "feature_adoption": 12,
    "support_tickets": 10,
    "last_interaction": 8,
    "login_frequency": 10,
    "usage_trend": 12,
    "invoice_status": 8,
    "stakeholder_engagement": 10,
    "nps": 8,
    "renewal_proximity": 4,
    "seat_utilization": 12,
    "escalations": 6,
}
FORMULA_CONFIG = DEFAULT_CONFIG.with_overrides({"weights": FORMULA_WEIGHTS})
