"""The worker: `python worker.py`.

Connects with TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / DATABASE_URL (or the
embedded defaults), applies pending schema migrations, and polls three task
queues:
- the account queue (lifecycle, QBR, churn-save and digest workflows; DB, delivery and
  digest activities),
- the Sales queue (expansion dispatch), which a Sales team may run apart,
- the LLM queue (narratives), rate-limited server-side so a large portfolio
  never trips the model provider's limits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.account import AccountActivities
from activities.actions import ActionActivities
from activities.config_store import ConfigResolver
from activities.db import create_pool, describe_dsn
from activities.deliveries import DeliveryActivities
from activities.digest import DigestActivities
from activities.engagement import EngagementActivities
from activities.health import HealthActivities
from activities.hygiene import HygieneActivities
from activities.narrative import NarrativeActivities
from activities.onboarding import OnboardingActivities
from activities.qbr import QbrActivities
from stack.codec import KeyConfigError
from stack.connect import ConnectConfigError, connect, target
from stack.metrics import build_runtime, export_accounts_by_band
from stack.migrate import migrate
from stack.postgres import resolve_database_url
from stack.settings import Settings, load_settings
from workflows.account import AccountLifecycleWorkflow
from workflows.children import ChurnSaveWorkflow, ExpansionDispatchWorkflow, QBRWorkflow
from workflows.digest import DigestWorkflow
from workflows.engagement import ProductFeedbackWorkflow
from workflows.feedback_schedule import QuarterlyFeedbackWorkflow
from workflows.portfolio import PortfolioScanWorkflow
from workflows.sandbox import cache_workflow_bytecode, workflow_runner

log = logging.getLogger("vim.worker")
RETRY_SECONDS = 5.0
# Model calls per second across every worker on the LLM queue (server-side limit).
LLM_ACTIVITIES_PER_SECOND = float(os.environ.get("VIM_LLM_RATE_PER_SECOND", "2"))


@dataclass
class Workers:
    workers: list[Worker]
    pool: asyncpg.Pool

    async def run(self) -> None:
        try:
            await asyncio.gather(*(w.run() for w in self.workers))
        finally:
            await self.pool.close()

    async def shutdown(self) -> None:
        await asyncio.gather(*(w.shutdown() for w in self.workers), return_exceptions=True)


def build_workers(client: Client, pool: asyncpg.Pool, settings: Settings) -> Workers:
    """All three workers sharing one pool; tests call this with their own client and queues."""
    account = AccountActivities(pool)
    # the adopted config in force (Postgres), else VIM_HEALTH_CONFIG over the defaults
    resolver = ConfigResolver(os.environ)
    resolver.environment_config()  # a bad VIM_HEALTH_CONFIG stops the worker here, named
    health = HealthActivities(pool, resolver, client)
    deliveries = DeliveryActivities(pool, settings)
    narratives = NarrativeActivities(pool)
    qbr = QbrActivities(pool, settings)
    digests = DigestActivities(pool, deliveries)
    # a bad VIM_ENGAGEMENT_CONFIG stops the worker here
    engagement = EngagementActivities(pool, resolver=resolver)
    actions = ActionActivities(pool)
    hygiene = HygieneActivities(pool)
    onboarding = OnboardingActivities(pool, resolver, engagement.config.onboarding_plan)
    delivery_acts: Sequence = [
        deliveries.deliver,
        deliveries.fail_delivery,
        deliveries.publish_event,
    ]
    # On SIGTERM, in-flight activities get this long to finish before they are cancelled.
    grace = timedelta(seconds=settings.shutdown_grace_seconds)
    return Workers(
        pool=pool,
        workers=[
            Worker(
                client,
                task_queue=settings.task_queue,
                workflows=[
                    AccountLifecycleWorkflow,
                    QBRWorkflow,
                    ChurnSaveWorkflow,
                    DigestWorkflow,
                    PortfolioScanWorkflow,
                    ProductFeedbackWorkflow,
                    QuarterlyFeedbackWorkflow,
                ],
                activities=[
                    account.record_handoff,
                    account.record_owner,
                    account.record_telemetry,
                    account.check_renewal,
                    health.score_account,
                    health.record_renewal_forecast,
                    health.scan_portfolio,
                    health.scan_chunk,
                    qbr.prepare_qbr,
                    digests.add_digest_item,
                    digests.send_digests,
                    engagement.advocacy_data,
                    engagement.adoption_targets,
                    engagement.engagement_settings,
                    engagement.feedback_digest,
                    actions.record_actions,
                    actions.action_contacts,
                    hygiene.account_hygiene,
                    onboarding.onboarding_audience,
                    *delivery_acts,
                ],
                max_concurrent_activities=20,
                max_cached_workflows=settings.max_cached_workflows,
                workflow_runner=workflow_runner(),
                graceful_shutdown_timeout=grace,
            ),
            Worker(
                client,
                task_queue=settings.sales_task_queue,
                workflows=[ExpansionDispatchWorkflow],
                activities=[*delivery_acts, digests.add_digest_item],
                max_cached_workflows=settings.max_cached_workflows,
                workflow_runner=workflow_runner(),
                graceful_shutdown_timeout=grace,
            ),
            Worker(
                client,
                task_queue=settings.llm_task_queue,
                activities=[narratives.write_narrative],
                max_task_queue_activities_per_second=LLM_ACTIVITIES_PER_SECOND,
                graceful_shutdown_timeout=grace,
            ),
        ],
    )


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Connect, retrying with a one-line explanation instead of a traceback."""
    while True:
        try:
            return await connect(settings, runtime=runtime, warn=True)
        except RuntimeError as err:
            log.warning(
                "Temporal is not reachable at %s: %s. Start it with `make demo`, or set "
                "TEMPORAL_ADDRESS or a TEMPORAL_PROFILE (README: Connecting); retrying in %.0fs.",
                target(settings).describe(),
                _first_line(err),
                RETRY_SECONDS,
            )
            await asyncio.sleep(RETRY_SECONDS)


async def connect_postgres(settings: Settings) -> asyncpg.Pool:
    while True:
        try:
            dsn = resolve_database_url(settings)
            pool = await create_pool(dsn)
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("applied schema migrations %s", applied)
            return pool
        except (OSError, ConnectionError, asyncpg.PostgresError) as err:
            where = (
                describe_dsn(settings.database_url)
                if settings.database_url
                else f"embedded in {settings.pgdata}"
            )
            log.warning(
                "Postgres is not reachable (%s): %s. Set DATABASE_URL or run `make demo`; retrying in %.0fs.",
                where,
                _first_line(err),
                RETRY_SECONDS,
            )
            await asyncio.sleep(RETRY_SECONDS)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


async def main(client: Client | None = None, settings: Settings | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings or load_settings()
    if not cache_workflow_bytecode(settings.data_dir / "pycache"):
        log.warning("no bytecode cache for workflows/: each workflow run recompiles its source")
    runtime = build_runtime(settings) if client is None else None
    client = client or await connect_temporal(settings, runtime)
    pool = await connect_postgres(settings)
    workers = build_workers(client, pool, settings)
    gauges = None
    if runtime is not None:
        log.info("Prometheus metrics on %s (VIM_METRICS_ADDRESS)", settings.metrics_url)
        gauges = asyncio.create_task(
            export_accounts_by_band(client, runtime.metric_meter, AccountLifecycleWorkflow.__name__)
        )
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Future] = []

    def stop(signame: str) -> None:
        log.info(
            "%s: stopped polling; in-flight activities have %.0fs to finish "
            "(VIM_SHUTDOWN_GRACE_SECONDS)",
            signame,
            settings.shutdown_grace_seconds,
        )
        stopping.append(asyncio.ensure_future(workers.shutdown()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    log.info(
        "worker polling %s, %s, %s on %s",
        settings.task_queue,
        settings.sales_task_queue,
        settings.llm_task_queue,
        target(settings).describe(),
    )
    try:
        await workers.run()
    finally:
        if gauges is not None:
            gauges.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
    except (KeyConfigError, ConnectConfigError) as err:
        log.error("%s", err)
        sys.exit(2)
