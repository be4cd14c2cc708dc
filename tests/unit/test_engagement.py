"""The later-phase rules on hand-computed inputs: advocacy eligibility, feedback themes, TTFV cohorts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.activation import TtfvRecord, time_to_first_value, ttfv_cohorts
from domain.engagement import (
    AdvocacyConfig,
    AdvocacyInputs,
    FeedbackConfig,
    FeedbackTheme,
    advocacy_eligibility,
    load_engagement_config,
    state_precheck,
)
from domain.feedback import (
    FeedbackItem,
    group_themes,
    previous_quarter,
    quarter_bounds,
    quarter_of,
    theme_of,
)
from domain.hygiene import ContractRecord, StakeholderRecord, crm_hygiene
from domain.narrative import QbrRoiFacts
from domain.touchpoints import (
    Baseline,
    ScheduledMeeting,
    TouchpointConfig,
    changes_since,
    missed,
    parse_actions,
    prep_due,
    touchpoint_overdue,
)
from domain.value import value_summary

AS_OF = date(2027, 3, 1)
CFG = AdvocacyConfig(interval_days=180)  # NPS >= 9, GREEN, 60 quiet days before renewal

HEALTHY_PROMOTER = AdvocacyInputs(
    as_of=AS_OF,
    band="GREEN",
    churn_level="LOW",
    first_value_reached=True,
    nps_latest=9,
    nps_latest_on=date(2027, 2, 20),
    days_to_renewal=61,
)


def test_a_healthy_promoter_past_first_value_outside_any_risk_window_is_asked_for_a_reference() -> (
    None
):
    d = advocacy_eligibility(HEALTHY_PROMOTER, CFG)
    assert d.eligible and d.kind == "reference" and d.reasons == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"band": "AMBER"}, "health band is AMBER, not GREEN"),
        ({"band": "UNSCORED"}, "health is not scored yet"),
        ({"band": None}, "health is not scored yet"),
        ({"nps_latest": 8}, "latest NPS is 8; promoters score 9 or more"),
        ({"nps_latest": None}, "no NPS response on file"),
        ({"first_value_reached": False}, "first value not reached yet"),
        ({"churn_level": "HIGH"}, "open churn risk (HIGH)"),
        ({"in_churn_handling": True}, "the account is in churn handling"),
        ({"notice_given": True}, "the customer gave notice"),
        ({"days_to_renewal": 60}, "renewal in 60 days, inside the 60-day window before renewal"),
        ({"open_escalated_tickets": 1}, "1 escalated ticket open"),
        (
            {"last_ask_on": date(2026, 9, 3), "asks_made": 1},
            "last ask on 2026-09-03 (179 days ago); at most one every 180 days",
        ),
    ],
)
def test_each_condition_that_fails_is_the_reason_for_no(change: dict, reason: str) -> None:
    d = advocacy_eligibility(HEALTHY_PROMOTER.model_copy(update=change), CFG)
    assert not d.eligible and d.kind is None
    assert d.reasons == [reason]


def test_every_failed_condition_is_listed_not_only_the_first() -> None:
    d = advocacy_eligibility(
        HEALTHY_PROMOTER.model_copy(
            update={"band": "RED", "nps_latest": 3, "churn_level": "CRITICAL"}
        ),
        CFG,
    )
    assert d.reasons == [
        "health band is RED, not GREEN",
        "latest NPS is 3; promoters score 9 or more",
        "open churn risk (CRITICAL)",
    ]


def test_after_the_interval_the_next_ask_is_the_next_kind() -> None:
    later = HEALTHY_PROMOTER.model_copy(update={"last_ask_on": date(2026, 9, 2), "asks_made": 1})
    assert advocacy_eligibility(later, CFG).kind == "case_study"  # 180 days since the reference
    third = later.model_copy(update={"asks_made": 5})
    assert advocacy_eligibility(third, CFG).kind == "review"  # 5 % 3 == 2


def test_the_state_precheck_never_refuses_for_what_only_postgres_knows() -> None:
    unknown = HEALTHY_PROMOTER.model_copy(update={"nps_latest": None})
    assert state_precheck(unknown, CFG).eligible
    amber = unknown.model_copy(update={"band": "AMBER"})
    assert state_precheck(amber, CFG).reasons == ["health band is AMBER, not GREEN"]


def test_configuration_overrides_the_thresholds_and_names_a_bad_field() -> None:
    cfg = load_engagement_config('{"advocacy": {"min_nps": 10, "renewal_quiet_days": 30}}')
    assert cfg.advocacy.min_nps == 10 and cfg.advocacy.interval_days == 365
    d = advocacy_eligibility(HEALTHY_PROMOTER, cfg.advocacy)
    assert d.reasons == ["latest NPS is 9; promoters score 10 or more"]
    with pytest.raises(ValueError, match="min_nps"):
        load_engagement_config('{"advocacy": {"min_nps": 11}}')
    with pytest.raises(ValueError, match="unknown"):
        load_engagement_config('{"advocacy": {"unknown": 1}}')


# ------------------------------------------------------------------ feedback themes


def _item(account: str, source: str, day: date, text: str, score: int | None = None):
    return FeedbackItem(
        account_id=account,
        source=source,  # type: ignore[arg-type]
        at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        text=text,
        nps_score=score,
    )


def test_quarters() -> None:
    assert quarter_bounds("2026-Q4") == (date(2026, 10, 1), date(2027, 1, 1))
    assert quarter_bounds("2027-Q1") == (date(2027, 1, 1), date(2027, 4, 1))
    assert quarter_of(date(2026, 9, 30)) == "2026-Q3"
    assert previous_quarter(date(2027, 2, 1)) == "2026-Q4"
    with pytest.raises(ValueError, match="2026-Q3"):
        quarter_bounds("2026-Q5")


def test_an_item_goes_to_the_first_theme_whose_keyword_it_contains_as_a_word() -> None:
    cfg = FeedbackConfig()
    assert theme_of("Exports to CSV are slow", cfg) == "Performance"  # Performance comes first
    assert theme_of("Cannot export the quarterly report", cfg) == "Reporting & exports"
    assert theme_of("It is hard to find the settings", cfg) == "Usability"  # a phrase
    assert theme_of("Great team, thanks", cfg) == "Other"
    only_export = FeedbackConfig(themes=[FeedbackTheme(name="X", keywords=["export"])])
    assert theme_of("reexported", only_export) == "Other"


def test_themes_of_a_quarter_count_every_item_once_largest_first() -> None:
    q = "2026-Q3"
    items = [
        _item("acme", "ticket", date(2026, 7, 2), "SSO login fails"),  # Access & login
        _item("acme", "ticket", date(2026, 7, 9), "Export button missing"),  # Reporting
        _item("globex", "nps", date(2026, 8, 1), "Reports take ages to export", 4),  # Reporting
        _item("globex", "nps", date(2026, 8, 2), "Dashboards are great", 10),  # Reporting
        _item("initech", "ticket", date(2026, 9, 30), "Password reset email"),  # Access & login
        _item("initech", "nps", date(2026, 9, 12), "Keep it up", 9),  # Other
        _item("acme", "ticket", date(2026, 6, 30), "Export broken"),  # Q2: left out
        _item("acme", "ticket", date(2026, 10, 1), "Export broken"),  # Q4: left out
    ]
    d = group_themes(q, items, FeedbackConfig())
    assert (d.items, d.accounts) == (6, 3)
    assert [(t.theme, t.items) for t in d.themes] == [
        ("Reporting & exports", 3),
        ("Access & login", 2),
        ("Other", 1),
    ]
    reporting = d.themes[0]
    assert (reporting.tickets, reporting.nps_comments, reporting.detractors) == (1, 2, 1)
    assert reporting.accounts == ["acme", "globex"]
    assert sum(t.items for t in d.themes) == d.items


def test_configured_themes_replace_the_defaults() -> None:
    cfg = FeedbackConfig(
        themes=[FeedbackTheme(name="Mobile", keywords=["ios", "android", "mobile app"])],
        other_theme="Unsorted",
    )
    items = [
        _item("a", "ticket", date(2026, 7, 2), "The mobile app crashes"),
        _item("b", "ticket", date(2026, 7, 3), "Android widget"),
        _item("c", "ticket", date(2026, 7, 4), "Slow exports"),
    ]
    d = group_themes("2026-Q3", items, cfg)
    assert [(t.theme, t.items) for t in d.themes] == [("Mobile", 2), ("Unsorted", 1)]


# -------------------------------------------------------------- time to first value


def test_time_to_first_value_is_whole_days_from_handoff() -> None:
    assert time_to_first_value(date(2026, 1, 10), date(2026, 2, 24)) == 45
    assert time_to_first_value(date(2026, 1, 10), None) is None


def test_ttfv_cohorts_by_month_and_by_tier() -> None:
    # (account, tier, handed off, first value): days to first value in the comment
    rows = [
        ("a", "tier-1", date(2026, 1, 5), date(2026, 2, 4)),  # 30
        ("b", "tier-2", date(2026, 1, 20), date(2026, 3, 21)),  # 60
        ("c", "tier-2", date(2026, 1, 31), date(2026, 3, 1)),  # 29
        ("d", "tier-1", date(2026, 2, 1), None),  # pending: 58 days at as_of
        ("e", "tier-1", date(2026, 2, 10), date(2026, 4, 15)),  # after as_of: pending, 49
        ("f", "tier-3", date(2026, 4, 1), None),  # handed off after as_of: left out
    ]
    records = [
        TtfvRecord(account_id=a, tier=t, handed_off_on=h, first_value_on=f) for a, t, h, f in rows
    ]
    as_of = date(2026, 3, 31)
    by_month = {c.cohort: c for c in ttfv_cohorts(records, "month", as_of)}
    assert list(by_month) == ["2026-01", "2026-02"]
    jan = by_month["2026-01"]
    assert (jan.accounts, jan.reached, jan.pending) == (3, 3, 0)
    assert (jan.median_days, jan.mean_days, jan.fastest_days, jan.slowest_days) == (
        30.0,
        39.7,
        29,
        60,
    )
    feb = by_month["2026-02"]
    assert (feb.accounts, feb.reached, feb.pending, feb.median_days) == (2, 0, 2, None)
    assert feb.longest_wait_days == 58  # d: 2026-02-01 -> 2026-03-31
    by_tier = {c.cohort: c for c in ttfv_cohorts(records, "tier", as_of)}
    assert (by_tier["tier-2"].median_days, by_tier["tier-1"].reached) == (44.5, 1)
    assert "tier-3" not in by_tier


# ------------------------------------------------------------------ touchpoints


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2027, 1, day, hour, tzinfo=UTC)


def test_a_prep_brief_is_due_within_the_lead_time_and_before_the_meeting() -> None:
    meetings = [
        ScheduledMeeting(meeting_id="far", scheduled_for=_at(20)),
        ScheduledMeeting(meeting_id="soon", scheduled_for=_at(11, 9)),
        ScheduledMeeting(meeting_id="done", scheduled_for=_at(11, 10), prepped=True),
        ScheduledMeeting(meeting_id="started", scheduled_for=_at(10, 11)),
    ]
    now = _at(10)  # 2027-01-10 12:00
    assert [m.meeting_id for m in prep_due(meetings, now, 24)] == ["soon"]  # 21 h ahead
    assert [m.meeting_id for m in prep_due(meetings, now, 12)] == []
    assert [m.meeting_id for m in missed(meetings, now)] == ["started"]


def test_changes_since_the_last_brief() -> None:
    before = Baseline(
        at=_at(1), score=72.4, band="GREEN", churn_level="LOW", milestones=["kickoff_held"],
        findings=["Support overburden"],
    )  # fmt: skip
    now = Baseline(
        at=_at(15), score=58.0, band="AMBER", churn_level="MEDIUM",
        milestones=["kickoff_held", "first_value"], findings=["Inconsistent adoption"],
    )  # fmt: skip
    assert changes_since(before, now) == [
        "health 72 -> 58/100 (GREEN -> AMBER)",
        "churn risk LOW -> MEDIUM",
        "milestone reached: first_value",
        "new finding: Inconsistent adoption",
        "no longer found: Support overburden",
    ]
    assert changes_since(before, before.model_copy(update={"at": _at(9)})) == [
        "no change in health, risk or milestones since 2027-01-01"
    ]
    assert changes_since(None, now) == ["first brief for this account: no earlier baseline"]


def test_action_items_and_owners_from_the_notes() -> None:
    notes = (
        "Good call, they like the exports.\n"
        "ACTION: Dana to send the export guide by Friday.\n"
        "TODO: book the QBR\n"
        "- [ ] Sam Okafor: share the roadmap\n"
        "* Next step - Lee will check the SSO logs\n"
        "We discussed the action plan for Q3"  # not a marked line
    )
    assert [(a.owner, a.action) for a in parse_actions(notes)] == [
        ("Dana", "send the export guide by Friday"),
        (None, "book the QBR"),
        ("Sam Okafor", "share the roadmap"),
        ("Lee", "check the SSO logs"),
    ]
    assert parse_actions(None) == [] and parse_actions("no markers here") == []


def test_touchpoint_cadence_per_tier() -> None:
    cfg = TouchpointConfig()
    assert (cfg.cadence_for("tier-1"), cfg.cadence_for("tier-3"), cfg.cadence_for("x")) == (14, 60, 45)  # fmt: skip
    assert touchpoint_overdue(_at(1), _at(15), 14) is None  # 14 days: on cadence
    assert touchpoint_overdue(_at(1), _at(16), 14) == 15
    assert touchpoint_overdue(None, _at(16), 14) is None


# ------------------------------------------------------------------ value proof


def test_rosi_is_the_net_value_over_the_cost_of_the_period() -> None:
    roi = QbrRoiFacts(
        account_id="acme",
        account_name="Acme Corp",
        period_days=90,
        hours_saved=250.0,
        value_usd=15000,  # 250 h x $60
        hourly_cost=60.0,
        period_cost=12000,  # $48,667 ARR x 90/365, rounded by the QBR
        roi_multiple=1.2,
        evidence=["Reports exported: 600 exports by 12 users, about 200 hours saved"],
    )
    v = value_summary(roi)
    assert (v.net_value, v.rosi_pct, v.roi_multiple) == (3000, 25.0, 1.2)
    text = "\n".join(v.lines())
    assert "About $15,000 of time saved (250 hours)" in text
    assert "1.2x the cost, a RoSI of 25% ($3,000 net)" in text
    assert "- Reports exported: 600 exports" in text
    idle = value_summary(QbrRoiFacts(account_id="a", account_name="A", period_days=90))
    assert idle.rosi_pct is None and "no value to report" in "\n".join(idle.lines())


# ------------------------------------------------------------------ CRM hygiene


def test_crm_hygiene_finds_each_gap_with_its_fix() -> None:
    today = date(2027, 3, 1)
    people = [
        StakeholderRecord(stakeholder_id="s1", name="Ada Park", title="VP Ops", is_champion=True,
                          left_on=date(2027, 2, 1), last_engaged_at=datetime(2027, 1, 20, tzinfo=UTC)),
        StakeholderRecord(stakeholder_id="s2", name="Lee Chen", role="admin",
                          last_engaged_at=datetime(2026, 11, 30, tzinfo=UTC)),  # 91 days
        StakeholderRecord(stakeholder_id="s3", name="Sam Ortiz", title="CFO",
                          last_engaged_at=datetime(2026, 12, 1, tzinfo=UTC)),  # 90 days: fine
        StakeholderRecord(stakeholder_id="s4", name="Kim Lo", joined_on=date(2027, 4, 1)),  # later
        StakeholderRecord(stakeholder_id="s5", name="Old Hand", left_on=date(2026, 8, 1)),  # long ago
    ]  # fmt: skip
    found = crm_hygiene(people, ContractRecord(start_date=date(2026, 3, 1)), today)
    assert [(f.check, f.subject) for f in found] == [
        ("no_champion", "account"),
        ("no_sponsor", "account"),
        ("stakeholder_left", "s1"),
        ("not_engaged", "s2"),
        ("missing_renewal", "contract"),
    ]
    assert found[0].detail == "none of the 2 active stakeholders is marked champion"
    assert found[1].detail == "none of the 2 active stakeholders is the executive sponsor"
    assert found[2].detail == "champion Ada Park (VP Ops) left on 2027-02-01"
    assert "and champion" in found[2].fix
    assert found[3].detail == "Lee Chen (admin) last engaged 91 days ago (2026-11-30)"
    assert found[4].detail == "no end date, no ARR, no seats" and "signal contract" in found[4].fix
    # The champion may be named by role, the sponsor by any of its spellings.
    assert [
        f.check
        for f in crm_hygiene(
            [
                people[1].model_copy(update={"role": "Champion"}),
                people[2].model_copy(update={"role": "exec sponsor"}),
            ],
            ContractRecord(
                start_date=date(2026, 3, 1), end_date=date(2027, 3, 1), arr=1, seats_purchased=1
            ),
            today,
        )
    ] == ["not_engaged"]  # Lee, 91 days; no champion or sponsor finding
    clean = [people[2].model_copy(update={"is_champion": True, "role": "executive_sponsor"})]
    full = ContractRecord(start_date=date(2026, 3, 1), end_date=date(2027, 3, 1), arr=1, seats_purchased=1)  # fmt: skip
    assert crm_hygiene(clean, full, today) == []
    assert crm_hygiene(clean, None, today)[0].detail == "no contract in force"


def test_a_stakeholder_never_engaged_is_flagged_only_once_the_window_has_passed_since_joining() -> (
    None
):
    today = date(2027, 3, 1)
    full = ContractRecord(start_date=date(2026, 3, 1), end_date=date(2027, 3, 1), arr=1, seats_purchased=1)  # fmt: skip
    sponsor = StakeholderRecord(
        stakeholder_id="s0", name="Sam Ortiz", role="executive_sponsor", is_champion=True,
        last_engaged_at=datetime(2027, 2, 20, tzinfo=UTC),
    )  # fmt: skip
    joined = [
        StakeholderRecord(stakeholder_id="new", name="Kim Lo", joined_on=date(2026, 12, 1)),  # 90 days
        StakeholderRecord(stakeholder_id="old", name="Lee Chen", joined_on=date(2026, 11, 30)),  # 91
        StakeholderRecord(stakeholder_id="undated", name="Ada Park"),  # joining unknown
    ]  # fmt: skip
    found = crm_hygiene([sponsor, *joined], full, today)
    assert [(f.check, f.subject) for f in found] == [
        ("not_engaged", "old"),
        ("not_engaged", "undated"),
    ]
    assert found[0].detail == "Lee Chen (no title) never engaged on record"


def test_hygiene_wording_with_nobody_or_one_person_on_record() -> None:
    """No 'none of the 0 active stakeholders': an account with nobody on record says so."""
    today = date(2027, 3, 1)
    full = ContractRecord(start_date=date(2026, 3, 1), end_date=date(2027, 3, 1), arr=1, seats_purchased=1)  # fmt: skip
    nobody = crm_hygiene([], full, today)
    assert [f.detail for f in nobody] == [
        "no active stakeholder on record, so nobody is marked champion",
        "no active stakeholder on record, so nobody is the executive sponsor",
    ]
    one = StakeholderRecord(
        stakeholder_id="s1", name="Lee Chen", role="admin",
        last_engaged_at=datetime(2027, 2, 20, tzinfo=UTC),
    )  # fmt: skip
    assert [f.detail for f in crm_hygiene([one], full, today)] == [
        "the only active stakeholder, Lee Chen (admin), is not marked champion",
        "the only active stakeholder, Lee Chen (admin), is not the executive sponsor",
    ]
