"""Benchmark of `starter.py calibrate` at scale (not a test).

    .venv/bin/python bench/calibrate.py --accounts 10000 [--users 10] [--every 7]

A fresh embedded Postgres under a temp dir gets N synthetic accounts with 14 months of
history from a SQL generator (``--users`` users per account active on ~60% of days; a
tenth of the accounts churn: their usage fades over the 60 days before a contract end
with no renewal; the rest renew). Then the calibration runs through the command's own
code path (``cli.calibrate.calibrate_from_db``) over a year of dates every ``--every``
days, and the wall time is split into SQL + scoring per date, the fit and the report.

Prints a Markdown table; writes bench/results/calibrate.json.
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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.backtest import backtest_dates  # noqa: E402
from cli.calibrate import calibrate_from_db  # noqa: E402
from domain.calibration import CalibrationOptions, render_report  # noqa: E402
from domain.config import DEFAULT_CONFIG  # noqa: E402
from stack.migrate import migrate_dsn  # noqa: E402
from stack.postgres import start_embedded, stop_embedded  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "calibrate.json"
END = date(2026, 11, 21)

# :n accounts, :users per account. Deterministic (setseed). Account i's first term starts
# 2025-10-01 + (i % 300) days; churners (i % 10 = 0) end it with no renewal, others renew.
GENERATOR = """
SELECT setseed(0.17);
INSERT INTO accounts (account_id, name, tier, csm_owner)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'Account ' || i,
       (ARRAY['tier-1', 'tier-2', 'tier-3'])[1 + i % 3], 'csm-' || (i % 40)
FROM generate_series(1, :n) i;
INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat,
                       licensed_modules)
SELECT 'acct-' || lpad(i::text, 7, '0'), date '2025-01-01' + (i % 300) + t * 365,
       date '2025-01-01' + (i % 300) + t * 365 + 364, (10 + i % 40) * 600, 10 + i % 40, 600,
       '{core,reports}'::text[]
FROM generate_series(1, :n) i, generate_series(0, 1) t
WHERE t = 0 OR i % 10 <> 0;
INSERT INTO product_users (account_id, user_id, created_at)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'u' || u, timestamptz '2025-01-01'
FROM generate_series(1, :n) i, generate_series(1, :users) u;
INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity)
SELECT 'acct-' || lpad(i::text, 7, '0'), 'u' || u,
       timestamptz '2026-11-21' - d * interval '1 day' - (random() * 86000) * interval '1 second',
       (ARRAY['login', 'core.search', 'reports.export', 'reports.create'])[1 + floor(random() * 4)::int],
       1 + floor(random() * 5)::int
FROM generate_series(1, :n) i, generate_series(1, :users) u, generate_series(0, 419) d
WHERE timestamptz '2026-11-21' - d * interval '1 day'
        < date '2025-01-01' + (i % 300) + 365 + CASE WHEN i % 10 = 0 THEN 0 ELSE 400 END
  AND random() < 0.6 - CASE WHEN i % 10 = 0 THEN 0.5 * greatest(0, least(1,
        1 - ((date '2025-01-01' + (i % 300) + 365) - (date '2026-11-21' - d)) / 60.0))
      ELSE 0 END;
INSERT INTO support_tickets (ticket_id, account_id, opened_at, sentiment, priority, escalated)
SELECT 't' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'),
       timestamptz '2026-11-21' - (random() * 420) * interval '1 day', random() * 2 - 1,
       (ARRAY['low', 'normal', 'high', 'urgent'])[1 + floor(random() * 4)::int], random() < 0.1
FROM generate_series(1, :n) i, generate_series(1, 10) k;
INSERT INTO nps_responses (response_id, account_id, respondent, responded_at, score)
SELECT 'n' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'), 'x',
       timestamptz '2026-11-21' - (random() * 420) * interval '1 day',
       CASE WHEN i % 10 = 0 THEN floor(random() * 8)::int ELSE floor(random() * 11)::int END
FROM generate_series(1, :n) i, generate_series(1, 4) k;
INSERT INTO interactions (interaction_id, account_id, occurred_at, kind, meaningful, attendees)
SELECT 'x' || i || '-' || k, 'acct-' || lpad(i::text, 7, '0'),
       timestamptz '2026-11-21' - (random() * 420) * interval '1 day', 'call', random() < 0.8, 3
FROM generate_series(1, :n) i, generate_series(1, 10) k;
"""


async def _generate(conn: asyncpg.Connection, n: int, users: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    await conn.execute("DROP INDEX IF EXISTS usage_events_account_time")
    await conn.execute(GENERATOR.replace(":n", str(n)).replace(":users", str(users)))
    await conn.execute(
        "CREATE INDEX usage_events_account_time ON usage_events (account_id, occurred_at)"
    )
    await conn.execute("VACUUM ANALYZE")
    rows = await conn.fetchval("SELECT count(*) FROM usage_events")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    return {"usage_rows": rows, "db_size": size, "seconds_load": round(time.perf_counter() - t0, 1)}


async def run(accounts: int, users: int, every: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="vim-bench-cal-"))
    try:
        dsn = start_embedded(root / "pgdata")
        await migrate_dsn(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            load = await _generate(conn, accounts, users)
            print(f"loaded {accounts} accounts: {load}", flush=True)
            start = END - timedelta(days=365)
            dates = backtest_dates(start, END - timedelta(days=1), every)
            split = start + timedelta(days=219)  # 60% of the year
            marks: list[tuple[str, float]] = []
            t0 = time.perf_counter()

            def progress(msg: str) -> None:
                marks.append((msg, time.perf_counter() - t0))
                print(f"  {time.perf_counter() - t0:7.1f}s {msg}", flush=True)

            report, config = await calibrate_from_db(
                conn,
                DEFAULT_CONFIG,
                dates,
                split,
                END,
                CalibrationOptions(horizons=[30, 60, 90]),
                progress,
            )
            total = time.perf_counter() - t0
        finally:
            await conn.close()
        dates_run = sum(1 for m, _ in marks if m.startswith("  "))
        last_fit = max((t for m, t in marks if m.startswith("  fit")), default=0.0)
        last_val = max((t for m, t in marks if m.startswith("  validate")), default=last_fit)
        return {
            "accounts": accounts,
            "users_per_account": users,
            "every_days": every,
            "dates_scored": dates_run,
            "fit_observations": report.fit_observations,
            "validation_observations": report.validation_observations,
            "seconds_total": round(total, 1),
            "seconds_fit_dates": round(last_fit, 1),
            "seconds_fit_and_validation_dates": round(last_val - last_fit, 1),
            "seconds_report": round(total - last_val, 1),
            "seconds_per_date": round(last_val / max(1, dates_run), 2),
            "auc_current": report.horizons[1].current.auc.value,
            "auc_calibrated": report.horizons[1].calibrated.auc.value,
            "calibrated_version": config.version,
            "report_head": render_report(report)[:1500],
            **load,
        }
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--every", type=int, default=7)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.accounts, args.users, args.every))
    result["machine"] = f"{platform.machine()}, {platform.python_version()}"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| accounts | dates | observations (fit + validation) | total | per date | report |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {result['accounts']:,} | {result['dates_scored']} | "
        f"{result['fit_observations']:,} + {result['validation_observations']:,} | "
        f"{result['seconds_total']:,.0f} s | {result['seconds_per_date']} s | "
        f"{result['seconds_report']} s |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
