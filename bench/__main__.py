"""`make bench` / `python -m bench`: every benchmark scenario on a private embedded stack.

    .venv/bin/python -m bench                      # the default run (~25 min on 2 cores)
    .venv/bin/python -m bench --quick              # smaller N everywhere (~5 min)
    .venv/bin/python -m bench --only handoff,ingestion --handoffs 20 --batches 2
    .venv/bin/python -m bench --only scan --accounts 10000 100000   # 100k: ~25 min more

Scenarios (names for --only): handoff, ingestion, memory (dev server + worker.py
subprocess), year (time-skipping server, in-process worker, fake model
endpoint), scan (bench/health_scan.py, its own Postgres), bulk (bench/bulk_ingest.py:
file and Segment ingestion against a bare COPY, its own Postgres), rollup
(bench/rollup.py, its own Postgres: the usage rollup's size and COPY cost on
the demo portfolio, and the scheduled scan with 2x the events per account).

Everything runs under one temp dir: its own embedded Postgres, its own dev
server on free ports, its own worker processes, so it never collides with
`make demo`. Writes bench/results/results.md and results.json and prints the
table. Each figure has a bare-limit baseline measured in the same run, and a
ratio (figure / baseline) that stays comparable on a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.results import RESULTS_DIR, ScenarioResult, machine, markdown, now_iso, write
from bench.stack import Postgres, ProcessWatch, Profiler, scrub_outside_vars

SCENARIOS = ("handoff", "ingestion", "memory", "year", "scan", "bulk", "rollup")
ALIASES = {"health_scan": "scan", "account_year": "year", "worker_memory": "memory"}
DEV_SCENARIOS = ("handoff", "ingestion", "memory")


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller N everywhere (a few minutes)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    ap.add_argument(
        "--accounts",
        type=int,
        nargs="+",
        default=None,
        help="health-scan portfolio sizes (default 10000; --quick 1000); 100000 takes ~25 min",
    )
    ap.add_argument(
        "--handoffs", type=int, default=None, help="handoff N (default 2000; --quick 200)"
    )
    ap.add_argument(
        "--batches", type=int, default=None, help="usage batches (default 200; --quick 20)"
    )
    ap.add_argument("--batch-size", type=int, default=500, help="usage events per batch")
    ap.add_argument(
        "--ingest-accounts",
        type=int,
        default=None,
        help="workflows receiving the batches (default 50)",
    )
    ap.add_argument(
        "--memory-points",
        default=None,
        help="running account workflows to measure RSS at (default 2000,10000; --quick 200,1000)",
    )
    ap.add_argument(
        "--year-accounts", type=int, default=None, help="accounts simulated for a year (default 4)"
    )
    ap.add_argument(
        "--server-db",
        choices=("file", "memory"),
        default="file",
        help="dev server state: a SQLite file like `make demo` (default) or in memory",
    )
    ap.add_argument("--no-profile", action="store_true", help="skip py-spy even if installed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, py-spy output)")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results.md/json go")
    args = ap.parse_args(argv)
    q = args.quick
    args.accounts = args.accounts or ([1_000] if q else [10_000])
    args.handoffs = args.handoffs or (200 if q else 2_000)
    args.batches = args.batches or (20 if q else 200)
    args.ingest_accounts = args.ingest_accounts or (20 if q else 50)
    args.memory_points = [
        int(x) for x in (args.memory_points or ("200,1000" if q else "2000,10000")).split(",") if x
    ]
    args.year_accounts = args.year_accounts or (2 if q else 4)
    names = [ALIASES.get(n.strip(), n.strip()) for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    args.selected = [s for s in SCENARIOS if not names or s in names]
    return args


async def _scenario(
    results: list[ScenarioResult],
    name: str,
    body: Callable[[ScenarioResult], Awaitable[None]],
    on_error: Callable[[], str] | None = None,
) -> ScenarioResult:
    res = ScenarioResult(name)
    say(f"{name}: start")
    t0 = time.perf_counter()
    try:
        await body(res)
    except Exception as err:  # one failed scenario must not hide the others
        res.error = f"{type(err).__name__}: {err}"
        say(f"{name}: FAILED {res.error}")
        traceback.print_exc()
        if on_error is not None:
            print(on_error(), file=sys.stderr)
    res.seconds = time.perf_counter() - t0
    results.append(res)
    say(f"{name}: done in {res.seconds:.0f} s")
    for row in res.rows:
        say(
            f"  {row.value:,.2f} {row.unit} {row.figure}; baseline {row.baseline} -> ratio {row.ratio}"
        )
    return res


async def run(args: argparse.Namespace) -> int:
    scrub_outside_vars()
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "started_at": now_iso(),
        "machine": machine(),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "py_spy": bool(Profiler.available()) and not args.no_profile,
        "args": {k: v for k, v in vars(args).items() if k not in ("out",)},
    }
    results: list[ScenarioResult] = []
    root = Path(tempfile.mkdtemp(prefix="vim-bench-"))
    say(f"stack under {root}; scenarios: {', '.join(args.selected)}")
    watch = ProcessWatch().start()
    watch.watch("bench", lambda: [os.getpid()])
    pg = Postgres(root)
    profile = not args.no_profile

    def save() -> None:
        meta["seconds"] = round(time.perf_counter() - started, 1)
        write(results, meta, args.out)

    try:
        await pg.start()
        watch.watch("postgres", lambda: [pg.postmaster_pid()], descendants=True)
        if any(s in args.selected for s in DEV_SCENARIOS):
            await _run_dev(args, root, pg, watch, profile, results, save)
        if "year" in args.selected:
            from bench import account_year

            await _scenario(
                results,
                "year",
                lambda res: account_year.run(root, pg, watch, args.year_accounts, profile, res),
            )
            save()
        if "scan" in args.selected:
            from bench import scan

            await _scenario(
                results,
                "scan",
                lambda res: scan.run(args.accounts, not args.quick, watch, root, profile, res),
            )
            save()
        if "bulk" in args.selected:
            from bench import bulk_ingest

            await _scenario(
                results,
                "bulk",
                lambda res: bulk_ingest.scenario(20_000 if args.quick else 200_000, res),
            )
            save()
        if "rollup" in args.selected:
            from bench import rollup

            await _scenario(
                results, "rollup", lambda res: rollup.run(500 if args.quick else 2_000, res)
            )
            save()
    finally:
        watch.stop()
        pg.stop()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    save()
    print()
    print(markdown(results, meta))
    say(f"wrote {args.out / 'results.md'} and {args.out / 'results.json'}")
    return 1 if any(r.error for r in results) else 0


async def _run_dev(
    args: argparse.Namespace,
    root: Path,
    pg: Postgres,
    watch: ProcessWatch,
    profile: bool,
    results: list[ScenarioResult],
    save: Callable[[], None],
) -> None:
    from bench import handoff, ingestion, memory
    from bench.devstack import start_dev_stack, stop_dev_stack

    say("starting the dev server and worker.py")
    st = await start_dev_stack(
        root, pg, watch, profile, server_in_memory=args.server_db == "memory"
    )
    say(f"dev server {st.dev.address}; worker idle RSS {st.worker_idle_rss / 2**20:.0f} MB")

    def logs() -> str:
        return f"--- worker.log tail ---\n{st.worker.log_tail()}"

    try:
        if "handoff" in args.selected:
            await _scenario(results, "handoff", lambda r: handoff.run(st, args.handoffs, r), logs)
            save()
        if "ingestion" in args.selected:
            await _scenario(
                results,
                "ingestion",
                lambda r: ingestion.run(st, args.batches, args.batch_size, args.ingest_accounts, r),
                logs,
            )
            save()
        if "memory" in args.selected:
            await _scenario(
                results, "memory", lambda r: memory.run(st, args.memory_points, r), logs
            )
            save()
    finally:
        await stop_dev_stack(st)


def _interrupt(*_: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops what the bench started.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
