"""Helpers of the hostile-input suite: a real worker with channels pointed at fakes, and checks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from stack.settings import Settings
from tests.drills.support import events, failed_workflow_tasks
from tests.workflows.helpers import running_worker


@contextlib.contextmanager
def channel_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> Iterator[None]:
    """Channel credentials the worker reads when it is built (DeliveryActivities)."""
    for name in (
        "GMAIL_TOKEN",
        "GMAIL_BASE_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_CHANNEL",
        "SLACK_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


@contextlib.asynccontextmanager
async def worker(client: Client, dsn: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with running_worker(client, dsn, settings) as pool:
        yield pool


async def every_run(client: Client, workflow_id: str) -> list[list[Any]]:
    """The history of every run of a workflow, first to latest (following continue-as-new)."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = desc.raw_description.workflow_execution_info.first_run_id or None
    out: list[list[Any]] = []
    while run_id:
        history = await events(client.get_workflow_handle(workflow_id, run_id=run_id))
        out.append(history)
        last = history[-1] if history else None
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last is not None
            and last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return out


async def assert_alive(handle: WorkflowHandle) -> None:
    """Running, and no workflow task of any run failed for a reason of ours."""
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING, desc.status
    for history in await every_run(handle._client, handle.id):
        assert failed_workflow_tasks(history) == []


async def snapshots(pool: asyncpg.Pool, account_id: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM health_snapshots WHERE account_id = $1", account_id
    )
