"""score_account / scan_portfolio as Temporal activities against a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.health import HealthActivities, ScanRequest, ScoreAccountRequest
from activities.snapshots import latest_snapshot, snapshot_history
from demo.load import load_portfolio
from demo.portfolio import REFERENCE_ACCOUNT_ID, generate_portfolio
from domain.config import load_health_config

AS_OF_DAY = date(2026, 11, 21)
T = datetime.combine(AS_OF_DAY, time(), UTC)
DAY = timedelta(days=1)
CONFIG = load_health_config()


@pytest_asyncio.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    assert p is not None
    try:
        yield p
    finally:
        await p.close()


async def _declining_account(db: asyncpg.Connection) -> None:
    """20 users active every day until 30 days ago, then 4: usage and seats collapse."""
    await db.execute(
        "INSERT INTO accounts (account_id, name, tier) VALUES ('acme', 'Acme', 'tier-2')"
    )
    await db.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
                                  price_per_seat, licensed_modules)
           VALUES ('acme', '2026-01-01', '2027-06-30', 12000, 20, 600, '{core,reports}')"""
    )
    rows = []
    for d in range(1, 150):
        users = 20 if d > 30 else 4
        for u in range(users):
            rows.append(("acme", f"u{u}", T - d * DAY, "login", 1))
            rows.append(("acme", f"u{u}", T - d * DAY, "reports.export", 3))
    await db.copy_records_to_table(
        "usage_events",
        records=rows,
        columns=["account_id", "user_id", "occurred_at", "event_type", "quantity"],
    )


async def test_score_account_persists_once_even_when_retried(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    await _declining_account(db)
    acts = HealthActivities(pool, CONFIG)
    env = ActivityEnvironment()
    req = ScoreAccountRequest(account_id="acme", as_of=T)
    first = await env.run(acts.score_account, req)
    snaps = await db.fetch("SELECT * FROM health_snapshots")
    findings = await db.fetch("SELECT finding_id, payload FROM findings ORDER BY finding_id")
    second = await env.run(acts.score_account, req)  # a retry of the same activity
    assert second == first
    assert await db.fetchval("SELECT count(*) FROM health_snapshots") == 1 == len(snaps)
    again = await db.fetch("SELECT finding_id, payload FROM findings ORDER BY finding_id")
    assert [r["finding_id"] for r in again] == [r["finding_id"] for r in findings]
    assert [f.finding_id for f in first.findings] == [
        r["finding_id"]
        for r in findings
        if r["finding_id"].split(":")[0] in ("muda", "mura", "muri")
    ]
    row = snaps[0]
    assert row["config_version"] == CONFIG.version
    assert float(row["score"]) == first.score and row["band"] == first.band
    assert row["churn_risk"] == first.churn_level
    stored = await latest_snapshot(db, "acme", T + DAY)
    assert stored is not None and stored.score == first.score
    assert first.arr == 12000 and first.active_users == 4 and first.seat_utilization == 0.2


async def test_drivers_appear_on_the_second_day(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    await _declining_account(db)
    acts = HealthActivities(pool, CONFIG)
    env = ActivityEnvironment()
    day1 = await env.run(
        acts.score_account, ScoreAccountRequest(account_id="acme", as_of=T - 31 * DAY)
    )
    assert day1.drivers == []  # nothing to compare with yet
    day2 = await env.run(acts.score_account, ScoreAccountRequest(account_id="acme", as_of=T))
    assert day2.score is not None and day1.score is not None and day2.score < day1.score
    assert day2.drivers, "the second snapshot explains what moved"
    assert any(ch.isdigit() for ch in day2.drivers[0])  # with numbers
    history = await snapshot_history(db, "acme", T - 60 * DAY, T)
    assert [p.as_of for p in history] == [T - 31 * DAY, T]
    assert [p.score for p in history] == [day1.score, day2.score]


async def test_unknown_account_is_a_non_retryable_error(pool: asyncpg.Pool) -> None:
    acts = HealthActivities(pool, CONFIG)
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            acts.score_account, ScoreAccountRequest(account_id="nobody", as_of=T)
        )
    assert err.value.type == "UnknownAccount" and err.value.non_retryable


async def test_reference_case_muda_with_redeployment(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    await load_portfolio(db, generate_portfolio(7, AS_OF_DAY, 40))
    acts = HealthActivities(pool, CONFIG)
    summary = await ActivityEnvironment().run(
        acts.score_account, ScoreAccountRequest(account_id=REFERENCE_ACCOUNT_ID, as_of=T)
    )
    muda = [f for f in summary.findings if f.kind == "muda" and f.dollar_impact]
    seat = max(muda, key=lambda f: f.dollar_impact or 0)
    assert seat.dollar_impact == pytest.approx(45_000, rel=0.05)
    assert "re-deployment" in seat.play.lower()
    assert summary.days_to_renewal is not None and 150 <= summary.days_to_renewal <= 200

    result = await ActivityEnvironment().run(acts.scan_portfolio, ScanRequest(as_of=T))
    assert result.accounts == await db.fetchval(
        "SELECT count(DISTINCT account_id) FROM health_snapshots WHERE as_of = $1", T
    )
    assert sum(result.by_band.values()) == result.accounts
    assert sum(result.by_churn.values()) == result.accounts
