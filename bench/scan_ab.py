"""The scheduled scan with and without the overlap of facts SQL and scoring, A/B (not a test).

    .venv/bin/python bench/scan_ab.py 3000 > bench/results/scheduled-scan-ab-3k.jsonl

One portfolio of N accounts (bench/health_scan.py's generator), then three pairs of
scheduled scans in processes of their own, each on a later day: one part per chunk
(`--part-size 1000`, the path before the overlap) then parts of 250 (the default), each
preceded by the bare SQL over the rollup on the same day. Pairs run back to back so a
busy machine weighs on both sides of a pair alike. Prints one JSON line per scan.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.health_scan import AS_OF, _bare_sql, _fresh_server, _generate, _scan_process  # noqa: E402
from domain.config import load_health_config  # noqa: E402
from stack.postgres import stop_embedded  # noqa: E402


async def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"vim-ab-{n}-"))
    try:
        dsn = await _fresh_server(root)
        conn = await asyncpg.connect(dsn, command_timeout=3600)
        print(json.dumps(await _generate(conn, n, 20, 100)), flush=True)
        w = load_health_config().windows
        day = 2
        for _pair in range(3):
            for part in ("1000", "250"):
                at = AS_OF + timedelta(days=day)
                day += 1
                bare = await _bare_sql(conn, w, True, at)
                r = await _scan_process(dsn, at, "--chunk", "1000", "--part-size", part)
                r["bare_rollup"] = round(bare, 2)
                print(json.dumps(r), flush=True)
        await conn.close()
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
