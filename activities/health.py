"""Health activities: score one account (the daily workflow step) or scan a portfolio.

Both go through ``assess_portfolio``: facts from the set-based SQL in
``activities/telemetry.py`` (one account is the portfolio query with an
``account_id = ANY`` filter), the previous snapshots in one query, then the
pure ``domain.assess.assess_account``. So a workflow's score and the daily
scan's score of the same account at the same ``as_of`` are identical.

The previous snapshot feeds the "what moved" drivers; one written under
another config version is not used (scores of different configs are never
compared blindly, see domain/config.py).

Writes are idempotent (activities/snapshots.py): a retried activity writes once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.config_store import ConfigResolver
from activities.snapshots import latest_snapshots, save_assessments
from activities.telemetry import fetch_account_ids, fetch_facts
from domain.assess import Assessment, assess_account
from domain.config import HealthConfig
from domain.facts import AccountFacts
from domain.forecast import RenewalForecast
from domain.format import as_utc
from domain.health import HealthSnapshot
from domain.messages import PortfolioSummarySignal
from domain.summary import AssessmentSummary, summarize
from ingest.notify import signal_accounts
from stack import metrics
from workflows.activity_models import (
    RenewalForecastRequest,
    ScanChunkRequest,
    ScanChunkResult,
    ScoreAccountRequest,
)

__all__ = [
    "HealthActivities",
    "ScanRequest",
    "ScanResult",
    "ScoreAccountRequest",
    "assess_portfolio",
    "assess_with_facts",
]


def _previous(snap: HealthSnapshot | None, config: HealthConfig) -> HealthSnapshot | None:
    return snap if snap is not None and snap.config_version == config.version else None


async def assess_with_facts(
    conn: asyncpg.Connection,
    as_of: datetime,
    config: HealthConfig,
    account_ids: Sequence[str] | None = None,
) -> dict[str, tuple[AccountFacts, Assessment]]:
    """Facts and assessment per account (None: every account), in a few queries."""
    facts = await fetch_facts(conn, as_of, config.windows, account_ids, config.events.login)
    previous = await latest_snapshots(conn, list(facts) if account_ids is not None else None, as_of)
    return {
        aid: (f, assess_account(f, config, _previous(previous.get(aid), config)))
        for aid, f in facts.items()
    }


async def assess_pipelined(
    conn: asyncpg.Connection,
    as_of: datetime,
    config: HealthConfig,
    account_ids: Sequence[str],
    part_size: int,
) -> dict[str, tuple[AccountFacts, Assessment]]:
    """``assess_with_facts(account_ids)`` in parts of `part_size`, overlapped: while Postgres
    computes part k+1's facts on `conn`, a thread scores part k (``assess_account`` is pure
    CPU). The chunk then costs about the facts SQL plus the last part's scoring, not the
    SQL plus all the scoring. Same facts, same assessments, same order."""

    async def facts_of(
        part: Sequence[str],
    ) -> tuple[dict[str, AccountFacts], dict[str, HealthSnapshot]]:
        facts = await fetch_facts(conn, as_of, config.windows, part, config.events.login)
        return facts, await latest_snapshots(conn, list(facts), as_of)

    def score(
        facts: dict[str, AccountFacts], previous: dict[str, HealthSnapshot]
    ) -> dict[str, tuple[AccountFacts, Assessment]]:
        return {
            aid: (f, assess_account(f, config, _previous(previous.get(aid), config)))
            for aid, f in facts.items()
        }

    out: dict[str, tuple[AccountFacts, Assessment]] = {}
    scoring: asyncio.Future[dict[str, tuple[AccountFacts, Assessment]]] | None = None
    for i in range(0, len(account_ids), max(part_size, 1)):
        fetched = await facts_of(account_ids[i : i + part_size])
        if scoring is not None:
            out.update(await scoring)
        scoring = asyncio.ensure_future(asyncio.to_thread(score, *fetched))
    if scoring is not None:
        out.update(await scoring)
    return out


async def assess_portfolio(
    conn: asyncpg.Connection,
    as_of: datetime,
    config: HealthConfig,
    account_ids: Sequence[str] | None = None,
) -> dict[str, Assessment]:
    """Assessments at `as_of` for `account_ids` (None: every account). Reads only."""
    return {
        aid: a
        for aid, (_, a) in (await assess_with_facts(conn, as_of, config, account_ids)).items()
    }


class ScanRequest(BaseModel):
    as_of: datetime  # the workflow passes workflow.now()
    account_ids: list[str] | None = None  # None: the portfolio
    active_only: bool = True  # only accounts with a contract in force at as_of
    batch_size: int = Field(default=1000, ge=1)  # assessments written per transaction


class ScanResult(BaseModel):
    as_of: datetime
    accounts: int
    by_band: dict[str, int]  # RED/AMBER/GREEN/UNSCORED, "none" when no signal had data
    by_churn: dict[str, int]
    by_decision: dict[str, int]
    findings_written: int
    data_issues: int
    seconds_facts: float  # SQL + assembly of AccountFacts, previous snapshots, scoring
    seconds_save: float
    seconds: float


def _scan_labels(a: Assessment) -> dict[str, str]:
    return {"band": a.snapshot.band or "none", "churn_risk": a.churn.level}


_utc = as_utc  # one definition: domain/format.py


class HealthActivities:
    """Temporal activities with their dependencies injected: a pool, and either a fixed
    validated config (tests, benchmarks) or a resolver of the config in force (the worker:
    an adopted config takes effect at the next scan, see activities/config_store.py)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: HealthConfig | ConfigResolver,
        client: Client | None = None,  # scan_chunk signals account workflows through it
    ) -> None:
        self.pool = pool
        self._config = config
        self.client = client

    async def config_in_force(self, conn: asyncpg.Connection) -> HealthConfig:
        if isinstance(self._config, HealthConfig):
            return self._config
        return (await self._config.in_force(conn)).config

    @activity.defn
    async def score_account(self, req: ScoreAccountRequest) -> AssessmentSummary:
        """Score one account at req.as_of, persist snapshot and findings, return the summary."""
        as_of = _utc(req.as_of)
        async with self.pool.acquire() as conn:
            config = await self.config_in_force(conn)
            got = await assess_with_facts(conn, as_of, config, [req.account_id])
            if req.account_id not in got:
                raise ApplicationError(
                    f"unknown account {req.account_id!r}: no row in accounts",
                    type="UnknownAccount",
                    non_retryable=True,
                )
            facts, assessment = got[req.account_id]
            await save_assessments(conn, [assessment])
        metrics.count(metrics.HEALTH_SCANS, 1, _scan_labels(assessment))
        return summarize(assessment, facts)

    @activity.defn
    async def record_renewal_forecast(self, req: RenewalForecastRequest) -> RenewalForecast:
        """The renewal forecast at a checkpoint, with the calibrated churn probability of the
        config in force; stored in renewal_forecasts (activities/forecast.py)."""
        from activities.forecast import compute_and_store

        async with self.pool.acquire() as conn:
            config = await self.config_in_force(conn)
            return await compute_and_store(conn, config, req)

    @activity.defn
    async def scan_portfolio(self, req: ScanRequest) -> ScanResult:
        """The set-based daily scan: every (active) account in a few queries, saved in batches."""
        as_of = _utc(req.as_of)
        t0 = time.perf_counter()
        async with self.pool.acquire() as conn:
            # Facts for the whole portfolio in one pass (cheaper than a 100,000-id filter),
            # then keep the accounts asked for.
            config = await self.config_in_force(conn)
            got = await assess_with_facts(conn, as_of, config, None)
            keep = set(got)
            if req.account_ids is not None:
                keep &= set(req.account_ids)
            if req.active_only:
                keep &= set(await fetch_account_ids(conn, as_of))
            assessments = [got[aid][1] for aid in sorted(keep)]
            t1 = time.perf_counter()
            written = 0
            for i in range(0, len(assessments), req.batch_size):
                written += await save_assessments(conn, assessments[i : i + req.batch_size])
                if activity.in_activity():  # also callable as a plain coroutine (bench)
                    activity.heartbeat(i + req.batch_size)
        t2 = time.perf_counter()
        scanned = Counter(tuple(sorted(_scan_labels(a).items())) for a in assessments)
        for labels, n in scanned.items():
            metrics.count(metrics.HEALTH_SCANS, n, dict(labels))
        return ScanResult(
            as_of=as_of,
            accounts=len(assessments),
            by_band=dict(sorted(Counter(a.snapshot.band or "none" for a in assessments).items())),
            by_churn=dict(sorted(Counter(a.churn.level for a in assessments).items())),
            by_decision=dict(sorted(Counter(a.decision.outcome for a in assessments).items())),
            findings_written=written,
            data_issues=sum(len(a.snapshot.data_issues) for a in assessments),
            seconds_facts=round(t1 - t0, 3),
            seconds_save=round(t2 - t1, 3),
            seconds=round(t2 - t0, 3),
        )

    @activity.defn
    async def scan_chunk(self, req: ScanChunkRequest) -> ScanChunkResult:
        """One chunk of the scheduled portfolio scan (workflows/portfolio.py): the next
        `limit` active accounts after `after`, facts and scores set-based for the chunk
        only (memory bounded by the chunk), snapshots and findings saved, and each running
        account workflow handed its summary by a `portfolio_summary` signal.

        Idempotent: a retried chunk writes the same snapshots once and re-sends the same
        summaries (an account decides on a summary once: its as_of is then not newer)."""
        as_of = _utc(req.as_of)
        t0 = time.perf_counter()
        async with self.pool.acquire() as conn:
            config = await self.config_in_force(conn)
            ids = await fetch_account_ids(conn, as_of, after=req.after or None, limit=req.limit)
            if not ids:
                return ScanChunkResult(accounts=0, last_account_id=None)
            got = await assess_pipelined(conn, as_of, config, ids, req.part_size)
            t1 = time.perf_counter()
            assessments = [got[aid][1] for aid in ids if aid in got]
            written = await save_assessments(conn, assessments)
        t2 = time.perf_counter()
        outcomes: list[bool] = []
        if req.signal_accounts and self.client is not None:
            if activity.in_activity():
                activity.heartbeat(f"saved up to {ids[-1]}")
            messages = {
                aid: PortfolioSummarySignal(
                    summary=summarize(a, f), interval_seconds=req.interval_seconds
                )
                for aid, (f, a) in got.items()
            }
            outcomes = await signal_accounts(self.client, "portfolio_summary", messages)
        t3 = time.perf_counter()
        for labels, n in Counter(
            tuple(sorted(_scan_labels(a).items())) for a in assessments
        ).items():
            metrics.count(metrics.HEALTH_SCANS, n, dict(labels))
        return ScanChunkResult(
            accounts=len(assessments),
            last_account_id=ids[-1],
            by_band=dict(Counter(a.snapshot.band or "none" for a in assessments)),
            by_decision=dict(Counter(a.decision.outcome for a in assessments)),
            findings_written=written,
            signalled=sum(outcomes),
            not_running=len(outcomes) - sum(outcomes),
            seconds_facts=round(t1 - t0, 3),
            seconds_save=round(t2 - t1, 3),
            seconds_signal=round(t3 - t2, 3),
        )
