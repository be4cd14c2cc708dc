"""`python starter.py retention --from YYYY-MM --to YYYY-MM [--by tier|csm] [--json]`.

Portfolio gross and net revenue retention (GRR, NRR) by month from the ``contracts``
table, with the pure rules of ``domain/retention.py`` (the cohort of a month is every
account with ARR on its first day, compared with the next month's first day; new logos
left out), and a total row: the period as one cohort (first day of --from against the
first day after --to). ``--by tier`` or ``--by csm`` prints one table per tier or per
CSM (the account's CSM in ``accounts`` today). Nothing is written.

Wiring (starter.py): ``add_retention_parser(subparsers)``; it sets ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from activities.retention import fetch_contract_terms
from cli.accounts import print_table
from cli.backtest import add_date_range, parse_month
from cli.score import CommandError, connect_db
from domain.health import fmt_money, fmt_pct
from domain.retention import (
    ContractTerm,
    MonthRetention,
    monthly_retention,
    period_retention,
    retention_by_group,
)

EXIT_BAD_INPUT = 2
MAX_MONTHS = 120
HEADER = [
    "month",
    "accounts",
    "starting ARR",
    "churned",
    "contracted",
    "expanded",
    "ending ARR",
    "GRR %",
    "NRR %",
]
GROUP_COLUMNS = {"tier": "tier", "csm": "csm_owner"}


def add_retention_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "retention",
        help="portfolio GRR and NRR by month (and by tier or CSM) from the contracts table",
        description=(
            "Gross and net revenue retention per month from --from to --to (YYYY-MM, both "
            "included), with a total row for the whole period. A month's cohort is every "
            "account with ARR on its first day; new logos are left out."
        ),
    )
    add_date_range(p, every=None, parse=parse_month, metavar="YYYY-MM")
    p.add_argument(
        "--by", choices=sorted(GROUP_COLUMNS), default=None, help="one table per tier or per CSM"
    )
    p.add_argument("--json", action="store_true", help="the figures as JSON")
    p.set_defaults(run=run_retention_command)
    return p


async def fetch_terms(conn: asyncpg.Connection) -> tuple[list[ContractTerm], dict[str, dict]]:
    """Every contract row, and each account's tier and CSM."""
    terms = await fetch_contract_terms(conn)
    accounts = await conn.fetch("SELECT account_id, tier, csm_owner FROM accounts")
    return terms, {r["account_id"]: dict(r) for r in accounts}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else fmt_pct(x, 1)


def _row(m: MonthRetention) -> list[str]:
    return [
        m.month,
        str(m.accounts),
        fmt_money(m.starting_arr),
        fmt_money(m.churned_arr),
        fmt_money(m.contraction_arr),
        fmt_money(m.expansion_arr),
        fmt_money(m.ending_arr),
        _pct(m.grr),
        _pct(m.nrr),
    ]


def render_table(months: list[MonthRetention], total: MonthRetention) -> None:
    rows = [_row(m) for m in months]
    rows.append(["total " + total.month, *_row(total)[1:]])
    print_table(HEADER, rows, right=range(1, len(HEADER)))


def check_range(first: date, last: date) -> None:
    if last < first:
        raise CommandError(f"--to {last:%Y-%m} is before --from {first:%Y-%m}", EXIT_BAD_INPUT)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MAX_MONTHS:
        raise CommandError(
            f"--from {first:%Y-%m} to --to {last:%Y-%m} is {months} months; at most {MAX_MONTHS}",
            EXIT_BAD_INPUT,
        )


async def run_retention_command(args: argparse.Namespace) -> int:
    first, last = args.date_from, args.date_to
    try:
        check_range(first, last)
        async with connect_db() as conn:
            terms, accounts = await fetch_terms(conn)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.by is None:
        groups = {
            "portfolio": (
                monthly_retention(terms, first, last),
                period_retention(terms, first, last),
            )
        }
    else:
        column = GROUP_COLUMNS[args.by]
        owner = {aid: str(a.get(column) or "") for aid, a in accounts.items()}
        groups = retention_by_group(terms, owner, first, last)
    if args.json:
        doc = {
            g: {
                "months": [m.model_dump() for m in months],
                "total": total.model_dump(),
            }
            for g, (months, total) in groups.items()
        }
        print(
            json.dumps(
                {"from": f"{first:%Y-%m}", "to": f"{last:%Y-%m}", "by": args.by, "groups": doc},
                indent=2,
            )
        )
        return 0
    print(
        f"Revenue retention {first:%Y-%m} to {last:%Y-%m} from {len(terms)} contract rows "
        "(GRR: churn and contraction only; NRR: expansion too; new logos left out)"
    )
    for g, (months, total) in groups.items():
        if args.by is not None:
            print(f"\n{args.by} {g}")
        render_table(months, total)
    if not terms:
        print("no contracts on file: nothing to compute")
    today = datetime.now(UTC).date()
    if (last.year, last.month) >= (today.year, today.month):
        print(
            f"note: {last:%Y-%m} is not over yet ({today}): its ending ARR counts the contracts "
            "on file today, so a renewal not signed yet counts as churn"
        )
    return 0
