"""The decision gate, persistence rows and the terminal rendering."""

from __future__ import annotations

from datetime import date, timedelta

from domain.assess import Assessment, assess_account, churn_level_rank, persistable_findings
from domain.health import score_health
from domain.report import render_assessment
from tests.unit.builders import AS_OF, FORMULA_CONFIG, make_facts

C = FORMULA_CONFIG


def test_routine() -> None:
    a = assess_account(make_facts(), C)
    assert a.decision.outcome == "routine"
    assert a.churn.level == "LOW" and a.findings == [] and a.opportunities == []
    assert "QBR on its schedule" in a.decision.reasons[0]
    assert a.account_name == "Acme Corp"


def test_opportunity() -> None:
    a = assess_account(make_facts(active_users=95, active_users_prev=92), C)
    assert a.decision.outcome == "opportunity"
    assert a.decision.reasons == ["seats: 10 more seats ($6,000 ARR) (medium confidence)"]


def test_medium_churn_and_low_findings_do_not_block_opportunity() -> None:
    a = assess_account(
        make_facts(active_users=95, active_users_prev=92, nps_latest=3, max_gap_days=14), C
    )
    assert a.churn.level == "MEDIUM"
    assert [f.severity for f in a.findings] == ["low"]
    assert a.decision.outcome == "opportunity"


def test_high_churn_is_risk_and_holds_back_opportunities() -> None:
    a = assess_account(
        make_facts(
            tam_rag="RED",
            contract={"end_date": AS_OF.date() + timedelta(days=40)},
            module_usage={"core": 1.0, "reports": 1.0, "dashboards": 1.0, "automation": 50.0},
        ),
        C,
    )
    assert a.churn.level == "CRITICAL"
    assert a.decision.outcome == "risk"
    assert a.decision.reasons[0].startswith("churn risk CRITICAL")
    assert a.decision.reasons[-1] == "1 expansion opportunity held back while the risk is open"


def test_high_severity_finding_is_risk_even_with_low_churn() -> None:
    # The seed-000 reference case: the downsell risk is a risk, framed as re-deployment.
    a = assess_account(make_facts(active_users=25, active_users_prev=25), C)
    assert a.churn.level == "LOW"
    assert a.decision.outcome == "risk"
    assert a.decision.reasons == [
        "high-severity muda: 75% of seats unused: $45,000 a year -> Re-deployment strategy"
    ]


def test_churn_level_rank_is_exported() -> None:
    assert churn_level_rank("CRITICAL") == 3


def test_previous_snapshot_feeds_drivers() -> None:
    prev = score_health(make_facts(active_users=41, active_users_prev=41), C)
    a = assess_account(make_facts(active_users=18, active_users_prev=41), C, previous=prev)
    assert any(d.text.startswith("active users fell from 41 to 18") for d in a.snapshot.drivers)


def test_persistable_findings() -> None:
    a = assess_account(
        make_facts(
            active_users=25,
            active_users_prev=60,
            module_usage={"core": 1.0, "reports": 1.0, "dashboards": 1.0, "api": 8000.0},
        ),
        C,
    )
    rows = persistable_findings(a)
    ids = [r.finding_id for r in rows]
    assert ids == [
        "muda:acme:2026-06-30",
        "churn:acme:2026-06-30",
        "expansion:acme:2026-06-30:module:api",
        "expansion:acme:2026-06-30:integration:integrations",
    ]
    churn = rows[1]
    assert churn.kind == "churn" and churn.severity == "medium"  # 2 points: MEDIUM
    assert churn.metrics["level"] == "MEDIUM"
    integ = rows[3]
    assert integ.kind == "expansion" and integ.dollar_impact == 7200.0
    assert integ.metrics["opportunity_id"] == "expansion:acme:integration:integrations"


def test_assessment_round_trips_through_json() -> None:
    a = assess_account(make_facts(active_users=25, tickets_recent=9, tam_rag="AMBER"), C)
    assert Assessment.model_validate_json(a.model_dump_json()) == a


def test_render_assessment() -> None:
    prev = score_health(make_facts(active_users=41, active_users_prev=41), C)
    a = assess_account(
        make_facts(
            active_users=25,
            active_users_prev=41,
            champion_active=False,
            champion_left_on=date(2026, 5, 2),
            tam_rag="AMBER",
        ),
        C,
        previous=prev,
    )
    text = render_assessment(a)
    assert text.startswith("Account Acme Corp (acme)  |  as of 2026-06-30 12:00 UTC\n")
    assert f"Health {a.snapshot.score:g}/100  AMBER  |  coverage 100% of signal weight" in text
    assert f"config {C.version}" in text
    assert "Seat utilization           31.3      12    12%  25 of 100 seats active" in text
    assert "What moved the score" in text and "active users fell from 41 to 25" in text
    assert "Churn risk: HIGH" in text or "Churn risk: CRITICAL" in text
    assert "MUDA [high]  $45,000/yr  75% of seats unused: $45,000 a year" in text
    assert "play: Re-deployment strategy" in text
    assert "Decision: RISK" in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert render_assessment(a) == text  # deterministic


def test_unscored_account_gets_no_lean_play_and_no_band_risk() -> None:
    # Seats and a contract only (16% of the weight): 10 of 100 seats used would be Muda
    # (high severity) on a scored account; unscored, there is no Lean finding at all.
    from tests.unit.builders import empty_facts, make_contract

    facts = empty_facts(contract=make_contract(), active_users=10)
    a = assess_account(facts, C)
    assert a.snapshot.band == "UNSCORED"
    assert a.findings == []
    assert a.decision.outcome == "routine"
    scored = assess_account(facts, C.with_overrides({"bands": {"min_coverage": 0.1}}))
    assert any(f.kind == "muda" for f in scored.findings)  # the same facts, scored
