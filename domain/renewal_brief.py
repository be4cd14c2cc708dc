"""The renewal checkpoint brief: the forecast recorded at a 120/90/60/30-day checkpoint
(``domain/forecast.py``) as typed facts for the CSM's draft (pure, no I/O, no clock)."""

from __future__ import annotations

from datetime import date, datetime

from domain.draft_facts import common
from domain.forecast import CATEGORY_LABELS, Category, RenewalForecast
from domain.handoff import Handoff
from domain.health import one_in_n
from domain.narrative import RenewalBriefFacts

# The play of each forecast category: the brief's next steps.
CATEGORY_PLAYS: dict[Category, list[str]] = {
    "commit": [
        "Confirm the renewal paperwork and the signer with the account rep",
        "Prepare the value recap for the renewal conversation",
    ],
    "likely": [
        "Close the open risks before the next checkpoint",
        "Confirm the decision maker and the timeline with the sponsor",
    ],
    "at_risk": [
        "Agree a save plan with the account rep and the executive sponsor",
        "Book an executive call before the next checkpoint",
    ],
    "lost": [
        "Confirm the notice and plan the offboarding with the account rep",
        "Record why the customer leaves, for the post-mortem",
    ],
}


def one_in(p: float | None) -> str | None:
    """A probability as odds a reader remembers: 0.125 -> 'about 1 in 8'."""
    if p is None:
        return None
    if p <= 0:
        return "no churn observed in its band"
    return f"about 1 in {one_in_n(p)}"


def renewal_brief_facts(
    handoff: Handoff,
    as_of: datetime,
    *,
    checkpoint_days: int,
    days_to_renewal: int,
    forecast: RenewalForecast | None,
    score: float | None,
    band: str | None,
    churn_level: str | None,
    arr: float,
    renewal_date: date,
    call_reason: str | None = None,
) -> RenewalBriefFacts:
    """``forecast`` None: the forecast step failed; the brief still goes, saying so.
    ``call_reason``: the reason of the CSM's call that fed the forecast."""
    f = forecast
    call = None
    if f is not None and f.sentiment is not None:
        call = f"{f.sentiment} by {f.sentiment_author} (until {f.sentiment_expires_on})" + (
            f": {call_reason}" if call_reason else ""
        )
    return RenewalBriefFacts(
        **common(handoff, as_of),
        checkpoint_days=checkpoint_days,
        days_to_renewal=days_to_renewal,
        renewal_date=renewal_date,
        arr=arr,
        score=score,
        band=band,
        churn_level=churn_level,
        forecast_category=f.label if f is not None else None,
        data_category=(
            CATEGORY_LABELS[f.data_category]
            if f is not None and f.data_category != f.category
            else None
        ),
        churn_probability=f.churn_probability if f is not None else None,
        churn_odds=one_in(f.churn_probability) if f is not None else None,
        probability_horizon_days=f.probability_horizon_days if f is not None else None,
        csm_call=call,
        evidence=list(f.reasons)
        if f is not None
        else ["the forecast step failed: see the timeline"],
        recommended_actions=CATEGORY_PLAYS[f.category] if f is not None else [],
    )
