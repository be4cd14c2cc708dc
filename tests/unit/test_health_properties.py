"""Properties of the scoring over random (often incomplete, sometimes odd) accounts."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.assess import Assessment, assess_account
from domain.config import DEFAULT_CONFIG, SIGNALS, HealthConfig
from domain.facts import AccountFacts, ContractFacts
from domain.health import HealthSnapshot, round_half_up, score_health
from domain.report import render_assessment
from tests.unit.builders import AS_OF

C = DEFAULT_CONFIG
MODULES = sorted(C.catalogue)
EVENT_TYPES = [f.event_type for _, f in C.features()] + ["login", "legacy.thing"]

# Deterministic (same examples every run) and no example database left in the repo.
PROPS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def days_before(lo: int, hi: int) -> st.SearchStrategy[Any]:
    return st.integers(lo, hi).map(lambda d: AS_OF - timedelta(days=d, hours=d % 7))


small = st.integers(0, 50)
money = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)

contracts = st.builds(
    ContractFacts,
    start_date=st.just(date(2025, 1, 1)),
    end_date=st.integers(-30, 800).map(lambda d: AS_OF.date() + timedelta(days=d)),
    arr=st.just(50_000.0),
    seats_purchased=st.integers(1, 400),
    price_per_seat=st.floats(0, 2000, allow_nan=False),
    licensed_modules=st.lists(st.sampled_from([*MODULES, "legacy"]), unique=True, max_size=5),
)

facts_fields: dict[str, st.SearchStrategy[Any]] = {
    "contract": opt(contracts),
    "active_users": opt(st.integers(0, 500)),
    "active_users_prev": opt(st.integers(0, 500)),
    "usage_quantity": opt(money),
    "usage_quantity_prev": opt(money),
    "logins": opt(st.integers(0, 5000)),
    "login_days": opt(st.integers(0, 30)),
    "weekly_active_users": opt(st.lists(st.integers(0, 300), max_size=12)),
    "max_gap_days": opt(st.integers(0, 90)),
    "feature_users": opt(st.dictionaries(st.sampled_from(EVENT_TYPES), st.integers(0, 400))),
    "adoption_users": opt(st.integers(0, 500)),
    "module_usage": opt(st.dictionaries(st.sampled_from([*MODULES, "legacy"]), money)),
    "limit_hits": opt(st.dictionaries(st.sampled_from(MODULES), small)),
    "provisioned_users": opt(st.integers(0, 600)),
    "tickets_recent": opt(small),
    "tickets_baseline": opt(st.floats(0, 40, allow_nan=False)),
    "ticket_sentiment_recent": opt(st.floats(-1, 1, allow_nan=False)),
    "urgent_open": opt(st.integers(0, 10)),
    "escalations": opt(st.integers(0, 10)),
    "last_meaningful_interaction_at": opt(days_before(0, 400)),
    "stakeholders_active": opt(st.integers(0, 15)),
    "stakeholders_engaged": opt(st.integers(0, 15)),
    "champion_active": opt(st.booleans()),
    "champion_left_on": opt(st.integers(0, 400).map(lambda d: AS_OF.date() - timedelta(days=d))),
    "exec_sponsor_active": opt(st.booleans()),
    "nps_latest": opt(st.integers(0, 10)),
    "nps_latest_at": opt(days_before(0, 500)),
    "nps_mean": opt(st.floats(0, 10, allow_nan=False)),
    "nps_responses": opt(st.integers(0, 40)),
    "invoices_open_overdue": opt(st.integers(0, 8)),
    "overdue_amount": opt(money),
    "max_days_overdue": opt(st.integers(0, 200)),
    "invoices_total": opt(st.integers(0, 40)),
    "tam_score": opt(st.integers(0, 100)),
    "tam_rag": opt(st.sampled_from(["RED", "AMBER", "GREEN", "green", "unknown"])),
    "tam_measured_at": opt(days_before(0, 300)),
    "tam_escalations": opt(st.integers(0, 5)),
}

accounts = st.fixed_dictionaries(facts_fields).map(
    lambda d: AccountFacts(account_id="prop", as_of=AS_OF, **d)
)


def _improve(f: AccountFacts, which: str, k: int) -> dict[str, Any] | None:
    """One input changed in the healthy direction; None when that input has no data."""
    match which:
        case "more_active_users" if f.active_users is not None:
            return {"active_users": f.active_users + k}
        case "more_login_days" if f.login_days is not None:
            return {"login_days": min(30, f.login_days + k)}
        case "fewer_overdue_invoices" if f.invoices_open_overdue is not None:
            return {"invoices_open_overdue": max(0, f.invoices_open_overdue - k)}
        case "fewer_days_overdue" if f.max_days_overdue is not None:
            return {"max_days_overdue": max(0, f.max_days_overdue - k)}
        case "higher_nps_mean" if f.nps_mean is not None:
            return {"nps_mean": min(10.0, f.nps_mean + k / 10)}
        case "higher_nps_latest" if f.nps_latest is not None:
            return {"nps_latest": min(10, f.nps_latest + 1)}
        case "fewer_tickets" if f.tickets_recent is not None:
            return {"tickets_recent": max(0, f.tickets_recent - k)}
        case "better_sentiment" if f.ticket_sentiment_recent is not None:
            return {"ticket_sentiment_recent": min(1.0, f.ticket_sentiment_recent + k / 50)}
        case "fewer_urgent" if f.urgent_open is not None:
            return {"urgent_open": max(0, f.urgent_open - k)}
        case "fewer_escalations" if f.escalations is not None:
            return {"escalations": max(0, f.escalations - k)}
        case "fewer_tam_escalations" if f.tam_escalations is not None:
            return {"tam_escalations": max(0, f.tam_escalations - k)}
        case "recent_interaction" if f.last_meaningful_interaction_at is not None:
            return {
                "last_meaningful_interaction_at": min(
                    AS_OF, f.last_meaningful_interaction_at + timedelta(days=k)
                )
            }
        case "more_engaged" if f.stakeholders_engaged is not None:
            return {"stakeholders_engaged": f.stakeholders_engaged + k}
        case "champion_active":
            return {"champion_active": True}
        case "sponsor_active":
            return {"exec_sponsor_active": True}
        case "champion_stayed":
            return {"champion_left_on": None}
        case "more_usage" if f.usage_quantity is not None:
            return {"usage_quantity": f.usage_quantity + 10 * k}
        case "later_renewal" if f.contract is not None:
            end = f.contract.end_date + timedelta(days=k)
            return {"contract": f.contract.model_copy(update={"end_date": end})}
        case "more_feature_users" if f.adoption_users is not None:
            users = dict(f.feature_users or {})
            users["core.search"] = users.get("core.search", 0) + k
            return {"feature_users": users} if f.feature_users is not None else None
    return None


IMPROVEMENTS = [
    "more_active_users",
    "more_login_days",
    "fewer_overdue_invoices",
    "fewer_days_overdue",
    "higher_nps_mean",
    "higher_nps_latest",
    "fewer_tickets",
    "better_sentiment",
    "fewer_urgent",
    "fewer_escalations",
    "fewer_tam_escalations",
    "recent_interaction",
    "more_engaged",
    "champion_active",
    "sponsor_active",
    "champion_stayed",
    "more_usage",
    "later_renewal",
    "more_feature_users",
]


@PROPS
@given(accounts)
def test_score_bounds_and_coverage(facts: AccountFacts) -> None:
    snap = score_health(facts, C)
    with_data = [s for s in snap.signals if s.sub_score is not None and s.weight > 0]
    share = math.fsum(s.weight for s in with_data) / math.fsum(C.weights.values())
    expected_coverage = max(0.001, round_half_up(share, 3)) if with_data else 0.0
    assert snap.coverage == expected_coverage
    assert 0 <= snap.coverage <= 1
    assert [s.name for s in snap.signals] == list(SIGNALS)
    for s in snap.signals:
        assert s.sub_score is None or 0 <= s.sub_score <= 100
        assert s.sub_score is not None or s.effective_weight == 0  # missing is left out
    if snap.coverage == 0:
        assert snap.score is None and snap.band is None
    else:
        assert snap.score is not None and 0 <= snap.score <= 100
        assert snap.score == round_half_up(snap.score, 1)
        if snap.coverage < C.bands.min_coverage:
            assert snap.band == "UNSCORED" and snap.band_reason
        else:
            assert snap.band in ("GREEN", "AMBER", "RED") and snap.band_reason is None
        assert math.isclose(sum(s.effective_weight for s in with_data), 1.0, abs_tol=1e-3)
        assert snap.score_before_tam is not None and snap.score <= snap.score_before_tam


@settings(
    PROPS, max_examples=150
)  # many (input, improvement) pairs: the property that matters most
@given(accounts, st.sampled_from(IMPROVEMENTS), st.integers(1, 60))
def test_improving_one_input_never_lowers_the_score(
    facts: AccountFacts, which: str, k: int
) -> None:
    update = _improve(facts, which, k)
    if update is None:
        return
    better = facts.model_copy(update=update)
    before, after = score_health(facts, C), score_health(better, C)
    assert after.coverage == before.coverage  # same data present, only a value moved
    if before.score is not None:
        assert after.score is not None
        assert after.score >= before.score, (which, before.score, after.score)
        for b, a in zip(before.signals, after.signals, strict=True):
            if b.sub_score is not None:
                assert a.sub_score is not None and a.sub_score >= b.sub_score, (which, b.name)


@PROPS
@given(accounts)
def test_identical_facts_give_identical_output(facts: AccountFacts) -> None:
    again = AccountFacts.model_validate_json(facts.model_dump_json())
    first = assess_account(facts, C)
    assert assess_account(again, C) == first
    assert assess_account(facts, C).model_dump_json() == first.model_dump_json()


def _reversed(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else dict(reversed(list(d.items())))


REVERSED_CONFIG = HealthConfig.model_validate(
    C.model_dump(mode="json")
    | {
        "weights": _reversed(dict(C.weights)),
        "catalogue": _reversed(C.model_dump(mode="json")["catalogue"]),
    }
)


@settings(PROPS, max_examples=50)
@given(accounts)
def test_output_is_independent_of_dict_ordering(facts: AccountFacts) -> None:
    shuffled = facts.model_copy(
        update={
            "feature_users": _reversed(facts.feature_users),
            "module_usage": _reversed(facts.module_usage),
            "limit_hits": _reversed(facts.limit_hits),
        }
    )
    expected = assess_account(facts, C).model_dump_json()
    assert assess_account(shuffled, C).model_dump_json() == expected
    assert assess_account(facts, REVERSED_CONFIG).model_dump_json() == expected


@settings(PROPS, max_examples=40)
@given(accounts, accounts)
def test_drivers_are_the_biggest_moves(previous_facts: AccountFacts, facts: AccountFacts) -> None:
    previous = score_health(previous_facts, C)
    snap = score_health(facts, C, previous=previous)
    assert len(snap.drivers) <= C.drivers.max_drivers
    moves = [abs(d.delta) for d in snap.drivers]
    assert moves == sorted(moves, reverse=True)
    assert all(m >= C.drivers.min_points for m in moves)
    assert len({d.signal for d in snap.drivers}) == len(snap.drivers)


@settings(PROPS, max_examples=50)
@given(accounts)
def test_full_assessment_is_consistent_and_serialisable(facts: AccountFacts) -> None:
    a = assess_account(facts, C)
    ids = [f.finding_id for f in a.findings] + [o.opportunity_id for o in a.opportunities]
    assert len(set(ids)) == len(ids)
    assert all(f.dollar_impact is None or f.dollar_impact >= 0 for f in a.findings)
    assert all(o.estimated_arr_impact >= 0 for o in a.opportunities)
    assert a.churn.level in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    if a.decision.outcome == "routine":
        assert not a.opportunities
    assert Assessment.model_validate_json(a.model_dump_json()) == a
    assert HealthSnapshot.model_validate(a.snapshot.model_dump()) == a.snapshot
    assert render_assessment(a)
