"""The command line: `python starter.py COMMAND ...` (run without arguments for help).

Account commands talk to Temporal (handoff, list, describe, signal, updates);
`score`, `backtest`, `calibrate`, `config` and `events` read Postgres directly;
`ingest` writes usage rows to Postgres and signals the affected account workflows;
`usage archive` detaches old months of usage_events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence

from temporalio.client import Client

from cli.accounts import CliError, add_account_parsers
from cli.actions import add_action_parsers
from cli.backtest import add_backtest_parser
from cli.calibrate import add_calibrate_parser
from cli.config import add_config_parser
from cli.engagement import add_engagement_parsers
from cli.events import add_events_parser, run_events
from cli.forecast import add_forecast_parsers
from cli.ingest import add_ingest_parser
from cli.retention import add_retention_parser
from cli.schedule import add_schedule_parser
from cli.score import add_score_parser
from cli.usage import add_usage_parser
from stack.codec import KeyConfigError
from stack.connect import ConnectConfigError, target
from stack.connect import connect as connect_temporal
from stack.settings import Settings, load_settings


def add_console_parser(sub: argparse._SubParsersAction) -> None:
    from console.__main__ import add_arguments, run_from_starter

    p = sub.add_parser("console", help="serve the CS console (same as `python -m console`)")
    add_arguments(p).set_defaults(run=run_from_starter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py", description="Value in Motion: start and steer account workflows."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_account_parsers(sub)
    add_score_parser(sub)
    add_backtest_parser(sub)
    add_calibrate_parser(sub)
    add_config_parser(sub)
    add_events_parser(sub).set_defaults(run=run_events)
    add_console_parser(sub)
    add_ingest_parser(sub)
    add_schedule_parser(sub)
    add_engagement_parsers(sub)
    add_retention_parser(sub)
    add_forecast_parsers(sub)
    add_action_parsers(sub)
    add_usage_parser(sub)
    return parser


async def connect(settings: Settings) -> Client:
    try:
        return await connect_temporal(settings)
    except (KeyConfigError, ConnectConfigError) as err:
        raise CliError(str(err), 2) from None
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or ["connection failed"])[0]
        raise CliError(
            f"cannot reach Temporal at {target(settings).describe()}: {first}. Start it with "
            "`make demo`, or set TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or a TEMPORAL_PROFILE.",
            1,
        ) from err


async def main(
    argv: Sequence[str] | None = None,
    client: Client | None = None,
    settings: Settings | None = None,
) -> int:
    args = build_parser().parse_args(argv)
    settings = settings or load_settings()
    try:
        if hasattr(args, "check"):
            args.check(args)
        if hasattr(args, "temporal"):
            client = client or await connect(settings)
            return await args.temporal(client, settings, args)
        return await args.run(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code


def run_and_exit(argv: Sequence[str] | None = None) -> None:
    """Run a command and end the process with its exit code, whatever is left running.

    The Temporal client's Rust core keeps Tokio threads that outlive the event
    loop; if Python finalizes while one of them touches the interpreter, the
    process aborts (`Fatal Python error: PyGILState_Release`, exit 134, or a
    segfault) *after* the command printed its result, so a script checking the
    exit code is misled (temporalio/sdk-python#300). Nothing needs finalizing
    once the command returned: flush the output and leave with `os._exit`.
    """
    code = 1
    try:
        code = asyncio.run(main(argv))
    except KeyboardInterrupt:
        code = 130
    except SystemExit as done:  # argparse: --help (0) and usage errors (2)
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
