"""`python starter.py ingest usage FILE|-`: bulk usage rows from a CSV or Parquet file (or CSV on stdin).

The format follows the file name (`.parquet`/`.pq` is Parquet, anything else CSV) unless
`--format` says otherwise. Columns (a CSV header row or Parquet column names, any
order): account_id, user_id, occurred_at (ISO 8601 with a time zone; in Parquet a
timestamp with a time zone, or such a string), event_type, and optionally quantity
(default 1) and message_id
(default: a digest of the row, so re-loading a file adds nothing). Rows go
straight to Postgres in chunks (ingest/store.py), deduplicated by
(account_id, message_id); rows of unknown accounts are held in
usage_quarantine. Each affected account workflow then gets one
`usage_arrived` signal. A refused row is reported with its line and reason
and the rest is kept (a Parquet row's "line" is its 1-based row number). Exit 0: every row accepted; 2: some row refused (or the
file has no usable header / cannot be read); 1: Postgres or Temporal
unreachable.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client

from cli.accounts import EXIT_BAD_INPUT, CliError
from domain.health import fmt_num
from domain.ingest import CSV_COLUMNS, CSV_REQUIRED, IngestEvent, build_event, row_error
from ingest import quarantine
from ingest.notify import Coalescer
from ingest.store import CHUNK_ROWS, ChunkWriter, StoreResult
from stack.settings import Settings

REFUSALS_SHOWN = 50
PROGRESS_EVERY_SECONDS = 1.0
csv.field_size_limit(1_000_000)


def add_ingest_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="bulk-load usage events from a CSV file or stdin (straight to Postgres)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_subparsers(dest="what", required=True)
    u = what.add_parser("usage", help="usage events (CSV with a header row, or Parquet)")
    u.add_argument("file", help="CSV or Parquet file, or - for CSV on stdin")
    u.add_argument(
        "--format",
        choices=("auto", "csv", "parquet"),
        default="auto",
        help="file format (default: from the extension; .parquet/.pq is Parquet)",
    )
    u.add_argument("--chunk", type=int, default=CHUNK_ROWS, help="rows per write (default 5000)")
    u.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    u.set_defaults(check=_check, temporal=cmd_ingest_usage)
    q = what.add_parser(
        "quarantine",
        help="rows held for unknown accounts: list (default), --release, --drop",
        description=(
            "Without options: each account with held rows, how many, the event and "
            "receipt dates, the sources, and whether the account exists now. --release "
            "moves the held rows of accounts that exist now into usage_events (all such "
            "accounts, or the ones named) and signals their workflows; --drop discards "
            "the held rows of the accounts named (never all at once)."
        ),
    )
    act = q.add_mutually_exclusive_group()
    act.add_argument("--release", nargs="*", metavar="ACCOUNT", help="release (default: all known)")
    act.add_argument("--drop", nargs="+", metavar="ACCOUNT", help="discard these accounts' rows")
    q.set_defaults(temporal=cmd_quarantine)


def _check(args: argparse.Namespace) -> None:
    if args.file != "-" and not Path(args.file).is_file():
        raise CliError(f"cannot read {args.file}: no such file")
    if args.chunk < 1:
        raise CliError("--chunk must be at least 1")
    if args.file == "-" and _format(args) == "parquet":
        raise CliError("Parquet cannot be read from stdin: give a file")


def _format(args: argparse.Namespace) -> str:
    if args.format != "auto":
        return str(args.format)
    return "parquet" if Path(args.file).suffix.lower() in (".parquet", ".pq") else "csv"


def _check_columns(header: Sequence[str]) -> None:
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise CliError(
            f"the header lacks column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}"
        )
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise CliError(f"unknown column(s) {', '.join(unknown)}; expected {', '.join(CSV_COLUMNS)}")


def _open(source: str) -> TextIO:
    """The CSV stream: stdin for '-' (read as the rows are written, chunk by chunk)."""
    return sys.stdin if source == "-" else open(source, newline="", encoding="utf-8")


def read_rows(stream: TextIO, refused: list[tuple[int, str]]) -> Iterator[IngestEvent]:
    """Valid rows of a CSV stream; each refused row is appended as (line, reason)."""
    reader = csv.DictReader(stream)
    _check_columns(reader.fieldnames or [])
    for row in reader:
        line = reader.line_num
        if None in row:
            refused.append((line, f"{len(row[None])} field(s) more than the header"))
            continue
        try:
            yield build_event(row)
        except (ValidationError, ValueError) as err:
            refused.append((line, row_error(err)))


def read_parquet_rows(path: str, refused: list[tuple[int, str]]) -> Iterator[IngestEvent]:
    """Valid rows of a Parquet file, read one record batch at a time (bounded memory)."""
    import pyarrow.parquet as pq  # only the Parquet path pays for the import

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise CliError(f"{path} is not a readable Parquet file: {err}") from err
    _check_columns(parquet.schema_arrow.names)
    number = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        for row in batch.to_pylist():
            number += 1
            try:
                yield build_event({k: _cell(v) for k, v in row.items()})
            except (ValidationError, ValueError) as err:
                refused.append((number, row_error(err)))


def _cell(value: Any) -> Any:
    """A naive Parquet timestamp has no time zone: refuse it like a CSV time without one."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()
    return value


async def cmd_ingest_usage(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    pool = await _pool(settings)
    coalescer = Coalescer(client, interval=0)
    refused: list[tuple[int, str]] = []
    total = StoreResult()
    started = last = time.monotonic()
    parquet = _format(args) == "parquet"
    try:
        stream = None if parquet else _open(args.file)
    except OSError as err:
        await pool.close()
        raise CliError(f"cannot read {args.file}: {err.strerror}") from err
    rows = read_parquet_rows(args.file, refused) if stream is None else read_rows(stream, refused)
    try:
        chunk: list[IngestEvent] = []
        writer = ChunkWriter(pool, "file")
        try:
            for event in rows:
                chunk.append(event)
                if len(chunk) >= args.chunk:
                    await writer.put(chunk)
                    chunk = []
                    if not args.quiet and time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
                        last = time.monotonic()
                        _progress(writer.total, refused, last - started)
            await writer.put(chunk)
            total = await writer.drain()
        except UnicodeDecodeError as err:
            raise CliError(f"{args.file} is not UTF-8 text: {err.reason}") from err
        finally:
            if stream is not None and stream is not sys.stdin:
                stream.close()
    finally:
        await pool.close()
    coalescer.add(total.arrived)
    sent = await coalescer.flush(force=True)
    elapsed = time.monotonic() - started
    print(
        f"{fmt_num(total.received + len(refused))} row(s) read in {elapsed:.1f} s: "
        f"{fmt_num(total.written)} written, {fmt_num(total.duplicates)} duplicate(s) skipped, "
        f"{fmt_num(total.quarantined)} held for unknown account(s), "
        f"{fmt_num(len(refused))} refused; {sent.signalled} account workflow(s) signalled"
        + (f", {sent.not_running} without a running workflow" if sent.not_running else "")
    )
    for aid, n in sorted(total.held.items()):
        print(f"unknown account {aid!r}: {fmt_num(n)} row(s) held in usage_quarantine")
    for line, reason in refused[:REFUSALS_SHOWN]:
        print(f"line {line}: {reason}", file=sys.stderr)
    if len(refused) > REFUSALS_SHOWN:
        print(f"... and {len(refused) - REFUSALS_SHOWN} more refused row(s)", file=sys.stderr)
    return EXIT_BAD_INPUT if refused else 0


def _progress(total: StoreResult, refused: list[tuple[int, str]], elapsed: float) -> None:
    rate = total.received / elapsed if elapsed > 0 else 0.0
    print(
        f"ingest: {fmt_num(total.received)} rows stored ({fmt_num(total.written)} new), "
        f"{fmt_num(len(refused))} refused, {fmt_num(round(rate))} rows/s",
        file=sys.stderr,
        flush=True,
    )


async def _pool(settings: Settings) -> asyncpg.Pool:
    from stack.postgres import resolve_database_url

    try:
        return await asyncpg.create_pool(
            resolve_database_url(settings), min_size=1, max_size=2, timeout=10
        )
    except (OSError, ConnectionError, asyncpg.PostgresError) as err:
        raise CliError(f"cannot reach Postgres: {err}", 1) from err


async def cmd_quarantine(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    pool = await _pool(settings)
    try:
        async with pool.acquire() as conn:
            held = await quarantine.held_accounts(conn)
        if args.drop:
            async with pool.acquire() as conn:
                dropped = await quarantine.drop(conn, args.drop)
            for aid in args.drop:
                print(f"{aid}: {fmt_num(dropped.get(aid, 0))} held row(s) dropped")
            return 0
        if args.release is None:
            return _print_held(held)
        known = [h.account_id for h in held if h.known]
        named = list(args.release) or known
        unknown = [a for a in named if a not in known]
        result = await quarantine.release(pool, [a for a in named if a in known])
    finally:
        await pool.close()
    coalescer = Coalescer(client, interval=0)
    coalescer.add(result.arrived)
    sent = await coalescer.flush(force=True)
    print(
        f"{fmt_num(result.received)} held row(s) released: {fmt_num(result.written)} written, "
        f"{fmt_num(result.duplicates)} already on file; "
        f"{sent.signalled} account workflow(s) signalled"
    )
    for aid in unknown:
        print(f"{aid}: not released (no such account, or nothing held)", file=sys.stderr)
    return EXIT_BAD_INPUT if unknown and args.release else 0


def _print_held(held: list[quarantine.HeldAccount]) -> int:
    if not held:
        print("usage_quarantine is empty")
        return 0
    print(
        f"{'account':<28} {'rows':>9}  {'events from':<10} {'to':<10}  "
        f"{'last received':<16}  {'exists':<6}  sources"
    )
    for h in held:
        print(
            f"{h.account_id[:28]:<28} {fmt_num(h.rows):>9}  {h.first_event:%Y-%m-%d} "
            f"{h.last_event:%Y-%m-%d}  {h.last_received:%Y-%m-%d %H:%M}  "
            f"{'yes' if h.known else 'no':<6}  {', '.join(h.sources)}"
        )
    if any(h.known for h in held):
        print("accounts that exist now: `starter.py ingest quarantine --release` moves their rows")
    return 0
