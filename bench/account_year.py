"""Scenario 4, a simulated account-year on the time-skipping server.

A small demo portfolio (20 accounts, a year of telemetry up to "today" on the
server's clock) is loaded with COPY; K of its accounts (by default the
reference account plus a healthy, a declining and an expanding one) are
handed off with their milestones, then the clock is skipped 365 days in
5-day steps with the real worker (`worker.build_workers`, in this process).

So that the year is lived, not a slow decay to zero usage, each account's
telemetry from the past year is copied 365 days forward (scans only count
rows at or before `as_of`, so a future row appears on its day), and every
account has its next term on file (it renews, it does not churn).

Run twice, each on a fresh server and database: with no ANTHROPIC_API_KEY
(every narrative is the template fallback, one `llm_usage` row each) and
with the bench's fake model endpoint (`bench/fake_model.py`: real HTTP, the
Messages API contract checked, tokens estimated from what is sent).

A third run, mode "scheduled" (template fallback), feeds the accounts from the
daily scheduled portfolio scan (`bench/daily_scan.py` stands in for the
Schedule, which the time-skipping server lacks): each day `PortfolioScanWorkflow`
hands every account its `portfolio_summary` signal and the account decides from
it instead of running its own `score_account`. History events are also counted
by event type, to say what fills the history.

Baseline, on the first run's server before the accounts: K workflows doing
nothing but 365 one-day timers, skipped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db import create_pool
from bench.daily_scan import BenchDailyScanWorkflow
from bench.fake_model import API_KEY, BenchModelFake
from bench.noop import BenchTimerYearWorkflow
from bench.probe import Probe
from bench.results import ScenarioResult
from bench.stack import Postgres, ProcessWatch, binary, child_pid, temp_environ
from cli.accounts import start_account
from demo.load import load_portfolio
from demo.portfolio import REFERENCE_ACCOUNT_ID, Portfolio, generate_portfolio
from domain.handoff import Handoff
from stack.settings import load_settings
from stack.temporal_dev import register_search_attributes
from worker import build_workers
from workflows.sandbox import cache_workflow_bytecode

DAYS = 365
STEP = timedelta(days=5)
STALL_SECONDS = 5.0  # a 5-day step takes ~1.5 s; 5 s with a frozen clock is a leaked lock
PREFERRED = ("healthy", "declining", "expanding", "renewing", "overloaded", "spiky", "overdue")

# Last year's telemetry, a year later: keyed rows get a new id so they are new rows.
SHIFT_SQL = """
INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity)
  SELECT account_id, user_id, occurred_at + interval '365 days', event_type, quantity
  FROM usage_events WHERE account_id = ANY($1);
INSERT INTO support_tickets (ticket_id, account_id, opened_at, closed_at, priority, sentiment,
                             escalated, subject, body)
  SELECT ticket_id || '+1y', account_id, opened_at + interval '365 days',
         closed_at + interval '365 days', priority, sentiment, escalated, subject, body
  FROM support_tickets WHERE account_id = ANY($1);
INSERT INTO nps_responses (response_id, account_id, respondent, responded_at, score, comment)
  SELECT response_id || '+1y', account_id, respondent, responded_at + interval '365 days', score,
         comment
  FROM nps_responses WHERE account_id = ANY($1);
INSERT INTO interactions (interaction_id, account_id, occurred_at, kind, meaningful, attendees, notes)
  SELECT interaction_id || '+1y', account_id, occurred_at + interval '365 days', kind, meaningful,
         attendees, notes
  FROM interactions WHERE account_id = ANY($1);
INSERT INTO invoices (invoice_id, account_id, issued_on, due_on, paid_on, amount)
  SELECT invoice_id || '+1y', account_id, issued_on + 365, due_on + 365, paid_on + 365, amount
  FROM invoices WHERE account_id = ANY($1);
INSERT INTO tam_health (account_id, measured_at, score, rag, escalation, note)
  SELECT account_id, measured_at + interval '365 days', score, rag, escalation, note
  FROM tam_health WHERE account_id = ANY($1);
"""

RENEW_SQL = """
INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat,
                       licensed_modules)
  SELECT DISTINCT ON (account_id) account_id, end_date, end_date + 365, arr, seats_purchased,
         price_per_seat, licensed_modules
  FROM contracts WHERE account_id = ANY($1)
  ORDER BY account_id, start_date DESC
ON CONFLICT (account_id, start_date) DO NOTHING
"""


def pick_accounts(portfolio: Portfolio, k: int) -> list[Handoff]:
    """The reference account, then one per archetype in PREFERRED order: a typical mix."""
    handoffs = {h.account_id: h for h in portfolio.handoffs()}
    chosen = [REFERENCE_ACCOUNT_ID] if REFERENCE_ACCOUNT_ID in handoffs else []
    for archetype in PREFERRED:
        for aid in handoffs:
            if aid not in chosen and portfolio.archetype_of(aid) == archetype:
                chosen.append(aid)
                break
    chosen += [a for a in handoffs if a not in chosen]
    return [handoffs[a] for a in chosen[:k]]


async def skip_year(
    env: WorkflowEnvironment, days: int = DAYS, stall_seconds: float = STALL_SECONDS
) -> tuple[int, float]:
    """Advance the server clock a year in 5-day steps (one long sleep RPC can time out).

    Returns how many leaked time-skipping locks had to be released, and the
    wall seconds lost waiting on them (left out of the figures). The Java
    test server sometimes keeps a lock after a child workflow is started near
    a parent's continue-as-new (seen every 90 days here, when the expansion
    cooldown and the 30-day run boundary coincide; cf. temporalio/sdk-java
    #1540): the virtual clock then only moves at wall-clock speed, nothing is
    pending anywhere, and the sleep RPC times out. A step whose virtual clock
    stands still for STALL_SECONDS is unlocked once; the sleep then finishes
    and re-locks, which leaves the lock count where it was.
    """
    from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest

    leaks, stalled = 0, 0.0
    end = await env.get_current_time() + timedelta(days=days)
    while (now := await env.get_current_time()) < end:
        sleeper = asyncio.ensure_future(env.sleep(min(STEP, end - now)))
        while not sleeper.done():
            before, t0 = await env.get_current_time(), time.perf_counter()
            done, _ = await asyncio.wait({sleeper}, timeout=stall_seconds)
            if done:
                break
            if await env.get_current_time() - before < timedelta(minutes=1):
                await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
                leaks += 1
                stalled += time.perf_counter() - t0
        await sleeper
    return leaks, stalled


async def history(client: Client, workflow_id: str, run_id: str | None) -> dict[str, Any]:
    """Events over a workflow's continue-as-new chain, and the children it started."""
    total, runs, biggest = 0, 0, 0
    children: list[str] = []
    by_type: Counter[str] = Counter()
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        n, last = 0, None
        async for event in handle.fetch_history_events():
            n += 1
            last = event
            by_type[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                children.append(
                    event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                )
        total, runs, biggest = total + n, runs + 1, max(biggest, n)
        if last is not None and last.HasField(
            "workflow_execution_continued_as_new_event_attributes"
        ):
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            continue
        return {
            "events": total,
            "runs": runs,
            "max_run_events": biggest,
            "children": children,
            "by_type": dict(by_type.most_common()),
        }


async def llm_usage(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT count(*) AS rows, count(*) FILTER (WHERE fallback) AS fallbacks,
                  count(*) FILTER (WHERE NOT fallback) AS model_calls,
                  count(*) FILTER (WHERE error IS NOT NULL) AS errors,
                  coalesce(sum(input_tokens), 0) AS input_tokens,
                  coalesce(sum(output_tokens), 0) AS output_tokens,
                  coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
                  coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens
           FROM llm_usage"""
    )
    by_purpose = await conn.fetch(
        "SELECT purpose, count(*) AS n FROM llm_usage GROUP BY 1 ORDER BY 2 DESC"
    )
    out: dict[str, Any] = {k: int(v) for k, v in dict(row).items()}
    out["by_purpose"] = {r["purpose"]: r["n"] for r in by_purpose}
    out["deliveries"] = int(await conn.fetchval("SELECT count(*) FROM deliveries"))
    out["snapshots"] = int(await conn.fetchval("SELECT count(*) FROM health_snapshots"))
    return out


async def simulate(
    root: Path,
    pg: Postgres,
    watch: ProcessWatch,
    k: int,
    profile: bool,
    *,
    mode: str,
    model: BenchModelFake | None,
    baseline: bool,
    scheduled: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": mode}
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )
    server_pid = child_pid(lambda p: "temporal-test-server" in " ".join(p.cmdline()))
    watch.watch("test server", lambda: [server_pid], descendants=True)
    pool: asyncpg.Pool | None = None
    try:
        await register_search_attributes(env.client)
        dsn = await pg.create_database(f"vim_bench_year_{mode}")
        q = uuid.uuid4().hex[:6]
        settings = load_settings(
            {
                "VIM_DATA_DIR": str(root / f"year-{mode}"),
                "VIM_TASK_QUEUE": f"year-accounts-{q}",
                "VIM_SALES_TASK_QUEUE": f"year-sales-{q}",
                "VIM_LLM_TASK_QUEUE": f"year-llm-{q}",
            }
        )
        probe = Probe(
            watch=watch,
            workdir=root,
            dsn=dsn,
            profile_pid=os.getpid(),
            profile_label="bench (worker in-process)",
            profile=profile,
        )
        pool = await create_pool(dsn, max_size=5)
        # The narrative activity reads its model settings when it is built.
        llm_env = (
            {"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": model.url}
            if model is not None
            else {"ANTHROPIC_API_KEY": None, "ANTHROPIC_BASE_URL": None}
        )
        with temp_environ(**llm_env):
            workers = build_workers(env.client, pool, settings)
        timer_queue = f"year-timer-{q}"
        all_workers = [
            *workers.workers,
            Worker(
                env.client,
                task_queue=timer_queue,
                workflows=[BenchTimerYearWorkflow, BenchDailyScanWorkflow],
            ),
        ]
        async with contextlib.AsyncExitStack() as stack:
            for w in all_workers:
                await stack.enter_async_context(w)

            if baseline:
                async with probe.phase(f"year: timer-only ({mode} server)") as p_timer:
                    handles = [
                        await env.client.start_workflow(
                            "BenchTimerYear", DAYS, id=f"timer-year-{q}-{i}", task_queue=timer_queue
                        )
                        for i in range(k)
                    ]
                    out["timer_lock_leaks"], timer_stalled = await skip_year(env)
                    for h in handles:
                        await h.result()
                timer_events = await history(env.client, handles[0].id, None)
                out["timer_wall_seconds"] = p_timer.seconds - timer_stalled
                out["timer_events_per_year"] = timer_events["events"]
                out["timer_profile"] = p_timer.as_dict()
                out["timer_notes"] = p_timer.notes()

            # The portfolio's "today" is the server's clock now (after any baseline year).
            today = (await env.get_current_time()).date()
            t0 = time.perf_counter()
            portfolio = generate_portfolio(seed=7, as_of=today, n_accounts=20)
            chosen = pick_accounts(portfolio, k)
            ids = [h.account_id for h in chosen]
            async with pool.acquire() as conn:
                await load_portfolio(conn, portfolio)
                for statement in filter(str.strip, SHIFT_SQL.split(";")):
                    await conn.execute(statement, ids)
                await conn.execute(RENEW_SQL, ids)
                await conn.execute("ANALYZE")
            out["seconds_load"] = round(time.perf_counter() - t0, 1)
            out["accounts"] = {h.account_id: portfolio.archetype_of(h.account_id) for h in chosen}

            async with probe.phase(f"year: accounts ({mode})") as p_year:
                first_runs: dict[str, str] = {}
                for chosen_h in chosen:
                    wf_id = await start_account(env.client, chosen_h, settings)
                    desc = await env.client.get_workflow_handle(wf_id).describe()
                    first_runs[wf_id] = desc.run_id
                if scheduled:
                    await env.client.start_workflow(
                        BenchDailyScanWorkflow.run,
                        args=[DAYS, settings.task_queue],
                        id=f"daily-scan-{q}",
                        task_queue=timer_queue,
                    )
                out["lock_leaks"], stalled = await skip_year(env)
            out["wall_seconds"] = p_year.seconds - stalled
            out["seconds_stalled_on_leaked_locks"] = round(stalled, 1)
            out["profile"] = p_year.as_dict()
            out["notes"] = p_year.notes()

            events: dict[str, Any] = {}
            child_events = 0
            children = 0
            for wf_id, run_id in first_runs.items():
                chain = await history(env.client, wf_id, run_id)
                for child in chain["children"]:
                    with contextlib.suppress(Exception):  # a child not started (a no-op retry)
                        child_events += (await history(env.client, child, None))["events"]
                        children += 1
                events[wf_id] = {k2: v for k2, v in chain.items() if k2 != "children"}
            out["history"] = events
            out["child_workflows"] = children
            out["child_events"] = child_events
            async with pool.acquire() as conn:
                out["llm"] = await llm_usage(conn)
            if model is not None:
                out["fake_calls_counted"] = model.calls_made
                out["fake_violations"] = list(model.violations)
            # Leave nothing running for the server's shutdown to wait on.
            for wf_id in [*first_runs, *([f"daily-scan-{q}"] if scheduled else [])]:
                with contextlib.suppress(Exception):
                    await env.client.get_workflow_handle(wf_id).terminate("bench done")
    finally:
        watch.unwatch("test server")
        if pool is not None:
            await pool.close()
        await env.shutdown()
    return out


def events_by_type(run: dict[str, Any], top: int = 8) -> dict[str, int]:
    """History events by type over a run's accounts, the most frequent first."""
    total: Counter[str] = Counter()
    for h in run["history"].values():
        total.update(h["by_type"])
    return dict(total.most_common(top))


def _per(total: float, k: int, months: bool = False) -> float:
    return total / k / (12 if months else 1)


async def run(
    root: Path, pg: Postgres, watch: ProcessWatch, k: int, profile: bool, res: ScenarioResult
) -> None:
    cache_workflow_bytecode(root / "pycache")  # as worker.py does before it polls
    template = await simulate(
        root, pg, watch, k, profile, mode="template", model=None, baseline=True
    )
    fake = BenchModelFake()
    fake.start()
    try:
        modeled = await simulate(
            root, pg, watch, k, profile, mode="model", model=fake, baseline=False
        )
    finally:
        fake.stop()
    scheduled = await simulate(
        root, pg, watch, k, profile, mode="scheduled", model=None, baseline=False, scheduled=True
    )
    res.details.update(
        {"template": template, "model": modeled, "scheduled": scheduled, "accounts_simulated": k}
    )

    events = sum(h["events"] for h in modeled["history"].values())
    runs = sum(h["runs"] for h in modeled["history"].values())
    biggest = max(h["max_run_events"] for h in modeled["history"].values())
    timer_wall = template["timer_wall_seconds"]
    res.add(
        "wall s per simulated account-year (fake model endpoint)",
        _per(modeled["wall_seconds"], k),
        "s",
        "s per timer-only year (365 one-day timers)",
        _per(timer_wall, k),
        notes=(
            f"{k} accounts ({', '.join(f'{a} {t}' for a, t in modeled['accounts'].items())}) "
            f"simulated together; template run {_per(template['wall_seconds'], k):.1f} s per "
            f"account-year; test-server time-skipping locks leaked and released: "
            f"{template['lock_leaks']} (template), {modeled['lock_leaks']} (model), "
            f"{template['timer_lock_leaks']} (timer-only), the "
            f"{modeled['seconds_stalled_on_leaked_locks']} s waited on them left out "
            f"|| {modeled['notes']} || "
            f"timer-only: {template['timer_notes']}"
        ),
    )
    res.add(
        "history events per account-year (continue-as-new chain)",
        _per(events, k),
        "events",
        "events per timer-only year",
        float(template["timer_events_per_year"]),
        notes=(
            f"{_per(runs, k):.1f} runs per account-year, at most {biggest:,} events in one run "
            f"(server suggests continue-as-new near 4,096 and the hard limit is 51,200); "
            f"children: {_per(modeled['child_workflows'], k):.1f} per account-year with "
            f"{_per(modeled['child_events'], k):,.0f} events"
        ),
    )
    s_events = sum(h["events"] for h in scheduled["history"].values())
    res.add(
        "history events per account-year with the scheduled scan (template narratives)",
        _per(s_events, k),
        "events",
        "events per account-year without it (template run)",
        _per(sum(h["events"] for h in template["history"].values()), k),
        notes=(
            f"goal <= 4,096; {_per(sum(h['runs'] for h in scheduled['history'].values()), k):.1f}"
            f" runs per account-year; by event type per account-year: "
            + ", ".join(f"{t} {_per(n, k):,.0f}" for t, n in events_by_type(scheduled).items())
            + " || without the scheduled scan (template run): "
            + ", ".join(f"{t} {_per(n, k):,.0f}" for t, n in events_by_type(template).items())
        ),
    )
    t_llm, m_llm = template["llm"], modeled["llm"]
    res.add(
        "narratives per account-year, template fallback (no key)",
        _per(t_llm["fallbacks"], k),
        "narratives",
        notes=(
            f"{_per(t_llm['fallbacks'], k, True):.1f} per account-month; "
            f"{_per(t_llm['deliveries'], k):.0f} deliveries per account-year; by purpose "
            + ", ".join(f"{p} {n}" for p, n in t_llm["by_purpose"].items())
        ),
    )
    res.add(
        "model calls per account-year (fake endpoint)",
        _per(m_llm["model_calls"] + m_llm["errors"], k),
        "calls",
        "narratives per account-year in the same run",
        _per(m_llm["rows"], k),
        notes=(
            f"{_per(m_llm['model_calls'], k, True):.1f} calls per account-month; "
            f"{m_llm['errors']} failed calls; fake counted {modeled.get('fake_calls_counted')} calls, "
            f"{len(modeled.get('fake_violations') or [])} contract violations; ratio 1.0 = one "
            "call per narrative (no retry); the template run wrote "
            f"{_per(t_llm['fallbacks'], k):.1f} per account-year: it starts a year later on the "
            "server clock (after the timer-only year), so quarter ends fall differently "
            "against the contracts and QBR counts differ"
        ),
    )
    prompt = m_llm["input_tokens"] + m_llm["cache_read_tokens"] + m_llm["cache_write_tokens"]
    res.add(
        "model tokens per account-year (fake endpoint, ~4 chars/token)",
        _per(prompt + m_llm["output_tokens"], k),
        "tokens",
        notes=(
            "per account-year: input "
            f"{_per(m_llm['input_tokens'], k):,.0f}, cache read {_per(m_llm['cache_read_tokens'], k):,.0f}, "
            f"cache write {_per(m_llm['cache_write_tokens'], k):,.0f}, output "
            f"{_per(m_llm['output_tokens'], k):,.0f} (a floor: the fake answers briefly); per "
            f"account-month: input {_per(m_llm['input_tokens'], k, True):,.0f}, cache read "
            f"{_per(m_llm['cache_read_tokens'], k, True):,.0f}, cache write "
            f"{_per(m_llm['cache_write_tokens'], k, True):,.0f}, output "
            f"{_per(m_llm['output_tokens'], k, True):,.0f}"
        ),
    )
