"""Scenario 2, usage-event ingestion: the signal path vs a bare COPY of the same rows.

The signal path is what an ETL uses when it feeds the workflows: batches of
`UsageEvent`s (`UsageEventsSignal`, 500 a batch by default) signalled to
running account workflows, 16 signals in flight; each workflow queues them
and flushes through the `record_telemetry` activity (a keyed INSERT into
`events` for idempotency, then COPY into `usage_events`). The clock stops when
every row is in Postgres.

Baselines, same rows, same database: one `copy_records_to_table` of all rows
(the bare limit, the ratio's denominator), and, in the notes, the activity's
own SQL per batch without Temporal (to split Temporal's share from the
per-batch SQL's).
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from bench.devstack import DevStack, gather_limited, percentile, wait_for
from bench.handoff import bench_handoff, hand_off
from bench.results import ScenarioResult
from domain.handoff import account_workflow_id
from domain.messages import UsageEvent, UsageEventsSignal

ACCOUNT_PREFIX = "bench-i-"
SIGNAL_CONCURRENCY = 16
FEATURES = ("login", "core.search", "core.comment", "reports.export", "dashboards.view", "api.call")
COLUMNS = ["account_id", "user_id", "occurred_at", "event_type", "quantity"]


def make_batches(
    accounts: list[str], batches: int, size: int, run_id: str
) -> list[tuple[str, UsageEventsSignal]]:
    """Deterministic batches, round-robin over the accounts, events in the last 30 days."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    out = []
    for b in range(batches):
        events = [
            UsageEvent(
                user_id=f"u{rng.randrange(25)}",
                occurred_at=now - timedelta(seconds=rng.randrange(30 * 86400)),
                event_type=rng.choice(FEATURES),
                quantity=rng.randint(1, 5),
            )
            for _ in range(size)
        ]
        out.append(
            (
                accounts[b % len(accounts)],
                UsageEventsSignal(batch_id=f"{run_id}-{b}", events=events),
            )
        )
    return out


async def run(
    st: DevStack, batches: int, batch_size: int, n_accounts: int, res: ScenarioResult
) -> None:
    run_id = datetime.now(UTC).strftime("%H%M%S")
    prefix = f"{ACCOUNT_PREFIX}{run_id}-"
    k = max(1, min(n_accounts, batches))
    today = datetime.now(UTC).date()
    # Running account workflows to signal; their handoff is not part of the figure.
    handoffs = [bench_handoff(i, today, prefix=prefix) for i in range(k)]
    await hand_off(st, handoffs)
    ids = [h.account_id for h in handoffs]
    work = make_batches(ids, batches, batch_size, run_id)
    total = batches * batch_size
    loop = asyncio.get_running_loop()

    # --- the figure: signals -> workflow -> record_telemetry -> COPY
    async with st.probe.phase("ingestion: signals") as p_sig:
        t0 = loop.time()

        async def send(i: int) -> None:
            account, batch = work[i]
            await st.client.get_workflow_handle(account_workflow_id(account)).signal("usage", batch)

        latencies = await gather_limited(len(work), SIGNAL_CONCURRENCY, send)
        t_sent = loop.time() - t0

        async def all_rows() -> bool:
            got = await st.pool.fetchval(
                "SELECT count(*) FROM usage_events WHERE account_id = ANY($1)", ids
            )
            return int(got or 0) >= total

        t_done = await wait_for(all_rows, within=120 + total / 200, check=st.check) - t0
        p_sig.per = (batches, "signal")

    # --- bare limit: one COPY of the same rows
    bare_records = [
        (f"bare-{run_id}-{account}", e.user_id, e.occurred_at, e.event_type, e.quantity)
        for account, batch in work
        for e in batch.events
    ]
    async with (
        st.probe.phase("ingestion: bare COPY", profile=False) as p_copy,
        st.pool.acquire() as conn,
    ):
        await conn.copy_records_to_table("usage_events", records=bare_records, columns=COLUMNS)

    # --- the activity's SQL per batch, no Temporal (one connection, in order)
    async with (
        st.probe.phase("ingestion: per-batch SQL", profile=False) as p_sql,
        st.pool.acquire() as conn,
    ):
        for account, batch in work:
            acct = f"sql-{run_id}-{account}"
            async with conn.transaction():
                await conn.fetchval(
                    "INSERT INTO events (event_key, account_id, event_type, payload, occurred_at) "
                    "VALUES ($1, $2, 'telemetry.usage_batch', $3::jsonb, now()) "
                    "ON CONFLICT (event_key) DO NOTHING RETURNING event_id",
                    f"usage-batch:{acct}:{batch.batch_id}",
                    acct,
                    f'{{"events": {len(batch.events)}}}',
                )
                await conn.copy_records_to_table(
                    "usage_events",
                    records=[
                        (acct, e.user_id, e.occurred_at, e.event_type, e.quantity)
                        for e in batch.events
                    ],
                    columns=COLUMNS,
                )

    signal_rate = total / t_done
    res.add(
        f"usage events/s via signals ({batch_size}/batch) until all rows are in Postgres",
        signal_rate,
        "/s",
        "events/s, one bare COPY of the same rows",
        total / p_copy.seconds,
        notes=(
            f"{total:,} events in {batches} signals to {k} running workflows, "
            f"{SIGNAL_CONCURRENCY} in flight; sending took {t_sent:.1f} s "
            f"(signal p50 {percentile(latencies, 0.5) * 1000:.0f} ms), rows landed at {t_done:.1f} s; "
            f"same SQL as record_telemetry per batch without Temporal: "
            f"{total / p_sql.seconds:,.0f} events/s || signals: {p_sig.notes()}"
        ),
    )
    res.details.update(
        {
            "events": total,
            "batches": batches,
            "batch_size": batch_size,
            "accounts": k,
            "seconds_signals_sent": round(t_sent, 2),
            "seconds_rows_in_postgres": round(t_done, 2),
            "seconds_bare_copy": round(p_copy.seconds, 3),
            "seconds_per_batch_sql": round(p_sql.seconds, 3),
            "events_per_second_per_batch_sql": round(total / p_sql.seconds, 1),
            "signal_latency_ms_p50": round(percentile(latencies, 0.5) * 1000, 1),
            "signal_latency_ms_p95": round(percentile(latencies, 0.95) * 1000, 1),
            "profile": {
                "signals": p_sig.as_dict(),
                "bare_copy": p_copy.as_dict(),
                "per_batch_sql": p_sql.as_dict(),
            },
        }
    )
