"""Action items from meeting notes become durable actions; overdue ones are chased, on the
time-skipping server with the real worker and Postgres."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.actions import list_actions, store_actions
from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.actions import ActionConfig, ActionRecords, new_actions
from domain.messages import ActionDoneUpdate, InteractionSignal, StakeholderChangeSignal
from domain.touchpoints import parse_actions
from starter import main
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    insert_usage,
    make_handoff,
    replayer,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


async def test_overdue_actions_are_chased_to_their_owner_or_the_csm_and_closed_by_an_update(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"chase-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR)
    due = now.date() + timedelta(days=2)
    async with running_worker(env.client, db_dsn, settings) as pool:
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "core.search", 1)
            for u in range(6)
            for d in range(1, 40)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await handle.signal(
            "stakeholder",
            StakeholderChangeSignal(
                stakeholder_id="S-1", name="Ada Park", email="ada@acme.example", role="admin"
            ),
        )
        await handle.signal(
            "interaction",
            InteractionSignal(
                interaction_id="I-1",
                occurred_at=now,
                kind="call",
                notes=f"ACTION: Ada Park to send the user list by {due}\nTODO: book the QBR",
            ),
        )
        await env.sleep(timedelta(hours=2))
        v = await view(handle)
        assert [a.split(" (")[0] for a in v.actions] == ["A-1 open", "A-2 open"], v.actions
        stored = await list_actions(pool, account, None)
        assert [(a.action_id, a.owner, a.due_on) for _, a in stored] == [
            ("A-1", "Ada Park", due),  # the date the notes give
            ("A-2", None, now.date() + timedelta(days=7)),  # the default: 7 days after the call
        ]

        # 12 days on: A-1 (due day 2) chased on days 3, 6, 9 and no more (at most 3);
        # A-2 (due day 7) on days 8 and 11.
        await skip(env, timedelta(days=12))
        keys = [
            r["idempotency_key"]
            for r in await pool.fetch(
                "SELECT idempotency_key FROM deliveries WHERE account_id = $1 "
                "AND purpose = 'action_chase' AND idempotency_key LIKE '%:email_draft'",
                account,
            )
        ]
        assert sorted(k.split(":action_chase:")[1].removesuffix(":email_draft") for k in keys) == [
            "A-1:1",
            "A-1:2",
            "A-1:3",
        ]
        lines = await pool.fetch(
            "SELECT headline, recipient FROM digest_items WHERE account_id = $1 "
            "AND category = 'reminder' AND headline LIKE 'action A-2%' ORDER BY as_of",
            account,
        )
        assert [r["recipient"] for r in lines] == ["dana@example.com"] * 2, lines
        stored = {a.action_id: a for _, a in await list_actions(pool, account, None)}
        assert (stored["A-1"].chases, stored["A-1"].owner_email) == (3, "ada@acme.example")
        assert stored["A-2"].chases == 2

        drafts = [
            d
            for d in await read_drafts(db_dsn, settings.outbox_dir)
            if d.purpose == "action_chase" and d.account_id == account
        ]
        to_ada = [d for d in drafts if d.to == "ada@acme.example"]
        assert len(to_ada) == 3
        assert "Ada Park: send the user list by" in to_ada[0].text
        # The date the notes already carry is not repeated (was "... by 2026-12-03 (due 2026-12-03)").
        assert to_ada[0].subject.startswith("Reminder: send the user list by 20")
        assert len(re.findall(r"\d{4}-\d{2}-\d{2}", to_ada[0].subject)) == 1, to_ada[0].subject
        assert "1 day overdue" in to_ada[0].text and "reminder 1 of at most 3" in to_ada[0].text
        sources = await load_sources(db_dsn, [account])
        problems = audit(drafts, sources, now.date(), 12)
        assert not problems, [(p.check, p.detail) for p in problems]

        # Closing: the update, then refusals with their reasons (the CLI exits 3).
        res = await handle.execute_update(
            "complete_action", ActionDoneUpdate(action_id="A-2", done_by="Dana Reyes")
        )
        assert "A-2 marked done" in res["message"]
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                "complete_action", ActionDoneUpdate(action_id="A-2", done_by="Dana Reyes")
            )
        assert "already done on" in str(refused.value.cause)
        code = await main(
            ["action", "done", account, "A-9", "--by", "Dana Reyes"],
            client=env.client,
            settings=settings,
        )
        assert code == 3
        assert "no action 'A-9' on this account; open: A-1" in capsys.readouterr().err
        code = await main(
            ["action", "done", account, "A-1", "--by", "Dana Reyes", "--note", "list received"],
            client=env.client,
            settings=settings,
        )
        assert code == 0 and "A-1 marked done" in capsys.readouterr().out
        await skip(env, timedelta(days=4))  # nothing more is chased once done
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE account_id = $1 AND purpose = 'action_chase'",
                account,
            )
            == len(keys) + 2
        )  # A-1's three drafts, A-2's two pages

        stored = {a.action_id: a for _, a in await list_actions(pool, account, None)}
        assert [(a.status, a.done_by) for a in stored.values()] == [("done", "Dana Reyes")] * 2
        assert stored["A-1"].done_note == "list received"
        v = await view(handle)
        assert any("action A-1 done by Dana Reyes" in t.text for t in v.timeline)

        # Per-account ids: another account's A-1 is its own row, and leaves this one alone.
        other = f"other-{uuid.uuid4().hex[:4]}"
        theirs = new_actions(
            parse_actions("TODO: unrelated"),
            interaction_id="X",
            interaction_kind="call",
            agreed_on=now.date(),
            first_number=1,
            cfg=ActionConfig(),
        )
        await store_actions(pool, ActionRecords(account_id=other, actions=theirs))
        assert [a.text for _, a in await list_actions(pool, other, None)] == ["unrelated"]

        monkeypatch.setenv("DATABASE_URL", db_dsn)
        assert await main(["action", "list", account, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(r["action_id"], r["status"]) for r in listed] == [("A-1", "done"), ("A-2", "done")]
        history = await handle.fetch_history()
        await handle.terminate("test done")
    replay = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None
