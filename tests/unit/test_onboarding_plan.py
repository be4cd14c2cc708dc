"""The onboarding plan's rules (domain/onboarding_plan.py): dated milestones from the handoff,
training per licensed module to the people who use it (or should), embedding of the use cases
telemetry does not show yet."""

from __future__ import annotations

from datetime import date

import pytest

from domain.engagement import load_engagement_config
from domain.narrative import OnboardingPlanFacts, render_template
from domain.onboarding import SuccessCriterion, TelemetryReading, UseCase, evaluate_criteria
from domain.onboarding_plan import (
    OnboardingPlanConfig,
    PlanAudience,
    group_audience,
    plan_onboarding,
)

START = date(2027, 1, 4)
CATALOGUE = {
    "core": [UseCase(use_case_id="find", label="Find things", event_types=["core.search"], min_users=3)],
    "reports": [
        UseCase(use_case_id="self-serve", label="Self-serve reporting", event_types=["reports.create"], min_users=2),
        UseCase(use_case_id="share", label="Share results", event_types=["reports.export"], min_users=3),
    ],
}  # fmt: skip
PEOPLE = {
    "u1": ("ana@x.example", "analyst"),
    "u2": ("bo@x.example", "admin"),
    "u3": ("cy@x.example", "analyst"),
    "u4": ("di@x.example", "manager"),
}


def _audience(config: OnboardingPlanConfig | None = None) -> PlanAudience:
    # u1, u2, u3 search; u1 and u3 create reports; nobody exports; u4 never logged in.
    events = {
        "u1": {"login", "core.search", "reports.create"},
        "u2": {"login", "core.search"},
        "u3": {"core.search", "reports.create"},
    }
    return group_audience(events, PEOPLE, window_days=90, config=config or OnboardingPlanConfig())


def _plan(as_of: date, tier: str = "tier-2", **over: object):  # -> OnboardingPlan
    args: dict = {
        "tier": tier,
        "licensed_modules": ["core", "reports"],
        "handed_off_on": START,
        "as_of": as_of,
        "milestones_reached": set(),
        "first_value_on": None,
        "criteria": [],
        "feature_users": {"core.search": 3, "reports.create": 2},
        "audience": _audience(),
        "catalogue": CATALOGUE,
        **over,
    }
    return plan_onboarding(**args)


def test_milestones_are_dated_from_the_handoff_by_the_tiers_first_value_target() -> None:
    criteria = [
        SuccessCriterion(metric="weekly_active_users", target=8, by_day=60),
        SuccessCriterion(metric="feature_users", feature="reports.export", target=3, by_day=20),
    ]
    statuses = evaluate_criteria(
        criteria, TelemetryReading(weekly_active_users=3), START, date(2027, 1, 14)
    )
    plan = _plan(date(2027, 1, 14), criteria=statuses, milestones_reached={"onboarding_complete"})
    assert plan.ttfv_target_days == 60  # tier-2
    assert plan.onboarding_target_on == date(2027, 2, 3)  # day 30: half the target
    assert plan.first_value_target_on == date(2027, 3, 5)  # day 60
    got = [(m.milestone, m.by_day, m.due_on, m.status) for m in plan.milestones]
    assert got == [
        ("reports.export used by 3 users by day 20", 20, date(2027, 1, 24), "behind"),
        ("onboarding_complete", 30, date(2027, 2, 3), "reached"),
        ("first_value", 60, date(2027, 3, 5), "open"),
        ("8 weekly active users by day 60", 60, date(2027, 3, 5), "on track"),
    ]
    late = _plan(date(2027, 3, 10))
    assert {m.milestone: m.status for m in late.milestones} == {
        "onboarding_complete": "overdue",
        "first_value": "overdue",
    }
    assert _plan(START, tier="tier-1").ttfv_target_days == 90
    assert _plan(START, tier="tier-3").first_value_target_on == date(2027, 2, 3)


def test_training_goes_to_the_modules_users_and_embedding_to_the_use_cases_not_seen() -> None:
    plan = _plan(date(2027, 1, 14))
    core, reports = plan.training
    assert (core.module, core.uses_module, core.audience.users) == ("core", True, 3)
    assert core.audience.roles == {"admin": 1, "analyst": 2}
    assert reports.audience.sample == ["ana@x.example", "cy@x.example"]
    assert reports.focus == ["Share results", "Self-serve reporting"]  # not seen yet first
    assert core.due_on == plan.onboarding_target_on
    # Only the export use case is missing from telemetry: embed it with the reports users.
    [step] = plan.embedding
    assert (step.use_case_id, step.team, step.users_now, step.min_users) == (
        "share",
        "the reports users",
        0,
        3,
    )
    assert step.due_on == plan.first_value_target_on
    assert (plan.use_cases_supported, plan.use_cases_seen) == (3, 2)


def test_a_module_nobody_uses_is_trained_for_every_product_user() -> None:
    plan = _plan(
        date(2027, 1, 14),
        licensed_modules=["core", "dashboards"],
        catalogue={
            **CATALOGUE,
            "dashboards": [
                UseCase(use_case_id="d", label="Dashboards", event_types=["dashboards.view"])
            ],
        },
    )
    dash = plan.training[1]
    assert not dash.uses_module and dash.audience.users == 4  # every product user, u4 too
    assert dash.who == "every product user (no one uses it yet)"
    assert [(e.use_case_id, e.team) for e in plan.embedding] == [("d", "every product user")]


def test_a_plan_drafted_late_gives_each_step_time_from_the_draft() -> None:
    plan = _plan(date(2027, 4, 1))  # past both targets
    assert plan.training[0].due_on == date(2027, 4, 15)  # 14 days
    assert plan.embedding[0].due_on == date(2027, 5, 1)  # 30 days


def test_audience_groups_users_by_module_and_falls_back_to_the_windows_users() -> None:
    a = group_audience(
        {"u9": {"login", "reports.export"}}, {}, window_days=30, config=OnboardingPlanConfig()
    )
    assert set(a.modules) == {"reports"}  # a login belongs to no module
    assert a.everyone.users == 1 and a.everyone.sample == ["u9"]  # no product users on file
    assert _audience().everyone.users == 4  # the product users, whether active or not


def test_targets_are_configured_in_the_engagement_file() -> None:
    cfg = load_engagement_config('{"onboarding_plan": {"ttfv_target_days": {"tier-2": 45}}}')
    assert cfg.onboarding_plan.target_days("tier-2") == 45
    assert cfg.onboarding_plan.target_days("tier-9") == 60  # the default
    plan = _plan(START, audience=_audience(cfg.onboarding_plan))
    assert plan.first_value_target_on == date(2027, 2, 18)
    with pytest.raises(ValueError, match="onboarding_plan"):
        load_engagement_config('{"onboarding_plan": {"ttfv_target_dayz": {}}}')


def _plan_text(**kw: object) -> tuple[str, str]:
    base: dict[str, object] = {
        "account_id": "a",
        "account_name": "Acme",
        "handed_off_on": date(2026, 12, 1),
        "ttfv_target_days": 60,
        "onboarding_target_on": date(2026, 12, 31),
        "first_value_target_on": date(2027, 1, 30),
    }
    out = render_template(OnboardingPlanFacts(**{**base, **kw}))  # type: ignore[arg-type]
    return out.headline, out.paragraphs[0]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            (1, 1, 3, 1, 1),
            [
                "Training covers 1 licensed module, already in use; ",
                "1 use case of 3 still needs embedding",
                "The approved success criterion is a milestone too, on its own day.",
            ],
        ),
        (
            (2, 1, 5, 3, 3),
            [
                "Training covers 2 licensed modules, 1 of them in use today; ",
                "3 use cases of 5 still need embedding",
                "The 3 approved success criteria are milestones too",
            ],
        ),
        ((2, 2, 1, 0, 0), ["all of them in use today; its one use case already shows"]),
    ],
)
def test_plan_text_counts_and_verbs_agree(
    counts: tuple[int, int, int, int, int], expected: list[str]
) -> None:
    keys = ("modules_to_train", "modules_in_use", "use_cases_supported", "use_cases_to_embed", "criteria_count")  # fmt: skip
    _, text = _plan_text(**dict(zip(keys, counts, strict=True)))
    assert [e for e in expected if e not in text] == [], text


def test_a_reached_first_value_heads_the_plan_instead_of_its_target() -> None:
    head, reached = _plan_text(first_value_on=date(2026, 12, 20), first_value_days=19)
    assert head == (
        "Acme: onboarding plan, first value reached on 2026-12-20 "
        "(19 days from the handoff, target 60 days)"
    )
    assert "first value by 2027-01-30" not in head + reached
