"""The one write path of usage rows: files, the Segment endpoint and the `usage` signal.

One statement per chunk: the rows go in as arrays (`unnest`); for rows of known
accounts the per-account message id is claimed in `usage_message_ids` with
`ON CONFLICT DO NOTHING` (migration 013: usage_events is partitioned by month,
so it cannot hold the unique index itself) and only the rows whose id was
claimed now are inserted (the first of a repeated id within a chunk); rows of
unknown accounts go to `usage_quarantine` (held once per message id), and what
was written comes back per account (count, latest `occurred_at`) for the
coalesced signal. The monthly partitions the rows need are created first
(`usage_events_ensure_months`, once per month and process).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg

from domain.ingest import IngestEvent

_SQL = """
WITH src AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                         $6::float8[]) WITH ORDINALITY
        AS s(account_id, message_id, user_id, occurred_at, event_type, quantity, n)
),
known AS (
    SELECT src.*, EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = src.account_id) AS ok
    FROM src
),
claimed AS (  -- ids new to usage_message_ids; a concurrent writer of the same id waits, skips
    INSERT INTO usage_message_ids (account_id, message_id)
    SELECT DISTINCT account_id, message_id FROM known WHERE ok AND message_id IS NOT NULL
    ORDER BY 1, 2  -- one lock order for concurrent writers
    ON CONFLICT (account_id, message_id) DO NOTHING
    RETURNING account_id, message_id
),
ins AS (
    INSERT INTO usage_events (account_id, message_id, user_id, occurred_at, event_type, quantity)
    SELECT account_id, message_id, user_id, occurred_at, event_type, quantity::numeric
    FROM (SELECT DISTINCT ON (k.account_id, k.message_id) k.*
          FROM known k JOIN claimed c USING (account_id, message_id)
          ORDER BY k.account_id, k.message_id, k.n) first
    UNION ALL  -- rows without an id never collide
    SELECT account_id, message_id, user_id, occurred_at, event_type, quantity::numeric
    FROM known WHERE ok AND message_id IS NULL
    RETURNING account_id, occurred_at
),
held AS (
    INSERT INTO usage_quarantine
        (account_id, message_id, user_id, occurred_at, event_type, quantity, source)
    SELECT account_id, message_id, user_id, occurred_at, event_type, quantity::numeric, $7
    FROM known WHERE NOT ok
    ON CONFLICT (account_id, message_id) DO NOTHING
    RETURNING account_id
)
SELECT account_id, count(*) AS n, max(occurred_at) AS up_to, false AS held
FROM ins GROUP BY account_id
UNION ALL
SELECT account_id, count(*), NULL, true FROM held GROUP BY account_id
"""


async def ensure_months(conn: asyncpg.Connection, months: Iterable[date]) -> list[str]:
    """Create the monthly partitions of usage_events these months need (any day of each
    month, UTC); returns the partitions created. Months that exist cost one catalog lookup
    each, without a lock."""
    made = await conn.fetchval("SELECT usage_events_ensure_months($1::date[])", sorted(set(months)))
    return list(made or [])


@dataclass
class StoreResult:
    """What one or more writes did. `arrived`: account -> (rows written, latest occurred_at)."""

    received: int = 0
    written: int = 0
    quarantined: int = 0
    arrived: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        """Rows already on file (same account and message id), or already held."""
        return self.received - self.written - self.quarantined

    def add(self, other: StoreResult) -> None:
        self.received += other.received
        self.written += other.written
        self.quarantined += other.quarantined
        for aid, (n, up_to) in other.arrived.items():
            m, t = self.arrived.get(aid, (0, up_to))
            self.arrived[aid] = (m + n, max(t, up_to))
        for aid, n in other.held.items():
            self.held[aid] = self.held.get(aid, 0) + n


async def store_usage(
    conn: asyncpg.Connection, events: Sequence[IngestEvent], source: str
) -> StoreResult:
    """Write validated rows in one statement (callers chunk; a few thousand rows is right)."""
    result = StoreResult(received=len(events))
    if not events:
        return result
    await ensure_months(conn, {e.occurred_at.astimezone(UTC).date().replace(day=1) for e in events})
    async with conn.transaction():
        # this statement claims its ids itself: the insert trigger must not register them
        await conn.execute("SELECT set_config('vim.usage_ids_claimed', 'on', true)")
        rows = await conn.fetch(
            _SQL,
            [e.account_id for e in events],
            [e.message_id for e in events],
            [e.user_id for e in events],
            [e.occurred_at for e in events],
            [e.event_type for e in events],
            [e.quantity for e in events],
            source,
        )
        await conn.execute("SELECT set_config('vim.usage_ids_claimed', 'off', true)")
    for r in rows:
        if r["held"]:
            result.quarantined += r["n"]
            result.held[r["account_id"]] = r["n"]
        else:
            result.written += r["n"]
            result.arrived[r["account_id"]] = (r["n"], r["up_to"])
    return result


CHUNK_ROWS = 5_000


async def write_usage(
    pool: asyncpg.Pool, events: Sequence[IngestEvent], source: str, chunk: int = CHUNK_ROWS
) -> StoreResult:
    """Write rows in chunks of `chunk`, each chunk its own transaction (a re-run after a
    failure writes only what is missing: message ids make it idempotent)."""
    total = StoreResult()
    for i in range(0, len(events), chunk):
        async with pool.acquire() as conn:
            total.add(await store_usage(conn, events[i : i + chunk], source))
    return total


class ChunkWriter:
    """Writes chunks while the caller validates the next one (one chunk in flight), so
    Python's validation and Postgres' inserts overlap on two cores."""

    def __init__(self, pool: asyncpg.Pool, source: str) -> None:
        self.pool = pool
        self.source = source
        self.total = StoreResult()
        self._inflight: asyncio.Task[StoreResult] | None = None

    async def put(self, events: Sequence[IngestEvent]) -> None:
        await self.drain()
        self._inflight = asyncio.create_task(write_usage(self.pool, events, self.source))
        await asyncio.sleep(0)  # let it send the statement before the caller resumes

    async def drain(self) -> StoreResult:
        """Wait for the chunk in flight; the running total."""
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            self.total.add(await task)
        return self.total
