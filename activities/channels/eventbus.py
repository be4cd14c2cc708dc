"""The event bus: an outbox table (``events``) plus NOTIFY 'vim_events' by trigger.

Publishing is idempotent by ``event_key``: a retried activity or a replayed
workflow inserts nothing new. Readers: ``python starter.py events --follow``.
"""

from __future__ import annotations

import json

import asyncpg

from domain.delivery import BusEvent


async def publish(conn: asyncpg.Connection | asyncpg.Pool, ev: BusEvent) -> int | None:
    """Insert the event; its id, or None when the key was already published."""
    return await conn.fetchval(
        """INSERT INTO events (event_key, account_id, event_type, payload, occurred_at)
           VALUES ($1, $2, $3, $4::jsonb, $5)
           ON CONFLICT (event_key) DO NOTHING
           RETURNING event_id""",
        ev.event_key,
        ev.account_id,
        ev.event_type,
        json.dumps(ev.payload, default=str),
        ev.occurred_at,
    )
