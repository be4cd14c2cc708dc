"""CRM hygiene findings reach the CSM's digest when they change, including when a later
stakeholder signal removes the champion, and never flag people who just joined:
time-skipping server, real worker and Postgres."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from domain.messages import StakeholderChangeSignal
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    insert_usage,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


async def test_hygiene_findings_are_drafted_once_and_again_when_the_champion_leaves(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    now = await env.get_current_time()
    account = f"hyg-{uuid.uuid4().hex[:6]}"
    people = [
        {"name": "Ada Park", "title": "VP Ops", "role": "admin", "is_champion": True},
        {"name": "Sam Ortiz", "title": "COO", "role": "executive_sponsor"},
    ]
    h = make_handoff(account, now.date(), seats=10, milestones=ALL_BUT_QBR, stakeholders=people)
    async with running_worker(env.client, db_dsn, settings) as pool:
        rows = [
            (account, f"u{u}", now - timedelta(days=d, hours=u), "core.search", 1)
            for u in range(6)
            for d in range(1, 40)
        ]
        await insert_usage(pool, account, rows)
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)

        async def lines() -> list[str]:
            return [
                r["headline"]
                for r in await pool.fetch(
                    "SELECT headline FROM digest_items WHERE account_id = $1 "
                    "AND headline LIKE '%CRM hygiene%' ORDER BY as_of",
                    account,
                )
            ]

        # A stakeholder on file for 200 days and never engaged; the two named at the handoff
        # joined today and have not had the time to go quiet.
        await handle.signal(
            "stakeholder",
            StakeholderChangeSignal(
                stakeholder_id="lee",
                name="Lee Chen",
                title="IT lead",
                role="admin",
                joined_on=now.date() - timedelta(days=200),
            ),
        )
        # The first check (the kickoff is held): one finding.
        await skip(env, timedelta(days=3))
        assert await lines() == ["1 new CRM hygiene finding"]
        v = await view(handle)
        assert [x.split("]")[0] for x in v.crm_hygiene] == ["[not_engaged"]
        assert (
            "Lee Chen (IT lead) never engaged on record (fix: Re-engage Lee Chen"
            in v.crm_hygiene[0]
        )

        # The champion leaves (a stakeholder signal): the next scan finds who left and that
        # nobody is champion any more; nothing else is drafted again.
        await handle.signal(
            "stakeholder",
            StakeholderChangeSignal(
                stakeholder_id=f"{account}:handoff:0",
                name="Ada Park",
                title="VP Ops",
                role="admin",
                is_champion=True,
                left_on=(await env.get_current_time()).date(),
            ),
        )
        await skip(env, timedelta(days=2))
        assert await lines() == ["1 new CRM hygiene finding", "2 new CRM hygiene findings"]
        v = await view(handle)
        checks = [x.split("]")[0].lstrip("[") for x in v.crm_hygiene]
        assert checks == ["no_champion", "stakeholder_left", "not_engaged"], v.crm_hygiene

        # A week on, the same findings: no new draft.
        await skip(env, timedelta(days=8))
        assert len(await lines()) == 2

        drafts = [
            d
            for d in await read_drafts(db_dsn, settings.outbox_dir)
            if d.purpose == "crm_hygiene" and d.account_id == account
        ]
        assert len(drafts) == 2
        left = next(d for d in drafts if "left on" in d.text)
        assert "champion Ada Park (VP Ops) left on" in left.text
        assert "Name the successor and add them as a stakeholder and champion" in left.text
        assert "none of the 2 active stakeholders is marked champion" in left.text
        problems = audit(drafts, await load_sources(db_dsn, [account]), now.date(), 13)
        assert not problems, [(p.check, p.detail) for p in problems]
        await handle.terminate("test done")
