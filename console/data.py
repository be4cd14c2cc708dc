"""What the console reads and sends: Postgres for the portfolio, Temporal for live state.

Every number on a page comes from a row the rules wrote (``health_snapshots`` and its
explained payload, ``findings``, ``deliveries``, ``events``, ``contracts``) or from the
account workflow itself (visibility search attributes, the ``view`` query, validated
updates). Nothing is re-scored here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from activities.config_store import ConfigInForce, ConfigResolver, adoptions
from activities.forecast import latest_forecasts
from activities.retention import fetch_contract_terms
from domain.calibration import CalibrationReport, churn_odds
from domain.handoff import account_workflow_id
from domain.lifecycle import Phase
from domain.messages import CsPlanUpdate, DecisionUpdate, PauseUpdate
from domain.portfolio import BANDS, PortfolioRow
from domain.retention import ContractTerm
from domain.state import AccountView
from stack.settings import Settings
from workflows.search_attributes import ACCOUNT_PHASE

PHASE_CACHE_SECONDS = 15.0
VIEW_CONCURRENCY = 16
HISTORY_POINTS = 180
QUERY_TIMEOUT = timedelta(seconds=5)  # a workflow whose worker is away does not hold a page

# One index probe per account for its latest snapshot (primary key account_id, as_of),
# however long the history; no payload is read (see top_drivers).
_PORTFOLIO_SQL = """
SELECT a.account_id, a.name, a.tier, a.csm_owner, c.arr, c.end_date,
       EXISTS (SELECT 1 FROM contracts l WHERE l.account_id = a.account_id
               AND l.start_date > c.start_date) AS renewed,
       s.as_of, s.score, s.band, s.churn_risk, s.coverage
FROM accounts a
JOIN LATERAL (
    SELECT start_date, end_date, arr FROM contracts
    WHERE account_id = a.account_id AND start_date <= $1
    ORDER BY start_date DESC LIMIT 1) c ON true
LEFT JOIN LATERAL (
    SELECT as_of, score, band, churn_risk, coverage
    FROM health_snapshots
    WHERE account_id = a.account_id AND as_of < $1 + 1
    ORDER BY as_of DESC LIMIT 1) s ON true
WHERE c.end_date >= $1 - 30
"""


class Delivery(BaseModel):
    created_at: datetime
    channel: str
    purpose: str
    status: str
    target: str | None
    link: str | None  # console URL of an outbox file, or the channel's URL


class HistoryPoint(BaseModel):
    as_of: datetime
    score: float | None
    band: str | None
    coverage: float
    churn_risk: str | None
    drivers: list[str]


class AccountPage(BaseModel):
    account_id: str
    name: str
    tier: str
    csm_owner: str | None
    industry: str | None
    arr: float | None
    renewal_date: date | None
    history: list[HistoryPoint]
    latest: dict[str, Any] | None  # the explained snapshot payload
    deliveries: list[Delivery]
    view: AccountView | None
    workflow_status: str  # running | completed | ... | none
    workflow_url: str


class Decision(BaseModel):
    kind: str  # save | expansion | cs_plan | paused
    account_id: str
    account_name: str
    csm_owner: str | None
    arr: float | None
    summary: str
    since: datetime | None = None
    target_id: str | None = None  # the opportunity id for expansions


@dataclass
class Console:
    """The console's connections and clock (injected so tests fix the date)."""

    settings: Settings
    pool: asyncpg.Pool
    client: Client | None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _phases: tuple[float, dict[str, str]] | None = None
    _refreshing: asyncio.Task[None] | None = None
    _listing_seconds: float = 0.0
    _resolver: ConfigResolver = field(default_factory=lambda: ConfigResolver(os.environ))

    def today(self) -> date:
        return self.clock().date()

    # ------------------------------------------------------------- portfolio

    async def live_phases(self, fresh: bool = False) -> dict[str, str]:
        """AccountPhase of every running account workflow on the account task queue, from
        visibility. A page never waits for the listing (10,000 workflows take seconds): it
        gets the last one, refreshed in the background once PHASE_CACHE_SECONDS old, or
        nothing while the first one runs (``phases_loading``). ``fresh`` waits for a new one."""
        if self.client is None:
            return {}
        if fresh:
            return await self._refresh_phases()
        cached = self._phases
        # a listing that takes long (10,000 workflows: tens of seconds on the dev server)
        # is repeated less often, so it never keeps the console busy
        max_age = max(PHASE_CACHE_SECONDS, 4 * self._listing_seconds)
        stale = cached is None or time.monotonic() - cached[0] >= max_age
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_quietly())
        return {} if cached is None else cached[1]

    @property
    def phases_loading(self) -> bool:
        return self.client is not None and self._phases is None

    async def _refresh_quietly(self) -> None:
        """A background refresh: a failure keeps the last listing (and is retried next page)."""
        try:
            await self._refresh_phases()
        except (RPCError, RuntimeError) as err:
            print(f"[console] visibility listing failed: {err}", file=sys.stderr)

    async def _refresh_phases(self) -> dict[str, str]:
        assert self.client is not None
        started = time.monotonic()
        out: dict[str, str] = {}
        query = (
            "WorkflowType = 'AccountLifecycleWorkflow' AND ExecutionStatus = 'Running' "
            f"AND TaskQueue = '{self.settings.task_queue}'"
        )
        async for wf in self.client.list_workflows(query, page_size=1000):
            out[wf.id.removeprefix("account-")] = (
                wf.typed_search_attributes.get(ACCOUNT_PHASE) or ""
            )
        self._phases = (started, out)
        self._listing_seconds = time.monotonic() - started
        return out

    async def recorded_forecasts(self) -> dict[str, str]:
        """account -> the category recorded at its last renewal checkpoint (open terms)."""
        async with self.pool.acquire() as conn:
            return {f.account_id: f.category for f in await latest_forecasts(conn, self.today())}

    async def portfolio(self, fresh: bool = False) -> list[PortfolioRow]:
        as_of = self.today()
        rows, phases = await asyncio.gather(
            self.pool.fetch(_PORTFOLIO_SQL, as_of), self.live_phases(fresh)
        )
        return [
            PortfolioRow(
                account_id=r["account_id"],
                name=r["name"],
                tier=r["tier"],
                csm_owner=r["csm_owner"],
                arr=float(r["arr"] or 0),
                renewal_date=r["end_date"],
                renewed=r["renewed"],
                snapshot_at=r["as_of"].date() if r["as_of"] else None,
                score=None if r["score"] is None else float(r["score"]),
                band=r["band"],
                churn_level=r["churn_risk"],
                coverage=None if r["coverage"] is None else float(r["coverage"]),
                phase=phases.get(r["account_id"]),
            )
            for r in rows
        ]

    async def top_drivers(self, rows: list[PortfolioRow]) -> None:
        """Fill ``top_driver`` of a few rows (the first churn flag's evidence, else what moved
        the score most) from their snapshot payloads: only the rows a page lists, so a
        portfolio of 10,000 never reads 10,000 payloads."""
        keys = [(r.account_id, r.snapshot_at) for r in rows if r.snapshot_at is not None]
        if not keys:
            return
        found = await self.pool.fetch(
            """SELECT DISTINCT ON (s.account_id) s.account_id,
                   COALESCE(s.payload #>> '{churn,flags,0,evidence}',
                            s.payload #>> '{drivers,0,text}') AS top_driver
               FROM health_snapshots s
               JOIN unnest($1::text[], $2::date[]) AS k(account_id, day)
                 ON s.account_id = k.account_id AND s.as_of >= k.day AND s.as_of < k.day + 1
               ORDER BY s.account_id, s.as_of DESC""",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        text = {r["account_id"]: r["top_driver"] for r in found}
        for r in rows:
            r.top_driver = text.get(r.account_id)

    async def config_in_force(self) -> ConfigInForce:
        async with self.pool.acquire() as conn:
            return await self._resolver.in_force(conn)

    async def churn_odds_by_band(self) -> dict[str, str]:
        """The calibrated churn probability per band, when the config in force is calibrated."""
        cfg = (await self.config_in_force()).config
        return {b: odds for b in BANDS if (odds := churn_odds(cfg, b)) is not None}

    # --------------------------------------------------------------- account

    def workflow_url(self, account_id: str) -> str:
        s = self.settings
        return f"{s.ui_url}/namespaces/{s.temporal_namespace}/workflows/{account_workflow_id(account_id)}"

    async def account(self, account_id: str) -> AccountPage | None:
        as_of = self.today()
        head = await self.pool.fetchrow(
            """SELECT a.account_id, a.name, a.tier, a.csm_owner, a.industry, c.arr, c.end_date
               FROM accounts a LEFT JOIN LATERAL (
                   SELECT arr, end_date FROM contracts WHERE account_id = a.account_id
                   AND start_date <= $2 ORDER BY start_date DESC LIMIT 1) c ON true
               WHERE a.account_id = $1""",
            account_id,
            as_of,
        )
        if head is None:
            return None
        hist = await self.pool.fetch(
            """SELECT as_of, score, band, coverage, churn_risk, payload -> 'drivers' AS drivers
               FROM health_snapshots WHERE account_id = $1
               ORDER BY as_of DESC LIMIT $2""",
            account_id,
            HISTORY_POINTS,
        )
        latest = await self.pool.fetchval(
            """SELECT payload FROM health_snapshots WHERE account_id = $1
               ORDER BY as_of DESC LIMIT 1""",
            account_id,
        )
        dels = await self.pool.fetch(
            """SELECT created_at, channel, purpose, status, target FROM deliveries
               WHERE account_id = $1 ORDER BY created_at DESC LIMIT 100""",
            account_id,
        )
        view, status = await self.view(account_id)
        return AccountPage(
            account_id=head["account_id"],
            name=head["name"],
            tier=head["tier"],
            csm_owner=head["csm_owner"],
            industry=head["industry"],
            arr=None if head["arr"] is None else float(head["arr"]),
            renewal_date=head["end_date"],
            history=[
                HistoryPoint(
                    as_of=r["as_of"],
                    score=None if r["score"] is None else float(r["score"]),
                    band=r["band"],
                    coverage=float(r["coverage"]),
                    churn_risk=r["churn_risk"],
                    drivers=[d.get("text", "") for d in json.loads(r["drivers"] or "[]")],
                )
                for r in reversed(hist)
            ],
            latest=json.loads(latest) if latest else None,
            deliveries=[
                Delivery(
                    created_at=r["created_at"],
                    channel=r["channel"],
                    purpose=r["purpose"],
                    status=r["status"],
                    target=r["target"],
                    link=self.delivery_link(r["target"]),
                )
                for r in dels
            ],
            view=view,
            workflow_status=status,
            workflow_url=self.workflow_url(account_id),
        )

    def delivery_link(self, target: str | None) -> str | None:
        if not target:
            return None
        if target.startswith(("https://", "http://")):
            return target
        rel = self.outbox_relative(Path(target))
        return f"/outbox/{rel}" if rel is not None else None

    def outbox_relative(self, path: Path) -> str | None:
        """``path`` relative to the outbox, or None when it lies outside it."""
        root = self.settings.outbox_dir.resolve()
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            return None

    async def view(self, account_id: str) -> tuple[AccountView | None, str]:
        """(the workflow's `view` query, its status); (None, 'none') without a workflow."""
        if self.client is None:
            return None, "unavailable"
        handle = self.client.get_workflow_handle(account_workflow_id(account_id))
        try:
            desc = await handle.describe()
        except RPCError:
            return None, "none"
        status = desc.status.name.lower() if desc.status else "unknown"
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return None, status
        try:
            return (
                await handle.query("view", result_type=AccountView, rpc_timeout=QUERY_TIMEOUT),
                status,
            )
        except (RPCError, WorkflowQueryFailedError):
            return None, status

    # ------------------------------------------------------------- decisions

    async def decisions(self) -> list[Decision]:
        """Everything waiting for a person, from the workflows' own state and the event bus."""
        phases = await self.live_phases(fresh=True)
        heads = {
            r["account_id"]: r
            for r in await self.pool.fetch(
                """SELECT a.account_id, a.name, a.csm_owner, c.arr FROM accounts a
                   LEFT JOIN LATERAL (SELECT arr FROM contracts WHERE account_id = a.account_id
                   AND start_date <= $1 ORDER BY start_date DESC LIMIT 1) c ON true""",
                self.today(),
            )
        }
        sem = asyncio.Semaphore(VIEW_CONCURRENCY)

        async def one(aid: str) -> AccountView | None:
            async with sem:
                return (await self.view(aid))[0]

        ids = sorted(phases)
        views = dict(zip(ids, await asyncio.gather(*(one(a) for a in ids)), strict=True))
        pending_exp = await self._pending_expansions()
        save_decided = await self._save_decided()
        out: list[Decision] = []

        def add(kind: str, aid: str, summary: str, **kw: Any) -> None:
            h = heads.get(aid)
            out.append(
                Decision(
                    kind=kind,
                    account_id=aid,
                    account_name=(h["name"] if h else aid),
                    csm_owner=(h["csm_owner"] if h else None),
                    arr=(float(h["arr"]) if h and h["arr"] is not None else None),
                    summary=summary,
                    **kw,
                )
            )

        for aid, v in views.items():
            if v is None:
                continue
            if (
                v.phase == Phase.CHURN_HANDLING.label
                and v.save_workflow_id
                and v.save_workflow_id not in save_decided
            ):
                add(
                    "save",
                    aid,
                    f"churn save plan {v.save_workflow_id}: approve or decline",
                    since=v.phase_entered_at,
                )
            if (
                v.phase == Phase.EXECUTIVE_ALIGNMENT.label
                and "cs_plan_approved" not in v.milestones
            ):
                add("cs_plan", aid, v.waiting_for or "CS plan to approve", since=v.phase_entered_at)
            if v.paused:
                paused = next(
                    (t for t in reversed(v.timeline) if t.text.startswith("paused by")), None
                )
                add(
                    "paused",
                    aid,
                    paused.text if paused else "automation paused",
                    since=paused.at if paused else None,
                )
            for ev in pending_exp.get(aid, []):
                add(
                    "expansion",
                    aid,
                    f"{ev['opportunity_type']} expansion, ~${float(ev.get('estimated_arr_impact') or 0):,.0f} ARR"
                    + (f": {ev['evidence'][0]}" if ev.get("evidence") else ""),
                    since=ev["_at"],
                    target_id=ev["opportunity_id"],
                )
        order = {"save": 0, "expansion": 1, "cs_plan": 2, "paused": 3}
        out.sort(key=lambda d: (order[d.kind], -(d.arr or 0), d.account_id))
        return out

    async def _pending_expansions(self) -> dict[str, list[dict[str, Any]]]:
        rows = await self.pool.fetch(
            """SELECT d.account_id, d.payload, d.occurred_at FROM events d
               WHERE d.event_type = 'expansion.dispatched' AND NOT EXISTS (
                   SELECT 1 FROM events x WHERE x.event_type = 'expansion.decided'
                   AND x.account_id = d.account_id
                   AND x.payload ->> 'opportunity' = d.payload ->> 'opportunity_id'
                   AND x.occurred_at >= d.occurred_at)
               ORDER BY d.occurred_at"""
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            p = json.loads(r["payload"])
            p["_at"] = r["occurred_at"]
            out.setdefault(r["account_id"], []).append(p)
        return out

    async def _save_decided(self) -> set[str]:
        """Save workflows whose decision (or escalation without one) is on the event bus."""
        rows = await self.pool.fetch(
            """SELECT DISTINCT h.payload ->> 'save_workflow_id' AS wf FROM events h
               JOIN events d ON d.account_id = h.account_id
                AND d.event_type = 'churn.save_decided' AND d.occurred_at >= h.occurred_at
               WHERE h.event_type = 'churn.handling_started'"""
        )
        return {r["wf"] for r in rows if r["wf"]}

    async def send(self, account_id: str, name: str, msg: BaseModel) -> str:
        """Send a validated update, as `starter.py` does; raises DecisionRefused with the reason."""
        if self.client is None:
            raise DecisionRefused("Temporal is not reachable")
        handle = self.client.get_workflow_handle(account_workflow_id(account_id))
        try:
            desc = await handle.describe()
        except RPCError as err:
            raise DecisionRefused(f"no workflow for account {account_id!r}") from err
        if desc.status != WorkflowExecutionStatus.RUNNING:
            raise DecisionRefused(f"account {account_id!r} is not running")
        try:
            result = await handle.execute_update(name, msg)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            raise DecisionRefused(
                f"{name} rejected: {getattr(cause, 'message', None) or cause}"
            ) from err
        if self._phases is not None:  # stale: the next page refreshes it in the background
            self._phases = (float("-inf"), self._phases[1])
        return str(result.get("message") if isinstance(result, dict) else result)

    # ------------------------------------------------------------- the rest

    async def contract_terms(self) -> list[ContractTerm]:
        return await fetch_contract_terms(self.pool)

    async def drafts_by_csm(self, weeks: int) -> dict[str, int]:
        since = self.clock() - timedelta(weeks=weeks)
        rows = await self.pool.fetch(
            """SELECT a.csm_owner, count(*) AS n FROM deliveries d
               JOIN accounts a USING (account_id)
               WHERE d.created_at >= $1 GROUP BY a.csm_owner""",
            since,
        )
        return {r["csm_owner"] or "(unassigned)": r["n"] for r in rows}

    def latest_calibration(self) -> tuple[CalibrationReport | None, str | None, Path | None]:
        """(report, its Markdown, the JSON path) of the newest calibration on disk."""
        folder = self.settings.data_dir / "calibration"
        found = sorted(folder.glob("*.report.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            return None, None, None
        path = found[-1]
        try:
            report = CalibrationReport.model_validate_json(path.read_text())
        except (OSError, ValidationError, ValueError):
            return None, None, path
        md = path.with_name(path.name.removesuffix(".json") + ".md")
        return report, (md.read_text() if md.exists() else None), path

    async def adoption_history(self) -> list[Any]:
        async with self.pool.acquire() as conn:
            return await adoptions(conn, limit=10)


class DecisionRefused(Exception):
    """An update the workflow (or the console's validation) refused; the message says why."""


def decision_message(
    kind: str, by: str, approve: bool, form: dict[str, str]
) -> tuple[str, BaseModel]:
    """(update name, validated message) for a decision form: the models `starter.py` sends."""
    note = (form.get("note") or "").strip() or None
    if kind == "save":
        return "decide_save", DecisionUpdate(decided_by=by, approve=approve, note=note)
    if kind == "expansion":
        return "decide_expansion", DecisionUpdate(
            decided_by=by, approve=approve, target_id=form.get("target_id") or None, note=note
        )
    if kind == "cs_plan":
        objectives = [x.strip() for x in (form.get("objectives") or "").splitlines() if x.strip()]
        metrics = [x.strip() for x in (form.get("success_metrics") or "").splitlines() if x.strip()]
        return "approve_cs_plan", CsPlanUpdate(
            approved_by=by, objectives=objectives, success_metrics=metrics
        )
    if kind == "paused":
        return "set_paused", PauseUpdate(paused=not approve, by=by, reason=note)
    raise DecisionRefused(f"unknown decision kind {kind!r}")
