"""Google Sheets import through the real google-api-python-client against a contract-checking fake."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.sheets_import import (
    SheetImportRequest,
    SheetsConfig,
    SheetsImportActivities,
    import_sheet,
)
from tests.adapters.conftest import env_at
from tests.fakes.google_api import SheetsFake, google_error

SHEET = "1AbCdEfGhIjKlMnOpQrStUvWxYz"

TABS = {
    "accounts": [
        ["account_id", "name", "tier", "csm_owner", "csm_email"],
        ["acme", "Acme Corp", "Tier 1", "Riley Chen", "riley@vendor.example"],
        ["globex", "Globex", "tier-2", "Riley Chen", "not-an-email"],  # row 3: invalid email
    ],
    "contracts": [
        [
            "account_id",
            "start_date",
            "end_date",
            "arr",
            "seats_purchased",
            "price_per_seat",
            "licensed_modules",
        ],
        ["acme", "2026-01-01", "12/31/2026", 60000, 100, 600, "core, reports"],
        ["acme", "2027-01-01", "2026-06-01", 60000, 100, 600, "core"],  # row 3: end before start
    ],
    "usage_events": [
        ["account_id", "user_id", "occurred_at", "event_type", "quantity"],
        ["acme", "u1", "2026-10-01 09:00:00", "login", ""],
        ["acme", "u1", "2026-10-01T09:05:00Z", "reports.export", 3],
        ["acme", "u2", "2026-10-02 10:00:00", "Reports Export!", 1],  # row 4: bad event type
        ["globex", "u9", "2026-10-02 10:00:00", "login", 1],  # row 5: account not imported
        [],
        ["acme", "u2", "2026-10-03 11:00:00", "automation.run", 12],
    ],
    "support_tickets": [
        [
            "ticket_id",
            "account_id",
            "opened_at",
            "priority",
            "sentiment",
            "escalated",
            "subject",
            "body",
        ],
        ["T-1", "acme", "2026-10-05 08:00:00", "HIGH", -0.6, True, "Export fails", "It times out"],
        [
            "T-2",
            "acme",
            "2026-10-06 08:00:00",
            "normal",
            3.5,
            False,
            "Praise",
            "Great",
        ],  # row 3: sentiment out of range
    ],
    "Notes": [["anything"], ["free text"]],
}


@pytest.fixture(scope="module")
def _sheets_server() -> Iterator[SheetsFake]:
    # One server per module: the client caches its (slow to build) service per endpoint.
    fake = SheetsFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def sheets_fake(_sheets_server: SheetsFake) -> Iterator[SheetsFake]:
    _sheets_server.spreadsheets.clear()
    _sheets_server.reset()
    yield _sheets_server
    assert not _sheets_server.reset(), "sheets contract violations"


def acts(pool: asyncpg.Pool, fake: SheetsFake, timeout_s: float = 2.0) -> SheetsImportActivities:
    return SheetsImportActivities(
        pool, SheetsConfig(token=fake.token, base_url=fake.url, timeout_s=timeout_s)
    )


async def test_valid_rows_land_invalid_rows_are_reported(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    sheets_fake.add(SHEET, TABS)
    report = await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    by_tab = {t.tab: t for t in report.tabs}
    assert report.ignored_tabs == ["Notes"]
    assert (by_tab["accounts"].inserted, by_tab["accounts"].invalid) == (1, 1)
    assert (by_tab["contracts"].inserted, by_tab["contracts"].invalid) == (1, 1)
    assert (
        by_tab["usage_events"].rows_read,
        by_tab["usage_events"].inserted,
        by_tab["usage_events"].invalid,
    ) == (5, 3, 2)
    assert (by_tab["support_tickets"].inserted, by_tab["support_tickets"].invalid) == (1, 1)
    problems = {(p.tab, p.row, p.column) for t in report.tabs for p in t.problems}
    assert problems == {
        ("accounts", 3, "csm_email"),
        ("contracts", 3, None),
        ("usage_events", 4, "event_type"),
        ("usage_events", 5, "account_id"),
        ("support_tickets", 3, "sentiment"),
    }
    assert "end_date 2026-06-01 is not after start_date 2027-01-01" in str(
        by_tab["contracts"].problems[0]
    )
    assert await pool.fetchval("SELECT tier FROM accounts WHERE account_id = 'acme'") == "tier-1"
    c = await pool.fetchrow("SELECT * FROM contracts")
    assert (str(c["end_date"]), c["licensed_modules"]) == ("2026-12-31", ["core", "reports"])
    assert await pool.fetchval("SELECT sum(quantity) FROM usage_events") == 16
    t = await pool.fetchrow("SELECT * FROM support_tickets")
    assert (t["priority"], t["escalated"]) == ("high", True)
    assert "usage_events: read 5, valid 3, inserted 3" in report.summary()

    # The request follows the API: quoted tab range, unformatted numbers, formatted dates.
    values_calls = sheets_fake.calls("GET", "/values/")
    assert {unquote(c.path.rsplit("/", 1)[1]) for c in values_calls} == {
        "'accounts'",
        "'contracts'",
        "'usage_events'",
        "'support_tickets'",
    }
    assert all(c.query["valueRenderOption"] == ["UNFORMATTED_VALUE"] for c in values_calls)

    # Re-importing the same sheet adds nothing.
    again = await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    assert (
        again.inserted == 0 and {t.tab: t.already_present for t in again.tabs}["usage_events"] == 3
    )
    assert await pool.fetchval("SELECT count(*) FROM usage_events") == 3


async def test_abort_mode_writes_nothing_when_a_row_is_invalid(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    sheets_fake.add(SHEET, TABS)
    report = await env_at().run(
        acts(pool, sheets_fake).import_sheet,
        SheetImportRequest(spreadsheet_id=SHEET, on_invalid="abort"),
    )
    assert report.aborted and report.inserted == 0
    assert await pool.fetchval("SELECT count(*) FROM accounts") == 0


async def test_a_failing_insert_leaves_nothing_half_written(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    sheets_fake.add(SHEET, TABS)
    await pool.execute(
        """CREATE OR REPLACE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql;
           CREATE TRIGGER boom BEFORE INSERT ON support_tickets FOR EACH ROW EXECUTE FUNCTION boom();"""
    )
    try:
        async with pool.acquire() as conn:
            with pytest.raises(asyncpg.RaiseError):
                await import_sheet(
                    conn,
                    SHEET,
                    config=SheetsConfig(token=sheets_fake.token, base_url=sheets_fake.url),
                )
        assert await pool.fetchval("SELECT count(*) FROM accounts") == 0
        assert await pool.fetchval("SELECT count(*) FROM usage_events") == 0
    finally:
        await pool.execute("DROP TRIGGER boom ON support_tickets; DROP FUNCTION boom();")


HOSTILE_TABS = {
    "accounts": [
        ["account_id", "name"],
        ["acme", "Acme Corp"],
        ["globex", "Globex"],
        ["nul", "Nul\x00 Inc"],  # row 4: NUL in a cell
    ],
    "contracts": [
        ["account_id", "start_date", "end_date", "arr", "seats_purchased", "price_per_seat"],
        ["acme", "2026-01-01", "2027-01-01", 60000, 100, 600],
        ["globex", "2026-01-01", "2027-01-01", 60000, 3e9, 600],  # row 3: integer overflow
        ["globex", "2026-02-01", "2027-02-01", 1e15, 100, 600],  # row 4: numeric overflow
        ["globex", 1e12, "2027-02-01", 6000, 10, 600],  # row 5: serial date off the calendar
    ],
    "support_tickets": [
        ["ticket_id", "account_id", "opened_at", "body"],
        ["T-1", "acme", "2026-10-05 08:00:00", "acme's ticket"],
        ["T-1", "globex", "2026-10-05 09:00:00", "globex's ticket, same id"],  # not a duplicate
        ["T-bad", "globex", "2026-10-06 08:00:00", "Postgres refuses this row"],  # row 4
        ["T-2", "acme", "2026-10-07 08:00:00", "body with a NUL \x00 inside"],  # row 5
        ["T-3", "acme", "2026-10-08 08:00:00", "after the bad rows"],
    ],
    "invoices": [
        ["invoice_id", "account_id", "issued_on", "due_on", "amount"],
        ["INV-1001", "acme", "2026-09-01", "2026-10-01", 100],
        ["INV-1001", "globex", "2026-09-01", "2026-10-01", 200],
    ],
}


async def test_one_bad_cell_costs_its_row_and_the_rest_lands(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    """NUL, integer and numeric overflow, an off-calendar serial date, and a row Postgres
    itself refuses: each reported by tab and row, every other row of every tab lands, and
    the same id in two accounts is two rows."""
    sheets_fake.add(SHEET, HOSTILE_TABS)
    await pool.execute(
        """CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
             IF NEW.ticket_id = 'T-bad' THEN
               RAISE EXCEPTION 'value refused' USING ERRCODE = 'invalid_parameter_value';
             END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
           CREATE TRIGGER refuse BEFORE INSERT ON support_tickets FOR EACH ROW EXECUTE FUNCTION refuse();"""
    )
    try:
        report = await env_at().run(
            acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
        )
    finally:
        await pool.execute("DROP TRIGGER refuse ON support_tickets; DROP FUNCTION refuse();")
    problems = {(p.tab, p.row) for t in report.tabs for p in t.problems}
    assert problems == {
        ("accounts", 4),
        ("contracts", 3),
        ("contracts", 4),
        ("contracts", 5),
        ("support_tickets", 4),
        ("support_tickets", 5),
    }
    reasons = " ".join(p.problem for t in report.tabs for p in t.problems)
    assert "NUL" in reasons and "refused by Postgres: value refused" in reasons
    assert "outside the calendar" in reasons
    by_tab = {t.tab: t for t in report.tabs}
    assert (by_tab["support_tickets"].inserted, by_tab["support_tickets"].invalid) == (3, 2)
    tickets = await pool.fetch(
        "SELECT account_id, ticket_id, body FROM support_tickets ORDER BY account_id, ticket_id"
    )
    assert [(r["account_id"], r["ticket_id"]) for r in tickets] == [
        ("acme", "T-1"),
        ("acme", "T-3"),
        ("globex", "T-1"),
    ]
    assert tickets[2]["body"] == "globex's ticket, same id"
    amounts = await pool.fetch("SELECT account_id, amount FROM invoices ORDER BY account_id")
    assert [(r["account_id"], float(r["amount"])) for r in amounts] == [
        ("acme", 100.0),
        ("globex", 200.0),
    ]
    assert await pool.fetchval("SELECT count(*) FROM contracts") == 1


async def test_missing_required_columns_reject_the_tab(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    sheets_fake.add(
        SHEET,
        {"accounts": TABS["accounts"], "invoices": [["invoice_id", "account_id"], ["I-1", "acme"]]},
    )
    report = await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    inv = next(t for t in report.tabs if t.tab == "invoices")
    assert (
        inv.invalid == 1
        and "missing required columns: issued_on, due_on, amount" in inv.problems[0].problem
    )


@pytest.mark.parametrize(
    "status, fix",
    [
        (401, "refresh SHEETS_TOKEN"),
        (403, "share the spreadsheet with the service account"),
        (404, "spreadsheet not found"),
    ],
)
async def test_client_errors_name_the_fix(
    pool: asyncpg.Pool, sheets_fake: SheetsFake, status: int, fix: str
) -> None:
    sheets_fake.add(SHEET, TABS)
    sheets_fake.fail(status, google_error(status))
    with pytest.raises(ApplicationError) as err:
        await env_at().run(
            acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
        )
    assert (
        err.value.non_retryable
        and err.value.message.startswith("Sheets: ")
        and fix in err.value.message
    )
    assert sheets_fake.token not in err.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retryable(
    pool: asyncpg.Pool, sheets_fake: SheetsFake, status: int
) -> None:
    sheets_fake.add(SHEET, TABS)
    sheets_fake.fail(status, google_error(status), match="/values/")
    with pytest.raises(ApplicationError) as err:
        await env_at().run(
            acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
        )
    assert not err.value.non_retryable and f"Sheets: {status}" in err.value.message
    assert await pool.fetchval("SELECT count(*) FROM accounts") == 0  # nothing half-read is written


async def test_timeout_is_retryable(pool: asyncpg.Pool, sheets_fake: SheetsFake) -> None:
    sheets_fake.add(SHEET, TABS)
    sheets_fake.hang(2.0)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(
            acts(pool, sheets_fake, timeout_s=0.3).import_sheet,
            SheetImportRequest(spreadsheet_id=SHEET),
        )
    assert not err.value.non_retryable and "timed out" in err.value.message


async def test_without_credentials_says_what_to_set(pool: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as err:
        await env_at().run(
            SheetsImportActivities(pool, SheetsConfig()).import_sheet,
            SheetImportRequest(spreadsheet_id=SHEET),
        )
    assert (
        err.value.non_retryable
        and "set SHEETS_TOKEN or GOOGLE_APPLICATION_CREDENTIALS" in err.value.message
    )


async def test_a_later_import_fills_in_dates_and_keeps_engagement_history(
    pool: asyncpg.Pool, sheets_fake: SheetsFake
) -> None:
    contract_cols = [*TABS["contracts"][0], "notice_on"]
    stakeholder_cols = ["stakeholder_id", "account_id", "name", "role", "last_engaged_at"]
    first = {
        "accounts": TABS["accounts"][:2],
        "contracts": [
            contract_cols,
            ["acme", "2026-01-01", "2026-12-31", 60000, 100, 600, "core", ""],
            ["acme", "2027-01-01", "2027-12-31", 60000, 100, 600, "core", "2026-06-01"],
        ],
        "support_tickets": [
            ["ticket_id", "account_id", "opened_at"],
            ["T-1", "acme", "2026-10-05"],
        ],
        "stakeholders": [stakeholder_cols, ["S-1", "acme", "Ana", "champion", "2026-09-01"]],
        "stakeholder_engagements": [
            ["account_id", "stakeholder_id", "engaged_at"],
            ["acme", "S-1", "2026-07-15 10:00:00"],
        ],
    }
    sheets_fake.add(SHEET, first)
    report = await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    problems = [str(p) for t in report.tabs for p in t.problems]
    assert len(problems) == 1 and "notice_on 2026-06-01 must be within the term" in problems[0]

    # The same sheet a month later: the ticket closed, notice given, Ana engaged again.
    later = dict(first)
    later["contracts"] = [
        contract_cols,
        ["acme", "2026-01-01", "2026-12-31", 60000, 100, 600, "core", "2026-11-02"],
    ]
    later["support_tickets"] = [
        ["ticket_id", "account_id", "opened_at", "closed_at"],
        ["T-1", "acme", "2026-10-05", "2026-10-20"],
    ]
    later["stakeholders"] = [stakeholder_cols, ["S-1", "acme", "Ana", "champion", "2026-10-28"]]
    sheets_fake.spreadsheets.clear()
    sheets_fake.add(SHEET, later)
    await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    assert str(await pool.fetchval("SELECT notice_on FROM contracts")) == "2026-11-02"
    assert str(await pool.fetchval("SELECT closed_at::date FROM support_tickets")) == "2026-10-20"
    history = await pool.fetch(
        "SELECT engaged_at::date AS d FROM stakeholder_engagements ORDER BY engaged_at"
    )
    assert [str(r["d"]) for r in history] == ["2026-07-15", "2026-09-01", "2026-10-28"]

    # An older value never moves last_engaged_at back, and a filled date is not overwritten.
    later["stakeholders"] = [stakeholder_cols, ["S-1", "acme", "Ana", "champion", "2026-08-01"]]
    later["support_tickets"] = [
        ["ticket_id", "account_id", "opened_at", "closed_at"],
        ["T-1", "acme", "2026-10-05", "2026-11-30"],
    ]
    sheets_fake.spreadsheets.clear()
    sheets_fake.add(SHEET, later)
    await env_at().run(
        acts(pool, sheets_fake).import_sheet, SheetImportRequest(spreadsheet_id=SHEET)
    )
    assert (
        str(await pool.fetchval("SELECT last_engaged_at::date FROM stakeholders")) == "2026-10-28"
    )
    assert str(await pool.fetchval("SELECT closed_at::date FROM support_tickets")) == "2026-10-20"
    assert await pool.fetchval("SELECT count(*) FROM stakeholder_engagements") == 3
