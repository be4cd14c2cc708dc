"""`starter.py sentiment` (the CSM's call, an update) and `starter.py forecast` (the portfolio
renewal forecast, read from Postgres).

- ``sentiment ACCOUNT --value positive|neutral|concerned|at_risk --reason TEXT --author NAME
  --expires YYYY-MM-DD`` sends the ``set_sentiment`` update: validated here first (exit 2
  with the reason), then by the workflow (a refusal exits 3 and changes nothing).
- ``forecast [--as-of DATE] [--accounts] [--json]``: the latest forecast of every account
  whose term has not ended, recorded at its renewal checkpoints (``renewal_forecasts``),
  as accounts and ARR per category, overall and per CSM.

Wiring (starter.py): ``add_forecast_parsers(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

from temporalio.client import Client

from cli.accounts import EXIT_BAD_INPUT, CliError, print_table, send_update, validate
from cli.backtest import parse_date
from cli.score import CommandError, connect_db
from domain.forecast import CATEGORIES, CATEGORY_LABELS, SENTIMENTS, forecast_table
from domain.health import fmt_money, fmt_pct
from domain.messages import SentimentUpdate
from stack.settings import Settings


def check_sentiment(args: argparse.Namespace) -> None:
    """Before connecting: the model's limits, and an expiry after today."""
    args.message = validate(
        SentimentUpdate,
        {
            "value": args.value,
            "reason": args.reason,
            "author": args.author,
            "expires_on": args.expires,
        },
        "sentiment",
    )
    today = datetime.now(UTC).date()
    if args.message.expires_on <= today:
        raise CliError(
            f"--expires {args.message.expires_on} must be after today ({today})", EXIT_BAD_INPUT
        )


async def cmd_sentiment(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    return await send_update(client, args.account, "set_sentiment", args.message)


async def run_forecast_command(args: argparse.Namespace) -> int:
    from activities.forecast import latest_forecasts

    as_of: date = args.as_of or datetime.now(UTC).date()
    try:
        async with connect_db() as conn:
            rows = await latest_forecasts(conn, as_of)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    owners = {r.account_id: r.csm_owner or "(unassigned)" for r in rows}
    table = forecast_table(list(rows), owners)
    if args.json:
        doc = {
            "as_of": as_of.isoformat(),
            "by_category": {
                g: {c: cell.model_dump() for c, cell in cells.items()} for g, cells in table.items()
            },
            "accounts": [r.model_dump(mode="json") for r in rows],
        }
        print(json.dumps(doc, indent=2))
        return 0
    total_arr = sum(r.arr for r in rows)
    print(
        f"Renewal forecast as of {as_of}: {len(rows)} open renewal(s) with a forecast, "
        f"ARR {fmt_money(total_arr)} (latest checkpoint of each term not yet ended)"
    )
    if not rows:
        print(
            "no forecast recorded yet: forecasts are recorded at the 120/90/60/30-day checkpoints"
        )
        return 0
    overall = table["all"]
    print_table(
        ["category", "accounts", "ARR", "share of ARR"],
        [
            [
                CATEGORY_LABELS[c],
                str(overall[c].accounts),
                fmt_money(overall[c].arr),
                fmt_pct(overall[c].arr / total_arr, 1) if total_arr else "n/a",
            ]
            for c in CATEGORIES
        ]
        + [["total", str(len(rows)), fmt_money(total_arr), "100%" if total_arr else "n/a"]],
        right=(1, 2, 3),
    )
    print("\nby CSM (accounts / ARR)")
    csm_rows = []
    for csm in sorted(g for g in table if g != "all"):
        cells = table[csm]
        csm_rows.append(
            [csm]
            + [f"{cells[c].accounts} / {fmt_money(cells[c].arr)}" for c in CATEGORIES]
            + [fmt_money(sum(cell.arr for cell in cells.values()))]
        )
    print_table(
        ["CSM", *(CATEGORY_LABELS[c] for c in CATEGORIES), "ARR"],
        csm_rows,
        right=range(1, len(CATEGORIES) + 2),
    )
    if args.accounts:
        print("\naccounts")
        print_table(
            ["account", "renewal", "checkpoint", "forecast", "data", "CSM call", "ARR", "CSM"],
            [
                [
                    r.account_id,
                    r.renewal_date.isoformat(),
                    f"T-{r.days_before_end}d {r.as_of}",
                    CATEGORY_LABELS[r.category],
                    CATEGORY_LABELS[r.data_category],
                    f"{r.sentiment} ({r.sentiment_author})" if r.sentiment else "",
                    fmt_money(r.arr),
                    r.csm_owner or "",
                ]
                for r in sorted(rows, key=lambda r: (r.renewal_date, r.account_id))
            ],
            right=(6,),
        )
    return 0


def add_forecast_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "sentiment",
        help="record the CSM's call on an account (shown beside the score, feeds the forecast)",
    )
    p.add_argument("account")
    p.add_argument("--value", required=True, help=" | ".join(SENTIMENTS))
    p.add_argument("--reason", required=True, help="one line, at most 500 characters")
    p.add_argument("--author", required=True)
    p.add_argument("--expires", required=True, metavar="YYYY-MM-DD", help="not in force from then")
    p.set_defaults(temporal=cmd_sentiment, check=check_sentiment)

    p = sub.add_parser(
        "forecast",
        help="portfolio renewal forecast: accounts and ARR by category (commit/likely/at risk/lost) and CSM",
    )
    p.add_argument("--as-of", type=parse_date, default=None, metavar="DATE", help="(today)")
    p.add_argument("--accounts", action="store_true", help="also list each account's forecast")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_forecast_command)
