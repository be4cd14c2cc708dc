"""Usage rows held for unknown accounts (`usage_quarantine`, migration 008): report,
release once the account exists, or drop on an operator's word.

Release moves rows through the one write path (ingest/store.py) inside the
transaction that deletes them from quarantine, a chunk at a time: a row is in
exactly one of the two tables whatever fails, and a message already on file
is not written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.ingest import IngestEvent
from ingest.store import CHUNK_ROWS, StoreResult, store_usage


@dataclass(frozen=True)
class HeldAccount:
    account_id: str
    rows: int
    first_event: datetime
    last_event: datetime
    last_received: datetime
    sources: tuple[str, ...]
    known: bool  # the account exists now: its rows can be released


async def held_accounts(conn: asyncpg.Connection) -> list[HeldAccount]:
    rows = await conn.fetch(
        """SELECT q.account_id, count(*) AS n, min(q.occurred_at) AS first_event,
                  max(q.occurred_at) AS last_event, max(q.received_at) AS last_received,
                  array_agg(DISTINCT q.source ORDER BY q.source) AS sources,
                  EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = q.account_id) AS known
           FROM usage_quarantine q GROUP BY q.account_id ORDER BY count(*) DESC, q.account_id"""
    )
    return [
        HeldAccount(
            account_id=r["account_id"],
            rows=r["n"],
            first_event=r["first_event"],
            last_event=r["last_event"],
            last_received=r["last_received"],
            sources=tuple(r["sources"]),
            known=r["known"],
        )
        for r in rows
    ]


_TAKE = """
DELETE FROM usage_quarantine q
WHERE (q.account_id, q.message_id) IN (
    SELECT account_id, message_id FROM usage_quarantine
    WHERE account_id = ANY($1::text[])
      AND EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = usage_quarantine.account_id)
    ORDER BY account_id, message_id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING account_id, message_id, user_id, occurred_at, event_type, quantity
"""


async def release(
    pool: asyncpg.Pool, accounts: Sequence[str], chunk: int = CHUNK_ROWS
) -> StoreResult:
    """Move the held rows of these accounts (those that exist now) into usage_events."""
    total = StoreResult()
    while True:
        async with pool.acquire() as conn, conn.transaction():
            taken = await conn.fetch(_TAKE, list(accounts), chunk)
            if not taken:
                return total
            events = [
                IngestEvent(
                    account_id=r["account_id"],
                    message_id=r["message_id"],
                    user_id=r["user_id"],
                    occurred_at=r["occurred_at"],
                    event_type=r["event_type"],
                    quantity=float(r["quantity"]),
                )
                for r in taken
            ]
            total.add(await store_usage(conn, events, "quarantine"))


async def drop(conn: asyncpg.Connection, accounts: Sequence[str]) -> dict[str, int]:
    """Discard the held rows of these accounts; rows dropped per account."""
    rows = await conn.fetch(
        """WITH gone AS (DELETE FROM usage_quarantine WHERE account_id = ANY($1::text[])
                         RETURNING account_id)
           SELECT account_id, count(*) AS n FROM gone GROUP BY account_id""",
        list(accounts),
    )
    return {r["account_id"]: r["n"] for r in rows}
