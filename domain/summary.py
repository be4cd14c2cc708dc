"""AssessmentSummary: the compact projection of an Assessment a workflow keeps.

An account workflow records one of these per day in its history (activity
result) and in its state, so it holds only what the workflow decides on and
what a person reads in the Temporal UI: score, band, churn level and its
short evidence, drivers, findings and opportunities in one line each, the
decision. The full explained snapshot (every sub-score) is in Postgres
(``health_snapshots.payload``), keyed by (account_id, as_of).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.assess import Assessment, persistable_findings
from domain.facts import AccountFacts
from domain.format import clip
from domain.lean import LeanMetrics, lean_metrics

MAX_TEXT = 240  # one line of evidence; the full text is in the snapshot row


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return clip(text, limit)


class FindingLine(BaseModel):
    finding_id: str
    kind: Literal["muda", "mura", "muri", "churn", "expansion"]
    severity: Literal["low", "medium", "high"]
    title: str
    dollar_impact: float | None = None
    play: str
    # The numbers behind it, so the play drafted from the summary can cite them.
    evidence: list[str] = Field(default_factory=list)
    # The same numbers, typed: what the play's facts model is built from.
    metrics: LeanMetrics | None = None


class OpportunityLine(BaseModel):
    opportunity_id: str
    opportunity_type: Literal["seats", "module", "integration"]
    key: str
    estimated_arr_impact: float
    evidence: list[str] = Field(default_factory=list)
    talk_track: str


class DecisionLine(BaseModel):
    outcome: Literal["risk", "opportunity", "routine"]
    reasons: list[str] = Field(default_factory=list)


class AssessmentSummary(BaseModel):
    account_id: str
    as_of: datetime
    config_version: str
    score: float | None
    band: Literal["RED", "AMBER", "GREEN", "UNSCORED"] | None
    band_reason: str | None = None  # why UNSCORED
    coverage: float
    churn_level: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    churn_flags: list[str] = Field(default_factory=list)  # short evidence, one per flag
    drivers: list[str] = Field(default_factory=list)  # plain words, e.g. "active users fell ..."
    findings: list[FindingLine] = Field(default_factory=list)  # Lean muda/mura/muri only
    opportunities: list[OpportunityLine] = Field(default_factory=list)
    decision: DecisionLine
    days_to_renewal: int | None = None
    renewal_date: date | None = None
    arr: float | None = None
    active_users: int | None = None  # last activity window
    seat_utilization: float | None = None  # active_users / seats purchased
    data_issue_count: int = 0
    # For phases 1-3 (domain/onboarding.py): the latest week of the weekly active users
    # series, distinct users per feature (adoption window) and the windows' lengths.
    weekly_active_users: int | None = None
    feature_users: dict[str, int] | None = None
    activity_window_days: int | None = None
    adoption_window_days: int | None = None

    @property
    def total_waste(self) -> float:
        """Dollars a year of the Lean findings that carry a figure."""
        return sum(f.dollar_impact or 0.0 for f in self.findings)


def summarize(assessment: Assessment, facts: AccountFacts | None = None) -> AssessmentSummary:
    """The summary of one assessment. `facts` (those it was computed from) add ARR, active
    users and seat utilization, which the assessment itself does not carry."""
    a = assessment
    snap, churn = a.snapshot, a.churn
    contract = facts.contract if facts is not None else None
    active = facts.active_users if facts is not None else None
    utilization = (
        round(active / contract.seats_purchased, 4)
        if contract is not None and active is not None and contract.seats_purchased > 0
        else None
    )
    return AssessmentSummary(
        account_id=a.account_id,
        as_of=snap.as_of,
        config_version=snap.config_version,
        score=snap.score,
        band=snap.band,
        band_reason=snap.band_reason,
        coverage=snap.coverage,
        churn_level=churn.level,
        churn_flags=[_clip(f.evidence) for f in churn.flags],
        drivers=[_clip(d.text) for d in snap.drivers],
        findings=[
            FindingLine(
                finding_id=f.finding_id,
                kind=f.kind,
                severity=f.severity,
                title=_clip(f.title),
                dollar_impact=f.dollar_impact,
                play=f.play,
                evidence=[_clip(e) for e in f.evidence[:5]],
                metrics=lean_metrics(f),
            )
            for f in a.findings
        ],
        opportunities=[
            OpportunityLine(
                opportunity_id=o.opportunity_id,
                opportunity_type=o.opportunity_type,
                key=o.key,
                estimated_arr_impact=o.estimated_arr_impact,
                evidence=[_clip(e) for e in o.evidence],
                talk_track=_clip(o.talk_track, 600),
            )
            for o in a.opportunities
        ],
        decision=DecisionLine(
            outcome=a.decision.outcome, reasons=[_clip(r) for r in a.decision.reasons]
        ),
        days_to_renewal=churn.days_to_renewal,
        renewal_date=churn.renewal_date,
        arr=contract.arr if contract is not None else None,
        active_users=active,
        seat_utilization=utilization,
        data_issue_count=len(snap.data_issues),
        weekly_active_users=(
            facts.weekly_active_users[-1]
            if facts is not None and facts.weekly_active_users
            else None
        ),
        feature_users=dict(facts.feature_users)
        if facts is not None and facts.feature_users
        else None,
        activity_window_days=facts.windows.activity_days if facts is not None else None,
        adoption_window_days=facts.windows.adoption_days if facts is not None else None,
    )


def persisted_finding_ids(assessment: Assessment) -> list[str]:
    """The ids ``save_assessment`` writes to ``findings`` (Lean, churn, expansion)."""
    return [f.finding_id for f in persistable_findings(assessment)]
