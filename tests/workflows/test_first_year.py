"""The first year of an account, every phase doing its work (issue 13's first "Done when").

On the time-skipping server with the real worker and Postgres, two accounts are
handed off the same day in phase 1 and walked through the lifecycle by the
people around them (questionnaire answers, kickoff, CS plan approval, a meeting,
NPS answers). The healthy one produces, in this order: the commercial brief, the
questionnaire, the maturity assessment after the answers, the kickoff brief with
its stakeholder gaps, the CS plan draft, then (after approval) the onboarding
plan, an adoption campaign for its under-used features, a meeting-prep brief and
a follow-up, a QBR that reports the plan's criteria, and an advocacy ask once it
qualifies. The unhealthy one, handed off the same day and treated the same way,
gets no advocacy ask. Every draft of both passes the draft audit.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.messages import (
    CsPlanUpdate,
    InteractionSignal,
    MeetingScheduledSignal,
    MilestoneSignal,
    NpsSignal,
    QuestionnaireAnswersUpdate,
)
from domain.onboarding import Answer
from tests.workflows.helpers import (
    daily_usage,
    deliveries,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    struggles,
    view,
)

pytestmark = pytest.mark.slow

ORDER = [
    "commercial_brief",
    "alignment_questionnaire",
    "maturity_assessment",
    "kickoff_brief",
    "cs_plan_draft",
    "onboarding_plan",
    "adoption_campaign",
    "meeting_prep",
    "meeting_followup",
    "qbr",
    "advocacy_ask",
]
ROLES = ["analyst", "analyst", "analyst", "admin"]  # then "user"


def _first_of_each(rows: list[asyncpg.Record]) -> list[str]:
    """The purposes of ORDER in the order their first delivery was made."""
    out: list[str] = []
    for r in rows:
        if r["purpose"] in ORDER and r["purpose"] not in out:
            out.append(r["purpose"])
    return out


def _page(rows: list[asyncpg.Record], purpose: str) -> str:
    target = next(r["target"] for r in rows if r["purpose"] == purpose and r["target"])
    return Path(target).read_text()


async def test_a_first_year_produces_every_phases_work_in_order(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    today = now.date()
    suffix = uuid.uuid4().hex[:6]
    healthy, unhealthy = f"year-{suffix}", f"year-weak-{suffix}"
    people = [
        {"name": "Lee Park", "email": "lee@example.com", "role": "admin"},
        {"name": "Ada Park", "email": "ada@example.com", "role": "champion"},
    ]  # no executive sponsor: a stakeholder gap
    handoffs = {
        a: make_handoff(
            a,
            today,
            days_to_end=400,
            seats=20,
            industry="Logistics",
            goals=["Cut weekly reporting time by 30%"],
            notes="Promised a reporting workshop in the first month.",
            stakeholders=people,
        )
        for a in (healthy, unhealthy)
    }
    async with running_worker(env.client, db_dsn, settings) as pool:
        # Healthy: six users searched in the ten days before the handoff, three of them also
        # built reports; from day 14 sixteen users log in, search and export every day.
        early = [
            (healthy, f"{healthy}-u{u}", now - timedelta(days=d, hours=1), event, 1)
            for u in range(6)
            for d in range(1, 10)
            for event in ("login", "core.search", *(("reports.create",) if u < 3 else ()))
        ]
        first_use = now + timedelta(days=14, hours=-1)
        await insert_usage(pool, healthy, early + daily_usage(healthy, first_use, 16, 380))
        await pool.executemany(
            "INSERT INTO product_users (account_id, user_id, email, role, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (
                    healthy,
                    f"{healthy}-u{u}",
                    f"user{u}@{healthy}.example",
                    ROLES[u] if u < len(ROLES) else "user",
                    now - timedelta(days=30),
                )
                for u in range(20)
            ],
        )
        # Unhealthy: three users once a week, an overdue invoice, an escalation every 60 days.
        await insert_usage(
            pool, unhealthy, daily_usage(unhealthy, now - timedelta(days=30), 3, 420, every=7)
        )
        await struggles(pool, unhealthy, now)
        for h in handoffs.values():
            await start_account(env.client, h, settings)
        handles = {a: env.client.get_workflow_handle(h.workflow_id) for a, h in handoffs.items()}
        await env.sleep(timedelta(hours=1))
        assert (await view(handles[healthy])).phase == "2 Discovery & Assessment"

        # The champion answers the questionnaire; the kickoff is held; Sales' gaps are closed
        # by hand; the customer approves the CS plan with the draft's criteria.
        for handle in handles.values():
            await handle.execute_update(
                "submit_questionnaire",
                QuestionnaireAnswersUpdate(
                    answered_by="Ada Park",
                    answers=[
                        Answer(question_id="goals-outcome", level=4),
                        Answer(question_id="sponsor-engaged", level=2, note="CFO to join later"),
                        Answer(question_id="process-rollout", level=3),
                    ],
                ),
            )
        await env.sleep(timedelta(hours=1))
        for handle in handles.values():
            for m in ("kickoff_held", "stakeholders_mapped"):
                await handle.signal("milestone", MilestoneSignal(milestone=m))
            await handle.execute_update(
                "approve_cs_plan",
                CsPlanUpdate(approved_by="Ada Park", objectives=["Cut reporting time by 30%"]),
            )
        meeting_at = now + timedelta(days=5, hours=4)
        await handles[healthy].signal(
            "meeting_scheduled",
            MeetingScheduledSignal(
                meeting_id="M-1",
                scheduled_for=meeting_at,
                title="Onboarding check-in",
                attendees=["Ada Park"],
            ),
        )
        await env.sleep(timedelta(hours=2))
        v = await view(handles[healthy])
        assert v.phase == "4 Value Activation", v.phase

        await skip(env, meeting_at + timedelta(hours=2) - await env.get_current_time())
        await handles[healthy].signal(
            "interaction",
            InteractionSignal(
                interaction_id="I-1",
                occurred_at=meeting_at + timedelta(hours=1),
                notes="Good start.\nACTION: Lee to invite the analysts\nTODO: book the workshop",
            ),
        )
        # Big steps until the first QBR of the healthy account is out (a quarter starts
        # within 92 days); then both champions answer the NPS survey with a 10 and the
        # unhealthy account's first value is marked by a person.
        for _ in range(10):
            await skip(env, timedelta(days=10), step=timedelta(days=10))
            if any(r["purpose"] == "qbr" for r in await deliveries(pool, healthy)):
                break
        nps_at = await env.get_current_time()
        for a, handle in handles.items():
            await handle.signal(
                "nps",
                NpsSignal(
                    response_id=f"{a}-nps-1",
                    responded_at=nps_at,
                    score=10,
                    respondent="Ada Park",
                    comment="The reports save us hours",
                ),
            )
        await handles[unhealthy].signal("milestone", MilestoneSignal(milestone="first_value"))
        await skip(env, timedelta(days=30), step=timedelta(days=10))

        rows = await deliveries(pool, healthy)
        assert _first_of_each(rows) == ORDER, _first_of_each(rows)
        good, bad = await view(handles[healthy]), await view(handles[unhealthy])
        assert good.band == "GREEN" and len(good.advocacy_asks) == 1, (
            good.band,
            good.advocacy_asks,
        )
        assert good.time_to_first_value_days == 14
        assert good.onboarding_plan == (
            f"drafted {today}; first value targeted by {today + timedelta(days=60)} "
            "(60-day tier-2 target)"
        )
        assert bad.advocacy_asks == [] and "first_value" in bad.milestones
        assert any(r.startswith("health band is") for r in bad.advocacy_blocked), (
            bad.advocacy_blocked
        )
        weak_rows = await deliveries(pool, unhealthy)
        assert not [r for r in weak_rows if r["purpose"] == "advocacy_ask"]
        assert _first_of_each(weak_rows)[:6] == ORDER[:6]  # its phases did their work too

        # The kickoff brief names the gap; the onboarding plan is dated from the handoff by
        # the tier-2 target (60 days), trains the reports users (the three who built reports)
        # and everyone on core, and embeds the reports use cases telemetry did not show.
        assert "No executive sponsor named" in _page(rows, "kickoff_brief")
        plan = _page(rows, "onboarding_plan")
        assert f"first value by {today + timedelta(days=60)}" in plan
        assert (
            f"| Onboarding complete (5 or more active users) | 30 | {today + timedelta(days=30)} |"
            in plan
        )
        assert "| Success criterion: 8 weekly active users by day 60 | 60 |" in plan
        assert (
            f"Train the reports users on reports: 3 users (analyst 3): user0@{healthy}.example"
            in plan
        )
        assert "Train the core users on core: 6 users (admin 1, analyst 3, user 2)" in plan
        assert "Scheduled recurring reports" in plan.split("## Workflow embedding", 1)[1]
        assert "Self-serve reporting" not in plan.split("## Workflow embedding", 1)[1]  # seen
        assert "## Value realization against the CS plan" in _page(rows, "qbr")
        assert "Lee: invite the analysts" in _page(rows, "meeting_followup")

        drafts = [
            d
            for d in await read_drafts(db_dsn, settings.outbox_dir)
            if d.account_id in (healthy, unhealthy)
        ]
        assert {"onboarding_plan", "advocacy_ask"} <= {d.purpose for d in drafts}
        sources = await load_sources(db_dsn, [healthy, unhealthy])
        days = ((await env.get_current_time()).date() - today).days + 1
        problems = audit(drafts, sources, today, days)
        assert not problems, "\n".join(f"[{p.check}] {p.draft}: {p.detail}" for p in problems)
        for handle in handles.values():
            await handle.terminate("test done")
