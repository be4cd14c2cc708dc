"""AccountLifecycleWorkflow: one durable workflow per customer account.

Reading order for a usage event: `starter.py signal usage` -> `usage` signal
handler below (validated, queued) -> `_observe` flushes it through the
`record_telemetry` activity -> `score_account` activity (activities/health.py:
SQL in activities/telemetry.py, bands in domain/health.py) -> `_decide`
(the seed-000 decision gate) -> playbooks in workflows/playbooks.py
(deliveries through activities/deliveries.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain import lifecycle as lc
    from domain.digest import DraftPolicy
    from domain.forecast import (
        FORECAST_CHECKPOINT_DAYS,
        SENTIMENT_MAX_DAYS,
        CsmSentiment,
        ForecastInput,
        RenewalForecast,
    )
    from domain.format import validation_errors
    from domain.handoff import HandoffContract
    from domain.lifecycle import Phase
    from domain.limits import (
        SIGNAL_PAYLOAD_BYTES,
        TELEMETRY_CHUNK_BYTES,
        chunks_within,
        payload_bytes,
    )
    from domain.messages import (
        RESCORE_SIGNALS,
        SIGNALS,
        TELEMETRY_SIGNALS,
        ActionDoneUpdate,
        ChurnNoticeSignal,
        ContractChangeSignal,
        CsPlanUpdate,
        DecisionUpdate,
        MilestoneSignal,
        MilestoneUpdate,
        PauseUpdate,
        PortfolioSummarySignal,
        QuestionnaireAnswersUpdate,
        ReassignUpdate,
        SentimentUpdate,
        UpdateResult,
    )
    from domain.state import (
        FAILURES_KEPT,
        TIMELINE_LIMIT,
        AccountOutcome,
        AccountState,
        AccountView,
        AccountWorkflowInput,
        PendingTelemetry,
        TimelineEntry,
    )
    from domain.summary import AssessmentSummary
    from stack.metrics import DESCRIPTIONS, REJECTED_INPUTS
    from workflows import actions, activation, engagement, hygiene, phases, playbooks, renewal
    from workflows import activity_defs as act
    from workflows.activity_models import (
        OwnerRecord,
        RenewalCheckRequest,
        RenewalCheckResult,
        RenewalForecastRequest,
        ScoreAccountRequest,
        TelemetryBatch,
    )
    from workflows.context import PlaybookContext
    from workflows.drafting import publish, survived
    from workflows.search_attributes import (
        ACCOUNT_PHASE,
        ACCOUNT_TIER,
        ARR,
        CHURN_RISK,
        CSM_OWNER,
        HEALTH_BAND,
        HEALTH_SCORE,
        RENEWAL_DATE,
    )

SCAN_EVERY = timedelta(days=1)
RENEWAL_GRACE = timedelta(days=30)
SEEN_KEYS_LIMIT = 500
# workflow.patched id: a churn_notice signal also writes contracts.notice_on
NOTICE_RECORDED_PATCH = "churn-notice-recorded"

# Postgres steps retry for about half an hour; then the account notes the failure, keeps
# its pending work, and tries again after DB_BACKOFF (signals are still accepted meanwhile).
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=30,
)
DB_BACKOFF = timedelta(hours=1)


# workflow.patched ids: one per change to running workflows; never reuse or rename one.
CHURN_RISK_EVENT_PATCH = "churn-risk-changed-event"
# A signal that lands while a pass is busy (in an activity) must not be
# forgotten at the next sleep: before this patch its telemetry waited a day.
WAKE_KEPT_PATCH = "signal-wake-kept-across-pass"
# The scheduled portfolio scan hands each account its summary (a `portfolio_summary`
# signal, before this patch an unknown signal): the account decides from it and skips its
# own daily score_account while the schedule delivers.
SCHEDULED_SCAN_PATCH = "scheduled-portfolio-summary"
# How late a scheduled summary may be before the account scans itself again.
SCHEDULE_GRACE = timedelta(hours=6)
# A renewal forecast is recorded at the 120/90/60/30-day checkpoints (an activity and an
# event that histories before it do not have).
RENEWAL_FORECAST_PATCH = "renewal-forecast-recorded"
# A reassigned CSM is written to the accounts row (the loop's `record_owner` step); runs
# that took a reassignment before this replay without the step.
OWNER_RECORDED_PATCH = "reassigned-owner-recorded"


T = TypeVar("T")


@workflow.defn
class AccountLifecycleWorkflow:
    @workflow.init
    def __init__(self, inp: AccountWorkflowInput) -> None:
        if inp.state is not None:
            self.s = inp.state
        else:
            self.s = AccountState(handoff=inp.handoff, contract=inp.handoff.contract)
        self.max_days_per_run = inp.max_days_per_run
        self.max_passes_per_run = inp.max_passes_per_run
        self._passes = 0
        self.sales_task_queue = inp.sales_task_queue
        self.llm_task_queue = inp.llm_task_queue
        # DB and delivery activities.
        self.activity_timeout = timedelta(seconds=inp.activity_timeout_seconds)
        self.policy = inp.policy or DraftPolicy()
        self._wake = False
        # What playbooks may use of this workflow, handed to them explicitly.
        self.ctx = PlaybookContext(
            account_id=self.s.account_id,
            llm_task_queue=self.llm_task_queue,
            task_queue=workflow.info().task_queue,
            sales_task_queue=self.sales_task_queue,
            activity_timeout=self.activity_timeout,
            policy=self.policy,
            state=self.s,
            log=self._log,
            mark_milestone=self._milestone,
        )

    @property
    def account_id(self) -> str:
        return self.s.account_id

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: AccountWorkflowInput) -> AccountOutcome:
        s = self.s
        now = workflow.now()
        run_started = now
        if inp.state is None:
            s.phase_entered_at = now
            engagement.on_handoff(self.ctx)
            self._log("phase", f"account handed off by Sales; phase {s.phase.label}")
            s.handoff_pending = True
            await self._record_handoff()
            for m in ["handoff_complete", *s.handoff.milestones]:
                self._milestone(m, "handoff")
            s.done_checkpoints.extend(sorted(lc.stale_checkpoints(now, s.contract.end_date, set())))
            s.rescore = True  # first observability cycle at handoff, not tomorrow
        else:
            s.runs += 1
            self._log("run", f"continued as new (run {s.runs})")
        self._upsert_search_attributes(force=True)

        while s.phase != Phase.CHURNED:
            # Reset here, not at the sleep: a signal handled during this pass wakes the next.
            self._wake = False
            self._expire_sentiment()
            if self._backing_off():
                await self._sleep_until_next()
                continue
            if s.handoff_pending and not await self._record_handoff():
                continue
            if s.owner_pending and workflow.patched(OWNER_RECORDED_PATCH):
                if not await self._record_owner():
                    continue
            await self._flush_telemetry()
            now = workflow.now()
            due_scan = s.last_scan_at is None or now - s.last_scan_at >= SCAN_EVERY
            summarized = False
            if not s.paused and s.scheduled_summary is not None:
                summarized = await self._take_scheduled_summary()
            if self._scheduled(now):
                due_scan = False  # the scheduled portfolio scan does the daily work
            scanned = not s.paused and (s.rescore or due_scan)
            if scanned:
                await self._observe()
            scanned = scanned or summarized  # a scheduled summary is this pass's scan
            await self._fire_due_checkpoints()
            await self._nudge_stalled_gate()
            await engagement.run_due(self.ctx, scanned=scanned)
            if s.phase == Phase.CHURNED:
                break
            if self._should_continue_as_new(run_started):
                await self._flush_telemetry()
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not s.pending_telemetry:
                    workflow.continue_as_new(
                        AccountWorkflowInput(
                            handoff=s.handoff,
                            state=s,
                            max_days_per_run=self.max_days_per_run,
                            max_passes_per_run=self.max_passes_per_run,
                            sales_task_queue=self.sales_task_queue,
                            llm_task_queue=self.llm_task_queue,
                            activity_timeout_seconds=inp.activity_timeout_seconds,
                            policy=inp.policy,
                        )
                    )
            await self._sleep_until_next()

        await workflow.wait_condition(workflow.all_handlers_finished)
        return AccountOutcome(
            account_id=s.account_id,
            outcome="churned",
            churned_on=s.contract.end_date,
            reason=s.churn_reason,
            post_mortem_delivery=s.alerts_sent.get("post_mortem"),
            timeline_tail=s.timeline[-20:],
        )

    async def _db_step(self, what: str, call: Awaitable[T]) -> T | None:
        """A Postgres step within its retry budget; None (noted, backing off) if it ran out."""
        try:
            return await call
        except FailureError as err:
            await survived(what, err)  # re-raises a cancellation
            self.s.db_retry_at = workflow.now() + DB_BACKOFF
            return None

    def _backing_off(self) -> bool:
        s = self.s
        if s.db_retry_at is not None and workflow.now() >= s.db_retry_at:
            s.db_retry_at = None
        return s.db_retry_at is not None

    async def _record_handoff(self) -> bool:
        s = self.s

        async def record() -> bool:
            await workflow.execute_activity(
                act.record_handoff,
                s.handoff,
                start_to_close_timeout=self.activity_timeout,
                retry_policy=DB_RETRY,
                summary="record the sales handoff in Postgres (account activation)",
            )
            return True

        if await self._db_step("recording the handoff", record()) is None:
            return False
        s.handoff_pending = False
        return True

    async def _record_owner(self) -> bool:
        s = self.s
        req = OwnerRecord(
            account_id=s.account_id,
            csm_owner=s.handoff.csm_owner,
            csm_email=str(s.handoff.csm_email),
        )

        async def record() -> bool:
            await workflow.execute_activity(
                act.record_owner,
                req,
                start_to_close_timeout=self.activity_timeout,
                retry_policy=DB_RETRY,
                summary=f"record the new CSM {req.csm_owner}",
            )
            return True

        if await self._db_step("recording the new CSM", record()) is None:
            return False
        s.owner_pending = False
        return True

    def _should_continue_as_new(self, run_started: datetime) -> bool:
        self._passes += 1
        if self.max_passes_per_run is not None and self._passes >= self.max_passes_per_run:
            return True
        return workflow.info().is_continue_as_new_suggested() or (
            workflow.now() - run_started >= timedelta(days=self.max_days_per_run)
        )

    async def _sleep_until_next(self) -> None:
        """One durable timer to whatever comes first; any signal that matters wakes us early.

        The deadline is recomputed from workflow.now() on every pass, so a
        contract-change signal that moves the renewal date re-arms at once.
        """
        s = self.s
        now = workflow.now()
        candidates: list[tuple[datetime, str]] = []
        if s.scheduled_until is not None and self._scheduled(now) and not s.paused:
            candidates.append((s.scheduled_until, "scheduled portfolio scan (else own scan)"))
        elif s.last_scan_at is not None and not s.paused:
            candidates.append((s.last_scan_at + SCAN_EVERY, "daily health scan"))
        for cp in self._calendar()[:1]:
            candidates.append((cp.at, cp.label))
        nudge = self._nudge_due()
        if nudge is not None:
            candidates.append((nudge.due_at, f"SLA nudge for {Phase(nudge.phase).label}"))
        if s.db_retry_at is not None:  # backing off after a Postgres failure: nothing runs before
            candidates = [(max(at, s.db_retry_at), w) for at, w in candidates]
            candidates.append((s.db_retry_at, "a retry after a Postgres failure"))
        deadline, what = min(candidates, default=(now + SCAN_EVERY, "daily health scan"))
        timeout = max(deadline - now, timedelta(seconds=1))
        gate = lc.GATES.get(s.phase)
        waiting = self._waiting_for() or f"waiting for {what} at {deadline:%Y-%m-%d %H:%M} UTC"
        if gate and gate.missing(set(s.milestones)):
            waiting += "; gate needs: " + ", ".join(gate.missing(set(s.milestones)))
        if s.paused:
            waiting = "paused by an operator; " + waiting
        if s.failures:
            waiting += f"; {s.failures_total} failed step(s), last: {s.failures[-1]}"
        workflow.set_current_details(waiting)
        if not workflow.patched(WAKE_KEPT_PATCH):
            self._wake = False  # histories before the patch forgot a mid-pass signal here
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=timeout, timeout_summary=what)
        except TimeoutError:
            pass  # the deadline came first: the loop handles whatever is due

    # ---------------------------------------------------- observability loop

    def _waiting_for(self) -> str | None:
        """What an account in churn handling waits for: the save decision, its deadline, its owner."""
        s = self.s
        if s.phase != Phase.CHURN_HANDLING:
            return None
        if s.grace_until is not None and s.save_workflow_id is None:
            return f"waiting for a renewal on file by {s.grace_until} (term ended {s.contract.end_date})"
        if s.save_workflow_id is None:
            return "waiting for the churn save playbook to start"
        due = f" by {s.save_decision_due}" if s.save_decision_due else ""
        return (
            f"waiting for a save decision from {s.handoff.csm_owner}{due} "
            f"({s.save_workflow_id}: `starter.py decide-save {s.account_id} --approve|--decline`); "
            f"why: {s.churn_reason or 'churn risk confirmed'}"
        )

    async def _flush_telemetry(self) -> None:
        """Write pending telemetry in chunks that fit one activity input, whatever piled up.

        Postgres' refusals come back per item (never retried): each is recorded
        as rejected in the timeline with its reason, and its key is forgotten so
        a corrected re-send is accepted.
        """
        s = self.s
        while s.pending_telemetry:
            batch = chunks_within(
                list(s.pending_telemetry),
                lambda p: payload_bytes(p.payload) + len(p.key) + 64,
                TELEMETRY_CHUNK_BYTES,
            )[0]
            result: Any = await self._db_step(
                f"writing {len(batch)} telemetry item(s)",
                workflow.execute_activity(
                    "record_telemetry",  # by name: its result's type changed, see below
                    TelemetryBatch(account_id=s.account_id, items=batch),
                    start_to_close_timeout=self.activity_timeout,
                    retry_policy=DB_RETRY,
                    summary=f"write {len(batch)} telemetry item(s) to Postgres",
                ),
            )
            if result is None:
                return  # kept pending: written after the back-off
            # Untyped on purpose: histories before per-item refusals returned a row count.
            for r in result.get("rejected", []) if isinstance(result, dict) else []:
                self._reject(r["signal"], f"{r['key']} refused by Postgres: {r['reason']}")
                s.seen_keys = [k for k in s.seen_keys if k != r["key"]]
            written = {p.key for p in batch}
            s.pending_telemetry = [p for p in s.pending_telemetry if p.key not in written]

    def _scheduled(self, now: datetime) -> bool:
        """Does the scheduled portfolio scan stand in for this account's own daily scan?"""
        return self.s.scheduled_until is not None and now < self.s.scheduled_until

    async def _take_scheduled_summary(self) -> bool:
        """Decide from the scheduled scan's summary, unless this account scored itself
        since the scan's as_of (a rescore after a ticket is newer: the summary is stale)."""
        s = self.s
        summary, s.scheduled_summary = s.scheduled_summary, None
        assert summary is not None
        if s.last_scan_at is not None and summary.as_of < s.last_scan_at:
            return False
        await self._apply_summary(summary, workflow.now())
        return True

    async def _observe(self) -> None:
        s = self.s
        s.rescore = False
        now = workflow.now()
        scanned = await self._db_step(
            "the health scan",
            workflow.execute_activity(
                act.score_account,
                ScoreAccountRequest(account_id=s.account_id, as_of=now),
                start_to_close_timeout=self.activity_timeout,
                retry_policy=DB_RETRY,
                summary="health scan: score, churn risk, Lean waste, expansion",
            ),
        )
        if scanned is None:
            s.rescore = True  # scan again after the back-off
            return
        await self._apply_summary(scanned, now)

    async def _apply_summary(self, summary: AssessmentSummary, now: datetime) -> None:
        """What a scan's summary changes: state, timeline, events, milestones, decisions."""
        s = self.s
        s.last_scan_at = now
        old = (s.band, s.churn_level, s.last_decision)
        old_band = s.band
        s.band, s.score, s.churn_level = summary.band, summary.score, summary.churn_level
        s.band_reason = summary.band_reason
        s.drivers = list(summary.drivers)
        s.open_findings = [f.model_dump(mode="json") for f in summary.findings]
        s.opportunities = [o.model_dump(mode="json") for o in summary.opportunities]
        s.last_decision = summary.decision.outcome
        # Daily scans that change nothing stay out of the timeline (they are in
        # health_snapshots): the timeline is for what an operator must see.
        if old != (s.band, s.churn_level, s.last_decision):
            self._log(
                "scan",
                f"health {summary.score} {summary.band} (coverage {summary.coverage:.0%}), churn "
                f"{summary.churn_level}; decision: {summary.decision.outcome}"
                + (
                    f" ({'; '.join(summary.decision.reasons[:2])})"
                    if summary.decision.reasons
                    else ""
                ),
            )
        if old_band is not None and old_band != s.band:
            self._log("decision", f"health band changed {old_band} -> {s.band}")
            await publish(
                self.ctx, "health.band_changed", {"from": old_band, "to": s.band, "score": s.score}
            )
        old_churn = old[1]
        # Added while accounts were running: histories recorded before it have no
        # `churn.risk_changed` activity here, so it is guarded (README "Changing a
        # running workflow"; tests/workflows/test_patching.py).
        if (
            old_churn is not None
            and old_churn != s.churn_level
            and workflow.patched(CHURN_RISK_EVENT_PATCH)
        ):
            await publish(
                self.ctx,
                "churn.risk_changed",
                {"from": old_churn, "to": s.churn_level, "score": s.score},
            )
        for m in sorted(lc.data_milestones(summary.seat_utilization, summary.active_users)):
            self._milestone(m, "telemetry")
        self._upsert_search_attributes()
        await phases.after_scan(self.ctx, summary)  # the drafts phases 1-3 owe; CS plan criteria
        await activation.after_scan(self.ctx, summary)  # the onboarding plan, once approved
        await self._decide(summary)

    async def _decide(self, summary: AssessmentSummary) -> None:
        """The decision gate of seed 000: risk -> playbook; opportunity -> Sales; routine -> nothing."""
        s = self.s
        outcome = summary.decision.outcome
        if s.phase in (Phase.CHURN_HANDLING, Phase.CHURNED):
            return
        if outcome == "risk":
            if not lc.loop_active(s.phase):
                self._log("decision", f"risk noted in {s.phase.label}; playbooks start at phase 3")
            else:
                await playbooks.run_risk_playbooks(self.ctx, summary)
                if lc.risk_confirmed(summary.churn_level, summary.band, summary.coverage):
                    await self._enter_churn_handling(
                        f"risk confirmed: CRITICAL churn risk, RED health {summary.score} "
                        f"on {summary.coverage:.0%} of the signal weight"
                    )
        if summary.opportunities and s.phase != Phase.CHURN_HANDLING:
            await playbooks.dispatch_expansions(self.ctx, summary)

    # ------------------------------------------------------------ calendar

    def _calendar(self) -> list[lc.Checkpoint]:
        s = self.s
        out = lc.calendar(workflow.now(), s.contract.end_date, set(s.done_checkpoints))
        if s.grace_until is not None:
            key = f"renewal_grace:{s.grace_until}"
            if key not in s.done_checkpoints:
                at = datetime(
                    s.grace_until.year,
                    s.grace_until.month,
                    s.grace_until.day,
                    tzinfo=workflow.now().tzinfo,
                )
                out.append(
                    lc.Checkpoint(
                        kind="renewal_grace",
                        key=key,
                        at=at,
                        label=f"renewal grace ends {s.grace_until}",
                    )
                )
                out.sort(key=lambda c: (c.at, c.key))
        return out

    async def _fire_due_checkpoints(self) -> None:
        s = self.s
        for cp in self._calendar():
            if cp.at > workflow.now() or s.phase == Phase.CHURNED:
                break
            s.done_checkpoints.append(cp.key)
            self._log("timer", f"{cp.label} reached")
            if cp.kind == "qbr":
                await playbooks.start_qbr(self.ctx, cp)
            elif cp.kind == "renewal_window":
                await playbooks.renewal_window(self.ctx, cp)
                if cp.days_before_end in FORECAST_CHECKPOINT_DAYS and workflow.patched(
                    RENEWAL_FORECAST_PATCH
                ):
                    await renewal.brief(self.ctx, cp, await self._record_forecast(cp))
            elif cp.kind == "renewal_outcome":
                await self._renewal_outcome(cp)
            elif cp.kind == "renewal_grace":
                await self._renewal_outcome(cp, final=True)
            if s.db_retry_at is not None:
                break  # a Postgres step ran out of retries: the rest waits for the back-off

    async def _record_forecast(self, cp: lc.Checkpoint) -> RenewalForecast | None:
        """The renewal forecast at this checkpoint (domain/forecast.py), from the latest scan,
        the CSM's call in force and the open findings; the activity adds the calibrated churn
        probability and the notice on file, and stores it."""
        s = self.s
        today = workflow.now().date()
        recorded = await self._db_step(
            "the renewal forecast",
            workflow.execute_activity(
                act.record_renewal_forecast,
                RenewalForecastRequest(
                    inputs=ForecastInput(
                        account_id=s.account_id,
                        as_of=today,
                        renewal_date=s.contract.end_date,
                        days_before_end=cp.days_before_end or 0,
                        arr=s.contract.arr,
                        band=s.band,
                        score=s.score,
                        churn_level=s.churn_level,
                        open_risks=[
                            str(x.get("title", ""))
                            for x in s.open_findings
                            if x.get("severity") == "high"
                        ],
                        sentiment=self._sentiment_in_force(),
                    ),
                    csm_owner=s.handoff.csm_owner,
                    tier=s.handoff.tier,
                ),
                start_to_close_timeout=self.activity_timeout,
                retry_policy=DB_RETRY,
                summary=f"renewal forecast T-{cp.days_before_end}d ({s.contract.end_date})",
            ),
        )
        if recorded is None:
            return None  # noted as a failed step; the next checkpoint records the next forecast
        f: RenewalForecast = recorded
        s.forecast = f
        self._log("decision", f.line())
        await publish(
            self.ctx,
            "renewal.forecast",
            {
                "days_before_end": f.days_before_end,
                "end_date": str(f.renewal_date),
                "category": f.category,
                "data_category": f.data_category,
                "arr": f.arr,
                "churn_probability": f.churn_probability,
                "sentiment": f.sentiment,
                "reasons": f.reasons,
            },
            cp.key,
        )
        return f

    def _sentiment_in_force(self) -> CsmSentiment | None:
        got = self.s.sentiment
        return got if got is not None and got.in_force(workflow.now().date()) else None

    def _expire_sentiment(self) -> None:
        """A CSM's call expires on its own: from its expiry date it is dropped (timeline)."""
        s = self.s
        if s.sentiment is not None and self._sentiment_in_force() is None:
            self._log(
                "update",
                f"CSM sentiment {s.sentiment.value} by {s.sentiment.author} expired "
                f"on {s.sentiment.expires_on}",
            )
            s.sentiment = None

    async def _renewal_outcome(self, cp: lc.Checkpoint, final: bool = False) -> None:
        s = self.s
        checked = await self._db_step(
            "the renewal check",
            workflow.execute_activity(
                act.check_renewal,
                RenewalCheckRequest(account_id=s.account_id, term_end=s.contract.end_date),
                start_to_close_timeout=self.activity_timeout,
                retry_policy=DB_RETRY,
                summary=f"renewal outcome for the term ending {s.contract.end_date}",
            ),
        )
        if checked is None:
            s.done_checkpoints = [k for k in s.done_checkpoints if k != cp.key]  # fire again
            return
        result: RenewalCheckResult = checked
        if result.next_term is not None:
            s.grace_until = None
            self._apply_contract(result.next_term, "renewed: next term on file")
            if s.phase == Phase.CHURN_HANDLING:
                self._leave_churn_handling("renewed")
            await publish(
                self.ctx,
                "renewal.renewed",
                {"end_date": str(s.contract.end_date)},
                str(s.contract.end_date),
            )
            return
        if not final and s.churn_reason is None:
            # No renewal on file yet: late signatures are common, so hold the
            # account in churn handling for a grace period before calling it.
            await self._enter_churn_handling(
                f"term ended {s.contract.end_date} with no renewal on file"
            )
            s.grace_until = s.contract.end_date + RENEWAL_GRACE
            return
        await self._churned()

    # --------------------------------------------------------- churn path

    async def _enter_churn_handling(self, reason: str) -> None:
        s = self.s
        move = lc.enter_churn_handling(s.phase, reason)
        if move is None:
            return
        s.phase_before_churn = s.phase
        self._set_phase(Phase.CHURN_HANDLING, reason)
        await playbooks.start_churn_save(self.ctx, reason)

    def _leave_churn_handling(self, why: str) -> None:
        s = self.s
        back = s.phase_before_churn or Phase.RELATIONSHIP_CAPITAL
        s.churn_reason = None
        s.save_outcome = why
        self._set_phase(back, f"churn handling closed: {why}")

    async def _churned(self) -> None:
        s = self.s
        s.churn_reason = s.churn_reason or "contract ended without renewal"
        await playbooks.post_mortem(self.ctx)
        self._set_phase(Phase.CHURNED, s.churn_reason)
        await publish(self.ctx, "account.churned", {"reason": s.churn_reason})
        workflow.set_current_details(f"churned: {s.churn_reason}; post-mortem delivered")

    # ------------------------------------------------------------ lifecycle

    def _set_phase(self, phase: Phase, reason: str) -> None:
        s = self.s
        if phase == s.phase:
            return
        self._log("phase", f"{s.phase.label} -> {phase.label}: {reason}")
        s.phase = phase
        s.phase_entered_at = workflow.now()
        self._upsert_search_attributes()

    def _milestone(self, milestone: str, source: str) -> None:
        s = self.s
        if milestone in s.milestones:
            return
        s.milestones.append(milestone)
        engagement.on_milestone(self.ctx, milestone, source)
        self._log("milestone", f"{lc.MILESTONES[milestone]} ({source})")
        if s.phase in lc.LINEAR:
            for move in lc.advance(s.phase, set(s.milestones)):
                self._set_phase(move.to_phase, move.reason)

    def _nudge_due(self) -> lc.NudgeDue | None:
        s = self.s
        if s.phase_entered_at is None or s.paused:
            return None
        return lc.next_nudge(
            s.phase, s.phase_entered_at, s.nudges_sent.get(str(s.phase.value), 0), set(s.milestones)
        )

    async def _nudge_stalled_gate(self) -> None:
        due = self._nudge_due()
        if due is None or due.due_at > workflow.now():
            return
        key = str(self.s.phase.value)
        self.s.nudges_sent[key] = self.s.nudges_sent.get(key, 0) + 1
        self._log(
            "decision",
            f"gate of {Phase(due.phase).label} stalled {due.days_in_phase} days: nudge CSM",
        )
        await playbooks.nudge(self.ctx, due, self.s.nudges_sent[key])

    def _apply_contract(self, c: ContractChangeSignal | HandoffContract, why: str) -> None:
        s = self.s
        old_end = s.contract.end_date
        s.contract = HandoffContract(**c.model_dump(include=set(HandoffContract.model_fields)))
        if s.contract.end_date != old_end:
            # Timers re-arm from the new date; skip windows already behind us.
            stale = lc.stale_checkpoints(
                workflow.now(), s.contract.end_date, set(s.done_checkpoints)
            )
            s.done_checkpoints.extend(sorted(stale))
            self._log(
                "timer", f"renewal date moved {old_end} -> {s.contract.end_date}: timers re-armed"
            )
        self._log(
            "signal",
            f"contract {why}: {s.contract.seats_purchased} seats, ARR {s.contract.arr:,.0f}",
        )
        self._upsert_search_attributes()
        self._wake = True

    # --------------------------------------------------------------- signals

    @workflow.signal(dynamic=True)
    async def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal lands here so a malformed or unknown one is recorded, never a task failure."""
        s = self.s
        s.signals_received += 1
        model = SIGNALS.get(name)
        if model is None:
            self._reject(name, f"unknown signal {name!r}; known: {', '.join(SIGNALS)}")
            return
        if len(args) != 1:
            self._reject(name, f"expected one argument, got {len(args)}")
            return
        size = len(args[0].payload.data)
        if size > SIGNAL_PAYLOAD_BYTES:
            self._reject(
                name,
                f"payload of {size:,} bytes is over the {SIGNAL_PAYLOAD_BYTES:,}-byte limit "
                "of one signal: split it (e.g. smaller usage batches)",
            )
            return
        try:
            raw = workflow.payload_converter().from_payload(args[0].payload, dict)
            msg = model.model_validate(raw)
        except (ValidationError, Exception) as err:
            self._reject(name, _short_error(err))
            return
        if isinstance(msg, MilestoneSignal):
            self._milestone(msg.milestone, "signal")
        elif isinstance(msg, ChurnNoticeSignal):
            s.churn_reason = f"customer gave notice: {msg.reason}"
            self._log("signal", s.churn_reason)
            # Added after histories were recorded: the notice is also written to Postgres
            # (contracts.notice_on). Old histories replay without the extra activity.
            if workflow.patched(NOTICE_RECORDED_PATCH):
                self._record_notice(msg)
            await self._enter_churn_handling(s.churn_reason)
        elif isinstance(msg, ContractChangeSignal):
            self._apply_contract(msg, "changed by signal")
        elif isinstance(msg, PortfolioSummarySignal):
            # Before the patch this signal was unknown: rejected, nothing else.
            if not workflow.patched(SCHEDULED_SCAN_PATCH):
                self._reject(name, f"unknown signal {name!r}; known: {', '.join(SIGNALS)}")
                return
            if msg.summary.account_id != s.account_id:
                self._reject(name, f"summary of account {msg.summary.account_id!r}, not this one")
                return
            s.scheduled_summary = msg.summary
            s.scheduled_until = (
                workflow.now() + timedelta(seconds=msg.interval_seconds) + SCHEDULE_GRACE
            )
        else:
            engagement.on_signal(self.ctx, msg)
        if name in TELEMETRY_SIGNALS:
            key = _telemetry_key(name, msg)
            if key in s.seen_keys:
                self._log("signal", f"duplicate {name} {key} ignored")
                return
            s.seen_keys = [*s.seen_keys[-(SEEN_KEYS_LIMIT - 1) :], key]
            s.pending_telemetry.append(
                PendingTelemetry(signal=name, key=key, payload=msg.model_dump(mode="json"))
            )
        if name in RESCORE_SIGNALS:
            s.rescore = True
        self._wake = True

    def _record_notice(self, msg: ChurnNoticeSignal) -> None:
        """Queue the notice for Postgres, dated the day it was given (default: today)."""
        s = self.s
        notice = msg.model_copy(update={"noticed_on": msg.noticed_on or workflow.now().date()})
        key = f"churn_notice:{notice.noticed_on}"
        if key not in s.seen_keys:
            s.seen_keys = [*s.seen_keys[-(SEEN_KEYS_LIMIT - 1) :], key]
            s.pending_telemetry.append(
                PendingTelemetry(
                    signal="churn_notice", key=key, payload=notice.model_dump(mode="json")
                )
            )

    def _reject(self, name: str, reason: str) -> None:
        self.s.signals_rejected += 1
        self._log("rejected", f"signal {name!r} rejected: {reason}")
        # The SDK's workflow meter records nothing during replay: each rejection counts once.
        meter = workflow.metric_meter()
        label = name if name in SIGNALS else "unknown"
        meter.create_counter(REJECTED_INPUTS, DESCRIPTIONS[REJECTED_INPUTS]).add(
            1, {"input": label}
        )

    # --------------------------------------------------------------- updates

    @workflow.update
    async def approve_cs_plan(self, upd: CsPlanUpdate) -> UpdateResult:
        self.s.cs_plan = upd
        self._log(
            "update", f"CS plan approved by {upd.approved_by}: {len(upd.objectives)} objective(s)"
        )
        self._milestone("cs_plan_approved", f"update by {upd.approved_by}")
        tracked = phases.adopt_criteria(self.ctx, upd)
        activation.on_plan_approved(self.ctx)
        self._wake = True
        return UpdateResult(
            message=f"CS plan recorded; phase is {self.s.phase.label}"
            + (f"; {tracked}" if tracked else "")
        )

    @approve_cs_plan.validator
    def _validate_cs_plan(self, upd: CsPlanUpdate) -> None:
        _expect(upd, CsPlanUpdate)
        if self.s.phase in (Phase.TRANSITION, Phase.DISCOVERY):
            raise ValueError(
                f"the CS plan is approved in phase 3; the account is in {self.s.phase.label}"
            )
        if self.s.phase == Phase.CHURNED:
            raise ValueError("the account has churned")

    @workflow.update
    async def submit_questionnaire(self, upd: QuestionnaireAnswersUpdate) -> UpdateResult:
        message = phases.record_answers(self.ctx, upd)
        self._wake = True
        return UpdateResult(message=message)

    @submit_questionnaire.validator
    def _validate_questionnaire(self, upd: QuestionnaireAnswersUpdate) -> None:
        _expect(upd, QuestionnaireAnswersUpdate)
        phases.check_answers(self.ctx, upd)

    @workflow.update
    async def decide_save(self, upd: DecisionUpdate) -> UpdateResult:
        s = self.s
        assert s.save_workflow_id is not None
        handle = workflow.get_external_workflow_handle(s.save_workflow_id)
        await handle.signal("decision", upd)
        self._log(
            "update", f"save plan {'approved' if upd.approve else 'declined'} by {upd.decided_by}"
        )
        return UpdateResult(message=f"decision sent to {s.save_workflow_id}")

    @decide_save.validator
    def _validate_decide_save(self, upd: DecisionUpdate) -> None:
        _expect(upd, DecisionUpdate)
        if self.s.save_workflow_id is None or self.s.phase != Phase.CHURN_HANDLING:
            raise ValueError("no churn save plan is waiting for a decision on this account")

    @workflow.update
    async def decide_expansion(self, upd: DecisionUpdate) -> UpdateResult:
        s = self.s
        key = upd.target_id or ""
        if upd.approve:
            self._log("update", f"expansion {key} approved by {upd.decided_by}")
        else:
            s.declined[key] = workflow.now().date()
            self._log(
                "update",
                f"expansion {key} declined by {upd.decided_by}: not re-proposed for 90 days",
            )
        await publish(
            self.ctx,
            "expansion.decided",
            {"opportunity": key, "approved": upd.approve, "by": upd.decided_by},
        )
        return UpdateResult(message=f"expansion {key} {'approved' if upd.approve else 'declined'}")

    @decide_expansion.validator
    def _validate_decide_expansion(self, upd: DecisionUpdate) -> None:
        _expect(upd, DecisionUpdate)
        if not upd.target_id:
            raise ValueError("target_id (the opportunity id) is required")
        if upd.target_id not in self.s.dispatched:
            known = ", ".join(self.s.dispatched) or "none"
            raise ValueError(f"no dispatched expansion {upd.target_id!r}; dispatched: {known}")

    @workflow.update
    async def mark_milestone(self, upd: MilestoneUpdate) -> UpdateResult:
        self._milestone(upd.milestone, f"marked by {upd.marked_by}")
        self._wake = True
        return UpdateResult(
            message=f"milestone {upd.milestone} recorded; phase is {self.s.phase.label}"
        )

    @mark_milestone.validator
    def _validate_mark_milestone(self, upd: MilestoneUpdate) -> None:
        _expect(upd, MilestoneUpdate)
        if upd.milestone not in lc.MILESTONES:
            raise ValueError(
                f"unknown milestone {upd.milestone!r}; known: {', '.join(lc.MILESTONES)}"
            )
        if upd.milestone in self.s.milestones:
            raise ValueError(f"milestone {upd.milestone!r} is already recorded")

    @workflow.update
    async def set_paused(self, upd: PauseUpdate) -> UpdateResult:
        self.s.paused = upd.paused
        self._log(
            "update",
            f"{'paused' if upd.paused else 'resumed'} by {upd.by}"
            + (f": {upd.reason}" if upd.reason else ""),
        )
        self._wake = True
        return UpdateResult(message="paused" if upd.paused else "resumed")

    @set_paused.validator
    def _validate_set_paused(self, upd: PauseUpdate) -> None:
        _expect(upd, PauseUpdate)
        if upd.paused == self.s.paused:
            raise ValueError(f"the account is already {'paused' if upd.paused else 'running'}")

    @workflow.update
    async def reassign_csm(self, upd: ReassignUpdate) -> UpdateResult:
        old = self.s.handoff.csm_owner
        self.s.handoff = self.s.handoff.model_copy(
            update={"csm_owner": upd.csm_owner, "csm_email": upd.csm_email}
        )
        self._log("update", f"CSM reassigned {old} -> {upd.csm_owner} by {upd.by}")
        self._upsert_search_attributes()
        self.s.owner_pending = True
        self._wake = True
        return UpdateResult(message=f"CSM is now {upd.csm_owner}")

    @reassign_csm.validator
    def _validate_reassign(self, upd: ReassignUpdate) -> None:
        _expect(upd, ReassignUpdate)
        if upd.csm_owner == self.s.handoff.csm_owner:
            raise ValueError(f"{upd.csm_owner} already owns this account")

    @workflow.update
    async def set_sentiment(self, upd: SentimentUpdate) -> UpdateResult:
        s = self.s
        s.sentiment = CsmSentiment(
            value=upd.value,
            reason=upd.reason,
            author=upd.author,
            expires_on=upd.expires_on,
            recorded_at=workflow.now(),
        )
        self._log("update", s.sentiment.line())
        score = f"{s.score:.0f} {s.band}" if s.score is not None else "not scored yet"
        return UpdateResult(
            message=f"CSM sentiment {upd.value} recorded until {upd.expires_on}; "
            f"the computed health score stays {score}"
        )

    @set_sentiment.validator
    def _validate_sentiment(self, upd: SentimentUpdate) -> None:
        _expect(upd, SentimentUpdate)
        today = workflow.now().date()
        if self.s.phase == Phase.CHURNED:
            raise ValueError("the account has churned")
        if upd.expires_on <= today:
            raise ValueError(f"expires_on {upd.expires_on} must be after today ({today})")
        if (upd.expires_on - today).days > SENTIMENT_MAX_DAYS:
            raise ValueError(
                f"expires_on {upd.expires_on} is more than {SENTIMENT_MAX_DAYS} days away: "
                "a CSM's call must be renewed at least yearly"
            )

    @workflow.update
    async def complete_action(self, upd: ActionDoneUpdate) -> UpdateResult:
        message = actions.complete(self.ctx, upd)
        self._wake = True  # the next pass writes the row
        return UpdateResult(message=message)

    @complete_action.validator
    def _validate_complete_action(self, upd: ActionDoneUpdate) -> None:
        _expect(upd, ActionDoneUpdate)
        actions.check_complete(self.ctx, upd)

    # --------------------------------------------------------------- queries

    @workflow.query
    def view(self) -> AccountView:
        s = self.s
        gate = lc.GATES.get(s.phase)
        missing = gate.missing(set(s.milestones)) if gate else []
        return AccountView(
            account_id=s.account_id,
            name=s.handoff.name,
            phase=s.phase.label,
            phase_entered_at=s.phase_entered_at,
            waiting_for=self._waiting_for()
            or (("gate needs: " + ", ".join(missing)) if missing else ""),
            paused=s.paused,
            band=s.band,
            band_reason=s.band_reason,
            score=s.score,
            churn_level=s.churn_level,
            drivers=s.drivers,
            open_findings=s.open_findings + self._churn_finding(),
            opportunities=s.opportunities,
            renewal_date=s.contract.end_date,
            arr=s.contract.arr,
            csm_owner=s.handoff.csm_owner,
            milestones=s.milestones,
            next_checkpoints=[f"{c.at:%Y-%m-%d} {c.label}" for c in self._calendar()[:5]],
            save_workflow_id=s.save_workflow_id,
            timeline=s.timeline,
            runs=s.runs,
            signals_received=s.signals_received,
            signals_rejected=s.signals_rejected,
            failures=s.failures,
            failures_total=s.failures_total,
            success_criteria=s.onboarding.criteria_status,
            maturity=s.onboarding.maturity,
            **engagement.view_fields(self.ctx),
            onboarding_plan=activation.view_line(self.ctx),
            sentiment=self._sentiment_in_force(),
            forecast=s.forecast,
            actions=actions.view_lines(self.ctx),
            crm_hygiene=hygiene.view_lines(self.ctx),
        )

    def _churn_finding(self) -> list[dict]:
        """An account in churn handling shows why, even before a scan found anything."""
        s = self.s
        if s.phase != Phase.CHURN_HANDLING or any(
            f.get("kind") == "churn" for f in s.open_findings
        ):
            return []
        return [
            {
                "kind": "churn",
                "severity": "high",
                "title": s.churn_reason or "churn risk confirmed",
                "save_workflow_id": s.save_workflow_id,
                "decision_due": str(s.save_decision_due) if s.save_decision_due else None,
            }
        ]

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        return self.s.timeline

    # --------------------------------------------------------------- helpers

    def _log(self, kind: str, text: str) -> None:
        s = self.s
        s.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, text=text))
        if len(s.timeline) > TIMELINE_LIMIT:
            del s.timeline[: len(s.timeline) - TIMELINE_LIMIT]

    def note_failure(self, text: str) -> None:
        """A step the workflow carried on after (playbooks.survived): timeline, view, details."""
        s = self.s
        s.failures_total += 1
        s.failures = [*s.failures, f"{workflow.now():%Y-%m-%d} {text}"][-FAILURES_KEPT:]
        self._log("failed", text)

    def _upsert_search_attributes(self, force: bool = False) -> None:
        s = self.s
        pairs: list[SearchAttributeUpdate[Any]] = [
            ACCOUNT_PHASE.value_set(s.phase.slug),
            RENEWAL_DATE.value_set(
                datetime(
                    s.contract.end_date.year,
                    s.contract.end_date.month,
                    s.contract.end_date.day,
                    tzinfo=workflow.now().tzinfo,
                )
            ),
            ARR.value_set(float(s.contract.arr)),
            CSM_OWNER.value_set(s.handoff.csm_owner),
            ACCOUNT_TIER.value_set(s.handoff.tier),
        ]
        if s.band is not None:
            pairs.append(HEALTH_BAND.value_set(s.band))
        if s.score is not None:
            pairs.append(HEALTH_SCORE.value_set(float(s.score)))
        if s.churn_level is not None:
            pairs.append(CHURN_RISK.value_set(s.churn_level))
        current = workflow.info().typed_search_attributes
        changed = [p for p in pairs if current.get(p.key) != p.value]
        if changed or force:
            workflow.upsert_search_attributes(changed or pairs)


def _expect(upd: object, model: type[BaseModel]) -> None:
    """Reject an update whose input is not the model (a null payload decodes to None,
    skipping pydantic): the handler would otherwise fail the workflow task."""
    if not isinstance(upd, model):
        raise ValueError(
            f"expected a {model.__name__} object with {', '.join(model.model_fields)}, "
            f"got {type(upd).__name__}"
        )


def _telemetry_key(name: str, msg: BaseModel) -> str:
    ident = {
        "usage": "batch_id",
        "ticket": "ticket_id",
        "nps": "response_id",
        "invoice": "invoice_id",
        "interaction": "interaction_id",
        "stakeholder": "stakeholder_id",
    }.get(name)
    if ident is not None:
        return f"{name}:{getattr(msg, ident)}"
    if name == "tam":
        return f"tam:{msg.measured_at.isoformat()}"  # type: ignore[attr-defined]
    return f"{name}:{msg.start_date}:{msg.end_date}:{msg.seats_purchased}"  # type: ignore[attr-defined]


def _short_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return validation_errors(err)
    return f"{type(err).__name__}: {err}"[:300]
