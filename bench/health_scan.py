"""Benchmark of the set-based health scan (not a test).

    .venv/bin/python bench/health_scan.py --accounts 10000 [100000] [--demo]

For each size, a fresh embedded Postgres under a temp dir gets N synthetic
accounts from a SQL generate_series generator with realistic volumes per
account (default 20 users, 100 days of usage where each user is active on
~60% of days with one event per active day: ~1,200 usage rows per account,
plus tickets, invoices, NPS, interactions, stakeholders, TAM). Then it times:

- bare SQL: the three statements of activities/telemetry.py, rows fetched, no Python;
- fetch_facts: the same plus assembling AccountFacts;
- assess: the pure scoring of every account (domain.assess_account);
- save: writing every snapshot and finding (activities/snapshots.py);
- scan: previous snapshots + facts + assess + save (what scan_portfolio does).

``--demo`` also times scoring the demo portfolio (240 accounts): the
portfolio path once vs the per-account path for every account.

Prints a Markdown table; writes bench/results/health_scan.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.health import assess_portfolio  # noqa: E402
from activities.snapshots import latest_snapshots, save_assessments  # noqa: E402
from activities.telemetry import fetch_facts, statements  # noqa: E402
from domain.assess import assess_account  # noqa: E402
from domain.config import load_health_config  # noqa: E402
from stack.migrate import migrate_dsn  # noqa: E402
from stack.postgres import start_embedded, stop_embedded  # noqa: E402

AS_OF = datetime(2026, 11, 21, tzinfo=UTC)
RESULTS = ROOT / "bench" / "results" / "health_scan.json"

# :n accounts, :users per account, :days of usage. Deterministic (setseed).
GENERATOR = """
SELECT setseed(0.42);
INSERT INTO accounts (account_id, name, tier, csm_owner)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'Account ' || i,
       (ARRAY['tier-1', 'tier-2', 'tier-3'])[1 + i % 3], 'csm-' || (i % 40)
FROM generate_series(1, :n) i;
INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat,
                       licensed_modules)
SELECT 'acct-' || lpad(i::text, 7, '0'), date '2026-01-01' + (i % 300),
       date '2026-01-01' + (i % 300) + 364, (10 + i % 40) * 600, 10 + i % 40, 600,
       CASE WHEN i % 4 = 0 THEN '{core,reports,api}' ELSE '{core,reports}' END::text[]
FROM generate_series(1, :n) i;
INSERT INTO product_users (account_id, user_id, created_at)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'u' || u, timestamptz '2026-01-01'
FROM generate_series(1, :n) i, generate_series(1, :users) u;
INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'u' || u,
       timestamptz '2026-11-21' - d * interval '1 day' - (random() * 86000) * interval '1 second',
       (ARRAY['login', 'core.view', 'reports.export', 'reports.schedule', 'api.call',
              'api.limit_hit'])[1 + floor(random() * 6)::int],
       1 + floor(random() * 5)::int
FROM generate_series(1, :n) i, generate_series(1, :users) u, generate_series(0, :days - 1) d
WHERE random() < 0.6 - 0.3 * ((i % 5) = 0)::int * (d < 30)::int;  -- 1 in 5 declines lately
INSERT INTO support_tickets (ticket_id, account_id, opened_at, sentiment, priority, escalated)
SELECT 't' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'),
       timestamptz '2026-11-21' - (random() * 200) * interval '1 day', random() * 2 - 1,
       (ARRAY['low', 'normal', 'high', 'urgent'])[1 + floor(random() * 4)::int], random() < 0.1
FROM generate_series(1, :n) i, generate_series(1, 6) k;
INSERT INTO nps_responses (response_id, account_id, respondent, responded_at, score)
SELECT 'n' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'), 'x',
       timestamptz '2026-11-21' - (random() * 400) * interval '1 day', floor(random() * 11)::int
FROM generate_series(1, :n) i, generate_series(1, 3) k;
INSERT INTO invoices (invoice_id, account_id, issued_on, due_on, paid_on, amount)
SELECT 'i' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'), date '2026-01-01' + k * 30,
       date '2026-01-01' + k * 30 + 30,
       CASE WHEN random() < 0.9 THEN date '2026-01-01' + k * 30 + 20 END, 1000
FROM generate_series(1, :n) i, generate_series(0, 10) k;
INSERT INTO interactions (interaction_id, account_id, occurred_at, kind, meaningful, attendees)
SELECT 'x' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'),
       timestamptz '2026-11-21' - (random() * 300) * interval '1 day', 'call', random() < 0.8, 3
FROM generate_series(1, :n) i, generate_series(1, 8) k;
INSERT INTO stakeholders (stakeholder_id, account_id, name, role, is_champion, joined_on, left_on,
                          last_engaged_at)
SELECT 's' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'), 'S',
       (ARRAY['executive_sponsor', 'champion', 'admin', 'user'])[k], k = 2, date '2026-01-01',
       CASE WHEN random() < 0.1 THEN date '2026-10-01' END,
       timestamptz '2026-11-21' - (random() * 120) * interval '1 day'
FROM generate_series(1, :n) i, generate_series(1, 4) k;
INSERT INTO tam_health (account_id, measured_at, score, escalation)
SELECT 'acct-' || lpad(i::text, 7, '0'), timestamptz '2026-11-21' - k * interval '30 days',
       floor(random() * 101)::int, random() < 0.05
FROM generate_series(1, :n) i, generate_series(0, 5) k;
"""

# Migration 010's backfill: the rollup of the rows already in usage_events.
ROLLUP_BACKFILL = """
INSERT INTO usage_type_daily (account_id, day, event_type, events, quantity)
SELECT account_id, usage_day(occurred_at), event_type, count(*), sum(quantity)
FROM usage_events WHERE usage_valid(quantity, event_type)
GROUP BY 1, 2, 3;
INSERT INTO usage_user_month (account_id, month, user_id, event_type, days)
SELECT account_id, usage_month(occurred_at), user_id, event_type,
       bit_or(usage_day_bit(occurred_at))
FROM usage_events WHERE usage_valid(quantity, event_type)
GROUP BY 1, 2, 3, 4;
"""
# The generator's months get their partitions of usage_events (migration 013) first.
PARTITIONS = """
SELECT usage_events_ensure_months(ARRAY(
    SELECT generate_series(date '2026-06-01', date '2026-11-01', interval '1 month')::date))
"""


def _t() -> float:
    return time.perf_counter()


async def _fresh_server(root: Path) -> str:
    dsn = start_embedded(root / "pgdata")
    await migrate_dsn(dsn)
    return dsn


async def _generate(conn: asyncpg.Connection, n: int, users: int, days: int) -> dict[str, Any]:
    t0 = _t()
    # The index is built after the bulk insert: much faster than maintaining it per row.
    await conn.execute("DROP INDEX IF EXISTS usage_events_account_time")
    sql = GENERATOR.replace(":n", str(n)).replace(":users", str(users)).replace(":days", str(days))
    await conn.execute(PARTITIONS)
    # The rollup is built in one set-based pass after the load (what migration 010's
    # backfill does) rather than by its statement-level triggers during the generator's one
    # huge INSERT: same rows, a fraction of the time (100,000 accounts: ~70 min with the
    # triggers on). The triggers are back on before anything is measured.
    await conn.execute("ALTER TABLE usage_events DISABLE TRIGGER USER")
    try:
        await conn.execute(sql)
        await conn.execute(ROLLUP_BACKFILL)
    finally:
        await conn.execute("ALTER TABLE usage_events ENABLE TRIGGER USER")
    await conn.execute(
        "CREATE INDEX usage_events_account_time ON usage_events (account_id, occurred_at)"
    )
    await conn.execute("VACUUM ANALYZE")
    rows = await conn.fetchval("SELECT count(*) FROM usage_events")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    return {"usage_rows": rows, "db_size": size, "seconds_load": round(_t() - t0, 1)}


async def _bare_sql(
    conn: asyncpg.Connection, windows: Any, rollup: bool = False, as_of: datetime = AS_OF
) -> float:
    st = statements(windows, False, rollup=rollup)
    t0 = _t()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL work_mem = '128MB'")
        for sql in (st.accounts, st.usage, st.issues):
            await conn.fetch(sql, as_of, as_of.date())
    return _t() - t0


async def _scan_process(dsn: str, as_of: datetime, *extra: str) -> dict[str, Any]:
    """bench/scheduled_scan.py in a process of its own: its wall time and peak RSS."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.scheduled_scan",
        dsn,
        as_of.isoformat(),
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.scheduled_scan {extra} exited {proc.returncode}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def bench_scheduled(
    conn: asyncpg.Connection, dsn: str, windows: Any, whole: bool = True
) -> dict[str, Any]:
    """The scheduled scan (chunks of 1,000, as PortfolioScanWorkflow runs them) and the old
    whole-portfolio scan, each in its own process, on later days (previous snapshots exist),
    against the bare SQL aggregation over raw events and over the daily rollup. ``whole=False``
    (``--scheduled-only``) leaves the whole-portfolio scan and the rollup's warm-up pass out:
    at 100,000 accounts the first holds 9 GB and each bare pass takes minutes."""
    out: dict[str, Any] = {}
    chunked_at, whole_at = AS_OF + timedelta(days=2), AS_OF + timedelta(days=3)
    if whole:
        await _bare_sql(conn, windows, True, chunked_at)  # warm the rollup's pages
    out["seconds_bare_sql_rollup"] = round(await _bare_sql(conn, windows, True, chunked_at), 2)
    out["seconds_bare_sql_raw_same_day"] = round(
        await _bare_sql(conn, windows, False, chunked_at), 2
    )
    out["scheduled"] = await _scan_process(dsn, chunked_at, "--chunk", "1000")
    print(f"scheduled scan: {out['scheduled']}", flush=True)
    if whole:
        out["whole"] = await _scan_process(dsn, whole_at, "--whole")
        print(f"whole-portfolio scan: {out['whole']}", flush=True)
        # the scheduled scan without the overlap of facts SQL and scoring (one part per
        # chunk: the path before it), a day later again
        out["scheduled_serial"] = await _scan_process(
            dsn, whole_at + timedelta(days=1), "--chunk", "1000", "--part-size", "1000"
        )
        print(f"scheduled scan, no overlap: {out['scheduled_serial']}", flush=True)
        out["ratio_scheduled_serial_vs_bare_sql_raw"] = round(
            out["scheduled_serial"]["seconds"] / out["seconds_bare_sql_raw_same_day"], 2
        )
    out["rollup_rows"] = await conn.fetchval(
        "SELECT (SELECT count(*) FROM usage_type_daily) + (SELECT count(*) FROM usage_user_month)"
    )
    s = out["scheduled"]["seconds"]
    out["ratio_scheduled_vs_bare_sql_raw"] = round(s / out["seconds_bare_sql_raw_same_day"], 2)
    out["ratio_scheduled_vs_bare_sql_rollup"] = round(s / out["seconds_bare_sql_rollup"], 2)
    return out


async def bench_size(n: int, users: int, days: int, scheduled_only: bool = False) -> dict[str, Any]:
    config = load_health_config()
    root = Path(tempfile.mkdtemp(prefix=f"vim-bench-{n}-"))
    try:
        dsn = await _fresh_server(root)
        conn = await asyncpg.connect(dsn, command_timeout=3600)
        try:
            out: dict[str, Any] = {"accounts": n, "users_per_account": users, "usage_days": days}
            out.update(await _generate(conn, n, users, days))
            print(
                f"[{n}] loaded {out['usage_rows']:,} usage rows in {out['seconds_load']}s",
                flush=True,
            )
            if scheduled_only:
                out.update(await bench_scheduled(conn, dsn, config.windows, whole=False))
                out["seconds_bare_sql"] = out["seconds_bare_sql_raw_same_day"]
                return out
            await _bare_sql(conn, config.windows)  # warm the cache: both paths read it hot
            out["seconds_bare_sql"] = round(await _bare_sql(conn, config.windows), 2)
            t0 = _t()
            facts = await fetch_facts(conn, AS_OF, config.windows)
            out["seconds_fetch_facts"] = round(_t() - t0, 2)
            t0 = _t()
            prev = await latest_snapshots(conn, None, AS_OF)
            assessments = [assess_account(f, config, prev.get(a)) for a, f in facts.items()]
            out["seconds_assess"] = round(_t() - t0, 2)
            t0 = _t()
            for i in range(0, len(assessments), 1000):
                await save_assessments(conn, assessments[i : i + 1000])
            out["seconds_save"] = round(_t() - t0, 2)
            # the scan end to end, the next day (previous snapshots now exist)
            t0 = _t()
            nxt = AS_OF + timedelta(days=1)
            got = await assess_portfolio(conn, nxt, config)
            batch = list(got.values())
            for i in range(0, len(batch), 1000):
                await save_assessments(conn, batch[i : i + 1000])
            out["seconds_scan"] = round(_t() - t0, 2)
            one = sorted(facts)[n // 2]
            t0 = _t()
            for _ in range(20):
                await fetch_facts(conn, AS_OF, config.windows, [one])
            out["ms_fetch_facts_one_account"] = round((_t() - t0) / 20 * 1000, 1)
            out["ratio_fetch_facts_vs_bare_sql"] = round(
                out["seconds_fetch_facts"] / out["seconds_bare_sql"], 2
            )
            out["ratio_scan_vs_bare_sql"] = round(out["seconds_scan"] / out["seconds_bare_sql"], 2)
            out.update(await bench_scheduled(conn, dsn, config.windows))
            return out
        finally:
            await conn.close()
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


async def bench_demo() -> dict[str, Any]:
    from demo.load import load_portfolio
    from demo.portfolio import generate_portfolio

    config = load_health_config()
    root = Path(tempfile.mkdtemp(prefix="vim-bench-demo-"))
    try:
        dsn = await _fresh_server(root)
        conn = await asyncpg.connect(dsn)
        try:
            as_of_day = date(2026, 11, 21)
            t0 = _t()
            p = generate_portfolio(7, as_of_day, 240)
            report = await load_portfolio(conn, p)
            out: dict[str, Any] = {
                "accounts": 240,
                "usage_rows": report.counts.get("usage_events"),
                "seconds_generate_and_load": round(_t() - t0, 1),
            }
            as_of = datetime.combine(as_of_day, dtime(), UTC)
            await assess_portfolio(conn, as_of, config)  # warm
            t0 = _t()
            everyone = await assess_portfolio(conn, as_of, config)
            out["seconds_portfolio_path"] = round(_t() - t0, 2)
            t0 = _t()
            for aid in everyone:
                await assess_portfolio(conn, as_of, config, [aid])
            out["seconds_per_account_path_all"] = round(_t() - t0, 2)
            return out
        finally:
            await conn.close()
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        "| accounts | usage rows | load s | bare SQL s | fetch_facts s | assess s | save s "
        "| scan s | scan / bare SQL | one account ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["sizes"]:
        if "seconds_scan" not in r:  # --scheduled-only
            continue
        lines.append(
            f"| {r['accounts']:,} | {r['usage_rows']:,} | {r['seconds_load']} "
            f"| {r['seconds_bare_sql']} | {r['seconds_fetch_facts']} | {r['seconds_assess']} "
            f"| {r['seconds_save']} | {r['seconds_scan']} | {r['ratio_scan_vs_bare_sql']}x "
            f"| {r['ms_fetch_facts_one_account']} |"
        )
    lines += [
        "",
        "| accounts | scheduled scan s (chunks of 1,000) | peak RSS MB | whole-portfolio scan s "
        "| peak RSS MB | bare SQL raw s | bare SQL rollup s | scheduled / bare SQL raw |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["sizes"]:
        sc, wh = r["scheduled"], r.get("whole", {"seconds": "-", "peak_rss_mb": "-"})
        lines.append(
            f"| {r['accounts']:,} | {sc['seconds']} | {sc['peak_rss_mb']:,} | {wh['seconds']} "
            f"| {wh['peak_rss_mb']} | {r['seconds_bare_sql_raw_same_day']} "
            f"| {r['seconds_bare_sql_rollup']} | {r['ratio_scheduled_vs_bare_sql_raw']}x |"
        )
    if d := results.get("demo"):
        lines += [
            "",
            f"Demo portfolio ({d['accounts']} accounts, {d['usage_rows']:,} usage rows): "
            f"portfolio path {d['seconds_portfolio_path']}s; per-account path for every "
            f"account {d['seconds_per_account_path_all']}s.",
        ]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="*", default=[10_000])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--demo", action="store_true")
    ap.add_argument(
        "--scheduled-only",
        action="store_true",
        help="only the scheduled scan against the bare SQL (no whole-portfolio phases)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cpu, Python "
        f"{platform.python_version()}",
        "as_of": AS_OF.isoformat(),
        "sizes": [],
    }
    if args.demo:
        results["demo"] = await bench_demo()
        print(json.dumps(results["demo"]), flush=True)
    for n in args.accounts:
        results["sizes"].append(await bench_size(n, args.users, args.days, args.scheduled_only))
        print(json.dumps(results["sizes"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
