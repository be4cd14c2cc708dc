"""PortfolioScanWorkflow: the daily portfolio scan, started by a Temporal Schedule.

One set-based pass over the portfolio in chunks of accounts (`scan_chunk`,
activities/health.py): each chunk's facts and scores come from the same SQL and
scoring as an account's own `score_account`, its snapshots and findings are
saved, and each running account workflow gets its summary by a
`portfolio_summary` signal and decides from it (workflows/account.py) instead of
running its own daily scan. Memory is bounded by the chunk, never the portfolio;
the history holds one activity per chunk (a 100,000-account portfolio in chunks
of 1,000: about 600 events).

`as_of` defaults to the start of the UTC day the run starts (00:00): complete
days, read from the daily usage rollup (migration 009), the same for a run
retried later that day. The Schedule (id ``portfolio-scan``) is created by
`starter.py schedule create` and by `make demo` (cli/schedule.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows import activity_defs as act
    from workflows.activity_models import ScanChunkRequest

PORTFOLIO_SCAN_WORKFLOW_ID = "portfolio-scan"
# Bounded (about 40 minutes): a chunk that keeps failing ends this run as failed instead of
# wedging it, since the schedule's overlap policy SKIP would skip every later run behind a
# stuck one. Accounts scan themselves once summaries stop arriving (interval + grace).
SCAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=25,
)


class PortfolioScanInput(BaseModel):
    as_of: datetime | None = None  # None: 00:00 UTC of the day the run starts
    chunk_size: int = Field(default=1000, ge=1, le=20_000)
    signal_accounts: bool = True
    interval_seconds: int = Field(default=86_400, ge=60)  # the schedule's interval


class PortfolioScanResult(BaseModel):
    as_of: datetime
    accounts: int
    chunks: int
    by_band: dict[str, int]
    by_decision: dict[str, int]
    findings_written: int
    signalled: int
    not_running: int
    seconds_facts: float
    seconds_save: float
    seconds_signal: float


def start_of_day(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


@workflow.defn
class PortfolioScanWorkflow:
    @workflow.run
    async def run(self, inp: PortfolioScanInput) -> PortfolioScanResult:
        as_of = inp.as_of or start_of_day(workflow.now())
        after = ""
        chunks = accounts = findings = signalled = not_running = 0
        by_band: Counter[str] = Counter()
        by_decision: Counter[str] = Counter()
        secs = [0.0, 0.0, 0.0]
        while True:
            workflow.set_current_details(
                f"portfolio scan as of {as_of:%Y-%m-%d %H:%M} UTC: {accounts} account(s) "
                f"in {chunks} chunk(s) so far"
            )
            r = await workflow.execute_activity(
                act.scan_chunk,
                ScanChunkRequest(
                    as_of=as_of,
                    after=after,
                    limit=inp.chunk_size,
                    signal_accounts=inp.signal_accounts,
                    interval_seconds=inp.interval_seconds,
                ),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=10),
                retry_policy=SCAN_RETRY,
                summary=f"scan {inp.chunk_size} accounts after {after or 'the first'}",
            )
            if r.last_account_id is None:
                break
            chunks += 1
            accounts += r.accounts
            findings += r.findings_written
            signalled += r.signalled
            not_running += r.not_running
            by_band.update(r.by_band)
            by_decision.update(r.by_decision)
            secs = [
                secs[0] + r.seconds_facts,
                secs[1] + r.seconds_save,
                secs[2] + r.seconds_signal,
            ]
            after = r.last_account_id
        result = PortfolioScanResult(
            as_of=as_of,
            accounts=accounts,
            chunks=chunks,
            by_band=dict(sorted(by_band.items())),
            by_decision=dict(sorted(by_decision.items())),
            findings_written=findings,
            signalled=signalled,
            not_running=not_running,
            seconds_facts=round(secs[0], 3),
            seconds_save=round(secs[1], 3),
            seconds_signal=round(secs[2], 3),
        )
        workflow.set_current_details(
            f"scanned {accounts} account(s) as of {as_of:%Y-%m-%d %H:%M} UTC in {chunks} "
            f"chunk(s); {signalled} account workflow(s) signalled, {not_running} not running"
        )
        return result
