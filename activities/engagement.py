"""Engagement activities: what the advocacy rule and the product feedback loop read from Postgres.

Every read counts only rows at or before ``as_of`` and reads later-updated
columns as they were then (a ticket closed after ``as_of`` was still open),
like the health engine. The engagement configuration is read once, when the
worker starts, from ``VIM_ENGAGEMENT_CONFIG`` (a JSON file over the defaults
of ``domain/engagement.py``); the activities return the parts the workflows
decide with, so a decision and the config it used are both in the history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, time
from pathlib import Path

import asyncpg
from temporalio import activity

from domain.engagement import (
    AdvocacyData,
    AdvocacyDataRequest,
    EngagementConfig,
    load_engagement_config,
)
from domain.feedback import FeedbackDigest, FeedbackItem, group_themes, quarter_bounds
from workflows.activity_models import FeedbackDigestRequest

CONFIG_ENV = "VIM_ENGAGEMENT_CONFIG"


def engagement_config(env: Mapping[str, str] | None = None) -> EngagementConfig:
    """The configuration in force: the file named by VIM_ENGAGEMENT_CONFIG, else the defaults."""
    env = os.environ if env is None else env
    path = env.get(CONFIG_ENV)
    if not path:
        return EngagementConfig()
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ValueError(f"{CONFIG_ENV}={path}: {err.strerror or err}") from None
    return load_engagement_config(text)


async def feedback_items(
    conn: asyncpg.Connection | asyncpg.Pool, start: datetime, end: datetime
) -> list[FeedbackItem]:
    """Ticket subjects and NPS comments dated in [start, end), across the portfolio."""
    rows = await conn.fetch(
        """SELECT account_id, 'ticket' AS source, opened_at AS at, subject AS text, NULL::int AS score
             FROM support_tickets
            WHERE opened_at >= $1 AND opened_at < $2 AND coalesce(btrim(subject), '') <> ''
           UNION ALL
           SELECT account_id, 'nps', responded_at, comment, score
             FROM nps_responses
            WHERE responded_at >= $1 AND responded_at < $2 AND coalesce(btrim(comment), '') <> ''
           ORDER BY 3, 1""",
        start,
        end,
    )
    return [
        FeedbackItem(
            account_id=r["account_id"],
            source=r["source"],
            at=r["at"],
            text=r["text"],
            nps_score=r["score"],
        )
        for r in rows
    ]


async def quarter_digest(
    conn: asyncpg.Connection | asyncpg.Pool, quarter: str, config: EngagementConfig
) -> FeedbackDigest:
    first, after = quarter_bounds(quarter)
    items = await feedback_items(
        conn, datetime.combine(first, time(), UTC), datetime.combine(after, time(), UTC)
    )
    return group_themes(quarter, items, config.feedback)


class EngagementActivities:
    def __init__(self, pool: asyncpg.Pool, config: EngagementConfig | None = None) -> None:
        self.pool = pool
        self.config = config or engagement_config()

    @activity.defn
    async def advocacy_data(self, req: AdvocacyDataRequest) -> AdvocacyData:
        row = await self.pool.fetchrow(
            """SELECT score, responded_at, respondent FROM nps_responses
                WHERE account_id = $1 AND responded_at <= $2
                ORDER BY responded_at DESC, response_id DESC LIMIT 1""",
            req.account_id,
            req.as_of,
        )
        open_escalated = await self.pool.fetchval(
            """SELECT count(*) FROM support_tickets
                WHERE account_id = $1 AND escalated AND opened_at <= $2
                  AND (closed_at IS NULL OR closed_at > $2)""",
            req.account_id,
            req.as_of,
        )
        return AdvocacyData(
            nps_latest=row["score"] if row else None,
            nps_latest_on=row["responded_at"].date() if row else None,
            respondent=row["respondent"] if row else None,
            open_escalated_tickets=int(open_escalated or 0),
            config=self.config.advocacy,
        )

    @activity.defn
    async def feedback_digest(self, req: FeedbackDigestRequest) -> FeedbackDigest:
        return await quarter_digest(self.pool, req.quarter, self.config)
