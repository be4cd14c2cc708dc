"""Benchmark of the CS console's portfolio page (not a test).

    .venv/bin/python -m bench.console [--sizes 240 10000] [--history 14] [--runs 7]

For each size, a fresh database in a private embedded Postgres gets the demo portfolio
(240 accounts, scored by the portfolio path once a day for ``--history`` days, like the
daily scan), cloned with new account ids up to the size (accounts, contracts and the
explained snapshots). A private Temporal dev server holds one running
AccountLifecycleWorkflow per account with the search attributes a handoff sets (on a task
queue no worker polls: the page reads visibility only). Then it times ``GET /`` through
the ASGI interface (Postgres + visibility list + projections + Jinja2 + SVG):

- first: the first request after the console starts: no listing of live phases yet, the
  page starts one in the background and renders without phases (it never waits for it);
- warm: the live phases from the last listing (refreshed in the background when stale);
- visibility list: one listing of every running account workflow's phase (what a page
  would wait for if it listed them itself);
- bare SQL: the page's portfolio query alone (the floor of the Postgres part).

Prints a Markdown table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.common import SearchAttributePair, TypedSearchAttributes  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from activities.db import create_pool  # noqa: E402
from activities.health import assess_portfolio  # noqa: E402
from activities.snapshots import save_assessments  # noqa: E402
from console.app import create_app  # noqa: E402
from console.data import _PORTFOLIO_SQL, Console  # noqa: E402
from demo.load import load_portfolio  # noqa: E402
from demo.portfolio import generate_portfolio  # noqa: E402
from domain.config import DEFAULT_CONFIG  # noqa: E402
from stack.migrate import migrate_dsn  # noqa: E402
from stack.postgres import start_embedded, stop_embedded  # noqa: E402
from stack.settings import load_settings  # noqa: E402
from workflows.search_attributes import (  # noqa: E402
    ACCOUNT_PHASE,
    ACCOUNT_TIER,
    ALL_KEYS,
    ARR,
    CSM_OWNER,
    RENEWAL_DATE,
)

AS_OF = date(2026, 11, 21)
TASK_QUEUE = "bench-console-idle"  # nobody polls it: the workflows just stay running
RESULTS = ROOT / "bench" / "results" / "console.json"
START_CONCURRENCY = 64

CLONE_SQL = """
INSERT INTO accounts (account_id, name, tier, industry, csm_owner, csm_email, rep_owner, rep_email)
SELECT a.account_id || '-copy' || k, a.name || ' ' || k, a.tier, a.industry,
       a.csm_owner, a.csm_email, a.rep_owner, a.rep_email
FROM accounts a, generate_series(1, $1) k WHERE a.account_id NOT LIKE '%-copy%';
INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat,
                       licensed_modules)
SELECT c.account_id || '-copy' || k, c.start_date, c.end_date, c.arr, c.seats_purchased,
       c.price_per_seat, c.licensed_modules
FROM contracts c, generate_series(1, $1) k WHERE c.account_id NOT LIKE '%-copy%';
INSERT INTO health_snapshots (account_id, as_of, config_version, score, band, coverage,
                              churn_risk, payload)
SELECT s.account_id || '-copy' || k, s.as_of, s.config_version, s.score, s.band, s.coverage,
       s.churn_risk, s.payload
FROM health_snapshots s, generate_series(1, $1) k WHERE s.account_id NOT LIKE '%-copy%';
"""


def say(msg: str) -> None:
    print(f"[bench console {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def build(dsn: str, size: int, history: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        await load_portfolio(conn, generate_portfolio(7, AS_OF, 240))
        t0 = time.monotonic()
        for days in range(history - 1, -1, -1):
            when = datetime.combine(AS_OF - timedelta(days=days), dtime(12), tzinfo=UTC)
            await save_assessments(
                conn, list((await assess_portfolio(conn, when, DEFAULT_CONFIG)).values())
            )
        scored = time.monotonic() - t0
        base = await conn.fetchval("SELECT count(*) FROM accounts")
        copies = -(-size // base) - 1
        if copies > 0:
            # asyncpg runs a multi-statement string only without arguments
            await conn.execute(CLONE_SQL.replace("$1", str(copies)))
        await conn.execute("VACUUM ANALYZE")
        return {
            "accounts": await conn.fetchval("SELECT count(*) FROM accounts"),
            "snapshots": await conn.fetchval("SELECT count(*) FROM health_snapshots"),
            "snapshot_mb": round(
                await conn.fetchval("SELECT pg_total_relation_size('health_snapshots')") / 1e6, 1
            ),
            "seconds_scoring_240_per_day": round(scored / history, 2),
        }
    finally:
        await conn.close()


async def start_workflows(env: WorkflowEnvironment, pool: asyncpg.Pool) -> float:
    rows = await pool.fetch(
        """SELECT a.account_id, a.tier, a.csm_owner, c.arr, c.end_date FROM accounts a
           JOIN LATERAL (SELECT arr, end_date FROM contracts WHERE account_id = a.account_id
           ORDER BY start_date DESC LIMIT 1) c ON true"""
    )
    sem = asyncio.Semaphore(START_CONCURRENCY)
    t0 = time.monotonic()

    async def one(r: asyncpg.Record, i: int) -> None:
        end = r["end_date"]
        attrs = TypedSearchAttributes(
            [
                SearchAttributePair(
                    ACCOUNT_PHASE,
                    ("3-executive-alignment", "4-value-activation", "10-relationship-capital")[
                        i % 3
                    ],
                ),
                SearchAttributePair(
                    RENEWAL_DATE, datetime(end.year, end.month, end.day, tzinfo=UTC)
                ),
                SearchAttributePair(ARR, float(r["arr"])),
                SearchAttributePair(CSM_OWNER, r["csm_owner"] or ""),
                SearchAttributePair(ACCOUNT_TIER, r["tier"]),
            ]
        )
        async with sem:
            await env.client.start_workflow(
                "AccountLifecycleWorkflow",
                {"bench": True},
                id=f"account-{r['account_id']}",
                task_queue=TASK_QUEUE,
                search_attributes=attrs,
            )

    await asyncio.gather(*(one(r, i) for i, r in enumerate(rows)))
    return time.monotonic() - t0


async def wait_visible(console: Console, n: int) -> None:
    for _ in range(600):
        if len(await console.live_phases(fresh=True)) >= n:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("visibility never listed every workflow")


async def time_page(
    client: httpx.AsyncClient, console: Console, runs: int, first: bool
) -> list[float]:
    """GET / ``runs`` times. ``first``: as the first request after the console starts (no
    listing of live phases yet: the page starts one in the background and does not wait);
    the listing is awaited, untimed, before the next run."""
    out = []
    for _ in range(runs):
        if first:
            console._phases = None
        t0 = time.perf_counter()
        r = await client.get("/")
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.status_code
        if first:
            assert "phases-loading" in r.text
            if console._refreshing is not None:
                await console._refreshing
    return out


async def bench_size(pg: str, tmp: Path, size: int, history: int, runs: int) -> dict[str, Any]:
    """One size on its own dev server (workflow ids repeat across sizes)."""
    temporal = shutil.which("temporal", path=str(Path(sys.prefix) / "bin")) or "temporal"
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal,
        search_attributes=ALL_KEYS,
    )
    try:
        return await _bench_size(pg, env, tmp, size, history, runs)
    finally:
        await env.shutdown()


async def _bench_size(
    pg: str, env: WorkflowEnvironment, tmp: Path, size: int, history: int, runs: int
) -> dict[str, Any]:
    name = f"console_{size}"
    admin = await asyncpg.connect(pg)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    head, _, tail = pg.partition("?")
    dsn = f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")
    await migrate_dsn(dsn)
    say(f"{size}: loading and scoring the demo portfolio ({history} daily scans), cloning")
    built = await build(dsn, size, history)
    pool = await create_pool(dsn, max_size=8)
    try:
        say(f"{size}: starting {built['accounts']} workflows on the dev server")
        started = await start_workflows(env, pool)
        settings = load_settings({"VIM_DATA_DIR": str(tmp / name), "VIM_TASK_QUEUE": TASK_QUEUE})
        console = Console(
            settings=settings,
            pool=pool,
            client=env.client,
            clock=lambda: datetime.combine(AS_OF, dtime(12), tzinfo=UTC),
        )
        await wait_visible(console, built["accounts"])
        t0 = time.perf_counter()
        phases = await console.live_phases(fresh=True)
        visibility = time.perf_counter() - t0
        sql = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await pool.fetch(_PORTFOLIO_SQL, AS_OF)
            sql.append(time.perf_counter() - t0)
        transport = httpx.ASGITransport(app=create_app(console))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.get("/")  # first request: template compilation, pool warm-up
            first = await time_page(client, console, max(3, runs // 2), first=True)
            warm = await time_page(client, console, runs, first=False)
            page = (await client.get("/")).text
        return {
            **built,
            "workflows": len(phases),
            "seconds_starting_workflows": round(started, 1),
            "page_kb": round(len(page.encode()) / 1024, 1),
            "seconds_visibility_list": round(visibility, 3),
            "seconds_sql_median": round(statistics.median(sql), 3),
            "seconds_page_first_median": round(statistics.median(first), 3),
            "seconds_page_first_max": round(max(first), 3),
            "seconds_page_warm_median": round(statistics.median(warm), 3),
            "seconds_page_warm_max": round(max(warm), 3),
        }
    finally:
        await pool.close()


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| accounts | snapshots | page GET / first after start (median / max) | warm (median / max) | visibility list | portfolio SQL |",
        "|---|---|---|---|---|---|",
    ]
    for r in results.values():
        lines.append(
            f"| {r['accounts']:,} | {r['snapshots']:,} ({r['snapshot_mb']} MB) | "
            f"{r['seconds_page_first_median']:.3f} / {r['seconds_page_first_max']:.3f} s | "
            f"{r['seconds_page_warm_median']:.3f} / {r['seconds_page_warm_max']:.3f} s | "
            f"{r['seconds_visibility_list']:.3f} s | {r['seconds_sql_median']:.3f} s |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.console", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[240, 10_000])
    ap.add_argument("--history", type=int, default=14, help="daily snapshots per account")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vim-bench-console-"))
    pgdata = tmp / "pgdata"
    pg = start_embedded(pgdata)
    results: dict[str, dict[str, Any]] = {}
    try:
        for size in args.sizes:
            results[str(size)] = await bench_size(pg, tmp, size, args.history, args.runs)
            say(json.dumps(results[str(size)]))
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.write_text(
        json.dumps({"history_days": args.history, "runs": args.runs, "results": results}, indent=2)
        + "\n"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
