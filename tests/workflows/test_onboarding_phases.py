"""Phases 1-3 on the time-skipping server: every draft they owe, in order, and the CS plan's
criteria tracked after approval; the drafts pass the draft audit (bench/drafts.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.messages import CsPlanUpdate, QuestionnaireAnswersUpdate, UpdateResult
from domain.onboarding import Answer
from tests.workflows.helpers import (
    deliveries,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)
from workflows.child_models import QbrInput

pytestmark = pytest.mark.slow

ORDER = [
    "commercial_brief",
    "alignment_questionnaire",
    "maturity_assessment",
    "kickoff_brief",
    "cs_plan_draft",
]


async def test_a_handed_off_account_gets_brief_questionnaire_assessment_kickoff_and_plan(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"onb-{uuid.uuid4().hex[:6]}"
    h = make_handoff(
        account,
        now.date(),
        seats=20,
        industry="Logistics",
        goals=["Cut weekly reporting time by 30%"],
        notes="Promised a dedicated onboarding workshop in the first month.",
        stakeholders=[{"name": "Lee Park", "email": "lee@example.com", "role": "admin"}],
    )
    async with running_worker(env.client, db_dsn, settings) as pool:
        # The first days of use: 10 users search every day, 3 of them also create reports.
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=1), "core.search", 1)
            for u in range(10)
            for d in range(0, 10)
        ] + [
            (account, f"u{u}", now - timedelta(days=d, hours=2), "reports.create", 1)
            for u in range(3)
            for d in range(0, 5)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))

        v = await view(handle)
        assert v.phase == "2 Discovery & Assessment"
        purposes = _in_order(await deliveries(pool, account))
        assert purposes == ORDER[:2], purposes  # brief, then the questionnaire; then it waits
        page = _page(await deliveries(pool, account), "alignment_questionnaire")
        assert "process-training" in page and "reports-audience" in page  # tier-2, reports
        assert "Logistics" in page
        brief = _page(await deliveries(pool, account), "commercial_brief")
        assert "Promised a dedicated onboarding workshop" in brief
        assert "Executive sponsor named by Sales | open" in brief

        # An answer to a question that was never asked is refused; state is untouched.
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                "submit_questionnaire",
                QuestionnaireAnswersUpdate(
                    answered_by="Lee Park", answers=[Answer(question_id="nope", level=3)]
                ),
            )
        assert "unknown question ids ['nope']" in str(err.value.cause)
        assert "questionnaire_answered" not in (await view(handle)).milestones

        result = await handle.execute_update(
            "submit_questionnaire",
            QuestionnaireAnswersUpdate(
                answered_by="Lee Park",
                answers=[
                    Answer(question_id="goals-outcome", level=4),
                    Answer(question_id="goals-measure", level=2),
                    Answer(question_id="sponsor-engaged", level=1, note="no sponsor yet"),
                    Answer(question_id="process-rollout", level=3),
                ],
            ),
            result_type=UpdateResult,
        )
        assert "4 answer(s) recorded" in result.message
        await env.sleep(timedelta(hours=1))

        v = await view(handle)
        assert {"questionnaire_answered", "maturity_assessed"} <= set(v.milestones)
        assert v.phase == "3 Executive Alignment & CS Plan"  # the Discovery gate advanced
        # goals 3, sponsorship 1, process 3; adoption 10 of 20 seats = 50%: level 4;
        # depth: reports.create by 3 users and core.search by 10 of the 5 use cases of
        # core and reports = 40%: level 3. Overall (3 + 1 + 3 + 4 + 3) / 5 = 2.8.
        assert v.maturity is not None and v.maturity.overall == 2.8, v.maturity
        rows = await deliveries(pool, account)
        assert _in_order(rows) == ORDER, _in_order(rows)
        kickoff = _page(rows, "kickoff_brief")
        assert "No executive sponsor named" in kickoff and "No champion named" in kickoff
        assert "Single-threaded: 1 named contact" in kickoff
        assert "Mutual expectations" in kickoff
        assert "stakeholders_mapped" not in v.milestones  # gaps: a person closes them
        plan = _page(rows, "cs_plan_draft")
        assert "8 weekly active users by day 60" in plan  # 40% of 20 seats
        assert "reports.create used by 2 users by day 90" in plan

        await handle.execute_update(
            "approve_cs_plan", CsPlanUpdate(approved_by="VP Ops", objectives=["Cut time by 30%"])
        )
        await env.sleep(timedelta(days=1))
        v = await view(handle)
        got = {c.label: c for c in v.success_criteria}
        assert set(got) == {
            "8 weekly active users by day 60",
            "60% of seats active by day 90",
            "reports.create used by 2 users by day 90",
        }, got
        # Last scan: the 10 searching users are the week's active users: met.
        assert got["8 weekly active users by day 60"].status == "met"
        assert got["8 weekly active users by day 60"].value == 10
        assert got["reports.create used by 2 users by day 90"].value == 3
        util = got["60% of seats active by day 90"]
        assert util.value == 0.5 and util.status == "on track"  # 0.6 * 1 / 90 expected by now
        assert any("success criterion" in t.text for t in v.timeline)

        # Value proof: the next QBR reports the approved criteria, as its input carried them.
        for _ in range(20):  # the next calendar quarter starts within 92 days
            if any(r["purpose"] == "qbr" and r["target"] for r in await deliveries(pool, account)):
                break
            await skip(env, timedelta(days=5))
        rows = await deliveries(pool, account)
        qbr = _page(rows, "qbr")
        # The page's delivery key starts with the QBR child's workflow id.
        key = next(r["idempotency_key"] for r in rows if r["purpose"] == "qbr")
        qbr_input = await _qbr_input(env, key.split(":", 1)[0])
        assert len(qbr_input.success_criteria) == 3
        assert "## Value realization against the CS plan" in qbr
        met = sum(c.status == "met" for c in qbr_input.success_criteria)
        assert f"{met} of 3 success criteria met" in qbr
        for c in qbr_input.success_criteria:
            assert "| " + " | ".join(c.cells) + " |" in qbr, (c.cells, qbr)
        await handle.terminate("test done")

    drafts = [d for d in await read_drafts(db_dsn, settings.outbox_dir) if d.account_id == account]
    assert {d.purpose for d in drafts} >= set(ORDER)
    sources = await load_sources(db_dsn, [account])
    days = (await env.get_current_time()).date() - now.date()
    problems = audit(drafts, sources, now.date(), days.days + 1)
    assert not problems, "\n".join(f"[{p.check}] {p.draft}: {p.detail}" for p in problems)


def _in_order(rows: list) -> list[str]:
    """The purposes of the phase drafts in the order they were made (one per draft)."""
    out: list[str] = []
    for r in rows:
        if r["purpose"] in ORDER and r["purpose"] not in out:
            out.append(r["purpose"])
    return out


def _page(rows: list, purpose: str) -> str:
    target = next(r["target"] for r in rows if r["purpose"] == purpose and r["target"])
    return Path(target).read_text()


async def _qbr_input(env: WorkflowEnvironment, workflow_id: str) -> QbrInput:
    """The QBR child's input, as its history recorded it (the source of its figures)."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await env.client.data_converter.decode(started.input.payloads, [QbrInput])
    return inp
