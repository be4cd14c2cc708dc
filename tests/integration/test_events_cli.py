"""`starter.py events`: recent events, filters, and --follow via LISTEN/NOTIFY."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from datetime import UTC, datetime

import asyncpg

from activities.channels.eventbus import publish
from cli.events import add_events_parser, tail
from domain.delivery import BusEvent

T = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def ev(key: str, account: str, kind: str, **payload: object) -> BusEvent:
    return BusEvent(
        event_key=key, account_id=account, event_type=kind, payload=payload, occurred_at=T
    )


def test_parser() -> None:
    parser = argparse.ArgumentParser()
    add_events_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["events", "--follow", "--account", "acme", "--type", "churn.*", "--limit", "5"]
    )
    assert (args.command, args.follow, args.account, args.event_type, args.limit, args.json) == (
        "events",
        True,
        "acme",
        "churn.*",
        5,
        False,
    )


async def test_recent_events_with_filters(db: asyncpg.Connection) -> None:
    for i in range(5):
        await publish(
            db,
            ev(
                f"k{i}",
                "acme" if i % 2 == 0 else "globex",
                "churn.alert" if i < 3 else "qbr.ready",
                n=i,
            ),
        )
    out = io.StringIO()
    assert (
        await tail(db, account="acme", event_type="churn.*", limit=10, follow=False, out=out) == 2
    )
    lines = out.getvalue().splitlines()
    assert "churn.alert" in lines[0] and "n=0" in lines[0] and "n=2" in lines[1]
    out = io.StringIO()
    await tail(db, account=None, event_type=None, limit=2, follow=False, out=out, as_json=True)
    assert [json.loads(line)["payload"]["n"] for line in out.getvalue().splitlines()] == [3, 4]


async def test_follow_prints_new_matching_events(db_dsn: str, db: asyncpg.Connection) -> None:
    await publish(db, ev("old", "acme", "churn.alert", n=0))
    follower = await asyncpg.connect(db_dsn)
    out, stop, listening = io.StringIO(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        tail(
            follower,
            account="acme",
            event_type=None,
            limit=0,
            follow=True,
            out=out,
            stop=stop,
            on_listening=listening.set,
        )
    )
    try:
        await asyncio.wait_for(listening.wait(), 5)
        await publish(db, ev("other", "globex", "churn.alert", n=1))
        await publish(db, ev("new", "acme", "qbr.ready", quarter="2026-Q4"))
        for _ in range(100):
            if "qbr.ready" in out.getvalue():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        printed = await asyncio.wait_for(task, 10)
        await follower.close()
    assert printed == 1 and "quarter=2026-Q4" in out.getvalue() and "globex" not in out.getvalue()
