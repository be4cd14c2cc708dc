"""Scenario 5, worker memory: peak RSS of `worker.py` with N running account workflows.

The same worker process is measured idle (connected, polling, 0 workflows)
when the stack starts, then while accounts are handed off at the rate the
stack sustains (32 starts in flight), until each has its first scan written.
Accounts the handoff and ingestion scenarios left running count: this
scenario only tops them up to each target.

What to expect, and why: the worker keeps at most `max_cached_workflows`
workflow instances in memory (`VIM_MAX_CACHED_WORKFLOWS`, 250 by default; the
SDK's own default is 1,000). Past that, instances are evicted and rebuilt from
history when their next task comes (a daily scan, a signal), so RSS should
flatten past the cache size while the dev server and Postgres hold the rest.
"""

from __future__ import annotations

import asyncio

from bench.devstack import DevStack
from bench.handoff import hand_off_more
from bench.results import ScenarioResult
from stack.settings import load_settings

MB = 1024 * 1024
SDK_CACHE = load_settings().max_cached_workflows  # what worker.py passes to Worker()


async def steady_rss(st: DevStack, seconds: float = 3.0) -> int:
    samples = []
    for _ in range(int(seconds / 0.3)):
        await asyncio.sleep(0.3)
        samples.append(st.worker.rss())
    return max(samples)


async def run(st: DevStack, points: list[int], res: ScenarioResult) -> None:
    idle = st.worker_idle_rss
    assert st.rss_peak_at is not None
    res.details["worker_idle_rss_mb"] = round(idle / MB, 1)
    res.details["points"] = {}
    for target in sorted(points):
        phase_notes = ""
        if st.running < target:
            count = target - st.running
            st.watch.reset_peaks()
            async with st.probe.phase(f"memory: to {target}") as ph:
                _, t_done, _ = await hand_off_more(st, count)
                ph.per = (count, "workflow")
            st.rss_peak_at[target] = st.watch.peaks().get("worker", 0)
            phase_notes = (
                f"{count:,} more accounts handed off in {t_done:.0f} s "
                f"({count / t_done:.1f}/s) || {ph.notes()}"
            )
            res.details["points"][str(target)] = {
                "handed_off": count,
                "seconds": round(t_done, 1),
                "profile": ph.as_dict(),
            }
        elif target not in st.rss_peak_at:
            res.add(
                f"worker peak RSS, {target:,} running account workflows",
                0,
                "MB",
                notes=f"skipped: {st.running:,} accounts already run (more than {target:,})",
            )
            continue
        steady = await steady_rss(st)
        peak = max(st.rss_peak_at[target], steady)
        now = st.watch.now()
        server = now.get("dev server", 0)
        pg = now.get("postgres", 0)
        per_wf = (steady - idle) / min(target, SDK_CACHE) / 1024
        res.add(
            f"worker peak RSS, {target:,} running account workflows",
            peak / MB,
            "MB",
            "same worker idle, 0 workflows",
            idle / MB,
            notes=(
                f"steady after the first scans {steady / MB:.0f} MB (~{per_wf:.0f} KB per cached "
                f"workflow; the worker caches at most {SDK_CACHE:,}); dev server RSS "
                f"{server / MB:.0f} MB, postmaster {pg / MB:.0f} MB"
                + (f"; {phase_notes}" if phase_notes else "")
            ),
        )
        res.details["points"].setdefault(str(target), {}).update(
            {
                "worker_peak_rss_mb": round(peak / MB, 1),
                "worker_steady_rss_mb": round(steady / MB, 1),
                "dev_server_rss_mb": round(server / MB, 1),
            }
        )
