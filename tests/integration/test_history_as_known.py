"""History as it was known: scoring a past date reads only what was known on that date.

Every column the write paths update in place (stakeholders.last_engaged_at and
left_on, support_tickets.closed_at, invoices.paid_on, product_users.deactivated_at,
contracts.notice_on) is changed *after* as_of here; the facts and the assessment at
as_of must not move. Before migration 002 the stakeholder engagement read the
overwritten last_engaged_at, so a stakeholder engaged since looked disengaged in the past.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg

from activities.telemetry import fetch_data_until, fetch_facts, fetch_outcomes
from domain.assess import assess_account
from domain.config import DEFAULT_CONFIG
from domain.facts import Windows

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
D = T.date()
DAY = timedelta(days=1)
W = Windows()


async def _account(
    db: asyncpg.Connection, aid: str, terms: list[tuple[date, date, date | None]]
) -> None:
    await db.execute(
        "INSERT INTO accounts (account_id, name, tier, csm_owner) VALUES ($1, $1, 'tier-1', 'Ana')",
        aid,
    )
    for start, end, notice in terms:
        await db.execute(
            """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
                                      price_per_seat, licensed_modules, notice_on)
               VALUES ($1, $2, $3, 60000, 100, 600, '{core,reports}', $4)""",
            aid,
            start,
            end,
            notice,
        )


async def _acme(db: asyncpg.Connection) -> None:
    await _account(db, "acme", [(date(2025, 6, 1), date(2026, 5, 31), None)])
    await db.copy_records_to_table(
        "usage_events",
        records=[
            ("acme", u, T - d * DAY, e, 1)
            for u in ("u1", "u2")
            for d in range(1, 50, 3)
            for e in ("login", "reports.export")
        ],
        columns=["account_id", "user_id", "occurred_at", "event_type", "quantity"],
    )
    await db.execute(
        """INSERT INTO product_users (account_id, user_id, created_at) VALUES
           ('acme', 'u1', $1::timestamptz - interval '300 days'),
           ('acme', 'u2', $1::timestamptz - interval '300 days')""",
        T,
    )
    await db.execute(
        """INSERT INTO support_tickets (ticket_id, account_id, opened_at, priority, sentiment)
           VALUES ('t1', 'acme', $1::timestamptz - interval '5 days', 'urgent', -0.5)""",
        T,
    )
    await db.execute(
        """INSERT INTO invoices (invoice_id, account_id, issued_on, due_on, amount)
           VALUES ('i1', 'acme', $1::date - 70, $1::date - 40, 5000)""",
        D,
    )
    await db.execute(
        """INSERT INTO stakeholders (stakeholder_id, account_id, name, role, is_champion,
                                     joined_on, last_engaged_at) VALUES
           ('s1', 'acme', 'Exec', 'executive_sponsor', false, '2025-06-01', $1::timestamptz - interval '10 days'),
           ('s2', 'acme', 'Champ', 'champion', true, '2025-06-01', $1::timestamptz - interval '30 days'),
           ('s3', 'acme', 'Admin', 'admin', false, '2025-06-01', $1::timestamptz - interval '120 days')""",
        T,
    )


async def _later_updates(db: asyncpg.Connection) -> None:
    """What the write paths do after as_of: every in-place update, dated after T."""
    await db.execute(
        "UPDATE stakeholders SET last_engaged_at = $1::timestamptz + interval '40 days'", T
    )
    await db.execute(
        "UPDATE stakeholders SET left_on = $1::date + 10 WHERE stakeholder_id = 's2'", D
    )
    await db.execute(
        "UPDATE support_tickets SET closed_at = $1::timestamptz + interval '3 days'", T
    )
    await db.execute("UPDATE invoices SET paid_on = $1::date + 5", D)
    await db.execute(
        "UPDATE product_users SET deactivated_at = $1::timestamptz + interval '2 days' "
        "WHERE user_id = 'u2'",
        T,
    )
    await db.execute("UPDATE contracts SET notice_on = $1::date + 20", D)


async def test_later_updates_never_change_a_past_date(db: asyncpg.Connection) -> None:
    await _acme(db)
    before = (await fetch_facts(db, T, W))["acme"]
    assert before.stakeholders_engaged == 2  # s1, s2 within 90 days; s3 is older
    assert before.urgent_open == 1 and before.invoices_open_overdue == 1
    assert before.provisioned_users == 2 and before.champion_active is True
    assert before.contract is not None and before.contract.notice_on is None

    await _later_updates(db)
    after = (await fetch_facts(db, T, W))["acme"]
    assert after == before
    assessed = [assess_account(f, DEFAULT_CONFIG) for f in (before, after)]
    assert assessed[0] == assessed[1]
    assert assessed[0].churn.level != "CRITICAL"  # the notice was not known yet

    # ... while a date after the updates sees every one of them
    later = (await fetch_facts(db, T + 45 * DAY, W))["acme"]
    assert later.urgent_open == 0 and later.invoices_open_overdue == 0
    assert later.provisioned_users == 1 and later.champion_active is False
    assert later.stakeholders_engaged == 2  # s1 and s3, engaged 5 days before; s2 left
    assert later.contract is not None and later.contract.notice_on == D + 20 * DAY
    risk = assess_account(later, DEFAULT_CONFIG).churn
    assert risk.level == "CRITICAL"
    assert "customer gave notice on 2026-03-21; contract ends 2026-05-31" in risk.summary


async def test_engagement_history_is_appended_by_every_write_of_last_engaged_at(
    db: asyncpg.Connection,
) -> None:
    await _acme(db)
    await db.execute(
        "UPDATE stakeholders SET last_engaged_at = $1::timestamptz + interval '1 day' "
        "WHERE stakeholder_id = 's3'",
        T,
    )
    await db.execute("UPDATE stakeholders SET title = 'CTO' WHERE stakeholder_id = 's3'")
    rows = await db.fetch(
        "SELECT engaged_at FROM stakeholder_engagements WHERE stakeholder_id = 's3' ORDER BY 1"
    )
    assert [r["engaged_at"] for r in rows] == [T - 120 * DAY, T + DAY]
    # an engagement written straight into the history (a writer that knows it) counts too
    await db.execute(
        "INSERT INTO stakeholder_engagements VALUES ('acme', 's3', $1::timestamptz - interval '2 days')",
        T,
    )
    assert (await fetch_facts(db, T, W))["acme"].stakeholders_engaged == 3


async def test_churn_is_dated_by_the_notice_when_there_is_one(db: asyncpg.Connection) -> None:
    await _account(db, "noticed", [(date(2025, 6, 1), date(2026, 5, 31), date(2026, 2, 10))])
    await _account(db, "lapsed", [(date(2025, 1, 1), date(2025, 12, 31), None)])
    # gave notice, then renewed after all: the notice was withdrawn, no churn
    await _account(
        db,
        "saved",
        [
            (date(2025, 1, 1), date(2025, 12, 31), date(2025, 10, 1)),
            (date(2026, 1, 1), date(2026, 12, 31), None),
        ],
    )
    # a notice not yet on file at `today`, term still running: nothing known yet
    await _account(db, "not_yet", [(date(2025, 9, 1), date(2026, 8, 31), date(2026, 4, 1))])
    outcomes = await fetch_outcomes(db, today=D)
    assert outcomes["noticed"].churned_on == date(2026, 2, 10)  # not 2026-05-31
    assert outcomes["lapsed"].churned_on == date(2025, 12, 31)
    assert "saved" not in outcomes and "not_yet" not in outcomes
    assert (await fetch_outcomes(db, today=date(2026, 4, 1)))["not_yet"].churned_on == date(
        2026, 4, 1
    )
    facts = await fetch_facts(db, T, W)
    assert facts["noticed"].contract is not None
    assert facts["noticed"].contract.notice_on == date(2026, 2, 10)
    assert facts["not_yet"].contract is not None and facts["not_yet"].contract.notice_on is None


async def test_login_event_types_come_from_the_config(db: asyncpg.Connection) -> None:
    await _account(db, "feed", [(date(2025, 6, 1), date(2026, 5, 31), None)])
    await db.copy_records_to_table(
        "usage_events",
        records=[("feed", "u1", T - d * DAY, "app.session_start", 1) for d in (1, 2, 3)]
        + [("feed", "u1", T - d * DAY, "reports.export", 1) for d in (4, 5)],
        columns=["account_id", "user_id", "occurred_at", "event_type", "quantity"],
    )
    default = (await fetch_facts(db, T, W))["feed"]
    assert default.login_days == 0 and default.logins == 0  # no 'login' event in this feed
    named = (await fetch_facts(db, T, W, None, ["app.session_start"]))["feed"]
    assert named.login_days == 3 and named.logins == 3
    assert "app.session_start" not in (named.feature_users or {})
    anything = (await fetch_facts(db, T, W, None, ["*"]))["feed"]
    assert anything.login_days == 5  # every day with any event


async def test_data_until_is_the_latest_dated_fact(db: asyncpg.Connection) -> None:
    assert await fetch_data_until(db) is None
    await _acme(db)
    assert await fetch_data_until(db) == D - DAY  # the last usage event
    await db.execute("UPDATE contracts SET notice_on = $1::date + 2", D)
    assert await fetch_data_until(db) == D + 2 * DAY
