"""Prometheus metrics: the SDK's own, and the application's, on one endpoint.

The worker's Temporal runtime exports the SDK metrics (`temporal_*`: task
latencies, slots, poll failures, ...) on `VIM_METRICS_ADDRESS` (default
127.0.0.1:9464, `/metrics`; empty turns it off). The application's metrics
go through the same runtime's meter (`activity.metric_meter()` in
activities, `workflow.metric_meter()` in workflows, which skips replays), so
they appear on the same endpoint with the SDK's labels (namespace, task
queue, activity or workflow type). README "Metrics" lists each one and what
an alert on it means.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from stack.settings import Settings

log = logging.getLogger("vim.metrics")

# name -> description; counters unless said otherwise.
HEALTH_SCANS = "vim_health_scans"
ACCOUNTS = "vim_accounts"  # gauge
DRAFTS = "vim_drafts"
DELIVERY_FAILURES = "vim_delivery_failures"
REJECTED_INPUTS = "vim_rejected_inputs"
NARRATIVE_FALLBACKS = "vim_narrative_fallbacks"
MODEL_CALLS = "vim_model_calls"
MODEL_TOKENS = "vim_model_tokens"
DESCRIPTIONS = {
    HEALTH_SCANS: "Health scans run, by resulting band and churn risk",
    ACCOUNTS: "Running account workflows by health band (from visibility)",
    DRAFTS: "Drafts, pages and alerts delivered, by channel and kind",
    DELIVERY_FAILURES: "Delivery attempts that failed, by channel, kind and retryable",
    REJECTED_INPUTS: "Signals refused by an account workflow, by signal name",
    NARRATIVE_FALLBACKS: "Narratives written from the template instead of the model, by reason",
    MODEL_CALLS: "Model calls made, by model and purpose",
    MODEL_TOKENS: "Model tokens used, by model and kind (input, output, cache_read, cache_write)",
}
BANDS = ("RED", "AMBER", "GREEN")


def build_runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting Prometheus metrics on the configured address, or None.

    None when metrics are off, or when the address cannot be bound (another
    worker on the same host holds the port): the worker's job matters more
    than its metrics, so it says so loudly and runs on without them.
    """
    if not settings.metrics_address:
        return None
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=settings.metrics_address)
            )
        )
    except Exception as err:  # the core raises ValueError when it cannot bind
        log.error(
            "metrics are NOT served: cannot listen on %s (%s). Set VIM_METRICS_ADDRESS to a free "
            "host:port (one per worker on a host), or to an empty value to turn metrics off",
            settings.metrics_address,
            err,
        )
        return None


def count(name: str, value: int = 1, labels: Mapping[str, str] | None = None) -> None:
    """Add to an application counter from inside an activity (a no-op elsewhere, e.g. bench)."""
    if value <= 0 or not activity.in_activity():
        return
    meter = activity.metric_meter()
    meter.create_counter(name, DESCRIPTIONS[name]).add(value, dict(labels or {}))


def model_call(
    purpose: str, model: str | None, tokens: Mapping[str, int], *, fallback: bool, error: str | None
) -> None:
    """One narrative attempt: tokens and calls when the model was called, and any fallback."""
    if model is not None:
        count(MODEL_CALLS, 1, {"model": model, "purpose": purpose})
        for kind, n in tokens.items():
            count(MODEL_TOKENS, n, {"model": model, "kind": kind.removesuffix("_tokens")})
    if fallback:
        reason = "no API key" if model is None else "model error"
        count(NARRATIVE_FALLBACKS, 1, {"purpose": purpose, "reason": reason})


async def export_accounts_by_band(
    client: Client, meter: MetricMeter, workflow_type: str, every: float = 60.0
) -> None:
    """Keep the `vim_accounts{band}` gauge current from visibility counts, until cancelled.

    Each worker reports the same portfolio-wide figure: aggregate with max(), not sum().
    """
    gauge = meter.create_gauge(ACCOUNTS, DESCRIPTIONS[ACCOUNTS])
    running = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running'"
    while True:
        try:
            total = (await client.count_workflows(running)).count
            scored = 0
            for band in BANDS:
                n = (await client.count_workflows(f"{running} AND HealthBand = '{band}'")).count
                gauge.set(n, {"band": band})
                scored += n
            gauge.set(max(total - scored, 0), {"band": "none"})
        except Exception as err:  # visibility down for a moment: keep the last figures
            log.warning("could not count accounts by band: %s", err)
        await asyncio.sleep(every)
