"""`starter.py action done|list`: close an action item, list them (domain/actions.py).

- ``action done ACCOUNT ID [--by NAME] [--note TEXT]`` sends the ``complete_action``
  update: validated here first (exit 2 with the reason), then by the workflow (an unknown
  id or an action already done is refused: exit 3, nothing changes).
- ``action list [ACCOUNT] [--overdue] [--as-of DATE] [--json]`` reads ``account_actions``
  (written by the account workflows): every action, or only the open ones past due.

Wiring (starter.py): ``add_action_parsers(subparsers)``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

from temporalio.client import Client

from cli.accounts import print_table, send_update, validate
from cli.backtest import parse_date
from cli.score import CommandError, connect_db
from domain.messages import ActionDoneUpdate
from stack.settings import Settings


def _default_author() -> str:
    try:
        return getpass.getuser() or "starter.py"
    except (KeyError, OSError):
        return "starter.py"


def check_done(args: argparse.Namespace) -> None:
    """Before connecting: the update's model (ids and names within their limits)."""
    args.message = validate(
        ActionDoneUpdate,
        {"action_id": args.action_id, "done_by": args.by or _default_author(), "note": args.note},
        "action done",
    )


async def cmd_done(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    return await send_update(client, args.account, "complete_action", args.message)


async def run_list(args: argparse.Namespace) -> int:
    from activities.actions import list_actions

    today: date = args.as_of or datetime.now(UTC).date()
    try:
        async with connect_db() as conn:
            rows = await list_actions(conn, args.account, today if args.overdue else None)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.json:
        print(
            json.dumps(
                [
                    {"account_id": acc, "days_overdue": a.days_overdue(today)}
                    | a.model_dump(mode="json", exclude={"stored"})
                    for acc, a in rows
                ],
                indent=2,
            )
        )
        return 0
    scope = f"account {args.account}" if args.account else "all accounts"
    what = "open actions past due" if args.overdue else "actions"
    print(f"{len(rows)} {what} on {today} ({scope})")
    if not rows:
        return 0
    print_table(
        ["account", "id", "status", "due", "overdue", "chases", "owner", "action"],
        [
            [
                acc,
                a.action_id,
                a.status if a.status == "open" else f"done {a.done_on}",
                a.due_on.isoformat(),
                str(a.days_overdue(today)) if a.days_overdue(today) else "",
                str(a.chases),
                a.owner or "(none)",
                a.text[:70],
            ]
            for acc, a in rows
        ],
        right=(4, 5),
    )
    return 0


def add_action_parsers(sub: Any) -> None:
    p = sub.add_parser("action", help="action items from interaction notes: list, mark done")
    verbs = p.add_subparsers(dest="action_command", required=True)
    d = verbs.add_parser("done", help="mark an open action item done (complete_action update)")
    d.add_argument("account")
    d.add_argument("action_id", metavar="ID", help="as `action list` shows it, e.g. A-3")
    d.add_argument("--by", default=None, help="who closed it (default: your user name)")
    d.add_argument("--note", default=None)
    d.set_defaults(temporal=cmd_done, check=check_done)
    ls = verbs.add_parser("list", help="actions of one account or all (from Postgres)")
    ls.add_argument("account", nargs="?", default=None)
    ls.add_argument("--overdue", action="store_true", help="only open actions past their due date")
    ls.add_argument("--as-of", type=parse_date, default=None, metavar="DATE", help="(today)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_list)
