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

from activities.config_store import ConfigResolver
from activities.onboarding import events_by_user
from domain.activation import FeatureGap
from domain.engagement import (
    AdoptionTargets,
    AdvocacyData,
    AdvocacyDataRequest,
    EngagementConfig,
    EngagementSettings,
    load_engagement_config,
)
from domain.facts import AccountFacts, ContractFacts
from domain.feedback import FeedbackDigest, FeedbackItem, group_themes, quarter_bounds
from domain.health import feature_adoption_scorecard
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


AUDIENCE_SAMPLE = 12  # names listed per feature in a campaign draft


async def adoption_gaps(
    conn: asyncpg.Connection, account_id: str, as_of: datetime, resolver: ConfigResolver
) -> AdoptionTargets:
    """The licensed features under benchmark at ``as_of`` (the scorecard of the health engine)
    and, per feature, the active users of the adoption window who have not used it: first
    those already working in the same module, else everyone active."""
    config = (await resolver.in_force(conn)).config
    days = config.windows.adoption_days
    contract = await conn.fetchrow(
        """SELECT start_date, end_date, arr::float8 AS arr, seats_purchased,
                  price_per_seat::float8 AS price_per_seat, licensed_modules
             FROM contracts WHERE account_id = $1 AND start_date <= $2::timestamptz::date
            ORDER BY start_date DESC LIMIT 1""",
        account_id,
        as_of,
    )
    if contract is None:
        return AdoptionTargets(window_days=days)
    by_user = await events_by_user(conn, account_id, as_of, days)
    feature_users: dict[str, int] = {}
    for events in by_user.values():
        for e in events:
            feature_users[e] = feature_users.get(e, 0) + 1
    facts = AccountFacts(
        account_id=account_id,
        as_of=as_of,
        contract=ContractFacts(**dict(contract)),
        feature_users=feature_users,
        adoption_users=len(by_user),
    )
    people = {
        r["user_id"]: (r["email"] or r["user_id"], r["role"] or "user")
        for r in await conn.fetch(
            "SELECT user_id, email, role FROM product_users WHERE account_id = $1", account_id
        )
    }
    gaps = []
    for f in feature_adoption_scorecard(facts, config):
        if not f.licensed or f.rate >= f.benchmark:
            continue
        without = sorted(u for u, ev in by_user.items() if f.event_type not in ev)
        in_module = [u for u in without if any(e.startswith(f"{f.module}.") for e in by_user[u])]
        audience = in_module or without
        roles: dict[str, int] = {}
        for u in audience:
            role = people.get(u, (u, "user"))[1]
            roles[role] = roles.get(role, 0) + 1
        gaps.append(
            FeatureGap(
                module=f.module,
                event_type=f.event_type,
                label=f.label,
                users=f.users,
                rate=f.rate,
                benchmark=f.benchmark,
                audience=len(audience),
                audience_sample=[people.get(u, (u, ""))[0] for u in audience[:AUDIENCE_SAMPLE]],
                audience_roles=dict(sorted(roles.items())),
            )
        )
    return AdoptionTargets(window_days=days, active_users=len(by_user), gaps=gaps)


class EngagementActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: EngagementConfig | None = None,
        resolver: ConfigResolver | None = None,
    ) -> None:
        self.pool = pool
        self.config = config or engagement_config()
        self.resolver = resolver or ConfigResolver(os.environ)

    @activity.defn
    async def engagement_settings(self, account_id: str) -> EngagementSettings:
        return EngagementSettings(
            advocacy=self.config.advocacy,
            touchpoints=self.config.touchpoints,
            actions=self.config.actions,
        )

    @activity.defn
    async def adoption_targets(self, req: AdvocacyDataRequest) -> AdoptionTargets:
        async with self.pool.acquire() as conn:
            return await adoption_gaps(conn, req.account_id, req.as_of, self.resolver)

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
