"""`python starter.py backtest --from DATE --to DATE [--every DAYS] [--config FILE] [--json]`.

Scores every account active at regular dates in the past, each from the data
up to that date only (the set-based path of the daily scan,
``assess_portfolio``), then compares what the engine said with what happened
later according to the contracts table (a term that ended with no renewal =
churned; a later row with more seats or modules = expanded): share of
churners flagged HIGH+ 30/60/90 days before, precision of HIGH+, ROC AUC of
the score, expansion precision/recall (definitions in domain/backtest.py).
Nothing is written, so a CS team can tune weights (--config) on its own history.

Wiring (starter.py): ``add_backtest_parser(subparsers)``; it sets ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg

from cli.score import CommandError, config_for_command, connect_db
from domain.config import HealthConfig


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_month(text: str) -> date:
    """'YYYY-MM' -> the first day of that month."""
    try:
        if len(text) != 7:
            raise ValueError(text)
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None


def add_date_range(
    p: argparse.ArgumentParser,
    every: int | None,
    parse: Callable[[str], date] = parse_date,
    metavar: str = "DATE",
) -> None:
    """--from, --to and --every: the past dates a back-test or a calibration scores
    (``every=None``: no --every; ``parse=parse_month``: whole months, e.g. retention)."""
    p.add_argument("--from", dest="date_from", type=parse, required=True, metavar=metavar)
    p.add_argument("--to", dest="date_to", type=parse, required=True, metavar=metavar)
    if every is not None:
        p.add_argument(
            "--every", type=int, default=every, metavar="DAYS", help=f"days between dates ({every})"
        )


def add_backtest_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "backtest",
        help="score past dates and measure how early and precisely churn/expansion were flagged",
        description=(
            "Score every active account every --every days from --from to --to (each date "
            "sees only the data up to it) and compare with the churns and expansions in the "
            "contracts table."
        ),
    )
    add_date_range(p, every=14)
    p.add_argument(
        "--horizon",
        type=int,
        default=180,
        metavar="DAYS",
        help="a churn within this many days after a date counts for it (180)",
    )
    p.add_argument(
        "--observed-until",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="outcomes known up to this date (default: the latest date with a fact in the "
        "data, so an exported history's survivors are not counted as churned); later "
        "horizons are censored",
    )
    p.add_argument("--config", type=Path, default=None, metavar="FILE")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(run=run_backtest_command)
    return p


def backtest_dates(start: date, end: date, every: int) -> list[date]:
    out, d = [], start
    while d <= end:
        out.append(d)
        d += timedelta(days=every)
    return out


async def collect_observations(
    conn: asyncpg.Connection, dates: list[date], config: HealthConfig
) -> list[Any]:
    """One Observation per account active at each date, scored from data up to that date."""
    from activities.health import assess_portfolio
    from activities.telemetry import fetch_account_ids
    from domain.backtest import Observation

    obs: list[Observation] = []
    for d in dates:
        as_of = datetime.combine(d, dtime(), UTC)
        active = set(await fetch_account_ids(conn, as_of))
        if not active:
            continue
        # the whole portfolio in one pass, then the accounts active that day
        for aid, a in sorted((await assess_portfolio(conn, as_of, config)).items()):
            if aid in active:
                obs.append(
                    Observation(
                        account_id=aid,
                        as_of=d,
                        score=a.snapshot.score,
                        churn_level=a.churn.level,
                        expansion_flagged=bool(a.opportunities),
                        band=a.snapshot.band,
                    )
                )
    return obs


async def _observed_until(conn: asyncpg.Connection, given: date | None) -> tuple[date, str]:
    """--observed-until, else the latest date with a fact in the data; and where it came from."""
    from activities.telemetry import fetch_data_until

    if given is not None:
        return given, "--observed-until"
    latest = await fetch_data_until(conn)
    if latest is None:
        raise CommandError("no telemetry in the database: nothing to back-test", 2)
    return latest, "the latest date with data; set --observed-until to change"


async def run_backtest_command(args: argparse.Namespace) -> int:
    from activities.telemetry import fetch_outcomes
    from domain.backtest import render_backtest, run_backtest

    if args.every <= 0 or args.horizon <= 0:
        print("error: --every and --horizon must be positive", file=sys.stderr)
        return 2
    if args.date_to < args.date_from:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    dates = backtest_dates(args.date_from, args.date_to, args.every)
    t0 = time.perf_counter()
    try:
        async with connect_db() as conn:
            config = await config_for_command(conn, args.config)
            observed_until, source = await _observed_until(conn, args.observed_until)
            observations = await collect_observations(conn, dates, config)
            outcomes = await fetch_outcomes(conn, today=observed_until, since=args.date_from)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    report = run_backtest(
        observations, outcomes, horizon_days=args.horizon, observed_until=observed_until
    )
    seconds = time.perf_counter() - t0
    if args.json:
        doc = report.model_dump(mode="json")
        doc.update(
            config_version=config.version,
            dates=[d.isoformat() for d in dates],
            observed_until=observed_until.isoformat(),
            observed_until_source=source,
            seconds=round(seconds, 2),
        )
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"config {config.version}; {len(dates)} dates from {dates[0]} to {dates[-1]} "
            f"every {args.every} days; outcomes known until {observed_until} ({source}); "
            f"{seconds:.1f}s"
        )
        print(render_backtest(report), end="")
    return 0
