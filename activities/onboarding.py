"""Onboarding plan activity: who works in which module, as known at ``as_of``.

``onboarding_audience`` reads the adoption window's (user, event type) pairs
and the account's product users (emails and roles, those not deactivated at
``as_of``); ``domain/onboarding_plan.py`` decides who each training line and
embedding step is addressed to. The plan's configuration (the time-to-first-
value targets by tier) is returned with it, so a plan and the config it used
are both in the workflow's history.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
from temporalio import activity

from activities.config_store import ConfigResolver
from domain.onboarding_plan import (
    AudienceRequest,
    OnboardingPlanConfig,
    PlanAudience,
    group_audience,
)


async def events_by_user(
    conn: asyncpg.Connection, account_id: str, as_of: datetime, days: int
) -> dict[str, set[str]]:
    """The event types each user used in the ``days`` up to ``as_of`` (the adoption window)."""
    rows = await conn.fetch(
        """SELECT user_id, event_type FROM usage_events
            WHERE account_id = $1 AND occurred_at > $2::timestamptz - make_interval(days => $3)
              AND occurred_at <= $2 GROUP BY user_id, event_type""",
        account_id,
        as_of,
        days,
    )
    by_user: dict[str, set[str]] = {}
    for r in rows:
        by_user.setdefault(r["user_id"], set()).add(r["event_type"])
    return by_user


async def read_audience(
    conn: asyncpg.Connection,
    req: AudienceRequest,
    resolver: ConfigResolver,
    config: OnboardingPlanConfig,
) -> PlanAudience:
    days = (await resolver.in_force(conn)).config.windows.adoption_days
    by_user = await events_by_user(conn, req.account_id, req.as_of, days)
    people = {
        r["user_id"]: (r["email"] or r["user_id"], r["role"] or "user")
        for r in await conn.fetch(
            """SELECT user_id, email, role FROM product_users
                WHERE account_id = $1 AND created_at <= $2
                  AND (deactivated_at IS NULL OR deactivated_at > $2)""",
            req.account_id,
            req.as_of,
        )
    }
    return group_audience(by_user, people, window_days=days, config=config)


class OnboardingActivities:
    def __init__(
        self, pool: asyncpg.Pool, resolver: ConfigResolver, config: OnboardingPlanConfig
    ) -> None:
        self.pool = pool
        self.resolver = resolver
        self.config = config

    @activity.defn
    async def onboarding_audience(self, req: AudienceRequest) -> PlanAudience:
        async with self.pool.acquire() as conn:
            return await read_audience(conn, req, self.resolver, self.config)
