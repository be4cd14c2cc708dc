"""`python starter.py calibrate --from D1 --to D2 [--horizon 30,60,90] [--out FILE]`.

Fits the health configuration on the team's own history (telemetry and contracts in
Postgres) with a time-based split: the dates before ``--split`` (default: 60% of the way
from --from to --to) fit, the later ones validate. Each date sees only the data up to it,
through the same set-based path as the daily scan. Prints the calibration report, and
writes the calibrated config plus the report (Markdown and JSON). Nothing is adopted:
``starter.py config adopt FILE`` does that, explicitly (see cli/config.py).

Exit codes: 0 written (the report says whether the new config is better), 2 bad input,
3 the history cannot support a calibration (the message says what is missing).

Wiring (starter.py): ``add_calibrate_parser(subparsers)``; it sets ``run``.
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

from cli.backtest import add_date_range, backtest_dates, parse_date
from cli.score import CommandError, config_for_command, connect_db
from domain.calibration import (
    CalibrationError,
    CalibrationOptions,
    CalibrationReport,
    Calibrator,
    render_report,
)
from domain.config import HealthConfig

EXIT_REFUSED = 3


def _horizons(text: str) -> list[int]:
    try:
        values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of whole days (e.g. 30,60,90)"
        ) from None
    if not values or values[0] <= 0 or values[-1] > 730:
        raise argparse.ArgumentTypeError("horizons must be whole days between 1 and 730")
    return values


def add_calibrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate",
        help="fit weights, bands and thresholds on your own history; validate on later dates",
        description=(
            "Score every active account every --every days from --from to --to (each date sees "
            "only the data up to it), fit a readable config on the dates before --split and "
            "compare it with the current config on the dates after. Writes the new config and "
            "the report; adopting it is a separate, explicit step (`config adopt FILE`)."
        ),
    )
    add_date_range(p, every=7)
    p.add_argument(
        "--horizon",
        type=_horizons,
        default=[30, 60, 90],
        metavar="DAYS[,DAYS]",
        help="churn within these many days counts for a date (30,60,90)",
    )
    p.add_argument(
        "--split",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="first validation date (default: 60%% of the way from --from to --to)",
    )
    p.add_argument(
        "--observed-until",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="outcomes known up to this date (default: the latest usage event on record)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the current config to start from and compare with (default: the one in force)",
    )
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="calibrated config JSON")
    p.add_argument(
        "--red-share",
        type=float,
        default=0.10,
        metavar="SHARE",
        help="RED = this riskiest share of the fit observations (0.10); fewer, surer alerts below",
    )
    p.add_argument(
        "--amber-share", type=float, default=0.25, metavar="SHARE", help="AMBER = the next share"
    )
    p.add_argument("--min-churners", type=int, default=10, metavar="N")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N", help="resamples (200)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_calibrate_command)
    return p


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def observed_until_of(conn: Any) -> date | None:
    """The last day with telemetry: outcomes are known up to it (an exported history's end)."""
    ts = await conn.fetchval("SELECT max(occurred_at) FROM usage_events")
    return ts.date() if ts is not None else None


def _check(args: argparse.Namespace, observed_until: date) -> None:
    if args.every <= 0:
        raise CommandError("--every must be a positive number of days", 2)
    if args.date_to <= args.date_from:
        raise CommandError("--to must be after --from", 2)
    split = args.split
    if split is not None and not args.date_from < split <= args.date_to:
        raise CommandError("--split must fall after --from and on or before --to", 2)
    longest = max(args.horizon)
    if args.date_from + timedelta(days=longest) > observed_until:
        raise CommandError(
            f"the longest horizon ({longest} days) runs past the observed period: outcomes are "
            f"known until {observed_until}; use a shorter --horizon or an earlier --from",
            2,
        )
    if not (0 < args.red_share < 1 and 0 < args.amber_share < 1) or (
        args.red_share + args.amber_share >= 1
    ):
        raise CommandError("--red-share and --amber-share must be shares that sum below 1", 2)
    if args.min_churners <= 0 or args.bootstrap < 0:
        raise CommandError("--min-churners must be positive and --bootstrap not negative", 2)


async def calibrate_from_db(
    conn: Any,
    current: HealthConfig,
    dates: list[date],
    split: date,
    observed_until: date,
    options: CalibrationOptions,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[CalibrationReport, HealthConfig]:
    """Fit on the dates before ``split``, validate on the rest: each date scored from the data
    up to it through the daily scan's set-based path (``assess_with_facts``), for the
    accounts active that day. Raises ``CalibrationError`` when the history cannot support it."""
    from activities.health import assess_with_facts
    from activities.telemetry import fetch_account_ids, fetch_outcomes

    outcomes = await fetch_outcomes(conn, today=observed_until, since=dates[0])
    cal = Calibrator(current, outcomes, observed_until, split, options)
    fit_dates = [d for d in dates if cal.is_fit_date(d)]
    val_dates = [d for d in dates if cal.is_validation_date(d)]
    progress(
        f"config {current.version}; {len(fit_dates)} fit dates "
        f"{fit_dates[0] if fit_dates else '-'}..{fit_dates[-1] if fit_dates else '-'}, "
        f"{len(val_dates)} validation dates from {split}; outcomes known until {observed_until}"
    )
    for phase, todo in (("fit", fit_dates), ("validate", val_dates)):
        if phase == "validate":
            cal.fit()
        for i, d in enumerate(todo, 1):
            as_of = datetime.combine(d, dtime(), UTC)
            active = set(await fetch_account_ids(conn, as_of))
            got = await assess_with_facts(conn, as_of, current, None)
            for aid in sorted(active & set(got)):
                facts, assessment = got[aid]
                if phase == "fit":
                    cal.add_fit(facts, assessment)
                else:
                    cal.add_validation(facts, assessment)
            progress(f"  {phase} {i}/{len(todo)} {d}: {len(active)} accounts")
    if not val_dates:
        cal.fit()
    return cal.report()


async def run_calibrate_command(args: argparse.Namespace) -> int:
    from stack.settings import load_settings

    t0 = time.perf_counter()
    try:
        async with connect_db() as conn:
            current = await config_for_command(conn, args.config)
            observed = args.observed_until or await observed_until_of(conn)
            if observed is None:
                raise CommandError("no usage events on record: nothing to calibrate on", 3)
            _check(args, observed)
            split = args.split or args.date_from + (args.date_to - args.date_from) * 0.6
            options = CalibrationOptions(
                horizons=args.horizon,
                min_fit_churners=args.min_churners,
                bootstrap=args.bootstrap,
                red_share=args.red_share,
                amber_share=args.amber_share,
            )
            report, calibrated = await calibrate_from_db(
                conn,
                current,
                backtest_dates(args.date_from, args.date_to, args.every),
                split,
                observed,
                options,
                lambda msg: print(msg, file=sys.stderr),
            )
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except CalibrationError as e:
        print(f"error: cannot calibrate: {e}. No config was written.", file=sys.stderr)
        return EXIT_REFUSED
    out: Path = args.out or load_settings().data_dir / "calibration" / f"{calibrated.version}.json"
    markdown = render_report(report)
    _write(out, json.dumps(calibrated.model_dump(mode="json"), indent=2) + "\n")
    _write(out.with_suffix(".report.md"), markdown)
    _write(out.with_suffix(".report.json"), report.model_dump_json(indent=2) + "\n")
    print(report.model_dump_json(indent=2) if args.json else markdown, end="")
    print(
        f"\nwrote {out} (and {out.with_suffix('.report.md').name}, "
        f"{out.with_suffix('.report.json').name}) in {time.perf_counter() - t0:.1f}s.\n"
        f"Nothing changed yet. To adopt it: python starter.py config adopt {out}",
        file=sys.stderr,
    )
    return 0
