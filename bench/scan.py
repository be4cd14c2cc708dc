"""Scenario 3, portfolio health scan: `bench/health_scan.py`, run from the bench runner.

health_scan.py builds each portfolio in its own fresh embedded Postgres
(SQL generate_series, ~1,200 usage rows an account) and times the set-based
scan against the bare SQL aggregation it runs; this wrapper adds the CPU
split between the bench process (fetch + assess in Python) and that Postgres.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from bench import health_scan
from bench.probe import Probe
from bench.results import ScenarioResult
from bench.stack import ProcessWatch


def _postmaster(marker: str) -> list[int]:
    """The embedded Postgres health_scan.py started (its data dir is under a vim-bench-<n>- temp dir)."""
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except psutil.Error:
            continue
        if p.info["name"] == "postgres" and marker in cmd and " -D " in f" {cmd} ":
            return [p.pid]
    return []


async def run(
    sizes: list[int],
    demo: bool,
    watch: ProcessWatch,
    root: Path,
    profile: bool,
    res: ScenarioResult,
) -> None:
    probe = Probe(
        watch=watch,
        workdir=root,
        profile_pid=os.getpid(),
        profile_label="bench (scan in-process)",
        profile=profile,
    )
    if demo:
        watch.watch("scan postgres", lambda: _postmaster("vim-bench-demo-"), descendants=True)
        async with probe.phase("scan: demo") as ph:
            d = await health_scan.bench_demo()
        watch.unwatch("scan postgres")
        res.details["demo"] = d
        res.add(
            "s to score the demo portfolio (240 accounts), portfolio path",
            d["seconds_portfolio_path"],
            "s",
            "s, per-account path for every account",
            d["seconds_per_account_path_all"],
            notes=(
                f"{d['usage_rows']:,} usage rows; one set-based pass vs 240 single-account "
                f"passes (what 240 workflows' daily scans cost together) || {ph.notes()}"
            ),
        )
    res.details["sizes"] = []
    for n in sizes:
        watch.watch("scan postgres", lambda n=n: _postmaster(f"vim-bench-{n}-"), descendants=True)
        async with probe.phase(f"scan: {n}") as ph:
            r = await health_scan.bench_size(n, 20, 100)
        watch.unwatch("scan postgres")
        r["profile"] = ph.as_dict()
        res.details["sizes"].append(r)
        res.add(
            f"s to scan {n:,} accounts (facts + assess + save snapshots)",
            r["seconds_scan"],
            "s",
            "s, the bare SQL aggregation it runs",
            r["seconds_bare_sql"],
            notes=(
                f"{r['usage_rows']:,} usage rows ({r['db_size']}), generated in {r['seconds_load']} s; "
                f"fetch_facts {r['seconds_fetch_facts']} s, assess {r['seconds_assess']} s "
                f"(pure Python), save {r['seconds_save']} s; {n / r['seconds_scan']:,.0f} accounts/s; "
                f"one account {r['ms_fetch_facts_one_account']} ms || whole scenario: {ph.notes()}"
            ),
        )
        sc, wh = r["scheduled"], r["whole"]
        res.add(
            f"s of the scheduled scan of {n:,} accounts (chunks of {sc['chunk']:,}, own process)",
            sc["seconds"],
            "s",
            "s, the bare SQL aggregation over raw events",
            r["seconds_bare_sql_raw_same_day"],
            notes=(
                f"peak RSS {sc['peak_rss_mb']:,} MB (the whole-portfolio scan: {wh['seconds']} s, "
                f"{wh['peak_rss_mb']:,} MB); bare SQL over the daily rollup "
                f"{r['seconds_bare_sql_rollup']} s ({r['rollup_rows']:,} rollup rows for "
                f"{r['usage_rows']:,} events); facts {sc['seconds_facts']} s, save "
                f"{sc['seconds_save']} s over {sc['chunks']} chunks; signals to account "
                "workflows not included"
            ),
        )
        if serial := r.get("scheduled_serial"):
            res.add(
                f"s of the scheduled scan of {n:,} accounts without the overlap of facts SQL "
                "and scoring (one part per chunk)",
                serial["seconds"],
                "s",
                "s, the bare SQL aggregation over raw events",
                r["seconds_bare_sql_raw_same_day"],
                notes=(
                    f"the path before the overlap, a day later on the same data: facts and "
                    f"scoring {serial['seconds_facts']} s, save {serial['seconds_save']} s; "
                    f"with the overlap (parts of {sc.get('part_size')}): {sc['seconds']} s"
                ),
            )
