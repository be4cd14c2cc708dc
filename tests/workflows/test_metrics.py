"""The Prometheus endpoint after real account runs: the SDK's metrics and the application's.

A worker with the project's runtime (stack/metrics.py) runs two at-risk
accounts on the dev server, one without a model key (template fallbacks) and
one against a fake Anthropic endpoint (tokens), with a malformed signal; then
the test scrapes /metrics the way Prometheus would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from stack.metrics import build_runtime, export_accounts_by_band
from stack.settings import Settings
from tests.drills.support import free_port, wait_for
from tests.fakes.anthropic_api import AnthropicFake
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    bare_account_config,
    make_handoff,
    running_worker,
    settings_for_test,
)

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)")


def _parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or line.startswith("#"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
        name = m["name"].removesuffix("_total")
        out.setdefault(name, []).append((labels, float(m["value"])))
    return out


def _sum(metrics: dict, name: str, **want: str) -> float:
    return sum(
        v for labels, v in metrics.get(name, []) if all(labels.get(k) == w for k, w in want.items())
    )


async def _run_at_risk_account(
    client: Client, db_dsn: str, settings: Settings, prefix: str, *, malformed: bool = False
) -> None:
    # Renewal in 20 days and no telemetry, scored although bare (bare_account_config): RED,
    # CRITICAL churn risk, a churn alert at once.
    h = make_handoff(
        f"{prefix}-{uuid.uuid4().hex[:6]}",
        datetime.now(UTC).date(),
        days_to_end=20,
        milestones=ALL_BUT_QBR,
    )
    async with running_worker(client, db_dsn, settings) as pool:
        await start_account(client, h, settings)
        if malformed:
            await client.get_workflow_handle(h.workflow_id).signal(
                "nps", {"response_id": "n-bad", "score": 99}
            )

        async def alerted() -> bool:
            return (
                await pool.fetchval(
                    "SELECT count(*) FROM deliveries WHERE account_id = $1 "
                    "AND purpose = 'churn_alert' AND status = 'delivered'",
                    h.account_id,
                )
                >= 3
            )

        await wait_for(alerted, timeout=120, what=f"churn alert drafts for {h.account_id}")


async def test_metrics_endpoint_shows_sdk_and_application_metrics(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    settings = settings_for_test(tmp_path)
    runtime = build_runtime(
        Settings(**{**settings.__dict__, "metrics_address": f"127.0.0.1:{port}"})
    )
    assert runtime is not None
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    gauges = asyncio.create_task(
        export_accounts_by_band(client, runtime.metric_meter, "AccountLifecycleWorkflow", every=0.5)
    )
    try:
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        monkeypatch.setenv("VIM_HEALTH_CONFIG", bare_account_config(tmp_path))
        await _run_at_risk_account(client, db_dsn, settings, "metrics-template", malformed=True)
        with AnthropicFake() as fake:
            monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
            monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
            await _run_at_risk_account(client, db_dsn, settings, "metrics-model")

        async def scraped() -> dict:
            async with httpx.AsyncClient() as http:
                r = await http.get(f"http://127.0.0.1:{port}/metrics")
            r.raise_for_status()
            m = _parse(r.text)
            return m if _sum(m, "vim_accounts", band="RED") >= 2 else {}

        m = await wait_for(scraped, timeout=30, what="vim_accounts{band=RED} >= 2")
    finally:
        gauges.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gauges

    # The SDK's own metrics, on the same endpoint.
    assert _sum(m, "temporal_request") > 0
    assert _sum(m, "temporal_activity_execution_latency_count", activity_type="score_account") > 0
    # The application's.
    assert _sum(m, "vim_health_scans", band="RED", churn_risk="CRITICAL") >= 2
    assert _sum(m, "vim_drafts", channel="outbox") >= 6  # 3 churn-alert drafts per account
    assert _sum(m, "vim_rejected_inputs", input="nps") == 1
    assert _sum(m, "vim_narrative_fallbacks", reason="no API key") >= 1
    assert _sum(m, "vim_model_calls", purpose="churn_risk") >= 1
    assert _sum(m, "vim_model_tokens", kind="input") >= 420  # the fake reports 420 per call
    assert _sum(m, "vim_model_tokens", kind="output") >= 180
