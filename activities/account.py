"""Account activities: the handoff, telemetry carried by signals, renewal outcomes.

Every write is idempotent (keyed upserts, ON CONFLICT DO NOTHING), because
Temporal retries activities and a retry must not add a second row.
"""

from __future__ import annotations

from datetime import UTC

import asyncpg
from pydantic import ValidationError
from temporalio import activity

from activities.db import contract_fields
from domain.handoff import Handoff, HandoffContract
from domain.ingest import IngestEvent
from domain.messages import SIGNALS, UsageEventsSignal
from domain.state import PendingTelemetry
from ingest.store import store_usage
from workflows.activity_models import (
    OwnerRecord,
    RenewalCheckRequest,
    RenewalCheckResult,
    TelemetryBatch,
    TelemetryRejection,
    TelemetryWriteResult,
)

# What Postgres says about the data itself (retrying cannot help), as opposed to
# connection and server failures (retried). ValueError: a payload the signal
# model no longer accepts.
PERMANENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    ValueError,
)


def _refusal_reason(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3]
        )
    return f"{type(err).__name__}: {err}"[:300]


class AccountActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn
    async def record_handoff(self, handoff: Handoff) -> None:
        c = handoff.contract
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO accounts (account_id, name, tier, industry, csm_owner, csm_email, rep_owner, rep_email)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (account_id) DO UPDATE SET
                     name = EXCLUDED.name, tier = EXCLUDED.tier, industry = EXCLUDED.industry,
                     csm_owner = EXCLUDED.csm_owner, csm_email = EXCLUDED.csm_email,
                     rep_owner = EXCLUDED.rep_owner, rep_email = EXCLUDED.rep_email""",
                handoff.account_id,
                handoff.name,
                handoff.tier,
                handoff.industry,
                handoff.csm_owner,
                str(handoff.csm_email),
                handoff.rep_owner,
                str(handoff.rep_email) if handoff.rep_email else None,
            )
            await _upsert_contract(conn, handoff.account_id, c)
            # Stakeholders from the handoff seed an empty account only: an
            # account whose ETL already loaded stakeholders keeps its own list.
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM stakeholders WHERE account_id = $1)",
                handoff.account_id,
            ):
                for i, sh in enumerate(handoff.stakeholders):
                    await conn.execute(
                        """INSERT INTO stakeholders (stakeholder_id, account_id, name, email, title, role, is_champion, joined_on)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account_id, stakeholder_id) DO NOTHING""",
                        f"{handoff.account_id}:handoff:{i}",
                        handoff.account_id,
                        sh.name,
                        str(sh.email) if sh.email else None,
                        sh.title,
                        sh.role,
                        sh.is_champion,
                        c.start_date,
                    )

    @activity.defn
    async def record_owner(self, req: OwnerRecord) -> None:
        """A reassigned CSM, so `retention --by csm`, the forecast report and the console
        group the account under its current owner."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE accounts SET csm_owner = $2, csm_email = $3 WHERE account_id = $1",
                req.account_id,
                req.csm_owner,
                req.csm_email,
            )

    @activity.defn
    async def record_telemetry(self, batch: TelemetryBatch) -> TelemetryWriteResult:
        """Write what signals carried: rows written (0 for a replayed batch), and refusals.

        Each item is written in its own savepoint. An item Postgres refuses for
        what it *is* (bad data, a value out of a column's range, a key too
        large) is a permanent refusal: rolled back alone, returned with
        Postgres' reason, never retried. A lost connection or a server that is
        down raises, and Temporal retries the whole batch (idempotent).
        """
        result = TelemetryWriteResult()
        async with self.pool.acquire() as conn, conn.transaction():
            for item in batch.items:
                try:
                    async with conn.transaction():  # a savepoint
                        result.written += await _write_item(conn, batch.account_id, item)
                except PERMANENT_DB_ERRORS as err:
                    reason = _refusal_reason(err)
                    activity.logger.warning(
                        "telemetry %s of %s refused: %s", item.key, batch.account_id, reason
                    )
                    result.rejected.append(
                        TelemetryRejection(key=item.key, signal=item.signal, reason=reason)
                    )
        return result

    @activity.defn
    async def check_renewal(self, req: RenewalCheckRequest) -> RenewalCheckResult:
        """The contract row that starts at or after the term end, if one is on file."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT start_date, end_date, arr, seats_purchased, price_per_seat, licensed_modules,
                          notice_on
                   FROM contracts WHERE account_id = $1 AND end_date > $2 AND start_date <= $2 + 1
                   ORDER BY start_date DESC LIMIT 1""",
                req.account_id,
                req.term_end,
            )
        if row is None:
            return RenewalCheckResult()
        return RenewalCheckResult(next_term=HandoffContract(**contract_fields(row)))


async def _upsert_contract(conn: asyncpg.Connection, account_id: str, c: HandoffContract) -> int:
    status = await conn.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat, licensed_modules, notice_on)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (account_id, start_date) DO UPDATE SET
             end_date = EXCLUDED.end_date, arr = EXCLUDED.arr, seats_purchased = EXCLUDED.seats_purchased,
             price_per_seat = EXCLUDED.price_per_seat, licensed_modules = EXCLUDED.licensed_modules,
             -- a notice once on file stays (a handoff replayed without one does not erase it)
             notice_on = coalesce(EXCLUDED.notice_on, contracts.notice_on)""",
        account_id,
        c.start_date,
        c.end_date,
        c.arr,
        c.seats_purchased,
        c.price_per_seat,
        c.licensed_modules,
        c.notice_on,
    )
    return int(status.rsplit(" ", 1)[-1])


async def _write_item(conn: asyncpg.Connection, account_id: str, item: PendingTelemetry) -> int:
    msg = SIGNALS[item.signal].model_validate(item.payload)
    p = msg.model_dump()
    if isinstance(msg, UsageEventsSignal):
        # A batch id is written once: a retried activity or a re-sent batch adds nothing.
        first = await conn.fetchval(
            "INSERT INTO events (event_key, account_id, event_type, payload, occurred_at) "
            "VALUES ($1, $2, 'telemetry.usage_batch', $3::jsonb, now()) ON CONFLICT (event_key) DO NOTHING RETURNING event_id",
            f"usage-batch:{account_id}:{msg.batch_id}",
            account_id,
            f'{{"events": {len(msg.events)}}}',
        )
        if first is None:
            return 0
        # The same write path as bulk ingestion (ingest/store.py): one message id per row.
        rows = [
            IngestEvent(
                account_id=account_id,
                message_id=f"{msg.batch_id}:{i}",
                user_id=e.user_id,
                # a naive time is UTC, as the COPY this path used before stored it
                occurred_at=e.occurred_at
                if e.occurred_at.tzinfo
                else e.occurred_at.replace(tzinfo=UTC),
                event_type=e.event_type,
                quantity=e.quantity,
            )
            for i, e in enumerate(msg.events)
        ]
        return (await store_usage(conn, rows, "signal")).written
    if item.signal == "ticket":
        sql = """INSERT INTO support_tickets (ticket_id, account_id, opened_at, priority, sentiment, escalated, subject, body)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (account_id, ticket_id) DO NOTHING"""
        args = [
            p["ticket_id"],
            account_id,
            p["opened_at"],
            p["priority"],
            p["sentiment"],
            p["escalated"],
            p["subject"],
            p["body"],
        ]
    elif item.signal == "nps":
        sql = """INSERT INTO nps_responses (response_id, account_id, respondent, responded_at, score, comment)
                 VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (account_id, response_id) DO NOTHING"""
        args = [
            p["response_id"],
            account_id,
            p["respondent"],
            p["responded_at"],
            p["score"],
            p["comment"],
        ]
    elif item.signal == "invoice":
        sql = """INSERT INTO invoices (invoice_id, account_id, issued_on, due_on, paid_on, amount)
                 VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (account_id, invoice_id) DO UPDATE SET paid_on = EXCLUDED.paid_on"""
        args = [p["invoice_id"], account_id, p["issued_on"], p["due_on"], p["paid_on"], p["amount"]]
    elif item.signal == "interaction":
        sql = """INSERT INTO interactions (interaction_id, account_id, occurred_at, kind, meaningful, attendees, notes)
                 VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (account_id, interaction_id) DO NOTHING"""
        args = [
            p["interaction_id"],
            account_id,
            p["occurred_at"],
            p["kind"],
            p["meaningful"],
            p["attendees"],
            p["notes"],
        ]
    elif item.signal == "stakeholder":
        sql = """INSERT INTO stakeholders (stakeholder_id, account_id, name, email, title, role, is_champion, joined_on, left_on)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (account_id, stakeholder_id) DO UPDATE SET
                   name = EXCLUDED.name, email = EXCLUDED.email, title = EXCLUDED.title, role = EXCLUDED.role,
                   is_champion = EXCLUDED.is_champion, left_on = EXCLUDED.left_on"""
        args = [
            p["stakeholder_id"],
            account_id,
            p["name"],
            p["email"],
            p["title"],
            p["role"],
            p["is_champion"],
            p["joined_on"],
            p["left_on"],
        ]
    elif item.signal == "tam":
        sql = """INSERT INTO tam_health (account_id, measured_at, score, rag, escalation, note)
                 VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (account_id, measured_at) DO NOTHING"""
        args = [account_id, p["measured_at"], p["score"], p["rag"], p["escalation"], p["note"]]
    elif item.signal == "contract":
        return await _upsert_contract(conn, account_id, HandoffContract(**p))
    elif item.signal == "churn_notice":
        # on the contract in force that day; a notice already on file is kept (the first
        # one is when the churn became known). Outside every term: nothing to mark.
        sql = """UPDATE contracts c SET notice_on = $2
                 FROM (SELECT start_date FROM contracts WHERE account_id = $1 AND start_date <= $2
                       ORDER BY start_date DESC LIMIT 1) cur
                 WHERE c.account_id = $1 AND c.start_date = cur.start_date AND c.end_date >= $2
                   AND c.notice_on IS NULL"""
        args = [account_id, p["noticed_on"]]
    else:
        raise ValueError(f"no writer for telemetry signal {item.signal!r}")
    status = await conn.execute(sql, *args)
    return int(status.rsplit(" ", 1)[-1])
