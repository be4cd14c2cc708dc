"""Digest activities against real Postgres: the daily cap on immediate drafts holds across
accounts, a retry answers as the first attempt did, and each person gets one digest."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.db import create_pool
from activities.deliveries import ChannelsConfig, DeliveryActivities
from activities.digest import DigestActivities
from domain.digest import DigestItem, DigestRequest
from stack.settings import load_settings

T = datetime(2026, 12, 2, 10, tzinfo=UTC)


def item(
    n: int, *, urgent: bool = False, to: str = "dana@example.com", at: datetime = T
) -> DigestItem:
    return DigestItem(
        item_key=f"account-a{n}:churn_alert:CRITICAL:{n}",
        recipient=to,
        recipient_name="Dana Reyes",
        account_id=f"a{n}",
        account_name=f"Account {n}",
        category="risk" if urgent else "play",
        headline=f"headline {n}",
        link=f"outbox pages/a{n}.md",
        as_of=at,
        urgent=urgent,
        immediate_cap=3,
    )


async def test_cap_digest_and_idempotency(db_dsn: str, tmp_path: Path) -> None:
    pool = await create_pool(db_dsn, max_size=3)
    try:
        settings = load_settings({"VIM_DATA_DIR": str(tmp_path)})
        acts = DigestActivities(
            pool, DeliveryActivities(pool, settings, ChannelsConfig.from_env({}))
        )
        env = ActivityEnvironment()
        # Urgent lines of four accounts for one person on one day: three drafts, then the digest.
        now = [await env.run(acts.add_digest_item, item(n, urgent=True)) for n in range(4)]
        assert now == [True, True, True, False]
        assert await env.run(acts.add_digest_item, item(0, urgent=True)) is True  # a retry
        # The next day the cap starts again; a non-urgent line always waits.
        assert await env.run(acts.add_digest_item, item(5, urgent=True, at=T + timedelta(days=1)))
        assert not await env.run(acts.add_digest_item, item(6))
        assert not await env.run(acts.add_digest_item, item(7, to="sam@example.com"))

        until = datetime(2026, 12, 3, 7, tzinfo=UTC)
        res = await env.run(acts.send_digests, DigestRequest(until=until))
        assert (res.drafts, res.items) == (2, 3)  # Dana: the 4th urgent line + line 6; Sam: 7
        assert sorted(res.recipients) == ["dana@example.com", "sam@example.com"]
        again = await env.run(acts.send_digests, DigestRequest(until=until))
        assert again.drafts == 0  # every line is in a digest already

        drafts = sorted((tmp_path / "outbox" / "email").glob("digest*.eml"))
        assert len(drafts) == 2
        msg = email.message_from_bytes(drafts[0].read_bytes(), policy=policy.default)
        body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert msg["To"].addresses[0].addr_spec == "dana@example.com"
        assert "2 updates on 2 accounts" in body and "Account 3: headline 3" in body
        assert "Account 0" not in body  # drafted at once, not repeated in the digest
        conn = await asyncpg.connect(db_dsn)
        try:
            rows = await conn.fetch(
                "SELECT item_key, sent_immediately, digest_key FROM digest_items ORDER BY item_key"
            )
        finally:
            await conn.close()
        # Every line is either drafted at once or carried by exactly one digest.
        assert all(r["sent_immediately"] != bool(r["digest_key"]) for r in rows), rows
    finally:
        await pool.close()
