"""AccountLifecycleWorkflow on the time-skipping server, with the real worker and a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import ChurnNoticeSignal, ContractChangeSignal, CsPlanUpdate, MilestoneSignal
from domain.state import AccountOutcome
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    deliveries,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


def _acct(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def _today(env: WorkflowEnvironment):
    return (await env.get_current_time()).date()


async def test_a_simulated_year_walks_every_phase_with_five_qbrs_and_a_renewal(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = await _today(env)
    account = _acct("year")
    h = make_handoff(account, today, days_to_end=330)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        assert (await view(handle)).phase == "2 Discovery & Assessment"  # handoff gate met at once

        for m in ("questionnaire_answered", "maturity_assessed"):
            await handle.signal("milestone", MilestoneSignal(milestone=m))
        await env.sleep(timedelta(days=3))
        v = await view(handle)
        assert v.phase == "3 Executive Alignment & CS Plan"
        assert v.band is not None or v.score is None  # the first scan ran at handoff

        for m in ("kickoff_held", "stakeholders_mapped"):
            await handle.signal("milestone", MilestoneSignal(milestone=m))
        await handle.execute_update(
            "approve_cs_plan",
            CsPlanUpdate(approved_by="VP Ops", objectives=["Cut reporting time by 30%"]),
        )
        for m in ("onboarding_complete", "first_value"):
            await handle.signal("milestone", MilestoneSignal(milestone=m))
        await env.sleep(timedelta(days=1))
        assert (await view(handle)).phase == "8 Value Proof"

        # The next term is signed before the current one ends.
        end = h.contract.end_date
        await pool.execute(
            """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat, licensed_modules)
               VALUES ($1, $2, $3, 14400, 24, 600, '{core,reports}')""",
            account,
            end,
            end + timedelta(days=365),
        )
        await skip(env, timedelta(days=340))
        v = await view(handle)

        assert v.phase == "10 Relationship Capital"  # the first QBR opened the Value Proof gate
        assert v.renewal_date == end + timedelta(days=365)  # renewed: next term, timers re-armed
        assert any("renewed" in t.text for t in v.timeline)
        assert any("2027" in c or "2028" in c for c in v.next_checkpoints)
        rows = await deliveries(pool, account)
        qbr_pages = [r for r in rows if r["purpose"] == "qbr"]
        # Page keys look like "qbr-<account>-<label>:qbr:page": one per QBR child.
        labels = sorted(
            r["idempotency_key"].split(":")[0].removeprefix(f"qbr-{account}-") for r in qbr_pages
        )
        quarterly = [x for x in labels if "-Q" in x and not x.startswith("renewal")]
        assert len(quarterly) == 4, labels
        assert [x for x in labels if x.startswith("renewal-")] == [f"renewal-{end}"]
        assert len(labels) == len(set(labels))  # no QBR twice
        # Each QBR is announced in the CSM's digest (a line linking its page), not a cover note.
        lines = await pool.fetch(
            "SELECT category, link, digest_key, as_of, sent_immediately, item_key FROM digest_items WHERE account_id = $1",
            account,
        )
        assert sum(r["category"] == "qbr" for r in lines) == len(labels)
        assert all(
            r["link"] and r["link"].startswith("outbox qbr/")
            for r in lines
            if r["category"] == "qbr"
        )
        assert not any(r["purpose"] == "qbr_cover_note" for r in rows)
        # Every line recorded before the last digest went out is in a digest.
        digests = await pool.fetch(
            "SELECT idempotency_key FROM deliveries WHERE purpose = 'digest' AND status = 'delivered'"
        )
        assert digests
        last = max(date.fromisoformat(r["idempotency_key"].rsplit(":", 1)[1]) for r in digests)
        cutoff = datetime(last.year, last.month, last.day, 7, tzinfo=UTC)
        late = [
            dict(r)
            for r in lines
            if r["as_of"] < cutoff and not r["digest_key"] and not r["sent_immediately"]
        ]
        assert not late, (cutoff, late)
        await handle.terminate("test done")


async def test_churn_notice_leads_to_save_playbook_then_post_mortem_and_completion(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = await _today(env)
    account = _acct("churn")
    h = make_handoff(account, today, days_to_end=20, milestones=ALL_BUT_QBR)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=2))
        noticed = await _today(env)
        await handle.signal(
            "churn_notice", ChurnNoticeSignal(reason="budget cut, moving to a competitor")
        )
        await env.sleep(timedelta(hours=2))
        v = await view(handle)
        assert v.phase == "11 Churn Handling"
        assert v.save_workflow_id is not None
        # An operator sees what it waits for: the save decision, its deadline and its owner.
        assert v.phase_entered_at is not None
        due = v.phase_entered_at.date() + timedelta(days=3)  # the save plan's approval SLA
        assert v.waiting_for.startswith(f"waiting for a save decision from Dana Reyes by {due}")
        churn = [f for f in v.open_findings if f["kind"] == "churn"]
        assert churn and "budget cut" in churn[0]["title"]
        # the notice is on the contract, dated the day it came: scores know it from then on
        assert await pool.fetchval(
            "SELECT notice_on FROM contracts WHERE account_id = $1", account
        ) in (noticed, noticed + timedelta(days=1))  # the server clock may cross midnight
        await env.sleep(timedelta(days=30))  # past the term end
        result = await env.client.get_workflow_handle(
            h.workflow_id, result_type=AccountOutcome
        ).result()
        assert result.outcome == "churned"
        assert "budget cut" in (result.reason or "")
        rows = await deliveries(pool, account)
        purposes = {r["purpose"] for r in rows}
        assert {"churn_save_plan", "churn_post_mortem"} <= purposes
        assert "churn_save_escalation" in purposes  # nobody approved the save plan in 3 days


async def test_moving_the_renewal_date_rearms_the_pre_renewal_qbr(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = await _today(env)
    account = _acct("move")
    h = make_handoff(account, today, days_to_end=100, milestones=ALL_BUT_QBR)
    old_end = h.contract.end_date
    new_end = old_end + timedelta(days=60)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(days=2))
        c = h.contract
        await handle.signal(
            "contract",
            ContractChangeSignal(
                start_date=c.start_date,
                end_date=new_end,
                arr=c.arr,
                seats_purchased=c.seats_purchased,
                price_per_seat=c.price_per_seat,
                licensed_modules=c.licensed_modules,
            ),
        )
        await env.sleep(timedelta(days=80))
        rows = await deliveries(pool, account)
        keys = [r["idempotency_key"] for r in rows if r["purpose"] == "qbr"]
        assert any(f"renewal-{new_end}" in k for k in keys), keys
        assert not any(f"renewal-{old_end}" in k for k in keys), keys
        v = await view(handle)
        assert v.renewal_date == new_end
        assert any("timers re-armed" in t.text for t in v.timeline)
        await handle.terminate("test done")


async def test_bad_signals_are_recorded_as_rejected_and_bad_updates_leave_state_untouched(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = await _today(env)
    h = make_handoff(_acct("bad"), today)
    async with running_worker(env.client, db_dsn, settings):
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(minutes=5))
        await handle.signal(
            "nps", {"response_id": "r1", "responded_at": "2026-01-01T00:00:00Z", "score": 14}
        )
        await handle.signal("no_such_signal", {"x": 1})
        await handle.signal("milestone", {"milestone": "world_peace"})
        await env.sleep(timedelta(minutes=5))
        v = await view(handle)
        rejected = [t.text for t in v.timeline if t.kind == "rejected"]
        assert v.signals_rejected == 3
        assert any("score" in r and "less than or equal to 10" in r for r in rejected)
        assert any("unknown signal 'no_such_signal'" in r for r in rejected)
        assert any("unknown milestone" in r for r in rejected)

        before = await view(handle)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                "approve_cs_plan", CsPlanUpdate(approved_by="x", objectives=["y"])
            )
        assert "phase 3" in str(err.value.cause)
        after = await view(handle)
        assert after.milestones == before.milestones and after.phase == before.phase
        desc = await handle.describe()
        assert desc.status is not None and desc.status.name == "RUNNING"
        await handle.terminate("test done")


async def test_handing_off_a_running_account_again_starts_nothing(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    from cli.accounts import EXIT_CONFLICT, CliError

    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    h = make_handoff(_acct("dup"), await _today(env))
    async with running_worker(env.client, db_dsn, settings):
        await start_account(env.client, h, settings)
        with pytest.raises(CliError) as err:
            await start_account(env.client, h, settings)
        assert err.value.code == EXIT_CONFLICT
        assert "already handed off" in str(err.value)
        await env.client.get_workflow_handle(h.workflow_id).terminate("test done")


async def test_an_expansion_is_dispatched_to_sales_once(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = _acct("grow")
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR)
    async with running_worker(env.client, db_dsn, settings) as pool:
        # Every one of the 10 seats active for the last 60 days: sustained full utilization.
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "reports.create", 3)
            for u in range(10)
            for d in range(1, 61)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await skip(env, timedelta(days=6))  # six daily scans, each seeing the opportunity
        v = await view(handle)
        seats = [o for o in v.opportunities if o["opportunity_type"] == "seats"]
        assert seats, v.opportunities
        drafts = [
            r for r in await deliveries(pool, account) if r["purpose"] == "expansion_talk_track"
        ]
        # One talk track, as an account page (no Notion credentials in tests: a local page)
        # plus a line in the rep's digest that links to it.
        assert len(drafts) == 1
        assert drafts[0]["channel"] == "outbox"
        assert "Expansion talk track" in Path(drafts[0]["target"]).read_text()
        line = await pool.fetchrow(
            "SELECT recipient, category, link FROM digest_items WHERE account_id = $1 "
            "AND recipient = 'sam@example.com'",
            account,
        )
        assert line is not None and line["category"] == "opportunity"
        assert line["link"] == "outbox pages/" + Path(drafts[0]["target"]).name
        dispatched = await pool.fetchval(
            "SELECT count(*) FROM events WHERE account_id = $1 AND event_type = 'expansion.dispatched'",
            account,
        )
        assert dispatched == 1
        assert sum("dispatched to Sales" in t.text for t in v.timeline) == 1
        await handle.terminate("test done")


async def test_operator_updates_save_decision_pause_and_reassign(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    from domain.messages import DecisionUpdate, PauseUpdate, ReassignUpdate
    from workflows.child_models import ChurnSaveResult

    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = await _today(env)
    account = _acct("ops")
    h = make_handoff(account, today, days_to_end=200, milestones=ALL_BUT_QBR)
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                "decide_save", DecisionUpdate(decided_by="dana", approve=True)
            )
        assert "no churn save plan is waiting" in str(err.value.cause)

        await handle.signal("churn_notice", ChurnNoticeSignal(reason="new CFO cutting tools"))
        await env.sleep(timedelta(hours=1))
        save_id = (await view(handle)).save_workflow_id
        assert save_id is not None
        await handle.execute_update("decide_save", DecisionUpdate(decided_by="dana", approve=True))
        saved = await env.client.get_workflow_handle(save_id, result_type=ChurnSaveResult).result()
        assert saved.outcome == "approved" and saved.decided_by == "dana"
        assert "churn_save_approved" in {r["purpose"] for r in await deliveries(pool, account)}

        await handle.execute_update(
            "set_paused", PauseUpdate(paused=True, by="ops", reason="M&A freeze")
        )
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update("set_paused", PauseUpdate(paused=True, by="ops"))
        assert "already paused" in str(err.value.cause)
        await handle.execute_update(
            "reassign_csm",
            ReassignUpdate(csm_owner="Lee Chen", csm_email="lee@example.com", by="ops"),
        )
        desc = await handle.describe()
        assert any(
            p.key.name == "CsmOwner" and p.value == "Lee Chen" for p in desc.typed_search_attributes
        )
        v = await view(handle)
        assert v.paused and v.csm_owner == "Lee Chen"
        # Reports that group by CSM (retention --by csm, the forecast) read the accounts row.
        await env.sleep(timedelta(minutes=5))
        row = await pool.fetchrow(
            "SELECT csm_owner, csm_email FROM accounts WHERE account_id = $1", account
        )
        assert (row["csm_owner"], row["csm_email"]) == ("Lee Chen", "lee@example.com")
        await handle.terminate("test done")
