"""`starter.py retention` against a small portfolio in a real database."""

from __future__ import annotations

import argparse
import json

import asyncpg
import pytest

from cli.retention import add_retention_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py")
    add_retention_parser(parser.add_subparsers(dest="command", required=True))
    return parser


async def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return await args.run(args)


ACCOUNTS = [
    # account, tier, CSM
    ("a", "tier-1", "Dana"),
    ("b", "tier-1", "Lee"),
    ("c", "tier-2", "Dana"),
    ("d", "tier-2", "Lee"),
    ("e", "tier-3", "Lee"),
]
CONTRACTS = [
    # a renews flat on 1 March; b ends 31 March with no renewal (March churn);
    # c expands on 15 March 40k -> 60k; d renews smaller on 10 April 30k -> 20k;
    # e is a new logo from 5 March.
    ("a", "2025-03-01", "2026-02-28", 100_000),
    ("a", "2026-03-01", "2027-02-28", 100_000),
    ("b", "2025-04-01", "2026-03-31", 50_000),
    ("c", "2025-06-01", "2026-05-31", 40_000),
    ("c", "2026-03-15", "2027-03-14", 60_000),
    ("d", "2025-04-10", "2026-04-09", 30_000),
    ("d", "2026-04-10", "2027-04-09", 20_000),
    ("e", "2026-03-05", "2027-03-04", 70_000),
]


@pytest.fixture
async def portfolio(db: asyncpg.Connection, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    await db.executemany(
        "INSERT INTO accounts (account_id, name, tier, csm_owner) VALUES ($1, $1, $2, $3)",
        ACCOUNTS,
    )
    await db.executemany(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased,
               price_per_seat, licensed_modules) VALUES ($1, $2, $3, $4, 10, 1000, '{core}')""",
        [(a, date.fromisoformat(s), date.fromisoformat(e), arr) for a, s, e, arr in CONTRACTS],
    )
    monkeypatch.setenv("DATABASE_URL", db_dsn)


def _cells(out: str, first: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(first))
    return line[len(first) :].split()


async def test_the_table_has_a_row_per_month_and_a_total(
    portfolio: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["retention", "--from", "2026-03", "--to", "2026-04"]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("month"))
    for col in (
        "starting ARR",
        "churned",
        "contracted",
        "expanded",
        "ending ARR",
        "GRR %",
        "NRR %",
    ):
        assert col in header
    # March: cohort a 100k + b 50k + c 40k + d 30k = 220k (e starts on the 5th).
    # 1 April: a 100k, b 0 (churned 50k), c 60k (+20k), d 30k = 190k.
    # GRR = (220 - 50) / 220 = 77.3%; NRR = 190 / 220 = 86.4%.
    assert _cells(out, "2026-03") == [
        "4", "$220,000", "$50,000", "$0", "$20,000", "$190,000", "77.3%", "86.4%"
    ]  # fmt: skip
    # April: cohort a 100k + c 60k + d 30k + e 70k = 260k; 1 May: d contracted to 20k = 250k.
    # GRR = NRR = 250 / 260 = 96.2%.
    assert _cells(out, "2026-04") == [
        "4", "$260,000", "$0", "$10,000", "$0", "$250,000", "96.2%", "96.2%"
    ]  # fmt: skip
    # Total: the 1 March cohort (220k) on 1 May: a 100k, b 0, c 60k, d 20k = 180k.
    # GRR = (220 - 50 - 10) / 220 = 72.7%; NRR = 180 / 220 = 81.8%.
    assert _cells(out, "total 2026-03..2026-04") == [
        "4", "$220,000", "$50,000", "$10,000", "$20,000", "$180,000", "72.7%", "81.8%"
    ]  # fmt: skip


async def test_by_csm_and_by_tier_split_the_portfolio(
    portfolio: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["retention", "--from", "2026-03", "--to", "2026-03", "--by", "csm"]) == 0
    out = capsys.readouterr().out
    dana, lee = out.split("\ncsm Dana\n")[1].split("\ncsm Lee\n")
    # Dana in March: a 100k + c 40k = 140k -> 160k on 1 April: GRR 100%, NRR 114.3%.
    assert _cells(dana, "2026-03")[-2:] == ["100%", "114.3%"]
    # Lee: b 50k + d 30k = 80k -> d 30k: GRR = NRR = 37.5%.
    assert _cells(lee, "2026-03") == [
        "2", "$80,000", "$50,000", "$0", "$0", "$30,000", "37.5%", "37.5%"
    ]  # fmt: skip

    assert (
        await _run(["retention", "--from", "2026-04", "--to", "2026-04", "--by", "tier", "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc["groups"]) == ["tier-1", "tier-2", "tier-3"]
    # tier-2 in April: c 60k + d 30k = 90k -> 80k: GRR = NRR = 88.9%.
    t2 = doc["groups"]["tier-2"]["total"]
    assert (t2["starting_arr"], t2["ending_arr"]) == (90_000, 80_000)
    assert t2["grr"] == pytest.approx(80 / 90)


async def test_bad_input_exits_2_with_a_reason(
    portfolio: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["retention", "--from", "2026-05", "--to", "2026-03"]) == 2
    assert "--to 2026-03 is before --from 2026-05" in capsys.readouterr().err
    assert await _run(["retention", "--from", "2000-01", "--to", "2026-03"]) == 2
    assert "at most 120" in capsys.readouterr().err
    for bad in ("2026-3", "2026-13", "March"):
        with pytest.raises(SystemExit) as done:
            _parser().parse_args(["retention", "--from", bad, "--to", "2026-04"])
        assert done.value.code == 2
        assert "is not a month (YYYY-MM)" in capsys.readouterr().err
