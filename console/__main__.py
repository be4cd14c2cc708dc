"""`python -m console [--host H] [--port P]` (or `starter.py console`): serve the CS console.

Same settings as the rest (stack/settings.py). Binds 127.0.0.1 by default; binding any
other address is refused unless VIM_CONSOLE_TOKEN or VIM_CONSOLE_USERS is configured.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Sequence
from typing import Any

from stack.settings import Settings, load_settings

EXIT_BAD_INPUT = 2


class ConsoleError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(settings: Settings, host: str) -> None:
    if not is_loopback(host) and not settings.console_token and not settings.console_users:
        raise ConsoleError(
            f"refusing to bind {host}: outside 127.0.0.1 the console needs a credential; "
            "set VIM_CONSOLE_TOKEN or VIM_CONSOLE_USERS=name:password,...",
            EXIT_BAD_INPUT,
        )


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--host", help="address to bind (default VIM_CONSOLE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default VIM_CONSOLE_PORT or 8400)")
    return p


async def serve(args: argparse.Namespace, settings: Settings | None = None) -> int:
    import uvicorn

    from activities.db import create_pool, describe_dsn
    from console.app import create_app
    from console.data import Console
    from stack.postgres import resolve_database_url

    try:
        settings = settings or load_settings()
    except ValueError as err:
        raise ConsoleError(str(err), EXIT_BAD_INPUT) from err
    host = args.host or settings.console_host
    port = args.port or settings.console_port
    check_binding(settings, host)
    try:
        dsn = resolve_database_url(settings)
        pool = await create_pool(dsn, max_size=8)
    except (ConnectionError, OSError) as err:
        raise ConsoleError(f"cannot reach Postgres: {err}") from err
    client: Any = None
    try:
        from starter import connect

        client = await connect(settings)
    except Exception as err:  # the console still shows Postgres data without Temporal
        print(
            f"[console] Temporal unavailable, live phase and decisions off: {err}", file=sys.stderr
        )
    app = create_app(Console(settings=settings, pool=pool, client=client))
    print(
        f"[console] http://{host}:{port}/  (Postgres {describe_dsn(dsn)}, "
        f"Temporal {settings.temporal_address})",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    try:
        await server.serve()
    finally:
        await pool.close()
    return 0


async def run_from_starter(args: argparse.Namespace) -> int:
    """`starter.py console`: the same server, errors reported like the other commands."""
    try:
        return await serve(args)
    except ConsoleError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m console", description=__doc__))
    args = parser.parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except ConsoleError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
