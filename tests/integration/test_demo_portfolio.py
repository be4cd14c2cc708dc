"""The demo portfolio: deterministic, realistic enough to exercise every signal,
and bulk-loaded with COPY into a real (embedded) Postgres, idempotently."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from demo.__main__ import main as demo_main
from demo.load import PortfolioConflict, load_portfolio, portfolio_loaded
from demo.portfolio import (
    ARCHETYPES,
    CSMS,
    HISTORY_DAYS,
    REFERENCE_ACCOUNT_ID,
    Portfolio,
    generate_portfolio,
)
from domain.handoff import ACCOUNT_ID_PATTERN, Handoff
from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded

AS_OF = date(2026, 11, 21)
T = datetime.combine(AS_OF, time(), UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def small() -> Portfolio:
    return generate_portfolio(7, AS_OF, 40)


@pytest.fixture(scope="module")
def full() -> Portfolio:
    return generate_portfolio(7, AS_OF, 240)


@pytest.fixture(scope="module")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway embedded Postgres for this module (`postgres` database)."""
    root = tmp_path_factory.mktemp("demo-pg")
    pgdata = root / "pg"
    dsn = start_embedded(pgdata)
    try:
        yield dsn
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(root, ignore_errors=True)


async def _fresh_db(server_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    head, _, tail = server_dsn.partition("?")
    dsn = f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")
    await migrate_dsn(dsn)
    return dsn


class Stats:
    """Per-account aggregates over a portfolio, the way the health engine sees them."""

    def __init__(self, p: Portfolio) -> None:
        self.p = p
        self.usage = defaultdict(list)
        for e in p.usage_events:
            self.usage[e.account_id].append(e)
        self.tickets = defaultdict(list)
        for t in p.support_tickets:
            self.tickets[t.account_id].append(t)

    def users(self, account_id: str, start: date, end: date) -> int:
        a, b = datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)
        return len({e.user_id for e in self.usage[account_id] if a <= e.occurred_at < b})

    def quantity(self, account_id: str, start: date, end: date) -> float:
        a, b = datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)
        return sum(e.quantity for e in self.usage[account_id] if a <= e.occurred_at < b)

    def events(self, account_id: str, start: date, end: date, suffix: str = "") -> list:
        a, b = datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)
        return [
            e
            for e in self.usage[account_id]
            if a <= e.occurred_at < b and e.event_type.endswith(suffix)
        ]

    def max_gap(self, account_id: str, days: int = 90) -> int:
        seen = sorted(
            {e.occurred_at.date() for e in self.events(account_id, AS_OF - days * DAY, AS_OF)}
        )
        points = [AS_OF - (days + 1) * DAY, *seen, AS_OF]
        return max((b - a).days - 1 for a, b in itertools.pairwise(points))

    def tickets_between(self, account_id: str, start: date, end: date) -> list:
        a, b = datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)
        return [t for t in self.tickets[account_id] if a <= t.opened_at < b]


@pytest.fixture(scope="module")
def stats(full: Portfolio) -> Stats:
    return Stats(full)


# ----------------------------------------------------------------- determinism


def test_same_inputs_give_identical_rows(small: Portfolio) -> None:
    again = generate_portfolio(7, AS_OF, 40)
    assert again.tables() == small.tables()
    assert again.bad_rows == small.bad_rows
    assert again.archetypes == small.archetypes
    assert [h.model_dump() for h in again.handoffs()] == [h.model_dump() for h in small.handoffs()]


def test_different_seed_or_date_gives_different_rows(small: Portfolio) -> None:
    other = generate_portfolio(8, AS_OF, 40)
    assert [a.name for a in other.accounts] != [a.name for a in small.accounts]
    assert other.usage_events != small.usage_events
    later = generate_portfolio(7, AS_OF + timedelta(days=7), 40)
    assert max(e.occurred_at for e in later.usage_events) > max(
        e.occurred_at for e in small.usage_events
    )


def test_too_few_accounts_for_the_mix_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        generate_portfolio(7, AS_OF, 10)


# ----------------------------------------------------------------- shape


def test_portfolio_size_mix_and_owners(full: Portfolio) -> None:
    ids = full.account_ids
    assert len(ids) == 240 and len(set(ids)) == 240
    assert all(ACCOUNT_ID_PATTERN.match(a) for a in ids)
    by = full.accounts_by_archetype()
    assert set(by) == set(ARCHETYPES)
    assert all(by[a] for a in ARCHETYPES), {a: len(v) for a, v in by.items()}
    assert 20 <= len(by["churned"]) <= 28 and 20 <= len(by["expanded"]) <= 28
    tiers = [a.tier for a in full.accounts]
    assert 0.12 <= tiers.count("tier-1") / len(tiers) <= 0.18
    assert {a.csm_email for a in full.accounts} <= {e for _, e in CSMS}
    assert 6 <= len({a.csm_owner for a in full.accounts}) <= 8
    assert all(a.rep_email.endswith("@example.com") for a in full.accounts)
    # volume stays laptop-sized: same-day actions are aggregated into quantity
    assert 1_000_000 <= len(full.usage_events) <= 3_000_000
    assert any(e.quantity > 1 for e in full.usage_events[:1000])


def test_every_row_is_before_as_of(full: Portfolio) -> None:
    """No look-ahead: every timestamp is before midnight of as_of (UTC)."""
    window_start = T - HISTORY_DAYS * DAY
    checks = {
        "usage_events": ("occurred_at",),
        "support_tickets": ("opened_at", "closed_at"),
        "invoices": ("issued_on", "paid_on"),
        "nps_responses": ("responded_at",),
        "interactions": ("occurred_at",),
        "stakeholders": ("joined_on", "left_on", "last_engaged_at"),
        "stakeholder_engagements": ("engaged_at",),
        "tam_health": ("measured_at",),
        "product_users": ("created_at", "deactivated_at"),
        "accounts": ("created_at",),
        "contracts": ("start_date",),
    }
    for table, columns in checks.items():
        for row in getattr(full, table):
            for column in columns:
                v = getattr(row, column)
                # a date is a whole day: the day of as_of itself is already the future
                assert v is None or (v < T if isinstance(v, datetime) else v < AS_OF), (
                    table,
                    column,
                    row,
                )
    assert min(e.occurred_at for e in full.usage_events) >= window_start


# ----------------------------------------------------------------- reference case


def test_reference_case_is_a_75_percent_shelfware_tier1(full: Portfolio, stats: Stats) -> None:
    ref = REFERENCE_ACCOUNT_ID
    account = next(a for a in full.accounts if a.account_id == ref)
    assert account.tier == "tier-1"
    c = full.contract_in_force(ref)
    assert c is not None
    assert (c.seats_purchased, float(c.price_per_seat), float(c.arr)) == (100, 600.0, 60_000.0)
    assert (c.end_date - AS_OF).days == 182
    active = stats.users(ref, AS_OF - 30 * DAY, AS_OF)
    assert active == 25
    # steady, not declining: the same 25 people the month before, no churn signals
    assert stats.users(ref, AS_OF - 60 * DAY, AS_OF - 30 * DAY) == 25
    provisioned = [
        u
        for u in full.product_users
        if u.account_id == ref and (u.deactivated_at is None or u.deactivated_at > T)
    ]
    assert len(provisioned) == 25
    assert (c.seats_purchased - active) * float(c.price_per_seat) == 45_000.0
    assert ref in {h.account_id for h in full.handoffs()}
    assert all(b.account_id != ref for b in full.bad_rows)


# ----------------------------------------------------------------- outcomes


def test_churned_accounts_ended_inside_the_window_after_a_decline(
    full: Portfolio, stats: Stats
) -> None:
    handed_off = {h.account_id for h in full.handoffs()}
    churned = full.accounts_by_archetype()["churned"]
    before, after = 0.0, 0.0
    noticed = mid_term = 0
    for aid in churned:
        known = full.churned_on(aid)
        last = full.contracts_of(aid)[-1]
        end = last.end_date
        assert known is not None and 30 <= (AS_OF - known).days <= 315, (aid, known)
        assert known == (last.notice_on or end)  # a churn is dated when it became known
        if last.notice_on is not None:
            noticed += 1
            assert last.start_date <= last.notice_on <= end
            # mid-term: the customer stopped well before the term it paid for ended
            mid_term += max(e.occurred_at for e in stats.usage[aid]).date() < end - 25 * DAY
        assert full.contract_in_force(aid) is None
        assert aid not in handed_off
        next_day = datetime.combine(end + DAY, time(), UTC)
        assert not [e for e in stats.usage[aid] if e.occurred_at >= next_day]
        assert not [t for t in stats.tickets[aid] if t.opened_at >= next_day]
        assert not [
            n for n in full.nps_responses if n.account_id == aid and n.responded_at >= next_day
        ]
        assert not [m for m in full.tam_health if m.account_id == aid and m.measured_at >= next_day]
        stop = max(e.occurred_at for e in stats.usage[aid]).date()  # the last day of use
        if stop - 150 * DAY >= AS_OF - HISTORY_DAYS * DAY:
            before += stats.users(aid, stop - 150 * DAY, stop - 120 * DAY)
            after += stats.users(aid, stop - 29 * DAY, stop + DAY)
    assert after < 0.6 * before  # usage fell in the months before the customer left
    # some churns are known from a notice, some of them mid-term; some only at the end
    assert 0 < mid_term < noticed < len(churned)
    # every other account has a contract in force and is handed off
    assert set(full.account_ids) - set(churned) == handed_off
    assert [a for a in full.account_ids if full.churned_on(a)] == [
        a for a in full.account_ids if a in set(churned)
    ]


def test_expanded_accounts_have_a_bigger_later_contract_after_high_utilization(
    full: Portfolio, stats: Stats
) -> None:
    expanded = full.accounts_by_archetype()["expanded"]
    assert {a for a in full.account_ids if full.expanded_on(a)} == set(expanded)
    for aid in expanded:
        x = full.expanded_on(aid)
        assert x is not None and AS_OF - HISTORY_DAYS * DAY <= x < AS_OF
        rows = full.contracts_of(aid)
        before = [r for r in rows if r.start_date < x][-1]
        new = next(r for r in rows if r.start_date == x)
        assert new.seats_purchased > before.seats_purchased
        assert set(new.licensed_modules) >= set(before.licensed_modules)
        used = stats.users(aid, x - 30 * DAY, x)
        assert used >= 0.9 * before.seats_purchased, (aid, used, before.seats_purchased)
        assert stats.events(aid, x - 60 * DAY, x, "limit_hit"), aid
    assert any(
        set(full.contracts_of(a)[-1].licensed_modules)
        > set(full.contracts_of(a)[-2].licensed_modules)
        for a in expanded
    )


# ----------------------------------------------------------------- archetype signals


def test_archetypes_show_their_signals(full: Portfolio, stats: Stats) -> None:
    by = full.accounts_by_archetype()
    last30, prev30 = (AS_OF - 30 * DAY, AS_OF), (AS_OF - 60 * DAY, AS_OF - 30 * DAY)

    def renewal_days(aid: str) -> int:
        c = full.contract_in_force(aid)
        assert c is not None
        return (c.end_date - AS_OF).days

    # healthy: steady usage, most seats in use
    for aid in by["healthy"]:
        seats = full.contract_in_force(aid).seats_purchased
        assert stats.users(aid, *last30) >= 0.6 * seats

    # declining: active users and usage fall in the last months
    fell = [stats.users(aid, *last30) < stats.users(aid, *prev30) for aid in by["declining"]]
    assert sum(fell) >= 0.8 * len(fell)
    assert sum(stats.quantity(a, *last30) for a in by["declining"]) < 0.75 * sum(
        stats.quantity(a, *prev30) for a in by["declining"]
    )

    # spiky (Mura): a silent stretch of 12+ days inside the last 90; healthy: weekends
    for aid in by["spiky"]:
        assert stats.max_gap(aid) >= 12, aid
    healthy_gaps = sorted(stats.max_gap(aid) for aid in by["healthy"])
    assert healthy_gaps[len(healthy_gaps) // 2] <= 3 and healthy_gaps[-1] <= 10

    # overloaded (Muri): ticket spike, negative, escalated, renewal near
    for aid in by["overloaded"]:
        recent = stats.tickets_between(aid, *last30)
        baseline = len(stats.tickets_between(aid, AS_OF - 210 * DAY, AS_OF - 30 * DAY)) / 6
        assert len(recent) >= max(3 * baseline, 5), aid
        assert sum(t.sentiment for t in recent) / len(recent) < 0
        assert any(t.escalated for t in recent)
        assert renewal_days(aid) <= 75

    # renewing: inside 60 days
    for aid in by["renewing"]:
        assert renewal_days(aid) <= 60

    # expanding: >= 90% seats used, limit hits, and both kinds of extra-licence use
    unlicensed, heavy_api = 0, 0
    for aid in by["expanding"]:
        c = full.contract_in_force(aid)
        assert stats.users(aid, *last30) >= 0.9 * c.seats_purchased
        assert stats.events(aid, *last30, suffix="limit_hit")
        modules = {e.event_type.split(".")[0] for e in stats.events(aid, AS_OF - 90 * DAY, AS_OF)}
        modules -= {"login"}
        unlicensed += bool(modules - set(c.licensed_modules))
        api = sum(e.quantity for e in stats.events(aid, *last30, suffix="api.call"))
        heavy_api += api > 20_000 and "integrations" not in c.licensed_modules
    assert unlicensed and heavy_api

    # shelfware: low seat use and licensed modules never touched
    for aid in by["shelfware"]:
        c = full.contract_in_force(aid)
        assert stats.users(aid, *last30) <= 0.45 * c.seats_purchased
        used = {e.event_type.split(".")[0] for e in stats.events(aid, AS_OF - 90 * DAY, AS_OF)}
        assert set(c.licensed_modules) - used, aid

    # overdue: unpaid invoices past due; nobody else has any
    overdue = {i.account_id for i in full.invoices if i.paid_on is None and i.due_on < AS_OF}
    assert overdue == set(by["overdue"])

    # renewals of active accounts spread over the coming year
    days = sorted(renewal_days(a) for a in full.active_account_ids())
    assert days[0] >= 0 and days[-1] <= 366
    assert sum(d > 180 for d in days) >= 0.3 * len(days)


def test_sources_with_no_data_exist_so_renormalization_is_exercised(full: Portfolio) -> None:
    with_tam = {t.account_id for t in full.tam_health}
    with_nps = {n.account_id for n in full.nps_responses}
    with_tickets = {t.account_id for t in full.support_tickets}
    ids = set(full.account_ids)
    assert ids - with_tam and ids - with_nps and ids - with_tickets
    left = [s for s in full.stakeholders if s.is_champion and s.left_on is not None]
    assert left, "some champions leave"


def test_bad_rows_are_planted_and_named(full: Portfolio) -> None:
    bad = full.bad_rows
    assert 3 <= len(bad) <= 8
    assert len({b.account_id for b in bad}) <= 3
    assert {full.archetype_of(b.account_id) for b in bad} == {"healthy"}
    by_table = {b.table: b for b in bad}
    t = next(r for r in full.support_tickets if r.ticket_id == by_table["support_tickets"].row)
    assert not -1 <= t.sentiment <= 1
    n = next(r for r in full.nps_responses if r.response_id == by_table["nps_responses"].row)
    assert not 0 <= n.score <= 10
    u = by_table["usage_events"]
    user_id, _, at = u.row.partition("@")
    assert any(
        e.user_id == user_id and e.occurred_at.isoformat() == at and e.quantity < 0
        for e in full.usage_events
        if e.account_id == u.account_id
    )
    m = by_table["tam_health"]
    assert any(
        r.account_id == m.account_id and r.measured_at.isoformat() == m.row and r.score > 100
        for r in full.tam_health
    )


# ----------------------------------------------------------------- handoffs and CLI


def test_handoffs_are_valid_and_cover_active_accounts(full: Portfolio) -> None:
    handoffs = full.handoffs()
    assert [h.account_id for h in handoffs] == full.active_account_ids()
    for h in handoffs:
        again = Handoff.model_validate_json(h.model_dump_json())
        assert again == h
        c = full.contract_in_force(h.account_id)
        assert h.contract.seats_purchased == c.seats_purchased
        assert h.contract.start_date <= AS_OF <= h.contract.end_date
        assert any(s.is_champion or s.role == "executive_sponsor" for s in h.stakeholders)


def test_cli_generate_writes_handoffs_csvs_and_manifest(tmp_path: Path, small: Portfolio) -> None:
    out = tmp_path / "out"
    assert demo_main(["generate", "--seed", "7", "--as-of", AS_OF.isoformat(), "--accounts", "40", "--out", str(out)]) == 0  # fmt: skip
    files = sorted((out / "handoffs").glob("*.json"))
    assert len(files) == len(small.handoffs())
    for f in files:
        Handoff.model_validate_json(f.read_text())
    header = (out / "tables" / "contracts.csv").read_text().splitlines()[0]
    assert (
        header
        == "account_id,start_date,end_date,arr,seats_purchased,price_per_seat,licensed_modules,notice_on"
    )
    lines = (out / "tables" / "usage_events.csv").read_text().count("\n")
    assert lines == len(small.usage_events) + 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["row_counts"] == small.row_counts()
    assert len(manifest["bad_rows"]) == len(small.bad_rows)


# ----------------------------------------------------------------- loading


async def test_load_small_portfolio_with_copy_then_skip(pg_dsn: str, small: Portfolio) -> None:
    dsn = await _fresh_db(pg_dsn, "demo_small")
    conn = await asyncpg.connect(dsn)
    try:
        assert not await portfolio_loaded(conn)
        report = await load_portfolio(conn, small)
        assert not report.skipped
        assert report.counts == small.row_counts()
        for table, n in small.row_counts().items():
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == n, table
        assert await portfolio_loaded(conn) and await portfolio_loaded(conn, small)

        # values survive the text-format COPY of usage_events exactly
        got = await conn.fetchrow(
            "SELECT sum(quantity) AS q, min(occurred_at) AS lo, max(occurred_at) AS hi, "
            "count(*) FILTER (WHERE quantity < 0) AS negative FROM usage_events"
        )
        assert got["q"] == sum(e.quantity for e in small.usage_events)
        assert got["lo"] == min(e.occurred_at for e in small.usage_events)
        assert got["hi"] == max(e.occurred_at for e in small.usage_events) < T
        assert got["negative"] == 1
        active = await conn.fetchval(
            "SELECT count(DISTINCT user_id) FROM usage_events "
            "WHERE account_id = $1 AND occurred_at >= $2::timestamptz - interval '30 days' AND occurred_at < $2",
            REFERENCE_ACCOUNT_ID,
            T,
        )
        assert active == 25
        modules = await conn.fetchval(
            "SELECT licensed_modules FROM contracts WHERE account_id = $1 ORDER BY start_date DESC LIMIT 1",
            REFERENCE_ACCOUNT_ID,
        )
        assert modules == ["core", "reports", "dashboards", "automation"]

        again = await load_portfolio(conn, small)
        assert again.skipped and again.counts == {}
        assert await conn.fetchval("SELECT count(*) FROM usage_events") == len(small.usage_events)

        # a different portfolio over the same database is refused, not merged
        with pytest.raises(PortfolioConflict):
            await load_portfolio(conn, generate_portfolio(8, AS_OF, 40))
        assert await conn.fetchval("SELECT count(*) FROM accounts") == 40
    finally:
        await conn.close()


@pytest.mark.slow
async def test_load_full_portfolio(pg_dsn: str, full: Portfolio) -> None:
    dsn = await _fresh_db(pg_dsn, "demo_full")
    conn = await asyncpg.connect(dsn)
    try:
        report = await load_portfolio(conn, full)
        assert not report.skipped
        assert report.counts == full.row_counts()
        assert await conn.fetchval("SELECT count(*) FROM usage_events") == len(full.usage_events)
        # The COPY kept the daily rollup in step (its speed is `make bench`'s business).
        valid = await conn.fetchval(
            "SELECT count(*) FROM usage_events WHERE usage_valid(quantity, event_type)"
        )
        assert await conn.fetchval("SELECT sum(events) FROM usage_type_daily") == valid > 0
        assert (await load_portfolio(conn, full)).skipped
    finally:
        await conn.close()
