"""Benchmark of the usage rollup (migration 010) and of scan cost vs event volume (not a test).

    .venv/bin/python -m bench.rollup [--accounts 2000] [--only storage,double]

Two parts, each in a fresh embedded Postgres under a temp dir:

- storage: the demo portfolio (`demo.load`, 240 accounts): rows and MB of usage_events and
  of the rollup tables, and the COPY time of the demo's usage rows into an empty
  usage_events with no rollup trigger, with migration 009's per-user-day triggers
  (usage_daily, re-created from its file for the comparison) and with 010's triggers,
  in turn (best of `--repeat` rounds), same server, same run.
- double: N accounts from bench/health_scan.py's generator (20 users, 100 days, one event per
  active user-day), the scheduled scan (bench/scheduled_scan.py in its own process, chunks of
  1,000, scoring at 00:00 UTC so the facts read the rollup), then the same accounts with
  twice the events (a second event on every active user-day, a random event type) and the
  same scan: the ratio of the two scan times (goal: < 1.2), and the bare raw-event
  aggregation's ratio beside it.

Prints one JSON document; writes bench/results/rollup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import health_scan  # noqa: E402
from bench.results import ScenarioResult  # noqa: E402
from domain.config import load_health_config  # noqa: E402
from stack.migrate import MIGRATIONS_DIR  # noqa: E402
from stack.postgres import stop_embedded  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rollup.json"
ROLLUP_010 = ("usage_rollup_insert", "usage_rollup_update", "usage_rollup_delete")
ROLLUP_009 = ("usage_daily_insert", "usage_daily_update", "usage_daily_delete")
COLUMNS = ["account_id", "user_id", "occurred_at", "event_type", "quantity", "message_id"]


def _t() -> float:
    return time.perf_counter()


async def _size(conn: asyncpg.Connection, table: str) -> dict[str, Any]:
    """Rows and MB (heap + indexes, every partition of a partitioned table)."""
    mb = await conn.fetchval(
        """SELECT coalesce((SELECT sum(pg_total_relation_size(relid))
                            FROM pg_partition_tree($1::regclass)),
                           pg_total_relation_size($1::regclass)) / 1048576.0""",
        table,
    )
    rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
    return {"rows": rows, "mb": round(float(mb), 1)}


async def _triggers(conn: asyncpg.Connection, on: tuple[str, ...], off: tuple[str, ...]) -> None:
    for name in off:
        await conn.execute(f"ALTER TABLE usage_events DISABLE TRIGGER {name}")
    for name in on:
        await conn.execute(f"ALTER TABLE usage_events ENABLE TRIGGER {name}")


async def bench_storage(repeat: int) -> dict[str, Any]:
    from demo.load import load_portfolio
    from demo.portfolio import generate_portfolio

    root = Path(tempfile.mkdtemp(prefix="vim-bench-rollup-"))
    try:
        dsn = await health_scan._fresh_server(root)
        conn = await asyncpg.connect(dsn, command_timeout=3600)
        try:
            # the rows, loaded once without the rollup (each timed COPY below starts empty)
            await _triggers(conn, (), ROLLUP_010)
            await load_portfolio(conn, generate_portfolio(7, date(2026, 11, 21), 240))
            out: dict[str, Any] = {"accounts": 240}
            buf = io.BytesIO()
            await conn.copy_from_query(
                f"SELECT {', '.join(COLUMNS)} FROM usage_events", output=buf, format="binary"
            )
            data = buf.getvalue()
            # 009's table and triggers beside 010's, to compare on the same server
            await conn.execute((MIGRATIONS_DIR / "009_usage_daily.sql").read_text())
            variants = {
                "none": ((), ROLLUP_010 + ROLLUP_009),
                "009": (ROLLUP_009, ROLLUP_010),
                "010": (ROLLUP_010, ROLLUP_009),
            }
            best: dict[str, float] = {}
            for _ in range(repeat):
                for name, (on, off) in variants.items():
                    await conn.execute("TRUNCATE usage_events")  # empties every rollup
                    await _triggers(conn, on, off)
                    await conn.execute("CHECKPOINT")
                    t0 = _t()
                    await conn.copy_to_table(
                        "usage_events", source=io.BytesIO(data), columns=COLUMNS, format="binary"
                    )
                    best[name] = min(best.get(name, float("inf")), _t() - t0)
                    if name == "009":
                        await conn.execute("VACUUM ANALYZE usage_daily")
                        out["usage_daily_009"] = await _size(conn, "usage_daily")
                    if name == "010":
                        await conn.execute("VACUUM ANALYZE")
                        for table in ("usage_events", "usage_type_daily", "usage_user_month"):
                            out[table] = await _size(conn, table)
            out["seconds_copy"] = {k: round(v, 2) for k, v in best.items()}
            out["ratio_copy_009_vs_none"] = round(best["009"] / best["none"], 2)
            out["ratio_copy_010_vs_none"] = round(best["010"] / best["none"], 2)
            return out
        finally:
            await conn.close()
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


DOUBLE = """
SELECT setseed(0.24);
INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity)
SELECT account_id, user_id, occurred_at - floor(random() * 60) * interval '1 second',
       (ARRAY['login', 'core.view', 'reports.export', 'reports.schedule', 'api.call',
              'api.limit_hit'])[1 + floor(random() * 6)::int],
       1 + floor(random() * 5)::int
FROM usage_events
"""


async def bench_double(n: int) -> dict[str, Any]:
    windows = load_health_config().windows
    root = Path(tempfile.mkdtemp(prefix=f"vim-bench-{n}-"))
    as_of = health_scan.AS_OF
    try:
        dsn = await health_scan._fresh_server(root)
        conn = await asyncpg.connect(dsn, command_timeout=3600)
        try:
            out: dict[str, Any] = {"accounts": n}
            gen = await health_scan._generate(conn, n, 20, 100)
            out["usage_rows_1x"] = gen["usage_rows"]
            runs: dict[str, Any] = {}
            for label, day in (("1x", 1), ("2x", 4)):
                if label == "2x":
                    t0 = _t()
                    await conn.execute(DOUBLE)
                    await conn.execute("VACUUM ANALYZE")
                    out["seconds_double_insert"] = round(_t() - t0, 1)
                    out["usage_rows_2x"] = await conn.fetchval("SELECT count(*) FROM usage_events")
                run: dict[str, Any] = {
                    t: await _size(conn, t)
                    for t in ("usage_events", "usage_type_daily", "usage_user_month")
                }
                # a warm-up scan the day before, then the best of two days (previous
                # snapshots exist for both; the machine is shared, so one run is noisy)
                await health_scan._scan_process(dsn, as_of + timedelta(days=day), "--chunk", "1000")
                scans = [
                    await health_scan._scan_process(
                        dsn, as_of + timedelta(days=day + k), "--chunk", "1000"
                    )
                    for k in (1, 2)
                ]
                run["scan"] = min(scans, key=lambda r: r["seconds"])
                run["scan_seconds_both"] = [r["seconds"] for r in scans]
                at = as_of + timedelta(days=day + 2)
                await health_scan._bare_sql(conn, windows, False, at)
                run["seconds_bare_sql_raw"] = round(
                    min([await health_scan._bare_sql(conn, windows, False, at) for _ in (1, 2)]), 2
                )
                run["seconds_bare_sql_rollup"] = round(
                    min([await health_scan._bare_sql(conn, windows, True, at) for _ in (1, 2)]), 2
                )
                print(f"[double {n}] {label}: {run}", flush=True)
                runs[label] = run
            out.update(runs)
            one, two = runs["1x"], runs["2x"]
            out["ratio_scan_2x_vs_1x"] = round(two["scan"]["seconds"] / one["scan"]["seconds"], 2)
            out["ratio_bare_sql_rollup_2x_vs_1x"] = round(
                two["seconds_bare_sql_rollup"] / one["seconds_bare_sql_rollup"], 2
            )
            out["ratio_bare_sql_raw_2x_vs_1x"] = round(
                two["seconds_bare_sql_raw"] / one["seconds_bare_sql_raw"], 2
            )
            return out
        finally:
            await conn.close()
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


async def run(accounts: int, res: ScenarioResult) -> None:
    """The `make bench` scenario "rollup" (bench/__main__.py)."""
    st = await bench_storage(1)
    res.details["storage"] = st
    ev, td, um = st["usage_events"], st["usage_type_daily"], st["usage_user_month"]
    c = st["seconds_copy"]
    res.add(
        "s to COPY the demo's usage rows with 010's rollup triggers",
        c["010"],
        "s",
        "s, no rollup trigger",
        c["none"],
        notes=(
            f"{ev['rows']:,} rows, {ev['mb']} MB; rollup {td['rows']:,} + {um['rows']:,} rows, "
            f"{td['mb']} + {um['mb']} MB; 009's triggers: {c['009']} s "
            f"({st['usage_daily_009']['rows']:,} rows, {st['usage_daily_009']['mb']} MB)"
        ),
    )
    d = await bench_double(accounts)
    res.details["double"] = d
    one, two = d["1x"]["scan"]["seconds"], d["2x"]["scan"]["seconds"]
    res.add(
        f"s for the scheduled scan of {accounts:,} accounts with 2x the events per account",
        two,
        "s",
        "s, the same accounts with 1x",
        one,
        notes=(
            f"{d['usage_rows_1x']:,} -> {d['usage_rows_2x']:,} usage rows (goal: ratio < 1.2); "
            f"bare SQL over the rollup {d['ratio_bare_sql_rollup_2x_vs_1x']}x, "
            f"over raw events {d['ratio_bare_sql_raw_2x_vs_1x']}x"
        ),
    )


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rollup", description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000, help="accounts for the double part")
    ap.add_argument("--repeat", type=int, default=1, help="COPY runs per variant (best kept)")
    ap.add_argument("--only", default="storage,double")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    results: dict[str, Any] = {}
    if "storage" in parts:
        results["storage"] = await bench_storage(args.repeat)
        print(json.dumps(results["storage"]), flush=True)
    if "double" in parts:
        results["double"] = await bench_double(args.accounts)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
