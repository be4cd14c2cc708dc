"""Every visibility filter the README and `make demo` show runs on the dev server."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from stack.__main__ import demo_filters

pytestmark = [pytest.mark.devserver]

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_filters() -> list[str]:
    text = README.read_text()
    # The block after "Filters an operator types:", and every --query "..." in a command.
    block = text.split("Filters an operator types:", 1)[1].split("```", 2)[1]
    filters = [line.strip() for line in block.splitlines() if line.strip()]
    filters += re.findall(r'--query "([^"<]+)"', text)  # <placeholders> left out
    return filters


def test_the_readme_has_filters_to_check() -> None:
    assert len(readme_filters()) >= 5


async def _run(client: Client, query: str) -> None:
    async for _ in client.list_workflows(query, limit=1):
        break


@pytest.mark.parametrize("query", readme_filters() + demo_filters(date(2026, 11, 30)))
async def test_filter_runs_on_the_dev_server(dev_client: Client, query: str) -> None:
    await _run(dev_client, query)
    # `starter.py list --query` wraps the filter in its own query.
    await _run(dev_client, f"WorkflowType = 'AccountLifecycleWorkflow' AND ({query})")


async def test_order_by_is_refused_there(dev_client: Client) -> None:
    """Why the README has no ORDER BY: the check above would catch one."""
    with pytest.raises(RPCError):
        await _run(dev_client, "ChurnRisk IN ('HIGH', 'CRITICAL') ORDER BY RenewalDate")
