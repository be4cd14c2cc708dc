"""Engagement plays of the later phases: time to first value, advocacy asks, the feedback digest.

Orchestration only; the rules are in ``domain/engagement.py`` (advocacy),
``domain/activation.py`` (time to first value) and ``domain/feedback.py``
(themes). The account workflow calls ``on_handoff`` and ``on_milestone``
(state only, no commands) and ``run_due`` once per pass; everything
``run_due`` does is behind the ``ENGAGEMENT_PATCH`` marker, so histories
recorded before it replay unchanged. ``ProductFeedbackWorkflow`` drafts the
quarterly digest of ticket subjects and NPS comments for the product owner
(``starter.py feedback``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from domain import engagement_facts
    from domain import lifecycle as lc
    from domain.activation import campaign_features, time_to_first_value
    from domain.delivery import DeliveryResult
    from domain.engagement import (
        ASK_LABELS,
        AdvocacyAsk,
        AdvocacyConfig,
        AdvocacyData,
        AdvocacyDataRequest,
        AdvocacyInputs,
        EngagementSettings,
        advocacy_eligibility,
        state_precheck,
    )
    from domain.lifecycle import Phase
    from domain.messages import FeatureReleasedSignal, InteractionSignal, MeetingScheduledSignal
    from domain.qbr import QbrConfig
    from domain.touchpoints import (
        Baseline,
        ScheduledMeeting,
        TouchpointConfig,
        changes_since,
        missed,
        parse_actions,
        prep_due,
        touchpoint_overdue,
    )
    from workflows import actions as chase
    from workflows import activity_defs as act
    from workflows import hygiene
    from workflows.activity_models import FeedbackDigestRequest
    from workflows.context import PlaybookContext
    from workflows.drafting import (
        deliver_narrative,
        draft_for_csm,
        narrative,
        note_for_digest,
        publish,
        survived,
    )

# workflow.patched id: the engagement plays (never reuse or rename it).
ENGAGEMENT_PATCH = "engagement-plays"
# Postgres is read for the advocacy rule at most this often (when the state alone allows an ask).
ADVOCACY_CHECK_EVERY = timedelta(days=7)
# Adoption campaigns: the scorecard is read at most this often; a feature is campaigned at
# most once per CAMPAIGN_INTERVAL.
CAMPAIGN_CHECK_EVERY = timedelta(days=30)
CAMPAIGN_INTERVAL_DAYS = 90
ACTIVATION_PHASES = (Phase.VALUE_ACTIVATION, Phase.VALUE_PROOF, Phase.RELATIONSHIP_CAPITAL)
RELEASES_KEPT = 200
MEETINGS_KEPT_DAYS = 30  # briefed meetings are forgotten this long after they started
# Reads for a play that can wait: a few attempts, then the play is skipped and recorded as failed.
DB_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


# ------------------------------------------------------------ state hooks


def on_handoff(ctx: PlaybookContext) -> None:
    """The handoff moment: the start of time to first value."""
    e = ctx.s.engagement
    e.handed_off_at = workflow.now()
    if "first_value" in ctx.s.handoff.milestones:
        e.first_value_before_handoff = True


def on_signal(ctx: PlaybookContext, msg: object) -> None:
    """Signals the engagement plays act on (state only: the next pass drafts)."""
    hygiene.on_signal(ctx, msg)
    if isinstance(msg, FeatureReleasedSignal):
        e = ctx.s.engagement
        if msg.feature_id in e.releases_seen:
            ctx.log("signal", f"feature {msg.feature_id} already handled: ignored")
            return
        e.releases_seen = [*e.releases_seen[-(RELEASES_KEPT - 1) :], msg.feature_id]
        e.pending_releases.append(msg.model_dump(mode="json"))
    elif isinstance(msg, MeetingScheduledSignal):
        e = ctx.s.engagement
        meeting = ScheduledMeeting(**msg.model_dump())
        e.meetings = [m for m in e.meetings if m.meeting_id != msg.meeting_id] + [meeting]
        ctx.log("signal", f"{msg.kind} {msg.meeting_id} scheduled for {msg.scheduled_for:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    elif isinstance(msg, InteractionSignal) and msg.meaningful:
        if f"interaction:{msg.interaction_id}" in ctx.s.seen_keys:
            return  # a duplicate: the workflow ignores it too
        e = ctx.s.engagement
        if e.last_touch_at is None or msg.occurred_at > e.last_touch_at:
            e.last_touch_at = msg.occurred_at
        if msg.notes:
            e.pending_followups.append(msg.model_dump(mode="json"))


def on_milestone(ctx: PlaybookContext, milestone: str, source: str) -> None:
    e = ctx.s.engagement
    if milestone == "first_value" and e.first_value_at is None and source != "handoff":
        e.first_value_at = workflow.now()


def ttfv_days(ctx: PlaybookContext) -> int | None:
    e = ctx.s.engagement
    if e.handed_off_at is None or e.first_value_at is None:
        return None
    return time_to_first_value(e.handed_off_at.date(), e.first_value_at.date())


def view_fields(ctx: PlaybookContext) -> dict[str, Any]:
    """What the account view shows of the engagement plays."""
    e = ctx.s.engagement
    if e.first_value_before_handoff:
        ttfv = "first value reached before the handoff (imported)"
    elif e.first_value_at is not None and e.handed_off_at is not None:
        ttfv = f"{ttfv_days(ctx)} days (handoff {e.handed_off_at:%Y-%m-%d}, first value {e.first_value_at:%Y-%m-%d})"
    elif e.handed_off_at is not None:
        days = (workflow.now() - e.handed_off_at).days
        ttfv = f"not reached yet ({days} days since handoff)"
    else:
        ttfv = "unknown (handed off before this was recorded)"
    asks = [f"{a.on} {ASK_LABELS[a.kind]}" for a in e.advocacy_asks]
    return {
        "time_to_first_value_days": ttfv_days(ctx),
        "time_to_first_value": ttfv,
        "advocacy_asks": asks,
        "advocacy_blocked": list(e.advocacy_blocked),
    }


# ------------------------------------------------------------- the pass


async def run_due(ctx: PlaybookContext, *, scanned: bool) -> None:
    """Whatever engagement play is due now; ``scanned``: this pass scored the account."""
    if not workflow.patched(ENGAGEMENT_PATCH):
        return
    s = ctx.s
    if s.paused or s.phase == Phase.CHURNED or s.db_retry_at is not None:
        return  # paused, done, or backing off after a Postgres failure: nothing to read now
    await _settings(ctx)
    await _first_value_reached(ctx)
    await _feature_intros(ctx)
    await _meeting_preps(ctx)
    await _followups(ctx)
    await chase.run_due(ctx)
    if scanned:
        await _touchpoint_cadence(ctx)
        await _adoption_campaign(ctx)
        await _advocacy(ctx)
        await hygiene.run_due(ctx)


async def _settings(ctx: PlaybookContext) -> None:
    """The worker's engagement configuration, read once per run (continue-as-new re-reads it)."""
    s, e = ctx.s, ctx.s.engagement
    if e.settings_run == s.runs:
        return
    e.settings_run = s.runs
    try:
        got: EngagementSettings = await workflow.execute_activity(
            act.engagement_settings,
            s.account_id,
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary="engagement settings (advocacy rule, touchpoint cadence)",
        )
    except FailureError as err:
        await survived("reading the engagement settings", err)
        return
    e.advocacy_config, e.touchpoints = got.advocacy, got.touchpoints
    s.actions.config = got.actions


def _baseline(ctx: PlaybookContext) -> Baseline:
    s = ctx.s
    return Baseline(
        at=s.last_scan_at or workflow.now(),
        score=s.score,
        band=s.band,
        churn_level=s.churn_level,
        milestones=list(s.milestones),
        findings=[str(f.get("title", "")) for f in s.open_findings if f.get("title")],
    )


def _risks(ctx: PlaybookContext) -> list[str]:
    s = ctx.s
    out = []
    if s.phase == Phase.CHURN_HANDLING:
        out.append(f"in churn handling: {s.churn_reason or 'churn risk confirmed'}")
    elif s.churn_level in ("HIGH", "CRITICAL"):
        out.append(f"churn risk {s.churn_level}" + (f": {s.drivers[0]}" if s.drivers else ""))
    out += [
        f"{f.get('severity', '')} {f.get('kind', '')}: {f.get('title', '')}".strip()
        for f in s.open_findings
        if f.get("title")
    ][:4]
    return out


def _asks(ctx: PlaybookContext) -> list[str]:
    """The decisions and answers still open on this account, oldest first."""
    s, e = ctx.s, ctx.s.engagement
    out = []
    gate = lc.GATES.get(s.phase)
    missing = gate.missing(set(s.milestones)) if gate else []
    if missing:
        # The milestones by their labels, as the nudge names them (not "first_qbr_delivered").
        labels = ", ".join(lc.MILESTONES.get(m, m) for m in missing)
        out.append(f"Agree how to close the gate of {s.phase.label}: {labels}")
    if s.save_workflow_id and s.phase == Phase.CHURN_HANDLING:
        due = f" by {s.save_decision_due}" if s.save_decision_due else ""
        out.append(f"Get the decision on the save plan{due}")
    for opp, on in sorted(s.dispatched.items(), key=lambda kv: kv[1]):
        if opp not in s.declined and (workflow.now().date() - on).days <= 90:
            out.append(f"Ask about the expansion Sales was sent on {on} ({opp})")
    if e.advocacy_asks and (workflow.now().date() - e.advocacy_asks[-1].on).days <= 30:
        a = e.advocacy_asks[-1]
        out.append(f"Make the {ASK_LABELS[a.kind]} ask drafted on {a.on}")
    return out[:3]


async def _meeting_preps(ctx: PlaybookContext) -> None:
    """A prep brief before each scheduled meeting: changes since the last one, risks, asks."""
    s, e = ctx.s, ctx.s.engagement
    now = workflow.now()
    cfg = e.touchpoints or TouchpointConfig()
    for m in missed(e.meetings, now):
        m.prepped = True
        ctx.log("decision", f"{m.kind} {m.meeting_id} started before a brief was due: none drafted")
    for m in prep_due(e.meetings, now, cfg.prep_lead_hours):
        m.prepped = True
        current = _baseline(ctx)
        since = e.baseline.at.date() if e.baseline else None
        changes = changes_since(e.baseline, current)
        e.baseline = current
        scan_at = s.last_scan_at or now
        facts = engagement_facts.meeting_prep_facts(
            s.handoff,
            scan_at,
            m,
            changes=changes,
            since=since,
            score=s.score,
            band=s.band,
            churn_level=s.churn_level,
            renewal_date=s.contract.end_date,
            open_risks=_risks(ctx),
            asks=_asks(ctx),
        )
        ctx.log("decision", f"meeting prep for {m.kind} {m.meeting_id} ({m.scheduled_for:%Y-%m-%d %H:%M})")  # fmt: skip
        await draft_for_csm(
            ctx,
            facts,
            category="reminder",
            occurrence=m.meeting_id,
            subject=f"Prep: {facts.meeting_title} with {s.handoff.name}, {facts.meeting_at}",
            urgent=True,  # before the meeting, not in tomorrow's digest
        )
    keep = now - timedelta(days=MEETINGS_KEPT_DAYS)
    e.meetings = [m for m in e.meetings if not m.prepped or m.scheduled_for > keep]


async def _followups(ctx: PlaybookContext) -> None:
    """After a meaningful interaction with notes: a follow-up draft with its action items."""
    s, e = ctx.s, ctx.s.engagement
    while e.pending_followups:
        it = InteractionSignal.model_validate(e.pending_followups.pop(0))
        actions = parse_actions(it.notes)
        facts = engagement_facts.meeting_followup_facts(
            s.handoff,
            workflow.now(),
            kind=it.kind,
            occurred_on=it.occurred_at.date(),
            actions=actions,
        )
        ctx.log("decision", f"follow-up of {it.kind} {it.interaction_id}: {len(actions)} action item(s)")  # fmt: skip
        chase.record(ctx, it, actions)
        await draft_for_csm(
            ctx,
            facts,
            category="reminder",
            occurrence=it.interaction_id,
            subject=f"Follow-up: {it.kind} with {s.handoff.name} on {it.occurred_at:%Y-%m-%d}",
        )


async def _touchpoint_cadence(ctx: PlaybookContext) -> None:
    """No meaningful interaction for longer than the tier's cadence: a line in the CSM's digest."""
    s, e = ctx.s, ctx.s.engagement
    if s.phase in (Phase.CHURN_HANDLING, Phase.CHURNED):
        return
    now = workflow.now()
    cfg = e.touchpoints or TouchpointConfig()
    cadence = cfg.cadence_for(s.handoff.tier)
    overdue = touchpoint_overdue(e.last_touch_at or e.handed_off_at, now, cadence)
    if overdue is None:
        return
    if e.touch_reminded_at is not None and (now - e.touch_reminded_at).days < cadence:
        return
    e.touch_reminded_at = now
    line = f"no meaningful touchpoint in {overdue} days ({s.handoff.tier} cadence: {cadence} days)"
    ctx.log("decision", f"touchpoint due: {line}")
    await note_for_digest(
        ctx,
        account_name=s.handoff.name,
        category="reminder",
        occurrence=f"touchpoint:{now:%Y-%m-%d}",
        to=str(s.handoff.csm_email),
        to_name=s.handoff.csm_owner,
        headline=line,
    )
    await publish(
        ctx, "touchpoint.due", {"days": overdue, "cadence_days": cadence}, f"{now:%Y-%m-%d}"
    )


async def _first_value_reached(ctx: PlaybookContext) -> None:
    """Once: time to first value on the event bus, where `starter.py ttfv` reads cohorts from."""
    s, e = ctx.s, ctx.s.engagement
    days = ttfv_days(ctx)
    if days is None or e.first_value_published:
        return
    e.first_value_published = True
    assert e.handed_off_at is not None and e.first_value_at is not None
    ctx.log("milestone", f"time to first value: {days} days from the handoff")
    await publish(
        ctx,
        "value.first_value",
        {
            "handed_off_on": e.handed_off_at.date().isoformat(),
            "first_value_on": e.first_value_at.date().isoformat(),
            "days": days,
            "tier": s.handoff.tier,
        },
        "first_value",
    )


async def _feature_intros(ctx: PlaybookContext) -> None:
    """A new-feature introduction for each released feature of a module the account licenses."""
    s, e = ctx.s, ctx.s.engagement
    while e.pending_releases:
        release = FeatureReleasedSignal.model_validate(e.pending_releases.pop(0))
        if s.phase == Phase.CHURN_HANDLING:
            ctx.log("decision", f"{release.title} released: no introduction during churn handling")
            continue
        if release.module not in s.contract.licensed_modules:
            ctx.log(
                "decision",
                f"{release.title} released for {release.module}: not licensed "
                f"({', '.join(s.contract.licensed_modules)}), no introduction",
            )
            continue
        ctx.log("decision", f"{release.title} released for {release.module}: introduction drafted")
        facts = engagement_facts.feature_intro_facts(s.handoff, workflow.now(), release)
        await draft_for_csm(
            ctx,
            facts,
            category="play",
            occurrence=release.feature_id,
            subject=f"New in {release.module}: {release.title} for {s.handoff.name}",
        )
        await publish(
            ctx,
            "feature.introduced",
            {"feature_id": release.feature_id, "module": release.module},
            release.feature_id,
        )


async def _adoption_campaign(ctx: PlaybookContext) -> None:
    """After the CS plan is approved: a campaign for the licensed features under benchmark."""
    s, e = ctx.s, ctx.s.engagement
    now = workflow.now()
    if s.phase not in ACTIVATION_PHASES or "cs_plan_approved" not in s.milestones:
        return
    if e.campaign_checked_at is not None and now - e.campaign_checked_at < CAMPAIGN_CHECK_EVERY:
        return
    e.campaign_checked_at = now
    as_of = s.last_scan_at or now
    try:
        targets = await workflow.execute_activity(
            act.adoption_targets,
            AdvocacyDataRequest(account_id=s.account_id, as_of=as_of),
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary="adoption scorecard: features under benchmark and who would use them",
        )
    except FailureError as err:
        await survived("adoption campaign check", err)
        return
    qbr = QbrConfig()
    pick = campaign_features(
        targets.gaps,
        e.campaigns,
        as_of.date(),
        underused_share=qbr.underused_share,
        interval_days=CAMPAIGN_INTERVAL_DAYS,
    )
    if not pick.features:
        return
    for g in pick.features:
        e.campaigns[g.event_type] = as_of.date()
    labels = ", ".join(g.label for g in pick.features)
    ctx.log("decision", f"adoption campaign: {labels}")
    facts = engagement_facts.adoption_campaign_facts(
        s.handoff,
        as_of,
        pick.features,
        window_days=targets.window_days,
        active_users=targets.active_users,
        plays=qbr.plays,
    )
    await draft_for_csm(
        ctx,
        facts,
        category="play",
        occurrence=f"{as_of:%Y-%m-%d}",
        subject=f"Adoption campaign: {s.handoff.name} ({labels})",
    )
    await publish(
        ctx,
        "adoption.campaign",
        {"features": [g.event_type for g in pick.features]},
        f"{as_of:%Y-%m-%d}",
    )


def _inputs(ctx: PlaybookContext) -> AdvocacyInputs:
    s, e = ctx.s, ctx.s.engagement
    as_of = (s.last_scan_at or workflow.now()).date()
    return AdvocacyInputs(
        as_of=as_of,
        band=s.band,
        churn_level=s.churn_level,
        in_churn_handling=s.phase == Phase.CHURN_HANDLING,
        notice_given=s.contract.notice_on is not None,
        first_value_reached="first_value" in s.milestones,
        days_to_renewal=(s.contract.end_date - as_of).days,
        last_ask_on=e.last_ask_on,
        asks_made=len(e.advocacy_asks),
    )


async def _advocacy(ctx: PlaybookContext) -> None:
    """An advocacy ask for the CSM when the rule says it is due (at most one per interval)."""
    s, e = ctx.s, ctx.s.engagement
    now = workflow.now()
    cfg = e.advocacy_config or AdvocacyConfig()
    inp = _inputs(ctx)
    pre = state_precheck(inp, cfg)
    if not pre.eligible:
        e.advocacy_blocked = pre.reasons
        return
    if e.advocacy_checked_at is not None and now - e.advocacy_checked_at < ADVOCACY_CHECK_EVERY:
        return
    e.advocacy_checked_at = now
    try:
        data: AdvocacyData = await workflow.execute_activity(
            act.advocacy_data,
            AdvocacyDataRequest(account_id=s.account_id, as_of=s.last_scan_at or now),
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary="advocacy: latest NPS and open escalations",
        )
    except FailureError as err:
        await survived("advocacy check", err)
        return
    e.advocacy_config = cfg = data.config
    inp = inp.model_copy(
        update={
            "nps_latest": data.nps_latest,
            "nps_latest_on": data.nps_latest_on,
            "open_escalated_tickets": data.open_escalated_tickets,
        }
    )
    decision = advocacy_eligibility(inp, cfg)
    if not decision.eligible or decision.kind is None:
        if decision.reasons != e.advocacy_blocked:
            ctx.log("decision", "no advocacy ask: " + "; ".join(decision.reasons))
        e.advocacy_blocked = decision.reasons
        return
    e.advocacy_blocked = []
    e.advocacy_asks.append(AdvocacyAsk(on=inp.as_of, kind=decision.kind))
    label = ASK_LABELS[decision.kind]
    ctx.log("decision", f"advocacy ask due: {label} (NPS {inp.nps_latest}, health {s.band})")
    first_value = e.first_value_at.date() if e.first_value_at else None
    facts = engagement_facts.advocacy_ask_facts(
        s.handoff,
        s.last_scan_at or now,
        inp,
        cfg,
        kind=decision.kind,
        score=s.score,
        renewal_date=s.contract.end_date,
        first_value_on=first_value,
        promoter=data.respondent,
    )
    await draft_for_csm(
        ctx,
        facts,
        category="opportunity",
        occurrence=f"{decision.kind}:{inp.as_of}",
        subject=f"Advocacy ask: {s.handoff.name} ({label})",
    )
    await publish(
        ctx,
        "advocacy.ask_due",
        {"kind": decision.kind, "nps": inp.nps_latest, "band": s.band},
        f"{decision.kind}:{inp.as_of}",
    )


# ------------------------------------------------------- product feedback


class FeedbackDigestInput(FeedbackDigestRequest):
    llm_task_queue: str = "vim-llm"
    owner_name: str | None = None


@workflow.defn
class ProductFeedbackWorkflow:
    """One digest per quarter (id ``product-feedback-<quarter>``): started twice, drafted once."""

    @workflow.run
    async def run(self, inp: FeedbackDigestInput) -> DeliveryResult | None:
        if not inp.to:
            raise ValueError("the product feedback digest needs a recipient")
        ctx = PlaybookContext(
            account_id=engagement_facts.PORTFOLIO_ID,
            llm_task_queue=inp.llm_task_queue,
            task_queue=workflow.info().task_queue,
        )
        digest = await workflow.execute_activity(
            act.feedback_digest,
            FeedbackDigestRequest(quarter=inp.quarter),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=DB_RETRY_POLICY,
            summary=f"feedback themes for {inp.quarter}",
        )
        facts = engagement_facts.product_feedback_facts(
            digest, workflow.now(), owner_name=inp.owner_name, owner_email=inp.to
        )
        n = await narrative(ctx, facts)
        workflow.set_current_details(
            f"{digest.items} items in {facts.themes_found} themes from {digest.accounts} accounts"
        )
        return await deliver_narrative(
            ctx,
            n,
            facts,
            kind="email_draft",
            occurrence=inp.quarter,
            to=inp.to,
            to_name=inp.owner_name,
            subject=f"Customer feedback by theme, {inp.quarter}",
        )
