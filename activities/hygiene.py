"""CRM hygiene from Postgres: the stakeholders (with their latest engagement) and the
contract in force as known at ``as_of``, judged by ``domain/hygiene.py``. Used by
``starter.py hygiene`` and by the account workflow's ``account_hygiene`` activity."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from temporalio import activity

from domain.hygiene import (
    ContractRecord,
    HygieneFinding,
    HygieneRequest,
    StakeholderRecord,
    crm_hygiene,
)


async def load_hygiene(
    conn: asyncpg.Connection | asyncpg.Pool, ids: list[str], as_of: datetime
) -> dict[str, list[HygieneFinding]]:
    """Per account id, its findings as known at ``as_of``."""
    people = await conn.fetch(
        """SELECT s.account_id, s.stakeholder_id, s.name, s.title, s.role, s.is_champion,
                  s.joined_on, s.left_on,
                  (SELECT max(e.engaged_at) FROM stakeholder_engagements e
                    WHERE e.account_id = s.account_id AND e.stakeholder_id = s.stakeholder_id
                      AND e.engaged_at <= $2) AS last_engaged_at
             FROM stakeholders s WHERE s.account_id = ANY($1::text[])""",
        ids,
        as_of,
    )
    contracts = {
        r["account_id"]: r
        for r in await conn.fetch(
            """SELECT DISTINCT ON (account_id) account_id, start_date, end_date,
                      arr::float8 AS arr, seats_purchased
                 FROM contracts WHERE account_id = ANY($1::text[]) AND start_date <= $2::date
                ORDER BY account_id, start_date DESC""",
            ids,
            as_of.date(),
        )
    }
    out = {}
    for a in ids:
        c = contracts.get(a)
        out[a] = crm_hygiene(
            [
                StakeholderRecord(**{k: r[k] for k in StakeholderRecord.model_fields})
                for r in people
                if r["account_id"] == a
            ],
            ContractRecord(**{k: c[k] for k in ContractRecord.model_fields}) if c else None,
            as_of.date(),
        )
    return out


class HygieneActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn
    async def account_hygiene(self, req: HygieneRequest) -> list[HygieneFinding]:
        return (await load_hygiene(self.pool, [req.account_id], req.as_of))[req.account_id]
