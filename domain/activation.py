"""Value Activation: time to first value, per account and per cohort (pure, no I/O, no clock).

Time to first value (TTFV) is the whole days from the Sales handoff to the
``first_value`` milestone (reached from telemetry, >= 40% of seats active,
or marked by a person). An account imported with ``first_value`` already
reached has no TTFV (it was reached before the system knew it). Cohorts group
accounts by the month or quarter of their handoff, or by tier; an account
still waiting counts as pending, with how long it has waited at ``as_of``.
"""

from __future__ import annotations

import statistics
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from domain.health import round_half_up

CohortBy = Literal["month", "quarter", "tier"]


class TtfvRecord(BaseModel):
    account_id: str
    tier: str | None = None
    handed_off_on: date
    first_value_on: date | None = None  # None: not reached yet


class TtfvCohort(BaseModel):
    cohort: str
    accounts: int
    reached: int
    pending: int
    median_days: float | None = None  # of those that reached first value
    mean_days: float | None = None
    fastest_days: int | None = None
    slowest_days: int | None = None
    longest_wait_days: int | None = None  # the pending account waiting longest, at as_of


def time_to_first_value(handed_off_on: date, first_value_on: date | None) -> int | None:
    """Whole days from handoff to first value; None while not reached."""
    if first_value_on is None:
        return None
    return max((first_value_on - handed_off_on).days, 0)


def _cohort_key(r: TtfvRecord, by: CohortBy) -> str:
    d = r.handed_off_on
    if by == "month":
        return f"{d.year}-{d.month:02d}"
    if by == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    return r.tier or "no tier"


def ttfv_cohorts(records: list[TtfvRecord], by: CohortBy, as_of: date) -> list[TtfvCohort]:
    """One row per cohort, in cohort order; only handoffs on or before ``as_of`` count."""
    groups: dict[str, list[TtfvRecord]] = {}
    for r in records:
        if r.handed_off_on <= as_of:
            groups.setdefault(_cohort_key(r, by), []).append(r)
    out = []
    for key in sorted(groups):
        rs = groups[key]
        days = [
            d
            for r in rs
            if r.first_value_on is not None and r.first_value_on <= as_of
            for d in [time_to_first_value(r.handed_off_on, r.first_value_on)]
            if d is not None
        ]
        waits = [
            (as_of - r.handed_off_on).days
            for r in rs
            if r.first_value_on is None or r.first_value_on > as_of
        ]
        out.append(
            TtfvCohort(
                cohort=key,
                accounts=len(rs),
                reached=len(days),
                pending=len(waits),
                median_days=round_half_up(float(statistics.median(days)), 1) if days else None,
                mean_days=round_half_up(sum(days) / len(days), 1) if days else None,
                fastest_days=min(days) if days else None,
                slowest_days=max(days) if days else None,
                longest_wait_days=max(waits) if waits else None,
            )
        )
    return out


# ------------------------------------------------------------ adoption campaigns


class FeatureGap(BaseModel):
    """A licensed feature of the adoption scorecard, and who would use it.

    ``rate`` and ``benchmark`` are shares of the adoption window's active users
    (``domain/health.py:feature_adoption_scorecard``). The audience: active
    users of the same module who have not used the feature in the window (the
    team already working in that module), else every active user who has not.
    """

    module: str
    event_type: str
    label: str
    users: int
    rate: float
    benchmark: float
    audience: int = 0  # users the campaign is for
    audience_sample: list[str] = Field(default_factory=list)  # their emails or user ids
    audience_roles: dict[str, int] = Field(default_factory=dict)  # role -> users


class CampaignPick(BaseModel):
    features: list[FeatureGap]
    skipped: list[str] = Field(default_factory=list)  # "<label>: campaigned on <date>"


def campaign_features(
    gaps: list[FeatureGap],
    last_campaign: dict[str, date],
    as_of: date,
    *,
    underused_share: float,
    interval_days: int,
    limit: int = 3,
) -> CampaignPick:
    """The under-used features a campaign is due for: below ``underused_share`` of their
    benchmark (the QBR scorecard's rule), with someone to address, not campaigned within
    ``interval_days``; the largest gaps first, at most ``limit``."""
    due: list[FeatureGap] = []
    skipped: list[str] = []
    for g in sorted(gaps, key=lambda g: (-(g.benchmark - g.rate), g.event_type)):
        if g.rate >= g.benchmark * underused_share or g.audience == 0:
            continue
        last = last_campaign.get(g.event_type)
        if last is not None and (as_of - last).days < interval_days:
            skipped.append(f"{g.label}: campaigned on {last}")
            continue
        due.append(g)
    return CampaignPick(features=due[:limit], skipped=skipped)
