"""`python starter.py events [--follow] [--account ID] [--type T] [--limit N] [--json]`.

Tails the event bus (the ``events`` table). With ``--follow`` it LISTENs on
``vim_events`` (the insert trigger NOTIFYs the new event id) and prints each
new event as it arrives; a periodic catch-up query means nothing is missed if
a notification is (e.g. after a reconnect). Ctrl-C stops it.

Wiring (starter.py): ``add_events_parser(subparsers)`` then
``asyncio.run(run_events(args))`` when ``args.command == "events"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import asyncpg

from stack.postgres import resolve_database_url
from stack.settings import load_settings

CATCH_UP_SECONDS = 5.0


def add_events_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "events",
        help="show the event bus (decisions the workflows published); --follow to tail it",
        description="Show the latest events on the bus, oldest first; --follow keeps printing new ones.",
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep running and print new events (LISTEN vim_events)",
    )
    p.add_argument("--account", metavar="ID", help="only this account")
    p.add_argument(
        "--type",
        dest="event_type",
        metavar="T",
        help="only this event type; 'churn.*' matches a prefix",
    )
    p.add_argument(
        "--limit",
        "-n",
        type=int,
        default=20,
        metavar="N",
        help="how many past events to show first (default 20)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def _where(
    account: str | None, event_type: str | None, after_id: int | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if account:
        params.append(account)
        clauses.append(f"account_id = ${len(params)}")
    if event_type:
        if event_type.endswith("*"):
            params.append(event_type[:-1].replace("%", r"\%").replace("_", r"\_") + "%")
            clauses.append(f"event_type LIKE ${len(params)}")
        else:
            params.append(event_type)
            clauses.append(f"event_type = ${len(params)}")
    if after_id is not None:
        params.append(after_id)
        clauses.append(f"event_id > ${len(params)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def recent_events(
    conn: asyncpg.Connection,
    *,
    account: str | None = None,
    event_type: str | None = None,
    limit: int = 20,
) -> list[asyncpg.Record]:
    where, params = _where(account, event_type, None)
    params.append(max(0, limit))
    rows = await conn.fetch(
        f"SELECT * FROM events{where} ORDER BY event_id DESC LIMIT ${len(params)}", *params
    )
    return list(reversed(rows))


async def events_after(
    conn: asyncpg.Connection,
    after_id: int,
    *,
    account: str | None = None,
    event_type: str | None = None,
    upto: int | None = None,
) -> list[asyncpg.Record]:
    where, params = _where(account, event_type, after_id)
    if upto is None:
        return await conn.fetch(
            f"SELECT * FROM events{where} ORDER BY event_id LIMIT 1000", *params
        )
    params.append(upto)
    return await conn.fetch(
        f"SELECT * FROM events{where} AND event_id <= ${len(params)} ORDER BY event_id", *params
    )


def format_event(row: asyncpg.Record | dict[str, Any], as_json: bool = False) -> str:
    payload = row["payload"]
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            pass
    if as_json:
        return json.dumps(
            {
                "event_id": row["event_id"],
                "occurred_at": row["occurred_at"].isoformat(),
                "account_id": row["account_id"],
                "event_type": row["event_type"],
                "payload": payload,
            },
            default=str,
        )
    summary = (
        ", ".join(f"{k}={_short(v)}" for k, v in payload.items())
        if isinstance(payload, dict)
        else _short(payload)
    )
    when = row["occurred_at"].strftime("%Y-%m-%d %H:%M")
    return f"{row['event_id']:>7}  {when}  {row['account_id'] or '-':<18}  {row['event_type']:<22}  {summary}"


def _short(v: Any, n: int = 60) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"


async def tail(
    conn: asyncpg.Connection,
    *,
    account: str | None,
    event_type: str | None,
    limit: int,
    follow: bool,
    out: TextIO,
    as_json: bool = False,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[], None] | None = None,
) -> int:
    """Print recent events, then (``follow``) new ones until ``stop`` is set. Returns the count printed."""
    printed = 0
    last_id = await conn.fetchval("SELECT coalesce(max(event_id), 0) FROM events")
    for row in await recent_events(conn, account=account, event_type=event_type, limit=limit):
        print(format_event(row, as_json), file=out, flush=True)
        printed += 1
    if not follow:
        return printed
    wake = asyncio.Event()

    def notified(*_: object) -> None:
        wake.set()

    await conn.add_listener("vim_events", notified)
    if on_listening:
        on_listening()
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            # Clear first and fix the upper bound before reading, so an event
            # inserted meanwhile is neither skipped nor waited for.
            wake.clear()
            upto = await conn.fetchval("SELECT coalesce(max(event_id), $1) FROM events", last_id)
            for row in await events_after(
                conn, last_id, account=account, event_type=event_type, upto=upto
            ):
                print(format_event(row, as_json), file=out, flush=True)
                printed += 1
            last_id = upto  # past the events that did not match the filters too
            waiter = asyncio.ensure_future(wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=CATCH_UP_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()
    finally:
        await conn.remove_listener("vim_events", notified)
    return printed


async def run_events(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        dsn = resolve_database_url(settings)
    except ConnectionError as e:
        print(str(e), file=sys.stderr)
        return 1
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as e:
        print(
            f"cannot connect to Postgres ({type(e).__name__}): is `make demo` running, or DATABASE_URL set?",
            file=sys.stderr,
        )
        return 1
    try:
        if args.follow and not args.json:
            print("following the event bus (Ctrl-C to stop)...", file=sys.stderr)
        await tail(
            conn,
            account=args.account,
            event_type=args.event_type,
            limit=args.limit,
            follow=args.follow,
            out=sys.stdout,
            as_json=args.json,
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await conn.close()
    return 0
