"""The usage rollup (migration 010: usage_type_daily, usage_user_month): facts read from
it equal facts read from raw usage_events, field for field, on the demo portfolio and on
rows placed on the edges of days, months and windows; the rollup follows every write
(COPY, the ingest write path, plain INSERT, UPDATE, DELETE, TRUNCATE) and holds only valid
rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest

from activities.telemetry import fetch_facts, reads_rollup
from demo.load import load_portfolio
from demo.portfolio import generate_portfolio
from domain.config import load_health_config
from domain.facts import Windows
from domain.ingest import build_event
from ingest.store import store_usage

AS_OF_DAY = date(2026, 11, 21)
T = datetime.combine(AS_OF_DAY, time(), UTC)
CONFIG = load_health_config()
M_NOV, M_DEC, M_MAR = (datetime(2026, m, 1, tzinfo=UTC) for m in (11, 12, 3))
# as_of dates whose windows start or end on month edges, or span a short February
AS_OFS = (
    T,
    T - timedelta(days=1),
    T + timedelta(days=1),
    M_NOV,
    M_DEC,
    M_MAR,
    datetime(2026, 5, 1, tzinfo=UTC),
    datetime(2026, 4, 30, tzinfo=UTC),
)

# What the rollup must hold: the valid raw rows grouped by account, UTC day (00:00, 24:00]
# and event type; and per account, UTC month, user and event type a mask of the days.
VALID = "quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> ''"
DAY = "((occurred_at - interval '1 microsecond') AT TIME ZONE 'UTC')::date"
TYPES_FROM_RAW = f"""
SELECT account_id, {DAY} AS day, event_type, count(*) AS events, sum(quantity) AS quantity
FROM usage_events WHERE {VALID} GROUP BY 1, 2, 3"""
TYPES = "SELECT account_id, day, event_type, events, quantity FROM usage_type_daily"
# the days as a sorted array, computed differently from the migration (no bit arithmetic)
USERS_FROM_RAW = f"""
SELECT account_id, date_trunc('month', {DAY}::timestamp)::date AS month, user_id, event_type,
       array_agg(DISTINCT extract(day FROM {DAY})::int) AS days
FROM usage_events WHERE {VALID} GROUP BY 1, 2, 3, 4"""
USERS = """
SELECT account_id, month, user_id, event_type,
       ARRAY(SELECT d FROM generate_series(1, 31) d WHERE days & (1 << (31 - d)) <> 0) AS days
FROM usage_user_month"""


async def _rollup_matches_raw(db: asyncpg.Connection) -> None:
    """The rollup holds exactly the valid raw rows, rolled up (compared in Postgres)."""
    for r, f in ((TYPES, TYPES_FROM_RAW), (USERS, USERS_FROM_RAW)):
        assert await db.fetchval(f"SELECT count(*) FROM (({r}) EXCEPT ALL ({f})) x") == 0
        assert await db.fetchval(f"SELECT count(*) FROM (({f}) EXCEPT ALL ({r})) x") == 0


async def _same_facts(db: asyncpg.Connection, as_of: datetime, windows: Windows) -> int:
    raw = await fetch_facts(db, as_of, windows, usage_source="raw")
    rolled = await fetch_facts(db, as_of, windows, usage_source="rollup")
    assert set(raw) == set(rolled)
    for aid in raw:
        assert rolled[aid] == raw[aid], aid
    return sum(1 for f in raw.values() if f.active_users)


async def test_facts_from_the_rollup_equal_facts_from_raw_events(db: asyncpg.Connection) -> None:
    portfolio = generate_portfolio(7, AS_OF_DAY, 240)
    await load_portfolio(db, portfolio)  # COPY: the trigger rolls it up
    await _rollup_matches_raw(db)
    # (the demo has about one event per user, day and event type: the rollup is about as
    # big as the raw table here; it is smaller where users repeat an event within a day)

    active = 0
    for back in (0, 1, 7, 45, 200):
        active += await _same_facts(db, T - timedelta(days=back), CONFIG.windows)
    assert active > 0  # the comparison covered real usage, not empty facts
    # other windows (masks over more than one 64-day chunk, odd lengths)
    odd = Windows(activity_days=13, adoption_days=100, weeks_series=20)
    assert await _same_facts(db, T, odd) > 0
    # one account alone (the workflow's path) reads the rollup the same way
    aid = portfolio.account_ids[0]
    one_raw = await fetch_facts(db, T, CONFIG.windows, [aid], usage_source="raw")
    one_rolled = await fetch_facts(db, T, CONFIG.windows, [aid], usage_source="rollup")
    assert one_raw == one_rolled


async def test_edges_of_days_bad_rows_and_every_kind_of_write(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO accounts (account_id, name) VALUES ('edge', 'Edge')")
    await db.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
                                  price_per_seat) VALUES ('edge', '2026-01-01', '2027-01-01',
                                  6000, 10, 600)"""
    )
    tiny = timedelta(microseconds=1)
    edges = [
        T,  # exactly as_of: counts, in the last day
        T - tiny,
        T + tiny,  # after as_of: never counts
        T - timedelta(days=1),  # a midnight: belongs to the day before it
        T - timedelta(days=1) + tiny,
        T - timedelta(days=30),  # the activity window's boundary: outside
        T - timedelta(days=30) + tiny,  # inside
        T - timedelta(days=60),
        T - timedelta(days=64) + tiny,  # the first mask chunk's edge
        T - timedelta(days=64),
        T - timedelta(days=90),
        T - timedelta(days=90) + tiny,
        T - timedelta(days=84, hours=12),  # the weeks series' edge
        # month edges: 00:00 on the 1st belongs to the last day of the month before
        M_NOV,
        M_NOV + tiny,
        M_NOV - tiny,
        M_DEC,
        M_MAR,  # Feb 28 (a short month)
        M_MAR + tiny,
        M_MAR - timedelta(days=1),
        datetime(2026, 1, 31, 12, tzinfo=UTC),  # a 31st: the month's lowest bit
        datetime(2026, 10, 31, 23, tzinfo=UTC),
    ]
    events = [
        build_event(
            {
                "account_id": "edge",
                "user_id": f"u{i % 4}",
                "occurred_at": at,
                "event_type": ["login", "reports.export", "api.call", "core.limit_hit"][i % 4],
                "quantity": 1 + i,
                "message_id": f"m{i}",
            }
        )
        for i, at in enumerate(edges)
    ]
    await store_usage(db, events, "test")  # the ingest write path
    await store_usage(db, events, "test")  # duplicates: written once, rolled up once
    await db.executemany(  # plain INSERTs, with impossible rows the facts leave out
        "INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity) "
        "VALUES ('edge', $1, $2, $3, $4)",
        [
            ("u1", T - timedelta(hours=3), "login", 2),
            ("u1", T - timedelta(hours=3), "login", 2),  # a true duplicate row counts twice
            ("u9", T - timedelta(hours=5), "reports.export", -1),
            ("u9", T - timedelta(hours=5), " ", 1),
            ("u9", T - timedelta(hours=5), "reports.export", "NaN"),
        ],
    )

    async def check() -> None:
        await _rollup_matches_raw(db)
        assert await db.fetchval("SELECT count(*) FROM usage_user_month") > 5
        for as_of in AS_OFS:
            await _same_facts(db, as_of, CONFIG.windows)
            await _same_facts(db, as_of, Windows(activity_days=13, adoption_days=100))

    await check()
    facts = (await fetch_facts(db, T, CONFIG.windows, usage_source="rollup"))["edge"]
    assert len(facts.data_issues) == 3  # reported from usage_events, by row

    await db.execute("UPDATE usage_events SET quantity = quantity * 2 WHERE user_id = 'u2'")
    await db.execute(
        "UPDATE usage_events SET occurred_at = occurred_at - interval '1 day' WHERE user_id = 'u3'"
    )
    await check()
    # an update across a month edge: the day leaves one month's row for the other's
    await db.execute(
        "UPDATE usage_events SET occurred_at = occurred_at + interval '1 hour' "
        "WHERE occurred_at IN ($1, $2)",
        M_NOV - tiny,
        M_MAR - timedelta(days=1),
    )
    await check()
    # a delete that leaves other days of the same user, type and month on file
    await db.execute("DELETE FROM usage_events WHERE occurred_at = $1", M_NOV + tiny)
    await check()
    await db.execute("DELETE FROM usage_events WHERE user_id = 'u0'")
    await check()
    assert not await db.fetchval("SELECT count(*) FROM usage_user_month WHERE user_id = 'u0'")
    await db.execute("TRUNCATE usage_events")
    assert await db.fetchval("SELECT count(*) FROM usage_user_month") == 0
    assert await db.fetchval("SELECT count(*) FROM usage_type_daily") == 0


def test_the_rollup_is_read_at_midnight_only() -> None:
    assert reads_rollup(T)
    assert not reads_rollup(T + timedelta(hours=2))
    assert not reads_rollup(T, "raw")
    with pytest.raises(ValueError, match="00:00 UTC"):
        reads_rollup(T + timedelta(seconds=1), "rollup")
