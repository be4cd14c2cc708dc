"""Segment `group` calls: which account a user belongs to (`segment_user_groups`,
migration 014), so `track` calls without `context.groupId` still name their account."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg

from domain.ingest import GroupLink


async def link_users(conn: asyncpg.Connection, links: Sequence[GroupLink]) -> None:
    """Record each user's group; a later call (by its timestamp) wins, an older one is kept out."""
    latest: dict[str, GroupLink] = {}
    for link in links:
        if link.user_id not in latest or link.at >= latest[link.user_id].at:
            latest[link.user_id] = link
    if not latest:
        return
    await conn.execute(
        """INSERT INTO segment_user_groups (user_id, account_id, linked_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
           ON CONFLICT (user_id) DO UPDATE
              SET account_id = EXCLUDED.account_id, linked_at = EXCLUDED.linked_at
              WHERE segment_user_groups.linked_at <= EXCLUDED.linked_at""",
        [x.user_id for x in latest.values()],
        [x.account_id for x in latest.values()],
        [x.at for x in latest.values()],
    )


async def accounts_of(conn: asyncpg.Connection, users: Collection[str]) -> dict[str, str]:
    """user id -> the account of its latest group call (users never grouped are absent)."""
    if not users:
        return {}
    rows = await conn.fetch(
        "SELECT user_id, account_id FROM segment_user_groups WHERE user_id = ANY($1::text[])",
        list(users),
    )
    return {r["user_id"]: r["account_id"] for r in rows}
