"""Digest activities: record a line of someone's digest; send each person one digest draft.

``add_digest_item`` is idempotent (keyed by the line's key). For an urgent
line it also answers whether the recipient may get an immediate draft now:
yes while they got fewer than ``immediate_cap`` immediate drafts that day
(counted across all accounts under a per-recipient advisory lock), else the
line waits for the digest like any other.

``send_digests`` gathers every line recorded before ``until`` that no digest
carried yet, writes one draft per recipient (``domain/digest.py``
``render_digest``) through the same delivery code as every other draft, and
marks the lines with the digest's key. The draft's key is the recipient and
the day, so a retry finds the draft it already made.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deliveries import DeliveryActivities
from domain.delivery import delivery_key
from domain.digest import DigestItem, DigestRequest, DigestResult, render_digest


class DigestActivities:
    def __init__(self, pool: asyncpg.Pool, deliveries: DeliveryActivities) -> None:
        self.pool = pool
        self.deliveries = deliveries

    @activity.defn(name="add_digest_item")
    async def add_digest_item(self, item: DigestItem) -> bool:
        """Record the line; True when the caller should draft the email at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", item.recipient
            )
            prior = await conn.fetchrow(
                "SELECT sent_immediately FROM digest_items WHERE item_key = $1", item.item_key
            )
            if prior is not None:  # a retry: answer as the first attempt did
                return bool(prior["sent_immediately"])
            now = False
            if item.urgent:
                sent_today = await conn.fetchval(
                    """SELECT count(*) FROM digest_items
                       WHERE recipient = $1 AND sent_immediately
                         AND as_of >= date_trunc('day', $2::timestamptz)
                         AND as_of < date_trunc('day', $2::timestamptz) + interval '1 day'""",
                    item.recipient,
                    item.as_of,
                )
                now = sent_today < item.immediate_cap
            await conn.execute(
                """INSERT INTO digest_items (item_key, recipient, recipient_name, account_id,
                       account_name, category, headline, link, as_of, urgent, sent_immediately)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (item_key) DO NOTHING""",
                item.item_key,
                item.recipient,
                item.recipient_name,
                item.account_id,
                item.account_name,
                item.category,
                item.headline,
                item.link,
                item.as_of,
                item.urgent,
                now,
            )
            return now

    @activity.defn(name="send_digests")
    async def send_digests(self, req: DigestRequest) -> DigestResult:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT * FROM digest_items
                   WHERE digest_key IS NULL AND NOT sent_immediately AND as_of < $1
                   ORDER BY recipient, as_of, item_key""",
                req.until,
            )
        by_recipient: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for r in rows:
            by_recipient[r["recipient"]].append(r)
        day = req.until.date()
        result = DigestResult()
        for recipient, mine in sorted(by_recipient.items()):
            items = [
                DigestItem(
                    item_key=r["item_key"],
                    recipient=r["recipient"],
                    recipient_name=r["recipient_name"],
                    account_id=r["account_id"],
                    account_name=r["account_name"],
                    category=r["category"],
                    headline=r["headline"],
                    link=r["link"],
                    as_of=r["as_of"],
                )
                for r in mine
            ]
            key = delivery_key("digest", req.period, recipient, day.isoformat())
            draft = render_digest(
                recipient,
                next((i.recipient_name for i in items if i.recipient_name), None),
                items,
                day=day,
                period=req.period,
                idempotency_key=key,
                max_items_per_section=req.max_items_per_section,
            )
            try:
                await self.deliveries.deliver(draft)
            except ApplicationError as e:
                if not e.non_retryable:
                    raise  # transient: the activity retries; delivered digests are idempotent
                # a refusal (revoked scope, bad address) costs this recipient's digest, not
                # everyone's: the items stay unsent for the next digest, and the refusal shows
                activity.logger.warning("digest for %s refused: %s", recipient, e.message)
                result.failed.append(f"{recipient}: {e.message}"[:300])
                continue
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE digest_items SET digest_key = $1 WHERE item_key = ANY($2::text[])",
                    key,
                    [i.item_key for i in items],
                )
            result.drafts += 1
            result.items += len(items)
            result.recipients.append(recipient)
        return result
