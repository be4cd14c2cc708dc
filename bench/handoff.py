"""Scenario 1, handoff: start N account workflows vs N no-op workflows, same server.

Accounts are started exactly as `make demo` starts them (`cli.accounts.
start_account`, 32 in flight), with `worker.py` running: each handoff is a
workflow start, then on the worker `record_handoff`, the first health scan
(`score_account`), search-attribute upserts and the first timer. Two figures:

- started/s: how fast the server accepts the starts (what Sales waits for);
- handed off/s: started *and* first scan written to `health_snapshots` (when
  a CSM sees a band), against no-op workflows started and completed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from bench.devstack import DevStack, gather_limited, percentile, wait_for
from bench.results import ScenarioResult
from cli.accounts import start_account
from domain.handoff import Handoff
from stack.__main__ import HANDOFF_CONCURRENCY

ACCOUNT_PREFIX = "bench-h-"
TIERS = ("tier-1", "tier-2", "tier-3")


def bench_handoff(i: int, today: date, prefix: str = ACCOUNT_PREFIX) -> Handoff:
    """A fresh account from Sales: contract signed, no telemetry yet (like a real handoff)."""
    seats = 10 + (i * 7) % 90
    return Handoff.model_validate(
        {
            "account_id": f"{prefix}{i:06d}",
            "name": f"Bench Account {i}",
            "tier": TIERS[i % 3],
            "csm_owner": f"CSM {i % 40}",
            "csm_email": f"csm{i % 40}@example.com",
            "rep_owner": f"Rep {i % 25}",
            "rep_email": f"rep{i % 25}@example.com",
            "contract": {
                "start_date": (today - timedelta(days=i % 30)).isoformat(),
                "end_date": (today + timedelta(days=200 + i % 300)).isoformat(),
                "arr": seats * 600,
                "seats_purchased": seats,
                "price_per_seat": 600,
                "licensed_modules": ["core", "reports"] if i % 4 else ["core", "reports", "api"],
            },
            "stakeholders": [
                {
                    "name": f"Champion {i}",
                    "email": f"champion{i}@example.com",
                    "role": "champion",
                    "is_champion": True,
                },
            ],
        }
    )


async def hand_off(st: DevStack, handoffs: list[Handoff]) -> tuple[float, float, list[float]]:
    """Start every handoff; wait until each account has its first health snapshot.

    Returns (seconds to start them all, seconds until every first scan is
    written, per-start latencies).
    """
    loop = asyncio.get_running_loop()
    ids = [h.account_id for h in handoffs]
    t0 = loop.time()

    async def one(i: int) -> None:
        await start_account(st.client, handoffs[i], st.settings)

    latencies = await gather_limited(len(handoffs), HANDOFF_CONCURRENCY, one)
    t_started = loop.time()

    last_said = loop.time()

    async def all_scanned() -> bool:
        nonlocal last_said
        got = int(
            await st.pool.fetchval(
                "SELECT count(DISTINCT account_id) FROM health_snapshots "
                "WHERE account_id = ANY($1)",
                ids,
            )
            or 0
        )
        if loop.time() - last_said > 60:  # long ramps say where they are
            last_said = loop.time()
            print(
                f"  ... {got:,}/{len(ids):,} first scans written after {loop.time() - t0:.0f} s",
                flush=True,
            )
        return got >= len(ids)

    # Budget: far above the slowest rate seen, so a stall fails loudly instead of hanging.
    t_done = await wait_for(all_scanned, within=120 + len(ids) * 0.5, every=0.5, check=st.check)
    st.running += len(ids)
    return t_started - t0, t_done - t0, latencies


async def hand_off_more(st: DevStack, count: int) -> tuple[float, float, list[float]]:
    """The next `count` bench accounts (ids continue where the last call stopped)."""
    today = datetime.now(UTC).date()
    first = st.handed_off
    out = await hand_off(st, [bench_handoff(first + i, today) for i in range(count)])
    st.handed_off = first + count
    return out


async def run(st: DevStack, n: int, res: ScenarioResult) -> None:
    client = st.client
    loop = asyncio.get_running_loop()

    # --- baseline: N no-op workflows, same server, own worker process
    run_id = datetime.now(UTC).strftime("%H%M%S")
    async with st.probe.phase("handoff: no-op") as p_noop:
        t0 = loop.time()

        async def start_noop(i: int) -> None:
            await client.start_workflow(
                "BenchNoop", id=f"bench-noop-{run_id}-{i}", task_queue=st.noop_queue
            )

        noop_latencies = await gather_limited(n, HANDOFF_CONCURRENCY, start_noop)
        t_noop_started = loop.time() - t0

        async def noop_done() -> bool:
            got = await client.count_workflows(
                f"WorkflowType = 'BenchNoop' AND ExecutionStatus = 'Completed' "
                f"AND WorkflowId STARTS_WITH 'bench-noop-{run_id}-'"
            )
            return got.count >= n

        t_noop_done = await wait_for(noop_done, within=60 + n * 0.3, check=st.check) - t0
        p_noop.per = (n, "workflow")

    # --- the figure: N account handoffs through start_account, worker.py running
    st.watch.reset_peaks()
    async with st.probe.phase("handoff: accounts") as p_acc:
        t_started, t_done, latencies = await hand_off_more(st, n)
        p_acc.per = (n, "workflow")
    assert st.rss_peak_at is not None
    st.rss_peak_at[st.running] = st.watch.peaks().get("worker", 0)

    res.add(
        "accounts started/s (start_account, 32 in flight)",
        n / t_started,
        "/s",
        "no-op workflows started/s",
        n / t_noop_started,
        notes=(
            f"{n} accounts started in {t_started:.1f} s, start latency p50 "
            f"{percentile(latencies, 0.5) * 1000:.0f} ms / p95 {percentile(latencies, 0.95) * 1000:.0f} ms "
            f"(no-op p50 {percentile(noop_latencies, 0.5) * 1000:.0f} ms); "
            "the worker's first scans run at the same time and share the 2 cores"
        ),
    )
    res.add(
        "accounts handed off/s (started + first scan in health_snapshots)",
        n / t_done,
        "/s",
        "no-op workflows started + completed/s",
        n / t_noop_done,
        notes=f"accounts: {p_acc.notes()} || no-op: {p_noop.notes()}",
    )
    res.details.update(
        {
            "accounts": n,
            "concurrency": HANDOFF_CONCURRENCY,
            "seconds_accounts_started": round(t_started, 2),
            "seconds_accounts_first_scan_done": round(t_done, 2),
            "seconds_noop_started": round(t_noop_started, 2),
            "seconds_noop_completed": round(t_noop_done, 2),
            "start_latency_ms": {
                "p50": round(percentile(latencies, 0.5) * 1000, 1),
                "p95": round(percentile(latencies, 0.95) * 1000, 1),
                "noop_p50": round(percentile(noop_latencies, 0.5) * 1000, 1),
                "noop_p95": round(percentile(noop_latencies, 0.95) * 1000, 1),
            },
            "profile": {"accounts": p_acc.as_dict(), "noop": p_noop.as_dict()},
        }
    )
