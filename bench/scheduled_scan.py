"""One portfolio scan in a process of its own, for its wall time and peak RSS (not a test).

    .venv/bin/python -m bench.scheduled_scan DSN AS_OF [--chunk 1000] [--part-size 250] [--whole]

Default: the scheduled scan's path, `scan_chunk` (activities/health.py) chunk after
chunk as PortfolioScanWorkflow runs it (facts, scores, snapshots and findings saved,
summaries built; no Temporal: signals off). `--part-size`: accounts per overlapped part
of a chunk (ScanChunkRequest.part_size; `--part-size` = `--chunk`: no overlap, the path
before the overlap). `--whole`: the old one-pass `scan_portfolio`
that holds every account's facts at once. Prints one JSON line: seconds, accounts,
chunks, the chunk timings summed, and this process's peak RSS (VmHWM) in MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.db import create_pool  # noqa: E402
from activities.health import HealthActivities, ScanRequest  # noqa: E402
from domain.config import load_health_config  # noqa: E402
from workflows.activity_models import ScanChunkRequest  # noqa: E402


async def scan(
    dsn: str, as_of: datetime, chunk: int, whole: bool, part_size: int | None = None
) -> dict:
    pool = await create_pool(dsn, max_size=2)
    acts = HealthActivities(pool, load_health_config())
    t0 = time.perf_counter()
    part = ScanChunkRequest(as_of=as_of).part_size if part_size is None else part_size
    out: dict = {"mode": "whole" if whole else "chunked", "chunk": chunk}
    if not whole:
        out["part_size"] = part
    try:
        if whole:
            r = await acts.scan_portfolio(ScanRequest(as_of=as_of, batch_size=chunk))
            out.update(
                accounts=r.accounts, seconds_facts=r.seconds_facts, seconds_save=r.seconds_save
            )
        else:
            after, accounts, chunks, facts_s, save_s = "", 0, 0, 0.0, 0.0
            while True:
                c = await acts.scan_chunk(
                    ScanChunkRequest(
                        as_of=as_of,
                        after=after,
                        limit=chunk,
                        signal_accounts=False,
                        part_size=part,
                    )
                )
                if c.last_account_id is None:
                    break
                after, chunks, accounts = c.last_account_id, chunks + 1, accounts + c.accounts
                facts_s, save_s = facts_s + c.seconds_facts, save_s + c.seconds_save
            out.update(
                accounts=accounts,
                chunks=chunks,
                seconds_facts=round(facts_s, 2),
                seconds_save=round(save_s, 2),
            )
    finally:
        await pool.close()
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> int:
    """This process's own peak RSS. Not ru_maxrss: on Linux a child started by fork + exec
    reports the parent's peak there (the bench parent holds a whole portfolio's facts)."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(status.split("VmHWM:")[1].split()[0]) / 1024)
    except (OSError, IndexError, ValueError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dsn")
    ap.add_argument("as_of", type=datetime.fromisoformat)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--part-size", type=int, default=None)
    ap.add_argument("--whole", action="store_true")
    args = ap.parse_args(argv)
    result = asyncio.run(scan(args.dsn, args.as_of, args.chunk, args.whole, args.part_size))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
