"""Action items in Postgres (table ``account_actions``, migration 012): the rows the account
workflow writes, the stakeholders a chase may be addressed to, and the portfolio listing of
``starter.py action list``. Ids are per account: every statement names the account.
"""

from __future__ import annotations

from datetime import date

import asyncpg
from temporalio import activity

from domain.actions import AccountAction, ActionRecords, Contact, ContactsRequest

_UPSERT = """
INSERT INTO account_actions (account_id, action_id, text, owner, owner_email, due_on,
    due_from_notes, status, interaction_id, agreed_on, chases, last_chased_on, done_on,
    done_by, done_note, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now())
ON CONFLICT (account_id, action_id) DO UPDATE SET
    text = EXCLUDED.text, owner = EXCLUDED.owner, owner_email = EXCLUDED.owner_email,
    due_on = EXCLUDED.due_on, due_from_notes = EXCLUDED.due_from_notes,
    status = EXCLUDED.status, interaction_id = EXCLUDED.interaction_id,
    agreed_on = EXCLUDED.agreed_on, chases = EXCLUDED.chases,
    last_chased_on = EXCLUDED.last_chased_on, done_on = EXCLUDED.done_on,
    done_by = EXCLUDED.done_by, done_note = EXCLUDED.done_note, updated_at = now()
"""


async def store_actions(conn: asyncpg.Connection | asyncpg.Pool, req: ActionRecords) -> int:
    """Upsert the rows (a retry writes the same values again)."""
    await conn.executemany(
        _UPSERT,
        [
            (
                req.account_id,
                a.action_id,
                a.text,
                a.owner,
                a.owner_email,
                a.due_on,
                a.due_from_notes,
                a.status,
                a.interaction_id,
                a.agreed_on,
                a.chases,
                a.last_chased_on,
                a.done_on,
                a.done_by,
                a.done_note,
            )
            for a in req.actions
        ],
    )
    return len(req.actions)


async def stakeholder_contacts(
    conn: asyncpg.Connection | asyncpg.Pool, req: ContactsRequest
) -> list[Contact]:
    rows = await conn.fetch(
        """SELECT name, email, left_on FROM stakeholders
            WHERE account_id = $1 AND (joined_on IS NULL OR joined_on <= $2::timestamptz::date)
            ORDER BY name, stakeholder_id""",
        req.account_id,
        req.as_of,
    )
    return [Contact(name=r["name"], email=r["email"], left_on=r["left_on"]) for r in rows]


async def list_actions(
    conn: asyncpg.Connection | asyncpg.Pool, account_id: str | None, overdue_on: date | None
) -> list[tuple[str, AccountAction]]:
    """(account, action) rows, by due date; ``overdue_on``: only open actions due before it."""
    rows = await conn.fetch(
        """SELECT * FROM account_actions
            WHERE ($1::text IS NULL OR account_id = $1)
              AND ($2::date IS NULL OR (status = 'open' AND due_on < $2))
            ORDER BY due_on, account_id, action_id""",
        account_id,
        overdue_on,
    )
    fields = AccountAction.model_fields
    return [
        (
            r["account_id"],
            AccountAction.model_validate(
                {k: r[k] for k in r.keys() if k in fields} | {"stored": True}
            ),
        )
        for r in rows
    ]


class ActionActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn
    async def record_actions(self, req: ActionRecords) -> int:
        return await store_actions(self.pool, req)

    @activity.defn
    async def action_contacts(self, req: ContactsRequest) -> list[Contact]:
        return await stakeholder_contacts(self.pool, req)
