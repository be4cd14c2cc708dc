"""`python -m ingest [--host H] [--port P] [--interval S] [--no-signals]`: the Segment endpoint.

Write keys: VIM_INGEST_WRITE_KEYS (comma-separated) or --write-key. Postgres:
DATABASE_URL or the embedded server; Temporal: the same settings as the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading

import asyncpg

from ingest.http import Ingestor, build_server
from ingest.notify import DEFAULT_INTERVAL_SECONDS, Coalescer
from stack.connect import connect
from stack.postgres import resolve_database_url
from stack.settings import load_settings

DEFAULT_ADDRESS = "127.0.0.1:8235"


async def serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    host, _, port = args.address.rpartition(":")
    keys = [
        k.strip()
        for k in (args.write_key or os.environ.get("VIM_INGEST_WRITE_KEYS", "")).split(",")
    ]
    keys = [k for k in keys if k]
    if not keys:
        print(
            "error: no write key configured: set VIM_INGEST_WRITE_KEYS or --write-key",
            file=sys.stderr,
        )
        return 2
    pool = await asyncpg.create_pool(resolve_database_url(settings), min_size=1, max_size=4)
    client = None if args.no_signals else await connect(settings)
    coalescer = Coalescer(client, args.interval)
    server = build_server(
        Ingestor(pool, coalescer),
        asyncio.get_running_loop(),
        host=host or "127.0.0.1",
        port=int(port),
        write_keys=keys,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    bound = f"{bound_host!s}:{bound_port}"
    print(f"ingest: Segment-compatible endpoint on http://{bound}/v1/batch", flush=True)
    flusher = asyncio.create_task(coalescer.run())
    try:
        await asyncio.Event().wait()
    finally:
        server.shutdown()
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await coalescer.flush(force=True)
        await pool.close()
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    p = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    p.add_argument(
        "--address",
        default=os.environ.get("VIM_INGEST_ADDRESS", DEFAULT_ADDRESS),
        help=f"listen address (default {DEFAULT_ADDRESS}; VIM_INGEST_ADDRESS)",
    )
    p.add_argument("--write-key", help="accepted write key(s), comma-separated")
    p.add_argument(
        "--interval",
        type=float,
        default=float(os.environ.get("VIM_INGEST_SIGNAL_SECONDS", DEFAULT_INTERVAL_SECONDS)),
        help="at most one usage_arrived signal per account per this many seconds (default 60)",
    )
    p.add_argument("--no-signals", action="store_true", help="write rows only, signal no workflow")
    args = p.parse_args()
    try:
        sys.exit(asyncio.run(serve(args)))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
