"""`python -m stack demo|up|down|status`: the embedded runtime.

`demo` brings up Postgres, the Temporal dev server and the worker, loads and
hands off the demo portfolio, prints where to look, and runs until Ctrl-C,
which stops what it started. Run it again: the same durable workflows resume
from the persisted state (nothing is handed off twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import asyncpg

from stack.codec import ensure_local_key, key_file, load_keys
from stack.migrate import migrate_dsn
from stack.postgres import embedded_dsn, resolve_database_url, stop_embedded
from stack.settings import ROOT, Settings, load_settings
from stack.temporal_dev import port_open, start_dev_server, stop_dev_server

HANDOFF_CONCURRENCY = 32


def say(msg: str) -> None:
    show(f"[vim] {msg}\n")


def show(text: str) -> None:
    """Print, surviving a reader that went away.

    Under `make demo | tee log`, Ctrl-C stops `tee` too: every later print
    would raise BrokenPipeError, out of the cleanup that stops what the demo
    started. Once the pipe is broken, output goes to /dev/null instead.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


async def handoff_portfolio(settings: Settings, handoffs: list) -> tuple[int, int]:
    """Start every account; those already running are left alone. Returns (started, already)."""
    from cli.accounts import EXIT_CONFLICT, CliError, start_account
    from starter import connect

    client = await connect(settings)
    started = already = 0
    sem = asyncio.Semaphore(HANDOFF_CONCURRENCY)

    async def one(h: object) -> None:
        nonlocal started, already
        async with sem:
            try:
                await start_account(client, h, settings)  # type: ignore[arg-type]
                started += 1
            except CliError as err:
                if err.code != EXIT_CONFLICT:
                    raise
                already += 1

    await asyncio.gather(*(one(h) for h in handoffs))
    return started, already


async def schedule_portfolio_scan(settings: Settings) -> str:
    """Create the portfolio scan's Schedule unless it exists (VIM_SCAN_* settings)."""
    from cli.schedule import SCHEDULE_ID, ensure_schedule, schedule_from_env
    from starter import connect

    sched = schedule_from_env()
    created = await ensure_schedule(await connect(settings), settings, sched)
    at = f"{int(sched.at.total_seconds()) // 3600:02d}:{int(sched.at.total_seconds()) % 3600 // 60:02d}"
    return (
        f"schedule {SCHEDULE_ID} {'created' if created else 'already there'}: every "
        f"{sched.every_hours:g} h at {at} UTC, {sched.chunk} accounts per chunk"
    )


async def load_demo(dsn: str, as_of: date, seed: int) -> list:
    from demo.load import load_portfolio
    from demo.portfolio import generate_portfolio

    portfolio = generate_portfolio(seed=seed, as_of=as_of)
    conn = await asyncpg.connect(dsn)
    try:
        report = await load_portfolio(conn, portfolio)
    finally:
        await conn.close()
    if getattr(report, "skipped", False):
        say("demo portfolio already loaded: reusing it")
    else:
        say(f"demo portfolio loaded with COPY: {report}")
    return portfolio.handoffs()


def demo_filters(as_of: date) -> list[str]:
    """Web UI filters the demo suggests (no ORDER BY: the dev server and Temporal Cloud refuse it)."""
    return [
        "HealthBand = 'RED' AND ChurnRisk IN ('HIGH', 'CRITICAL')",
        "AccountPhase = '4-value-activation'",
        f"RenewalDate < '{date.fromordinal(as_of.toordinal() + 90)}T00:00:00Z'",
    ]


def demo_as_of(settings: Settings) -> date:
    """The portfolio's date is fixed at first load, so a second run regenerates the same handoffs."""
    marker = settings.data_dir / "demo_as_of"
    if marker.exists():
        return date.fromisoformat(marker.read_text().strip())
    today = datetime.now(UTC).date()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(today.isoformat())
    return today


def up(
    settings: Settings, cleanup: contextlib.ExitStack | None = None
) -> tuple[str, bool, subprocess.Popen | None]:
    """Postgres + Temporal. Returns (dsn, we started Postgres, temporal process we started).

    With `cleanup`, what this call starts is registered there to be stopped the
    moment it runs, so an interruption between two steps leaks nothing.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pg_started = False
    if settings.database_url:
        dsn = settings.database_url
        say(f"Postgres: DATABASE_URL ({dsn.split('@')[-1]})")
    else:
        pg_started = embedded_dsn(settings.pgdata) is None
        dsn = resolve_database_url(settings, start=True)
        if pg_started and cleanup is not None:
            cleanup.callback(_stop_postgres, settings)
        say(
            f"Postgres: embedded in {settings.pgdata} ({'started' if pg_started else 'already running'})"
        )
    applied = asyncio.run(migrate_dsn(dsn))
    say(f"schema migrations: {'applied ' + str(applied) if applied else 'up to date'}")
    reused = port_open(settings.temporal_address)
    encrypted = load_keys(settings.encryption_keys, settings.data_dir) is not None
    proc = start_dev_server(settings, codec_endpoint=settings.codec_url if encrypted else None)
    if proc is not None and cleanup is not None:
        cleanup.callback(_stop_temporal, settings, proc)
    say(
        f"Temporal: {settings.temporal_address} ({'already running, reused' if reused else 'dev server started'}), "
        f"state in {settings.temporal_db_file}"
    )
    return dsn, pg_started, proc


def demo_encryption(settings: Settings) -> str:
    """The demo encrypts payloads: with VIM_ENCRYPTION_KEYS, else a local key under the data dir."""
    if settings.encryption_keys:
        return "payload encryption: on (VIM_ENCRYPTION_KEYS)"
    existed = key_file(settings.data_dir).exists()
    path = ensure_local_key(settings.data_dir)
    return f"payload encryption: on, local key {path} ({'reused' if existed else 'created'})"


def _stop_postgres(settings: Settings) -> None:
    stop_embedded(settings.pgdata)
    say("Postgres stopped (data kept)")


def _stop_temporal(settings: Settings, proc: subprocess.Popen) -> None:
    stop_dev_server(settings, proc)
    say("Temporal dev server stopped (state kept)")


def _stop_process(proc: subprocess.Popen, grace_seconds: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _Stopping(Exception):
    """Ctrl-C or SIGTERM arrived while the demo was starting."""


def cmd_demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    t0 = time.monotonic()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def check() -> None:
        if stopping:
            raise _Stopping

    # From the first line on: a signal only sets a flag, checked between steps, and
    # every started service is stopped by the ExitStack (in reverse order) whatever
    # ends the run: Ctrl-C, an error, or a reader of our output that went away.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with contextlib.ExitStack() as started:
        started.callback(say, "stopping what this run started ...")
        try:
            say(demo_encryption(settings))
            dsn, _, _ = up(settings, started)
            check()
            env = dict(os.environ, DATABASE_URL=dsn, VIM_DATA_DIR=str(settings.data_dir))
            worker_log = settings.data_dir / "worker.log"
            with open(worker_log, "ab") as log:
                worker = subprocess.Popen(
                    [sys.executable, str(ROOT / "worker.py")],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                started.callback(_stop_process, worker, settings.shutdown_grace_seconds + 10)
                codec = subprocess.Popen(
                    [sys.executable, "-m", "stack", "codec-server"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                started.callback(_stop_process, codec, 10)
            with open(settings.data_dir / "console.log", "ab") as log:
                console = subprocess.Popen(
                    [sys.executable, "-m", "console"], env=env, cwd=ROOT, stdout=log, stderr=log
                )
                started.callback(_stop_process, console, 10)
            as_of = demo_as_of(settings)
            handoffs = asyncio.run(load_demo(dsn, as_of, args.seed))
            check()
            started_n, already = asyncio.run(handoff_portfolio(settings, handoffs))
            say(
                f"handed off {started_n} account(s), {already} already running "
                f"({len(handoffs)} in the portfolio) in {time.monotonic() - t0:.0f}s since start"
            )
            scan_schedule = asyncio.run(schedule_portfolio_scan(settings))
            say(f"portfolio scan: {scan_schedule}")
            ns = settings.temporal_namespace
            show(
                f"""
  CS console        http://{settings.console_host}:{settings.console_port}/   (log {settings.data_dir / "console.log"})
  Temporal Web UI   {settings.ui_url}/namespaces/{ns}/workflows
      filter e.g.   {(chr(10) + " " * 20).join(demo_filters(as_of))}
  Accounts          .venv/bin/python starter.py list --query "HealthBand = 'RED'"
  One account       .venv/bin/python starter.py describe northwind-tier1
  Explained score   .venv/bin/python starter.py score northwind-tier1
  Event bus         .venv/bin/python starter.py events --follow
  Decrypted view    payloads are encrypted; the Web UI above decrypts them through
                    the codec server {settings.codec_url} (another Web UI: Settings >
                    Codec Server); CLI: .venv/bin/temporal workflow show --codec-endpoint {settings.codec_url} --workflow-id account-northwind-tier1
  Metrics           {settings.metrics_url or "off (VIM_METRICS_ADDRESS is empty)"}   (Prometheus: SDK temporal_*, application vim_*)
  Local outbox      {settings.outbox_dir}   (drafts: no credentials configured)
  Portfolio scan    {scan_schedule}; starter.py schedule describe|trigger (Web UI: Schedules)
  Digests           {settings.policy.digest} at {settings.policy.digest_hour_utc:02d}:00 UTC, one email per person (VIM_DIGEST); detail in outbox pages/
  Postgres          {dsn}
  Worker log        {worker_log}

Running until Ctrl-C. Run `make demo` again later: the same workflows resume.

"""
            )
            while not stopping and worker.poll() is None:
                time.sleep(0.5)
            if worker.poll() is not None and not stopping:
                say(f"worker exited with {worker.returncode}")
                return 1
            return 0
        except _Stopping:
            return 130


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    up(settings)
    say("running in the background; `python -m stack down` stops them")
    if load_keys(settings.encryption_keys, settings.data_dir) is not None:
        # The Web UI was pointed at the codec server, which `up` does not run in the background.
        say(
            f"payloads are encrypted: run `python -m stack codec-server` for the Web UI to show "
            f"them decrypted ({settings.codec_url})"
        )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    settings = load_settings()
    say("Temporal " + ("stopped" if stop_dev_server(settings) else "was not started by us"))
    if not settings.database_url:
        say("Postgres " + ("stopped" if stop_embedded(settings.pgdata) else "was not running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    say(
        f"Temporal {settings.temporal_address}: {'up' if port_open(settings.temporal_address) else 'down'}"
    )
    if settings.database_url:
        say("Postgres: DATABASE_URL")
    else:
        say(
            f"Postgres embedded: {'up' if embedded_dsn(settings.pgdata) else 'down'} ({settings.pgdata})"
        )
    return 0


def cmd_codec_server(args: argparse.Namespace) -> int:
    import logging

    from stack.codec import EncryptionCodec, KeyConfigError
    from stack.codec_server import build_server

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    try:
        keys = load_keys(settings.encryption_keys, settings.data_dir)
    except KeyConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if keys is None:
        print(
            f"error: no VIM_ENCRYPTION_KEYS and no key file {key_file(settings.data_dir)}: "
            "nothing to decrypt with",
            file=sys.stderr,
        )
        return 2
    host, _, port = (args.address or settings.codec_address).rpartition(":")
    origins = settings.codec_origins or default_codec_origins(settings)
    server = build_server(EncryptionCodec(keys), host=host, port=int(port), origins=origins)
    say(
        f"codec server on http://{host}:{server.server_address[1]} (keys {', '.join(keys.ids)}; "
        f"CORS for {', '.join(origins)})"
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def default_codec_origins(settings: Settings) -> tuple[str, ...]:
    """The Web UI of the dev server, by both names of the loopback host."""
    names = (settings.ui_url, f"http://localhost:{settings.ui_port}")
    return tuple(dict.fromkeys((*names, f"http://127.0.0.1:{settings.ui_port}")))


def cmd_new_key(args: argparse.Namespace) -> int:
    from stack.codec import new_key_entry

    print(new_key_entry(args.id))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stack")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="everything, with the demo portfolio, until Ctrl-C")
    d.add_argument("--seed", type=int, default=7)
    d.set_defaults(fn=cmd_demo)
    sub.add_parser("up", help="Postgres + Temporal in the background").set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop them").set_defaults(fn=cmd_down)
    sub.add_parser("status").set_defaults(fn=cmd_status)
    c = sub.add_parser("codec-server", help="decrypt payloads for the Web UI and the temporal CLI")
    c.add_argument("--address", help="host:port (default VIM_CODEC_ADDRESS or 127.0.0.1:8234)")
    c.set_defaults(fn=cmd_codec_server)
    k = sub.add_parser("new-key", help="print a new encryption key entry (id=base64key)")
    k.add_argument("--id", help="key id (default: random)")
    k.set_defaults(fn=cmd_new_key)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
