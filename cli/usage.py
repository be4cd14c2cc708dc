"""`python starter.py usage archive --before YYYY-MM [--dry-run]`.

Detaches the monthly partitions of ``usage_events`` (migration 013) older than the month
given, so they can be archived: each becomes a plain table (``usage_events_pYYYYMM``) to
dump and drop. Refused (exit 2) when the month is inside the longest usage window of the
health configuration: the facts of a rescore at any time of day read raw events there.

Wiring (starter.py): ``add_usage_parser(subparsers)``; it sets ``run``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from activities.telemetry import usage_horizon
from cli.backtest import parse_month
from cli.score import CommandError, connect_db
from domain.config import load_health_config
from domain.health import fmt_num
from ingest.partitions import detach_before

EXIT_BAD_INPUT = 2


def add_usage_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("usage", help="usage_events storage: archive old months")
    what = p.add_subparsers(dest="usage_command", required=True)
    a = what.add_parser(
        "archive",
        help="detach the monthly partitions of usage_events before a month",
        description=(
            "Detach every monthly partition of usage_events for a month before --before "
            "(rows of those months in the DEFAULT partition get their partition first). "
            "Each becomes a plain table usage_events_pYYYYMM: dump it (pg_dump -t NAME) and "
            "drop it. The rollup and the message ids of those months stay."
        ),
    )
    a.add_argument("--before", required=True, type=parse_month, metavar="YYYY-MM")
    a.add_argument("--dry-run", action="store_true", help="say what would be detached")
    a.set_defaults(run=run_usage_archive)
    return p


def latest_cutoff(today: date, horizon_days: int) -> date:
    """The latest --before allowed: the month holding the oldest day of the usage window."""
    return (today - timedelta(days=horizon_days)).replace(day=1)


async def run_usage_archive(args: argparse.Namespace, today: date | None = None) -> int:
    before: date = args.before
    today = today or datetime.now(UTC).date()
    horizon = usage_horizon(load_health_config().windows)
    limit = latest_cutoff(today, horizon)
    if before > limit:
        print(
            f"error: --before {before:%Y-%m} is inside the {horizon}-day usage window "
            f"(rescores read raw events there); the latest allowed is {limit:%Y-%m}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        async with connect_db() as conn:
            parts = await detach_before(conn, before, dry_run=args.dry_run)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    verb = "would detach" if args.dry_run else "detached"
    if not parts:
        print(f"nothing to detach: no usage_events partition before {before:%Y-%m}")
        return 0
    for p in parts:
        print(f"{verb} {p.name} ({p.month:%Y-%m}, {fmt_num(p.rows)} rows)")
    total = sum(p.rows for p in parts)
    print(f"{verb} {len(parts)} month(s), {fmt_num(total)} rows; the rollup keeps their usage")
    if not args.dry_run:
        print("archive each table (pg_dump -t NAME), then DROP TABLE NAME")
    return 0
