"""Decisions through the console on the real dev server: the approve button sends the same
validated update as `starter.py`, the workflow's state changes, and the person is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.console.conftest import http, live_accounts, make_console
from tests.workflows.helpers import running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]


async def _wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def decide(c: httpx.AsyncClient, account: str, kind: str, **fields: str) -> httpx.Response:
    """Press a decision's Approve (or Resume) button."""
    data = {"account_id": account, "kind": kind, "action": "approve", **fields}
    return await c.post("/decisions", data=data, follow_redirects=True)


async def test_decisions_page_sends_validated_updates_and_records_who_decided(
    dev_env: WorkflowEnvironment, demo_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    console = make_console(settings, pool, client)
    async with (
        running_worker(client, demo_dsn, settings),
        live_accounts(client, settings, first=2) as (ref, planning),
        http(console) as c,
    ):
        ref_handle = client.get_workflow_handle(ref.workflow_id)
        plan_handle = client.get_workflow_handle(planning.workflow_id)

        async def listed() -> str | None:
            page = (await c.get("/decisions")).text
            ok = f'data-kind="cs_plan" data-account="{planning.account_id}"' in page
            return (
                page
                if ok and f'data-kind="paused" data-account="{ref.account_id}"' in page
                else None
            )

        page = await _wait_for(listed)
        assert "M&amp;A freeze" in page

        # no name: refused before anything is sent
        r = await decide(c, planning.account_id, "cs_plan", objectives="x")
        assert "say who decides" in r.text
        assert "cs_plan_approved" not in (await view(plan_handle)).milestones

        # an expansion the workflow never dispatched: the workflow's validator refuses it
        r = await decide(c, ref.account_id, "expansion", target_id="nope", by="Sam")
        assert "decide_expansion rejected: no dispatched expansion" in r.text

        r = await decide(
            c,
            planning.account_id,
            "cs_plan",
            by="Dana Reyes",
            objectives="Cut onboarding time to 30 days\nThree teams live",
            success_metrics="active users >= 40",
        )
        assert r.status_code == 200 and "CS plan recorded" in r.text and "by Dana Reyes" in r.text
        v = await view(plan_handle)
        assert "cs_plan_approved" in v.milestones
        assert any(t.text == "CS plan approved by Dana Reyes: 2 objective(s)" for t in v.timeline)

        r = await decide(c, ref.account_id, "paused", by="Lee Chen")
        assert "resumed" in r.text
        v = await view(ref_handle)
        assert not v.paused and any(t.text == "resumed by Lee Chen" for t in v.timeline)
        assert f'data-account="{ref.account_id}"' not in r.text.split('id="decisions"')[1]

        # the account page shows the live workflow: phase, timeline, Temporal UI link
        page = (await c.get(f"/accounts/{ref.account_id}")).text
        assert "resumed by Lee Chen" in page.split('id="timeline"')[1]
        assert f"/workflows/{ref.workflow_id}" in page
