"""Expansion: seats, modules (unlicensed use, limit hits), integrations."""

from __future__ import annotations

from typing import Any

import pytest

from domain.config import DEFAULT_CONFIG
from domain.expansion import ExpansionOpportunity, detect_expansion, opportunity_id
from tests.unit.builders import AS_OF, make_facts

C = DEFAULT_CONFIG


def expand(**overrides: Any) -> list[ExpansionOpportunity]:
    return detect_expansion(make_facts(**overrides), C)


def by_id(opps: list[ExpansionOpportunity]) -> dict[str, ExpansionOpportunity]:
    return {o.opportunity_id: o for o in opps}


def test_healthy_account_has_no_opportunity() -> None:
    assert expand() == []


def test_no_contract_no_opportunity() -> None:
    assert expand(contract=None, active_users=500, module_usage={"api": 1e6}) == []


# --------------------------------------------------------------------------- seats


def test_sustained_high_utilization_suggests_buffer_seats() -> None:
    # 95 and 92 of 100 (>= 90% both windows): extra = max(-5, -10, ceil(0.1 * 100)) = 10
    (opp,) = expand(active_users=95, active_users_prev=92)
    assert opp.opportunity_id == "expansion:acme:seats:seats"
    assert opp.opportunity_type == "seats" and opp.key == "seats"
    assert opp.metrics["extra_seats"] == 10
    assert opp.estimated_arr_impact == 6000.0  # 10 * $600
    assert opp.confidence == "medium"
    assert "95 of 100 seats active in the last 30 days (95%)" in opp.evidence
    assert "Adding 10 seats ($6,000 a year" in opp.talk_track
    assert opp.as_of == AS_OF


def test_over_seats_is_high_confidence() -> None:
    (opp,) = expand(active_users=130, active_users_prev=95)
    assert opp.metrics["extra_seats"] == 30
    assert opp.estimated_arr_impact == 18000.0
    assert opp.confidence == "high"


def test_exactly_90_percent_in_both_windows_counts() -> None:
    assert len(expand(active_users=90, active_users_prev=90, provisioned_users=None)) == 1
    assert expand(active_users=90, active_users_prev=89, provisioned_users=None) == []


def test_not_sustained_is_not_an_opportunity() -> None:
    assert expand(active_users=98, active_users_prev=80) == []


def test_provisioned_over_seats_alone_is_low_confidence() -> None:
    (opp,) = expand(provisioned_users=120)
    assert opp.metrics["extra_seats"] == 20
    assert opp.estimated_arr_impact == 12000.0
    assert opp.confidence == "low"


def test_buffer_rounding_is_exact() -> None:
    # 0.1 * 30 is 3.0000000000000004 in binary; the buffer must be 3 seats, not 4.
    (opp,) = expand(
        contract={"seats_purchased": 30},
        active_users=28,
        active_users_prev=27,
        provisioned_users=None,
    )
    assert opp.metrics["extra_seats"] == 3
    assert opp.estimated_arr_impact == 1800.0


# -------------------------------------------------------------------------- module


def test_unlicensed_module_usage() -> None:
    opps = by_id(
        expand(module_usage={"core": 5000.0, "reports": 1.0, "dashboards": 1.0, "automation": 30.0})
    )
    opp = opps["expansion:acme:module:automation"]
    assert opp.estimated_arr_impact == 9000.0  # 100 seats * $90
    assert opp.confidence == "medium"
    assert (
        opp.evidence[0]
        == "30 automation usage units in the last 90 days while automation is not licensed"
    )
    assert "100 seats x $90 list per seat = $9,000 ARR" in opp.evidence
    assert "Automation (30 uses in 90 days)" in opp.talk_track


def test_unlicensed_module_usage_and_limit_hits_is_high() -> None:
    opps = by_id(expand(module_usage={"automation": 30.0}, limit_hits={"automation": 4}))
    assert opps["expansion:acme:module:automation"].confidence == "high"


@pytest.mark.parametrize(("hits", "found"), [(2, False), (3, True)])
def test_unlicensed_limit_hits_only_is_low(hits: int, found: bool) -> None:
    opps = by_id(expand(limit_hits={"automation": hits}))
    assert ("expansion:acme:module:automation" in opps) == found
    if found:
        assert opps["expansion:acme:module:automation"].confidence == "low"


def test_licensed_module_limit_hits_is_a_limit_upgrade() -> None:
    opps = by_id(expand(limit_hits={"reports": 3}))
    opp = opps["expansion:acme:module:reports:limits"]
    assert opp.key == "reports:limits"
    assert opp.estimated_arr_impact == 3000.0  # 100 * $60 * 0.5
    assert opp.confidence == "medium"


def test_free_module_is_never_an_opportunity() -> None:
    assert expand(contract={"licensed_modules": ["reports"]}, module_usage={"core": 1e4}) == []


# --------------------------------------------------------------------- integration


def test_heavy_api_without_integrations() -> None:
    opps = by_id(
        expand(
            module_usage={"core": 1.0, "reports": 1.0, "dashboards": 1.0, "api": 5000.0},
            feature_users={"api.call": 7},
        )
    )
    integ = opps["expansion:acme:integration:integrations"]
    assert integ.opportunity_type == "integration"
    assert integ.estimated_arr_impact == 7200.0  # 100 * $72
    assert integ.confidence == "medium"
    assert "7 users calling the API" in integ.evidence
    # api itself is an unlicensed module in use: its own module opportunity
    assert opps["expansion:acme:module:api"].estimated_arr_impact == 3600.0


def test_light_api_use_is_not_an_integration_opportunity() -> None:
    opps = by_id(expand(module_usage={"api": 4999.0}))
    assert "expansion:acme:integration:integrations" not in opps


def test_integrations_licensed_means_no_integration_opportunity() -> None:
    opps = by_id(
        expand(
            contract={"licensed_modules": ["core", "api", "integrations"]},
            module_usage={"api": 1e5, "integrations": 10.0},
        )
    )
    assert opps == {}


def test_integration_tried_is_high_and_not_double_counted_as_module() -> None:
    opps = by_id(expand(module_usage={"api": 6000.0, "integrations": 12.0}))
    assert opps["expansion:acme:integration:integrations"].confidence == "high"
    assert "expansion:acme:module:integrations" not in opps


def test_ids_are_deterministic_and_unique() -> None:
    overrides: dict[str, Any] = {
        "active_users": 120,
        "active_users_prev": 110,
        "module_usage": {"api": 9000.0, "automation": 3.0},
        "limit_hits": {"reports": 5},
    }
    first = expand(**overrides)
    assert [o.opportunity_type for o in first] == [
        "seats",
        "module",
        "module",
        "module",
        "integration",
    ]
    assert [o.key for o in first] == [
        "seats",
        "api",
        "automation",
        "reports:limits",
        "integrations",
    ]
    assert expand(**overrides) == first
    assert opportunity_id("acme", "module", "api") == "expansion:acme:module:api"
    for o in first:
        assert ExpansionOpportunity.model_validate_json(o.model_dump_json()) == o
