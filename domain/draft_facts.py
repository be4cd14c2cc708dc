"""The typed facts of every narrative the account workflow and its children write.

Pure (no I/O, no clock: ``as_of`` is an argument). The workflows call these
builders with what they hold (the handoff, the last ``AssessmentSummary``, a
finding's typed metrics, a child's input), so the unit tests of the templates
render from exactly the facts a running workflow sends
(``tests/unit/test_draft_facts.py``). Every figure comes from one place: the
summary of the snapshot (score, band, days to renewal, ARR, active users,
seat utilization) or the finding's own metrics (unused seats, annual waste).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from domain.handoff import Handoff, HandoffContract
from domain.lean import MudaSeatMetrics, MuraMetrics, MuriMetrics, ShelfwareMetrics
from domain.narrative import (
    ChurnRiskFacts,
    MudaFacts,
    MuraFacts,
    MuriFacts,
    NarrativeFacts,
    NudgeFacts,
    PostMortemFacts,
    SavePlanFacts,
    TalkTrackFacts,
)
from domain.summary import AssessmentSummary, FindingLine, OpportunityLine

_OPPORTUNITY_LABEL = {
    "seats": "Additional seats",
    "module": "{key} module",
    "integration": "{key} integration",
}


def opportunity_label(o: OpportunityLine) -> str:
    """'Additional seats', 'automation module', 'integrations integration'."""
    return _OPPORTUNITY_LABEL[o.opportunity_type].format(key=o.key)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def common(handoff: Handoff, as_of: datetime) -> dict[str, Any]:
    """The fields every purpose shares: the account and its people."""
    return {
        "account_id": handoff.account_id,
        "account_name": handoff.name,
        "as_of": as_of.date().isoformat(),
        "csm_name": handoff.csm_owner,
        "csm_email": str(handoff.csm_email),
        "rep_name": handoff.rep_owner,
        "rep_email": str(handoff.rep_email) if handoff.rep_email else None,
        "stakeholders": [f"{x.name} ({x.title or x.role})" for x in handoff.stakeholders][:6],
    }


def churn_risk_facts(handoff: Handoff, summary: AssessmentSummary) -> ChurnRiskFacts:
    return ChurnRiskFacts(
        **common(handoff, summary.as_of),
        churn_level=summary.churn_level,
        score=summary.score,
        band=summary.band,
        coverage=round(summary.coverage, 2),
        days_to_renewal=summary.days_to_renewal,
        renewal_date=summary.renewal_date,
        arr=summary.arr,
        evidence=_unique([*summary.churn_flags, *summary.drivers]),
    )


def lean_facts(
    handoff: Handoff, summary: AssessmentSummary, finding: FindingLine
) -> MudaFacts | MuraFacts | MuriFacts:
    """The play's facts from the finding's typed metrics; a finding without them is a bug."""
    m = finding.metrics
    base = common(handoff, summary.as_of) | {
        "evidence": _unique(finding.evidence),
        "recommended_actions": [finding.play],
    }
    if isinstance(m, MudaSeatMetrics):
        return MudaFacts(
            **base,
            unused_seats=m.unused_seats,
            seats_purchased=m.seats_purchased,
            active_users=m.active_users,
            seat_utilization=m.utilization,
            activity_window_days=m.activity_window_days,
            price_per_seat=m.price_per_seat,
            annual_waste=m.annual_waste,
            framing=m.framing,
            days_to_renewal=m.days_to_renewal,
            renewal_date=m.renewal_date,
            arr=summary.arr,
        )
    if isinstance(m, ShelfwareMetrics):
        return MudaFacts(
            **base,
            idle_modules=m.idle_modules,
            annual_waste=m.annual_waste,
            framing=m.framing,
            days_to_renewal=m.days_to_renewal,
            renewal_date=m.renewal_date,
            arr=summary.arr,
        )
    if isinstance(m, MuraMetrics):
        return MuraFacts(
            **base,
            weekly_users_cv=m.weekly_cv,
            weekly_mean=m.weekly_mean,
            weeks=m.weeks,
            max_gap_days=m.max_gap_days,
            adoption_window_days=m.adoption_window_days,
        )
    if isinstance(m, MuriMetrics):
        return MuriFacts(
            **base,
            tickets_recent=m.tickets_recent,
            tickets_baseline=m.tickets_baseline,
            baseline_floor=m.baseline_floor,
            ticket_ratio=m.spike_ratio,
            ticket_window_days=m.ticket_window_days,
            days_to_renewal=m.days_to_renewal,
            renewal_date=summary.renewal_date,
            renewal_window_days=m.renewal_window_days,
            arr=summary.arr,
        )
    raise TypeError(f"finding {finding.finding_id} ({finding.kind}) carries no typed metrics")


def talk_track_facts(
    *,
    account_id: str,
    account_name: str,
    as_of: datetime,
    rep_name: str | None,
    rep_email: str,
    opportunities: list[OpportunityLine],
) -> TalkTrackFacts:
    """One talk track for every opportunity of one account, the largest first."""
    if not opportunities:
        raise ValueError("a talk track needs at least one opportunity")
    ranked = sorted(opportunities, key=lambda o: -o.estimated_arr_impact)
    top = ranked[0]
    return TalkTrackFacts(
        account_id=account_id,
        account_name=account_name,
        as_of=as_of.date().isoformat(),
        rep_name=rep_name,
        rep_email=rep_email,
        opportunity_type=top.opportunity_type,
        estimated_arr_impact=round(sum(o.estimated_arr_impact for o in ranked), 2),
        opportunities=[
            f"{opportunity_label(o)}: about ${o.estimated_arr_impact:,.0f} ARR" for o in ranked
        ],
        opportunity_types=list(dict.fromkeys(o.opportunity_type for o in ranked)),
        evidence=_unique([e for o in ranked for e in o.evidence]),
        recommended_actions=_unique([o.talk_track for o in ranked]),
    )


def save_plan_facts(
    *,
    account_id: str,
    account_name: str,
    as_of: datetime,
    csm_name: str,
    csm_email: str,
    reason: str,
    arr: float,
    renewal_date: date,
    score: float | None,
    band: str | None,
    churn_level: str | None,
    drivers: list[str],
    decision_due: date | None = None,
) -> SavePlanFacts:
    return SavePlanFacts(
        account_id=account_id,
        account_name=account_name,
        as_of=as_of.date().isoformat(),
        csm_name=csm_name,
        csm_email=csm_email,
        reason=reason,
        arr=arr,
        renewal_date=renewal_date,
        days_to_renewal=(renewal_date - as_of.date()).days,
        score=score,
        band=band,
        churn_level=churn_level,
        decision_due=decision_due,
        evidence=_unique(drivers),
    )


def post_mortem_facts(
    handoff: Handoff,
    contract: HandoffContract,
    as_of: datetime,
    *,
    reason: str | None,
    last_score: float | None,
    drivers: list[str],
    history: list[str],
) -> PostMortemFacts:
    return PostMortemFacts(
        **common(handoff, as_of),
        arr=contract.arr,
        churn_reason=reason,
        last_score=last_score,
        # A customer since the first term of the handoff, until the last term ended.
        tenure_days=(min(as_of.date(), contract.end_date) - handoff.contract.start_date).days,
        evidence=_unique([*drivers, *history]),
    )


def nudge_facts(
    handoff: Handoff,
    as_of: datetime,
    *,
    phase_label: str,
    days_in_phase: int,
    sla_days: int | None,
    missing: list[str],
    nudges_sent: int,
) -> NudgeFacts:
    return NudgeFacts(
        **common(handoff, as_of),
        phase=phase_label,
        days_in_phase=days_in_phase,
        sla_days=sla_days,
        missing=", ".join(missing),
        nudges_sent=nudges_sent,
        evidence=[f"Missing: {m}" for m in missing],
    )


__all__ = [
    "NarrativeFacts",
    "churn_risk_facts",
    "common",
    "lean_facts",
    "nudge_facts",
    "post_mortem_facts",
    "save_plan_facts",
    "talk_track_facts",
]
