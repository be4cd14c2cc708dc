"""`starter.py feedback` and `starter.py ttfv` against a real database."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import asyncpg
import pytest

from cli.engagement import add_engagement_parsers


async def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="starter.py")
    add_engagement_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return await args.run(args)


@pytest.fixture
async def feedback_db(db: asyncpg.Connection, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.delenv("VIM_ENGAGEMENT_CONFIG", raising=False)

    def at(m: int, d: int) -> datetime:
        return datetime(2026, m, d, 12, tzinfo=UTC)

    await db.executemany(
        "INSERT INTO support_tickets (ticket_id, account_id, opened_at, subject, escalated)"
        " VALUES ($1, $2, $3, $4, false)",
        [
            ("T-1", "acme", at(7, 2), "CSV export fails on large reports"),
            ("T-2", "globex", at(8, 9), "SSO login loop"),
            ("T-1", "globex", at(9, 1), "Export button missing"),  # same id, other account
            ("T-9", "acme", at(6, 30), "Export fails"),  # Q2: not in the digest
        ],
    )
    await db.executemany(
        "INSERT INTO nps_responses (response_id, account_id, responded_at, score, comment)"
        " VALUES ($1, $2, $3, $4, $5)",
        [
            ("N-1", "initech", at(7, 20), 3, "Dashboards are slow"),
            ("N-2", "initech", at(8, 20), 10, ""),  # no comment: nothing to group
        ],
    )
    await db.executemany(
        "INSERT INTO events (event_key, account_id, event_type, payload, occurred_at)"
        " VALUES ($1, $2, 'value.first_value', $3::jsonb, $4)",
        [
            (
                "k1",
                "acme",
                json.dumps(
                    {
                        "handed_off_on": "2026-01-05",
                        "first_value_on": "2026-02-04",
                        "days": 30,
                        "tier": "tier-1",
                    }
                ),
                at(2, 4),
            ),
            (
                "k2",
                "globex",
                json.dumps(
                    {
                        "handed_off_on": "2026-01-20",
                        "first_value_on": "2026-03-21",
                        "days": 60,
                        "tier": "tier-2",
                    }
                ),
                at(3, 21),
            ),
        ],
    )
    return db_dsn


async def test_feedback_prints_the_quarters_themes(
    feedback_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["feedback", "2026-Q3"]) == 0
    out = capsys.readouterr().out
    assert "2026-Q3: 4 ticket subjects and NPS comments from 3 accounts" in out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "   2 items" in lines["Reporting"] and "   1 items" in lines["Performance"]
    assert await _run(["feedback", "2026-Q3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["theme"], t["items"]) for t in doc["themes"]] == [
        ("Reporting & exports", 2),
        ("Performance", 1),
        ("Access & login", 1),
    ]


async def test_feedback_send_without_a_recipient_is_refused(
    feedback_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["feedback", "2026-Q3", "--send"]) == 2
    assert "no recipient" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        await _run(["feedback", "2026-Q5"])
    assert bad.value.code == 2


async def test_ttfv_prints_cohorts_from_the_first_value_events(
    feedback_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["ttfv", "--by", "tier", "--as-of", "2026-04-01"]) == 0
    out = capsys.readouterr().out
    assert "by tier, as of 2026-04-01" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["tier-1"][1:4] == ["1", "1", "30.0"] and rows["tier-2"][3] == "60.0"
    assert await _run(["ttfv", "--by", "month", "--as-of", "2026-04-01", "--json"]) == 0
    cohorts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["cohort"], c["reached"], c["median_days"]) for c in cohorts] == [
        ("2026-01", 2, 45.0)
    ]


async def test_value_prints_the_roi_and_rosi_of_the_qbr(
    db: asyncpg.Connection,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from demo.load import load_portfolio
    from demo.portfolio import REFERENCE_ACCOUNT_ID, generate_portfolio

    monkeypatch.setenv("DATABASE_URL", db_dsn)
    as_of = "2026-11-21"
    await load_portfolio(db, generate_portfolio(7, datetime(2026, 11, 21).date(), 20))
    assert await _run(["value", REFERENCE_ACCOUNT_ID, "--as-of", as_of, "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert v["period_days"] == 90 and v["value_usd"] is not None
    assert v["rosi_pct"] == pytest.approx((v["value_usd"] - v["period_cost"]) / v["period_cost"] * 100, abs=0.05)  # fmt: skip
    assert await _run(["value", REFERENCE_ACCOUNT_ID, "--as-of", as_of]) == 0
    assert "RoSI of" in capsys.readouterr().out
    assert await _run(["value", "no-such-account", "--as-of", as_of]) == 2
    assert "no-such-account" in capsys.readouterr().err


async def test_hygiene_prints_each_finding_with_its_fix_as_known_then(
    db: asyncpg.Connection,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    await db.execute(
        "INSERT INTO accounts (account_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')"
    )
    await db.execute(
        "INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat)"
        " VALUES ('acme', '2026-01-01', '2027-01-01', 12000, 20, 600)"
    )
    await db.execute(
        "INSERT INTO stakeholders (stakeholder_id, account_id, name, title, role, is_champion, left_on, last_engaged_at)"
        " VALUES ('s1', 'acme', 'Ada Park', 'VP Ops', 'user', true, '2026-09-01', '2026-08-20T10:00:00Z'),"
        "        ('s2', 'acme', 'Lee Chen', 'COO', 'executive_sponsor', false, NULL, '2026-08-15T10:00:00Z')"
    )
    # Before Ada left: she is the champion, both are engaged within 90 days.
    assert await _run(["hygiene", "acme", "--as-of", "2026-08-31"]) == 0
    assert "0 findings in 1 accounts" in capsys.readouterr().out
    assert await _run(["hygiene", "--as-of", "2026-10-01", "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(f["account_id"], f["check"]) for f in found] == [
        ("acme", "no_champion"),
        ("acme", "stakeholder_left"),
        ("globex", "no_champion"),
        ("globex", "no_sponsor"),
        ("globex", "missing_renewal"),
    ]
    assert await _run(["hygiene", "nobody"]) == 2
    assert "unknown account(s): nobody" in capsys.readouterr().err
