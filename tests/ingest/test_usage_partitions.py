"""usage_events partitioned by month (migration 013): rows land in their month, duplicates are
dropped across partitions by every write path, no row is refused (DEFAULT partition), old
months are detached for archiving without changing the scan's facts, and migrating a
populated table keeps every row."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from activities.telemetry import fetch_facts
from cli.usage import latest_cutoff, run_usage_archive
from domain.config import load_health_config
from domain.ingest import IngestEvent, build_event
from ingest.partitions import detach_before, monthly_partitions
from ingest.store import ensure_months, store_usage
from stack.migrate import migration_files
from tests.conftest import _with_database

CONFIG = load_health_config()


def _event(mid: str, at: datetime, user: str = "u1", kind: str = "reports.export") -> IngestEvent:
    return build_event(
        {
            "account_id": "a1",
            "user_id": user,
            "occurred_at": at,
            "event_type": kind,
            "quantity": 1,
            "message_id": mid,
        }
    )


async def _where(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT tableoid::regclass::text AS part, count(*) AS n FROM usage_events GROUP BY 1"
    )
    return {r["part"]: r["n"] for r in rows}


async def _account(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO accounts (account_id, name) VALUES ('a1', 'A1')")
    await db.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
                                  price_per_seat) VALUES ('a1', '2025-01-01', '2027-01-01',
                                  6000, 10, 600)"""
    )


async def test_rows_land_in_their_month_and_duplicates_are_dropped_across_months(
    db: asyncpg.Connection,
) -> None:
    await _account(db)
    oct_, nov = datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    first = [_event("m1", oct_), _event("m2", nov), _event("m2", nov + timedelta(hours=1))]
    got = await store_usage(db, first, "test")
    assert (got.written, got.duplicates) == (2, 1)  # a repeated id within a chunk: once
    assert await _where(db) == {"usage_events_p202610": 1, "usage_events_p202611": 1}
    # the same ids again with other times (another month): still duplicates
    again = [_event("m1", nov), _event("m2", oct_)]
    got = await store_usage(db, again, "test")
    assert (got.written, got.duplicates) == (0, 2)
    assert await db.fetchval("SELECT count(*) FROM usage_events") == 2
    # a COPY or plain INSERT of an id already on file is refused, as under migration 008
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, message_id) "
            "VALUES ('a1', 'u1', $1, 'login', 'm1')",
            nov,
        )
    # a deleted row's id is forgotten: sent again, it is written again
    await db.execute("DELETE FROM usage_events WHERE message_id = 'm1'")
    got = await store_usage(db, [_event("m1", oct_)], "test")
    assert got.written == 1


async def test_a_month_without_partition_lands_in_default_and_moves_out(
    db: asyncpg.Connection,
) -> None:
    await _account(db)
    at = datetime(2025, 3, 5, 12, tzinfo=UTC)
    await db.execute(  # an ETL insert into a month no one created: never refused
        "INSERT INTO usage_events (account_id, user_id, occurred_at, event_type) "
        "VALUES ('a1', 'u1', $1, 'login')",
        at,
    )
    assert await _where(db) == {"usage_events_default": 1}
    rollup = await db.fetch("SELECT * FROM usage_user_month")
    assert await ensure_months(db, [date(2025, 3, 1)]) == ["usage_events_p202503"]
    assert await _where(db) == {"usage_events_p202503": 1}
    assert await db.fetch("SELECT * FROM usage_user_month") == rollup  # moving is no write
    assert await ensure_months(db, [date(2025, 3, 17)]) == []  # exists: nothing to do
    # a clock years ahead does not create partitions: the row waits in DEFAULT
    assert await ensure_months(db, [date(2031, 1, 1)]) == []


async def test_archive_detaches_old_months_and_the_scan_facts_stay(db: asyncpg.Connection) -> None:
    await _account(db)
    days = [datetime(2026, 1, 10, tzinfo=UTC) + timedelta(days=7 * i) for i in range(46)]
    await store_usage(db, [_event(f"w{i}", d) for i, d in enumerate(days)], "test")
    as_of = datetime(2026, 11, 21, tzinfo=UTC)
    before = await fetch_facts(db, as_of, CONFIG.windows)  # as of 00:00 UTC: the rollup
    jan, feb = (sum(1 for d in days if d.month == m) for m in (1, 2))
    attached = await monthly_partitions(db)
    dry = await detach_before(db, date(2026, 3, 1), dry_run=True)
    assert [(p.name, p.rows) for p in dry] == [
        ("usage_events_p202601", jan),
        ("usage_events_p202602", feb),
    ]
    assert await monthly_partitions(db) == attached  # a dry run detaches nothing
    gone = await detach_before(db, date(2026, 3, 1))
    assert [p.name for p in gone] == ["usage_events_p202601", "usage_events_p202602"]
    assert min(p.month for p in await monthly_partitions(db)) == date(2026, 3, 1)
    assert await db.fetchval("SELECT count(*) FROM usage_events") == len(days) - jan - feb
    assert await db.fetchval("SELECT count(*) FROM usage_events_p202601") == jan  # to archive
    after = await fetch_facts(db, as_of, CONFIG.windows)
    # the same facts from the rollup; only the first event on file is now a later one
    assert after["a1"].first_event_at == datetime(2026, 3, 7, tzinfo=UTC)
    assert (
        after["a1"].model_copy(update={"first_event_at": before["a1"].first_event_at})
        == (before["a1"])
    )
    # a re-sent archived event is still a duplicate
    got = await store_usage(db, [_event("w0", days[0])], "test")
    assert got.written == 0


async def test_archive_refuses_a_month_inside_the_usage_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    today = date(2026, 12, 1)
    assert latest_cutoff(today, 90) == date(2026, 9, 1)
    args = argparse.Namespace(before=date(2026, 10, 1), dry_run=False)
    assert await run_usage_archive(args, today=today) == 2
    assert "inside the" in capsys.readouterr().err


async def test_migrating_a_populated_table_keeps_every_row(pg_server: str) -> None:
    name = "vim_migrate_013"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_database(pg_server, name))
    try:
        files = migration_files()
        for version, _, path in files:
            if version < 13:
                await conn.execute(path.read_text())
        await conn.execute("INSERT INTO accounts (account_id, name) VALUES ('a1', 'A1')")
        await conn.execute(
            """INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity,
                                         message_id)
               SELECT 'a1', 'u' || (i % 7), timestamptz '2025-06-01' + i * interval '5 hours',
                      (ARRAY['login', 'reports.export', 'api.call'])[1 + i % 3], i % 4,
                      CASE WHEN i % 2 = 0 THEN 'm' || i END
               FROM generate_series(1, 2000) i"""
        )
        snapshot = "SELECT * FROM usage_events ORDER BY occurred_at, user_id, event_type"
        rows = await conn.fetch(snapshot)
        rollup = await conn.fetch("SELECT * FROM usage_user_month ORDER BY 1, 2, 3, 4")
        for version, _, path in files:
            if version >= 13:
                await conn.execute(path.read_text())
        assert await conn.fetch(snapshot) == rows
        assert await conn.fetch("SELECT * FROM usage_user_month ORDER BY 1, 2, 3, 4") == rollup
        assert await conn.fetchval("SELECT count(*) FROM usage_message_ids") == 1000
        assert await conn.fetchval("SELECT count(*) FROM usage_events_default") == 0
        assert len(await monthly_partitions(conn)) >= 14  # 2025-06 .. 2026-07
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
