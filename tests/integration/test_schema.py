"""The schema migrates once, re-applies as a no-op, and the event bus notifies."""

import asyncio

import asyncpg

from stack.migrate import migrate, migration_files


async def test_migrations_are_idempotent_and_recorded(db: asyncpg.Connection) -> None:
    assert await migrate(db) == []  # the template already has every version
    versions = [
        r["version"] for r in await db.fetch("SELECT version FROM schema_migrations ORDER BY 1")
    ]
    assert versions == [v for v, _, _ in migration_files()]


async def test_event_insert_notifies_listeners(db_dsn: str, db: asyncpg.Connection) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(db_dsn)
    try:
        await listener.add_listener("vim_events", lambda *args: got.put_nowait(args[3]))
        event_id = await db.fetchval(
            """INSERT INTO events (event_key, account_id, event_type, payload, occurred_at)
               VALUES ('k1', 'a1', 'health.band_changed', '{}', now()) RETURNING event_id"""
        )
        assert await asyncio.wait_for(got.get(), timeout=5) == str(event_id)
    finally:
        await listener.close()
