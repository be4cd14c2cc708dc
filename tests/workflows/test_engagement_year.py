"""The later phases on the time-skipping server, with the real worker and a real database.

A year of two accounts handed off the same day: a healthy promoter whose
usage reaches first value two weeks after the handoff, and an unhealthy one
(a few users) whose champion is just as happy. The first gets exactly one
advocacy ask, the second none, and says why; the ask passes the draft audit.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.messages import FeatureReleasedSignal, NpsSignal
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

BEFORE_FIRST_VALUE = [
    "questionnaire_answered",
    "maturity_assessed",
    "kickoff_held",
    "stakeholders_mapped",
    "cs_plan_approved",
]


async def test_a_healthy_promoter_gets_one_advocacy_ask_in_a_year_an_unhealthy_account_none(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    today = now.date()
    suffix = uuid.uuid4().hex[:6]
    healthy, unhealthy = f"promoter-{suffix}", f"struggling-{suffix}"
    handoffs = {
        a: make_handoff(a, today, days_to_end=400, seats=20, milestones=BEFORE_FIRST_VALUE)
        for a in (healthy, unhealthy)
    }
    async with running_worker(env.client, db_dsn, settings) as pool:
        # The healthy account's 16 users start 14 days after the handoff (an hour before
        # that day's scan) and stay; the unhealthy account's 3 users come once a week, its
        # invoice is overdue and a ticket is escalated every 60 days.
        first_use = now + timedelta(days=14, hours=-1)
        await insert_usage(pool, healthy, daily_usage(healthy, first_use, 16, 380))
        await insert_usage(
            pool, unhealthy, daily_usage(unhealthy, now - timedelta(days=30), 3, 420, every=7)
        )
        await struggles(pool, unhealthy, now)
        for h in handoffs.values():
            await start_account(env.client, h, settings)
        handles = {a: env.client.get_workflow_handle(h.workflow_id) for a, h in handoffs.items()}

        await skip(env, timedelta(days=20))
        v = await view(handles[healthy])
        assert "first_value" in v.milestones
        assert v.time_to_first_value_days == 14  # from the handoff to the scan that saw 80% active
        assert v.advocacy_asks == [] and v.advocacy_blocked  # no NPS response yet, among others

        # Both champions answer the survey with a 10; the unhealthy account reaches first
        # value by hand (a person marks it).
        for a in (healthy, unhealthy):
            await handles[a].signal(
                "nps",
                NpsSignal(
                    response_id=f"{a}-nps-1",
                    responded_at=now + timedelta(days=20, hours=1),
                    score=10,
                    respondent="Ada Park",
                    comment="Exports save us hours every week",
                ),
            )
        await handles[unhealthy].signal("milestone", {"milestone": "first_value"})
        # Two releases: one of a module the healthy account licenses, one it does not.
        for feature_id, module in (("F-1", "reports"), ("F-2", "automation")):
            await handles[healthy].signal(
                "feature_released",
                FeatureReleasedSignal(
                    feature_id=feature_id,
                    module=module,
                    title=f"New {module} feature",
                    released_on=today + timedelta(days=20),
                    summary="Schedule any report as a CSV",
                ),
            )
        await skip(env, timedelta(days=330))

        good, bad = await view(handles[healthy]), await view(handles[unhealthy])
        assert good.band == "GREEN", (good.band, good.score, good.drivers)
        assert len(good.advocacy_asks) == 1, good.advocacy_asks
        assert good.advocacy_asks[0].endswith("reference call")
        assert bad.band in ("RED", "AMBER") and "first_value" in bad.milestones
        assert bad.advocacy_asks == []
        assert any(r.startswith("health band is") for r in bad.advocacy_blocked), (
            bad.advocacy_blocked
        )

        asks = {
            a: [r for r in await deliveries(pool, a) if r["purpose"] == "advocacy_ask"]
            for a in (healthy, unhealthy)
        }
        assert asks[unhealthy] == []
        occurrences = {
            re.search(r":advocacy_ask:(\w+:\d{4}-\d{2}-\d{2})", r["idempotency_key"]).group(1)  # type: ignore[union-attr]
            for r in asks[healthy]
        }
        assert len(occurrences) == 1, asks[healthy]
        events = await pool.fetch(
            "SELECT account_id, payload FROM events WHERE event_type = 'advocacy.ask_due'"
        )
        assert [e["account_id"] for e in events] == [healthy]
        ttfv = await pool.fetch(
            "SELECT account_id FROM events WHERE event_type = 'value.first_value'"
        )
        assert {r["account_id"] for r in ttfv} == {healthy, unhealthy}

        # Value Activation: one introduction (the licensed module only), campaigns for the
        # licensed features under benchmark, addressed to the users of their module.
        rows = await deliveries(pool, healthy)
        intros = {r["idempotency_key"] for r in rows if r["purpose"] == "feature_intro"}
        assert intros and all(":F-1:" in k for k in intros), intros
        assert any("automation: not licensed" in t.text for t in good.timeline)
        campaigns = await pool.fetch(
            "SELECT payload FROM events WHERE account_id = $1 AND event_type = 'adoption.campaign'",
            healthy,
        )
        campaigned = [f for c in campaigns for f in json.loads(c["payload"])["features"]]
        assert campaigned and "reports.export" not in campaigned  # everyone uses it

        # The drafts' words match their sources (the draft audit of the drafts issue).
        mine = ("advocacy_ask", "adoption_campaign", "feature_intro")
        drafts = [
            d
            for d in await read_drafts(db_dsn, settings.outbox_dir)
            if d.purpose in mine and d.account_id == healthy
        ]
        assert {d.purpose for d in drafts} == set(mine)
        ask = next(d for d in drafts if d.purpose == "advocacy_ask")
        assert "NPS 10" in ask.text and "Ada Park" in ask.text
        campaign = next(d for d in drafts if d.purpose == "adoption_campaign")
        assert f"{healthy}-u0" in campaign.text  # the users it is for, by id (no product_users)
        sources = await load_sources(db_dsn, [healthy])
        problems = audit(drafts, sources, today, 350)
        assert not problems, [(p.check, p.detail) for p in problems]
        for handle in handles.values():
            await handle.terminate("test done")
