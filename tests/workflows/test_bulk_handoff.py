"""A bulk handoff from one process starts the shared digest workflow once, not once per account.

Every start of the same workflow id contends for one lock on the server; with 32 handoffs
in flight the server answered "Workflow is busy" and the bench's handoffs failed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)

from cli.accounts import start_account
from tests.workflows.helpers import make_handoff, settings_for_test
from workflows.digest import DIGEST_WORKFLOW_ID


class _CountStarts(Interceptor):
    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class _Out(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                counter.ids.append(input.id)
                return await super().start_workflow(input)

        return _Out(next)


async def test_forty_concurrent_handoffs_start_the_digest_workflow_once(
    dev_client: Client, tmp_path: Path
) -> None:
    counter = _CountStarts()
    config = dev_client.config()
    config["interceptors"] = [counter]
    client = Client(**config)
    settings = settings_for_test(tmp_path)  # its own task queue: no worker runs these
    prefix = f"bulk-{uuid.uuid4().hex[:6]}"
    handoffs = [make_handoff(f"{prefix}-{i:02d}", date(2026, 12, 1)) for i in range(40)]

    started = await asyncio.gather(*(start_account(client, h, settings) for h in handoffs))

    assert sorted(started) == sorted(h.workflow_id for h in handoffs)
    assert counter.ids.count(DIGEST_WORKFLOW_ID) == 1
    late = await start_account(client, make_handoff(f"{prefix}-late", date(2026, 12, 1)), settings)
    assert counter.ids.count(DIGEST_WORKFLOW_ID) == 1  # the process already started it
    for wf_id in [*started, late]:
        await client.get_workflow_handle(wf_id).terminate("test done")
