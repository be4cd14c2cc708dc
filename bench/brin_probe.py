"""Does a BRIN index on usage_events(occurred_at) speed up the portfolio facts? (issue 16)

    .venv/bin/python -m bench.brin_probe      # ~4 min: 3.65 M time-ordered rows, 1,000 accounts

Loads a year of events in time order (as ingestion appends them) on a private
embedded Postgres, times `fetch_facts` for the whole portfolio (best of 3)
without and with the BRIN index, checks the facts are equal, and prints the
plan of the 90-day window count. Measured 2026-11-30 (2 shared cores): 4.14 s
without, 5.28 s with; the planner keeps the (account_id, occurred_at) btree, so
migration 008 does not add the BRIN index.
"""

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from activities.telemetry import fetch_facts
from domain.facts import Windows
from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded

N_ACC, PER_DAY = 1000, 10  # 10 events per account-day over 365 days = 3.65M rows


async def main():
    d = Path(tempfile.mkdtemp(prefix="vim-brin-")) / "pg"
    dsn = start_embedded(d)
    try:
        await migrate_dsn(dsn)
        c = await asyncpg.connect(dsn)
        await c.execute("DROP INDEX IF EXISTS usage_events_occurred_brin")
        await c.execute(
            f"INSERT INTO accounts (account_id, name) SELECT 'a'||i, 'a'||i FROM generate_series(1,{N_ACC}) i"
        )
        await c.execute(
            "INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, "
            "price_per_seat, licensed_modules) SELECT 'a'||i, '2025-11-01', '2026-12-31', 12000, "
            f"20, 600, ARRAY['core'] FROM generate_series(1,{N_ACC}) i"
        )
        t = time.perf_counter()
        # time-ordered, as ingestion appends: day by day, all accounts
        await c.execute(f"""INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity)
            SELECT 'a'||a, 'u'||(k % 7), timestamptz '2025-11-30' + (d * interval '1 day') + (k * interval '1 hour'), 'core.search', 1
            FROM generate_series(0,364) d, generate_series(1,{N_ACC}) a, generate_series(1,{PER_DAY}) k""")
        await c.execute("VACUUM ANALYZE usage_events")
        n = await c.fetchval("SELECT count(*) FROM usage_events")
        print(f"{n:,} rows loaded in {time.perf_counter() - t:.0f} s")
        as_of = datetime(2026, 11, 30, tzinfo=UTC)

        async def timed(label):
            best = 1e9
            for _ in range(3):
                t = time.perf_counter()
                f = await fetch_facts(c, as_of, Windows())
                best = min(best, time.perf_counter() - t)
            print(f"{label}: portfolio facts for {len(f)} accounts, best of 3: {best:.2f} s")
            return f

        f1 = await timed("no BRIN")
        await c.execute(
            "CREATE INDEX usage_events_occurred_brin ON usage_events USING brin (occurred_at)"
        )
        await c.execute("ANALYZE usage_events")
        f2 = await timed("BRIN")
        assert f1 == f2
        plan = await c.fetch(
            "EXPLAIN SELECT count(*) FROM usage_events WHERE occurred_at <= $1 AND occurred_at > $1 - interval '90 days'",
            as_of,
        )
        print("\n".join(r[0] for r in plan))
        await c.close()
    finally:
        stop_embedded(d)


if __name__ == "__main__":
    asyncio.run(main())
