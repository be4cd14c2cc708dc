"""`python starter.py score ACCOUNT_ID [--as-of DATE] [--json] [--config FILE]`, and
`python starter.py score --all [--as-of DATE] [--csv FILE] [--config FILE]`.

Computes the explained health score, churn risk, Lean findings and expansion
opportunities of one account straight from Postgres (no Temporal needed) and
prints them; nothing is written. The same code path as the workflow's
`score_account` activity and the daily scan (activities/health.py). `--all`
scores every account in one set-based pass (``assess_portfolio``) and writes
one CSV row per account (columns: ``domain.report.ROW_COLUMNS``).

The health config is the one the worker scores with (``config_for_command``:
the adopted config in force, else ``VIM_HEALTH_CONFIG`` over the defaults), or
``--config FILE``.

Wiring (starter.py): ``add_score_parser(subparsers)``; it sets ``run``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import asyncpg

from domain.config import HealthConfig, HealthConfigError, load_health_config

EXIT_UNKNOWN = 2


class CommandError(Exception):
    """A one-line explanation for the user, with the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse_as_of(text: str) -> datetime:
    """'YYYY-MM-DD' is midnight UTC at the start of that day (data up to then counts);
    a full ISO timestamp is taken as given (UTC when it has no offset)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO timestamp"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def load_config(path: Path | None) -> HealthConfig:
    try:
        return load_health_config(path=path)
    except (HealthConfigError, OSError) as e:
        raise CommandError(f"health config: {e}", 2) from e


async def config_for_command(conn: asyncpg.Connection, path: Path | None) -> HealthConfig:
    """--config FILE when given, else exactly what the worker scores with: the adopted
    config in force, else VIM_HEALTH_CONFIG over the shipped defaults."""
    import os

    from activities.config_store import ConfigResolver

    if path is not None:
        return load_config(path)
    try:
        return (await ConfigResolver(os.environ).in_force(conn)).config
    except HealthConfigError as e:
        raise CommandError(f"health config: {e}", 2) from e


@asynccontextmanager
async def connect_db() -> AsyncIterator[asyncpg.Connection]:
    """DATABASE_URL, or the running embedded server; a one-line reason when neither works."""
    from stack.postgres import resolve_database_url
    from stack.settings import load_settings

    settings = load_settings()
    try:
        dsn = resolve_database_url(settings)
    except ConnectionError as e:
        raise CommandError(str(e)) from e
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        where = (
            "DATABASE_URL" if settings.database_url else f"the embedded server in {settings.pgdata}"
        )
        raise CommandError(
            f"cannot connect to Postgres via {where} ({type(e).__name__}: {e}); "
            "start it with `make demo` or point DATABASE_URL at a reachable server"
        ) from e
    try:
        yield conn
    finally:
        await conn.close()


def add_score_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="explained health score, churn risk and findings of one account (reads Postgres)",
        description=(
            "Compute one account's health score (every signal explained), churn risk, Lean "
            "waste findings and expansion opportunities from the telemetry up to --as-of. "
            "Nothing is written."
        ),
    )
    p.add_argument("account_id", metavar="ACCOUNT_ID", nargs="?")
    p.add_argument(
        "--all",
        action="store_true",
        help="every account, one CSV row each (score, band, coverage, churn level, every "
        "sub-score, findings, opportunities), through the daily scan's set-based path",
    )
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --all: write the rows to FILE (default: standard output)",
    )
    p.add_argument(
        "--as-of",
        type=parse_as_of,
        default=None,
        metavar="DATE",
        help="score as of this date (YYYY-MM-DD = its midnight UTC) or ISO timestamp; default now",
    )
    p.add_argument("--json", action="store_true", help="the full assessment as JSON")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="health config JSON override (default: the config the worker scores with)",
    )
    p.set_defaults(run=run_score)
    return p


async def run_score(args: argparse.Namespace) -> int:
    from activities.health import assess_with_facts
    from domain.report import render_assessment
    from domain.summary import summarize

    as_of: datetime = args.as_of or datetime.now(UTC)
    if args.all == (args.account_id is not None):
        print("error: give either ACCOUNT_ID or --all", file=sys.stderr)
        return 2
    if args.csv is not None and not args.all:
        print("error: --csv goes with --all", file=sys.stderr)
        return 2
    if args.all:
        return await _score_all(args, as_of)
    try:
        async with connect_db() as conn:
            config = await config_for_command(conn, args.config)
            got = await assess_with_facts(conn, as_of, config, [args.account_id])
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.account_id not in got:
        print(
            f"error: unknown account {args.account_id!r} (no row in the accounts table)",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
    facts, assessment = got[args.account_id]
    if args.json:
        doc = {
            "summary": summarize(assessment, facts).model_dump(mode="json"),
            "assessment": assessment.model_dump(mode="json"),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(render_assessment(assessment), end="")
    return 0


async def _score_all(args: argparse.Namespace, as_of: datetime) -> int:
    """`score --all`: every account at as_of, one row each, via assess_portfolio."""
    from activities.health import assess_portfolio
    from activities.telemetry import fetch_account_ids
    from domain.report import ROW_COLUMNS, assessment_row

    try:
        async with connect_db() as conn:
            config = await config_for_command(conn, args.config)
            assessments = await assess_portfolio(conn, as_of, config)
            in_force = set(await fetch_account_ids(conn, as_of))
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    rows = [assessment_row(a, aid in in_force, config) for aid, a in sorted(assessments.items())]
    try:
        out = args.csv.open("w", newline="", encoding="utf-8") if args.csv else sys.stdout
    except OSError as e:
        print(f"error: cannot write {args.csv}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        writer = csv.DictWriter(out, fieldnames=list(ROW_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.csv:
            out.close()
    bands = Counter(r["band"] or "none" for r in rows)
    print(
        f"{len(rows)} accounts scored as of {as_of.isoformat()} with config {config.version}"
        + (f" -> {args.csv}" if args.csv else "")
        + f"; bands: {', '.join(f'{b} {n}' for b, n in sorted(bands.items()))}",
        file=sys.stderr,
    )
    return 0
