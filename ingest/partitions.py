"""Monthly partitions of usage_events (migration 013): which exist, and detaching old ones.

A partition is ``usage_events_pYYYYMM`` and holds the UTC calendar month
[1st 00:00, next 1st 00:00). Detaching turns it into a plain table that can be
dumped and dropped; the rollup rows of that month (usage_type_daily,
usage_user_month) and the message ids stay, so the scheduled scan's facts as of
a midnight do not change and a late re-send of an archived event is still dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from ingest.store import ensure_months

PREFIX = "usage_events_p"


@dataclass(frozen=True)
class Partition:
    name: str
    month: date
    rows: int


async def monthly_partitions(conn: asyncpg.Connection) -> list[Partition]:
    """The attached monthly partitions, oldest first, with their exact row counts."""
    names = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'usage_events'::regclass AND c.relname LIKE 'usage_events\\_p%'
           ORDER BY c.relname"""
    )
    out = []
    for r in names:
        name = r["relname"]
        month = date(int(name[len(PREFIX) : len(PREFIX) + 4]), int(name[len(PREFIX) + 4 :]), 1)
        rows = await conn.fetchval(f'SELECT count(*) FROM "{name}"')
        out.append(Partition(name, month, rows))
    return out


async def detach_before(
    conn: asyncpg.Connection, before: date, dry_run: bool = False
) -> list[Partition]:
    """Detach every monthly partition of a month before `before` (a 1st of a month). Rows
    of those months held by the DEFAULT partition get their month's partition first, so
    they are detached too. Returns what was (or, with dry_run, would be) detached."""
    async with conn.transaction():
        stray = await conn.fetch(
            """SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS m
               FROM usage_events_default WHERE occurred_at < $1::timestamp AT TIME ZONE 'UTC'""",
            before,
        )
        if stray and not dry_run:
            await ensure_months(conn, [r["m"] for r in stray])
        old = [p for p in await monthly_partitions(conn) if p.month < before]
        if dry_run:
            counts = {r["m"]: 0 for r in stray}
            for m in counts:
                counts[m] = await conn.fetchval(
                    """SELECT count(*) FROM usage_events_default
                       WHERE date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date = $1""",
                    m,
                )
            old += [Partition(PREFIX + f"{m:%Y%m}", m, n) for m, n in counts.items()]
            return sorted(old, key=lambda p: p.month)
        for p in old:
            await conn.execute(f'ALTER TABLE usage_events DETACH PARTITION "{p.name}"')
    return old
