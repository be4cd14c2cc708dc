"""Bulk usage ingestion (issue 16) vs a bare COPY of the same rows, on a private Postgres.

    .venv/bin/python -m bench.bulk_ingest [--events 200000] [--accounts 100]

The `bulk` scenario of `make bench` (or this standalone run), in this order,
each on an empty `usage_events` (TRUNCATE between runs, same indexes):

1. bare COPY: one `copy_records_to_table` of all rows (the denominator);
2. store: `ingest.store.write_usage` of already-validated rows, 5,000 a chunk
   (dedup by message id, unknown accounts checked, per-account counts back);
3. file: a CSV file through `starter.py ingest usage`'s reader (edge
   validation of every row) and the same writer;
4. HTTP: the Segment endpoint (`ingest.http`), 500 KB `/v1/batch` requests,
   4 in flight, validation and the writer; notification off (no Temporal
   here: it is one small signal per affected account per interval);
5. re-send: the file path again, every row a duplicate.

Step 4 runs twice: with the fast path for plain `track` calls
(domain/ingest.py `_segment_fast`, what runs in production) and with every
call through `SegmentCall` (the path before it), so both are compared in one
run.

Prints events/s and the ratio to the bare COPY; writes `--out` (default
bench/results/bulk-ingest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import domain.ingest
from bench.results import ScenarioResult
from cli.ingest import read_rows
from domain.ingest import SEGMENT_BATCH_BYTES, IngestEvent
from ingest.http import Ingestor, build_server
from ingest.notify import Coalescer
from ingest.store import CHUNK_ROWS, ChunkWriter, write_usage
from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded

RESULTS = Path(__file__).resolve().parent / "results" / "bulk-ingest.json"

FEATURES = ("login", "core.search", "core.comment", "reports.export", "dashboards.view")
COLUMNS = ["account_id", "message_id", "user_id", "occurred_at", "event_type", "quantity"]
KEY = "bench"


def make_rows(n: int, accounts: list[str]) -> list[IngestEvent]:
    rng = random.Random(42)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    return [
        IngestEvent(
            account_id=accounts[i % len(accounts)],
            message_id=f"m-{i}",
            user_id=f"u{rng.randrange(25)}",
            occurred_at=now - timedelta(seconds=rng.randrange(30 * 86400)),
            event_type=rng.choice(FEATURES),
            quantity=rng.randint(1, 5),
        )
        for i in range(n)
    ]


def segment_batches(rows: list[IngestEvent]) -> list[bytes]:
    out: list[bytes] = []
    batch: list[str] = []
    used = 20
    for e in rows:
        call = json.dumps(
            {
                "type": "track",
                "userId": e.user_id,
                "event": e.event_type,
                "properties": {"quantity": e.quantity},
                "timestamp": e.occurred_at.isoformat(),
                "messageId": e.message_id,
                "context": {"groupId": e.account_id},
            }
        )
        if used + len(call) + 1 > SEGMENT_BATCH_BYTES:
            out.append(('{"batch":[' + ",".join(batch) + "]}").encode())
            batch, used = [], 20
        batch.append(call)
        used += len(call) + 1
    if batch:
        out.append(('{"batch":[' + ",".join(batch) + "]}").encode())
    return out


async def run(n: int, n_accounts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vim-bulk-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        dsn = start_embedded(pgdata)
        try:
            await migrate_dsn(dsn)
            return await _run(dsn, Path(tmp), n, n_accounts)
        finally:
            stop_embedded(pgdata)


async def _run(dsn: str, tmp: Path, n: int, n_accounts: int) -> dict[str, Any]:
    accounts = [f"acct-{i}" for i in range(n_accounts)]
    rows = make_rows(n, accounts)
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
    await pool.executemany(
        "INSERT INTO accounts (account_id, name) VALUES ($1, $1)", [(a,) for a in accounts]
    )
    figures: dict[str, float] = {}

    async def clear() -> None:
        await pool.execute("TRUNCATE usage_events")
        await pool.execute("VACUUM ANALYZE usage_events")

    # 1. bare COPY
    await clear()
    records = [
        (e.account_id, e.message_id, e.user_id, e.occurred_at, e.event_type, e.quantity)
        for e in rows
    ]
    t = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("usage_events", records=records, columns=COLUMNS)
    figures["bare COPY"] = n / (time.perf_counter() - t)

    # 2. the writer alone
    await clear()
    t = time.perf_counter()
    res = await write_usage(pool, rows, "bench")
    figures["store (validated rows)"] = n / (time.perf_counter() - t)
    assert res.written == n, res

    # 3. a CSV file through the CLI's reader and the writer
    path = tmp / "usage.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in records:
            w.writerow([r[0], r[1], r[2], r[3].isoformat(), r[4], r[5]])
    await clear()

    async def load_file() -> tuple[float, int]:
        t = time.perf_counter()
        refused: list[tuple[int, str]] = []
        writer = ChunkWriter(pool, "file")
        with path.open(newline="") as f:
            chunk: list[IngestEvent] = []
            for e in read_rows(f, refused):
                chunk.append(e)
                if len(chunk) >= CHUNK_ROWS:
                    await writer.put(chunk)
                    chunk = []
            await writer.put(chunk)
        written = (await writer.drain()).written
        assert not refused, refused[:3]
        return n / (time.perf_counter() - t), written

    figures["file (CSV, validated)"], written = await load_file()
    assert written == n
    figures["file again (all duplicates)"], written = await load_file()
    assert written == 0

    # 4. the Segment endpoint
    await clear()
    bodies = segment_batches(rows)
    ingestor = Ingestor(pool, Coalescer(None))
    server = build_server(
        ingestor, asyncio.get_running_loop(), host="127.0.0.1", port=0, write_keys=[KEY]
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/batch"
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(timeout=120, auth=(KEY, "")) as http:

        async def post(body: bytes) -> None:
            async with sem:
                r = await http.post(url, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 200, r.text[:300]

        t = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        figures[f"HTTP /v1/batch ({len(bodies)} requests)"] = n / (time.perf_counter() - t)
        assert await pool.fetchval("SELECT count(*) FROM usage_events") == n
        await clear()
        with model_only():
            t = time.perf_counter()
            await asyncio.gather(*(post(b) for b in bodies))
            figures["HTTP, every call through SegmentCall"] = n / (time.perf_counter() - t)
    server.shutdown()
    assert await pool.fetchval("SELECT count(*) FROM usage_events") == n
    await pool.close()

    base = figures["bare COPY"]
    print(f"{n:,} usage events, {n_accounts} accounts, one machine (2 cores shared)")
    for name, rate in figures.items():
        print(f"  {name:<40} {rate:>10,.0f} events/s   {rate / base:5.2f}x bare COPY")
    return {
        "events": n,
        "accounts": n_accounts,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events_per_second": {k: round(v) for k, v in figures.items()},
        "ratio_to_bare_copy": {k: round(v / base, 2) for k, v in figures.items()},
    }


async def scenario(n: int, res: ScenarioResult) -> None:
    """The `bulk` scenario of `make bench`: run() as result rows, each against the COPY."""
    r = await run(n, 100)
    res.details.update(r)
    rates, base = r["events_per_second"], r["events_per_second"]["bare COPY"]
    for name, rate in rates.items():
        if name != "bare COPY":
            res.add(
                f"usage events/s: {name}",
                rate,
                "events/s",
                "events/s, one bare COPY of the same rows",
                base,
                notes=f"{n:,} events, 100 accounts; goal >= 0.5x for the file and HTTP paths",
            )


@contextlib.contextmanager
def model_only() -> Iterator[None]:
    """Every Segment call through SegmentCall (no fast path): the path before it."""
    fast = domain.ingest._segment_fast
    domain.ingest._segment_fast = lambda *args: None
    try:
        yield
    finally:
        domain.ingest._segment_fast = fast


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bulk_ingest", description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    result = asyncio.run(run(args.events, args.accounts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
