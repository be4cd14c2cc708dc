"""The typed facts of the Relationship Capital and Value Activation drafts.

Pure (no I/O, no clock), like ``domain/draft_facts.py``: the workflows call
these builders with what the rules decided, and the unit tests render the
templates from exactly these facts (``tests/unit/test_draft_facts.py``).
"""

from __future__ import annotations

from datetime import date, datetime

from domain.activation import FeatureGap
from domain.draft_facts import common
from domain.engagement import ASK_LABELS, AdvocacyConfig, AdvocacyInputs
from domain.feedback import FeedbackDigest
from domain.handoff import Handoff
from domain.health import a_or_an, fmt_pct, plural
from domain.messages import FeatureReleasedSignal
from domain.narrative import (
    AdoptionCampaignFacts,
    AdvocacyAskFacts,
    FeatureIntroFacts,
    MeetingFollowupFacts,
    MeetingPrepFacts,
    ProductFeedbackFacts,
)
from domain.touchpoints import ActionItem, ScheduledMeeting

PORTFOLIO_ID = "portfolio"  # account_id of drafts about the whole book (deliveries.account_id)


def advocacy_ask_facts(
    handoff: Handoff,
    as_of: datetime,
    inp: AdvocacyInputs,
    cfg: AdvocacyConfig,
    *,
    kind: str,
    score: float | None,
    renewal_date: date | None,
    first_value_on: date | None,
    promoter: str | None = None,
) -> AdvocacyAskFacts:
    """The ask the rule found due; ``promoter``: who answered the NPS survey, if known."""
    base = common(handoff, as_of)
    if promoter:
        base["stakeholders"] = [promoter, *[s for s in base["stakeholders"] if s != promoter]][:6]
    evidence = [
        f"Health {score:.0f}/100 ({inp.band})" if score is not None else f"Health band {inp.band}",
        f"Latest NPS: {inp.nps_latest}"
        + (f" on {inp.nps_latest_on}" if inp.nps_latest_on else "")
        + (f" from {promoter}" if promoter else ""),
        f"Churn risk {inp.churn_level or 'not assessed'}; no escalated ticket open",
    ]
    if inp.asks_made:
        evidence.append(
            f"{plural(inp.asks_made, 'advocacy ask')} before, the last on {inp.last_ask_on}"
        )
    return AdvocacyAskFacts(
        **base,
        ask_kind=ASK_LABELS.get(kind, kind),
        nps_latest=inp.nps_latest if inp.nps_latest is not None else 0,
        nps_latest_on=inp.nps_latest_on,
        score=score,
        band=inp.band,
        first_value_on=first_value_on,
        days_to_renewal=inp.days_to_renewal,
        renewal_date=renewal_date,
        asks_before=inp.asks_made,
        ask_interval_days=cfg.interval_days,
        evidence=evidence,
    )


def product_feedback_facts(
    digest: FeedbackDigest,
    as_of: datetime,
    *,
    owner_name: str | None,
    owner_email: str,
) -> ProductFeedbackFacts:
    """The quarter's themes, largest first; example texts go in as untrusted quotes."""
    named = [t for t in digest.themes if t.items and t.theme != digest.other_theme]
    top = named[0] if named else None
    shown = named + [t for t in digest.themes if t.items and t.theme == digest.other_theme]
    evidence = [
        f"{t.theme}: {plural(t.items, 'item')} ({plural(t.tickets, 'ticket')}, "
        f"{plural(t.nps_comments, 'NPS comment')}) from {plural(len(t.accounts), 'account')}"
        for t in shown
    ]
    return ProductFeedbackFacts(
        account_id=PORTFOLIO_ID,
        account_name="All accounts",
        as_of=as_of.date().isoformat(),
        csm_name=owner_name,
        csm_email=owner_email,
        quarter=digest.quarter,
        feedback_items=digest.items,
        accounts_heard=digest.accounts,
        themes_found=len(named),
        top_theme=top.theme if top else None,
        top_theme_items=top.items if top else None,
        top_theme_accounts=len(top.accounts) if top else None,
        detractor_comments=sum(t.detractors for t in digest.themes),
        evidence=evidence,
        customer_quotes=[e for t in shown for e in t.examples][:12],
    )


def adoption_campaign_facts(
    handoff: Handoff,
    as_of: datetime,
    features: list[FeatureGap],
    *,
    window_days: int,
    active_users: int | None,
    plays: dict[str, str],
) -> AdoptionCampaignFacts:
    """One campaign for the account's under-used features (the largest gap first), each with
    the users it is for; the steps are the QBR scorecard's plays per module."""
    if not features:
        raise ValueError("a campaign needs at least one feature")
    top = features[0]
    evidence = []
    for g in features:
        roles = ", ".join(f"{r} {n}" for r, n in g.audience_roles.items())
        more = g.audience - len(g.audience_sample)
        who = ", ".join(g.audience_sample) + (f" and {more} more" if more > 0 else "")
        evidence.append(
            f"{g.label}: {fmt_pct(g.rate)} of active users vs {a_or_an(fmt_pct(g.benchmark))} {fmt_pct(g.benchmark)} benchmark; "
            f"for {plural(g.audience, 'user')}" + (f" ({roles})" if roles else "") + f": {who}"
        )
    actions = [
        plays.get(g.module, "Run a targeted enablement session on {label}").format(label=g.label)
        for g in features
    ]
    return AdoptionCampaignFacts(
        **common(handoff, as_of),
        features_in_campaign=len(features),
        top_feature=top.label,
        top_feature_rate=top.rate,
        top_feature_benchmark=top.benchmark,
        top_feature_audience=top.audience,
        adoption_window_days=window_days,
        active_users=active_users,
        evidence=evidence,
        recommended_actions=list(dict.fromkeys(actions)),
    )


def feature_intro_facts(
    handoff: Handoff, as_of: datetime, release: FeatureReleasedSignal
) -> FeatureIntroFacts:
    return FeatureIntroFacts(
        **common(handoff, as_of),
        feature_title=release.title,
        module=release.module,
        released_on=release.released_on,
        release_summary=release.summary,
        evidence=[f"Released {release.released_on} for the {release.module} module"],
    )


def meeting_prep_facts(
    handoff: Handoff,
    as_of: datetime,
    meeting: ScheduledMeeting,
    *,
    changes: list[str],
    since: date | None,
    score: float | None,
    band: str | None,
    churn_level: str | None,
    renewal_date: date | None,
    open_risks: list[str],
    asks: list[str],
) -> MeetingPrepFacts:
    """``as_of``: the scan the figures are from (days to renewal count from its date)."""
    return MeetingPrepFacts(
        **common(handoff, as_of),
        meeting_title=meeting.title or f"{meeting.kind} {meeting.meeting_id}",
        meeting_kind=meeting.kind,
        meeting_at=f"{meeting.scheduled_for:%Y-%m-%d %H:%M} UTC",
        since=since,
        score=score,
        band=band,
        churn_level=churn_level,
        days_to_renewal=(renewal_date - as_of.date()).days if renewal_date else None,
        renewal_date=renewal_date,
        open_risks=open_risks,
        attendees=", ".join(meeting.attendees) or None,
        evidence=changes,
        recommended_actions=asks,
    )


def meeting_followup_facts(
    handoff: Handoff, as_of: datetime, *, kind: str, occurred_on: date, actions: list[ActionItem]
) -> MeetingFollowupFacts:
    return MeetingFollowupFacts(
        **common(handoff, as_of),
        interaction_kind=kind,
        occurred_on=occurred_on,
        action_items=len(actions),
        owners_named=sum(a.owner is not None for a in actions),
        customer_quotes=[f"{a.owner or 'no owner yet'}: {a.action}" for a in actions],
    )
