"""The renewal checkpoint brief (orchestration only; facts in ``domain/renewal_brief.py``).

At the 120/90/60/30-day checkpoints the account workflow records the renewal forecast
after the renewal-window playbook; ``brief`` then drafts the CSM's brief quoting that
forecast (category, calibrated churn probability as "1 in N", the CSM's call, the reasons).
At 90/60/30 days it replaces the plain renewal-window digest line (``replaces_window``).
Behind ``RENEWAL_BRIEF_PATCH``: histories recorded before it replay unchanged.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import lifecycle as lc
    from domain.forecast import FORECAST_CHECKPOINT_DAYS, RenewalForecast
    from domain.renewal_brief import renewal_brief_facts
    from workflows.context import PlaybookContext
    from workflows.drafting import draft_for_csm, publish

# workflow.patched id: the renewal brief quoting the forecast (never reuse or rename it).
RENEWAL_BRIEF_PATCH = "renewal-brief-quotes-forecast"


def replaces_window(cp: lc.Checkpoint) -> bool:
    """True: this checkpoint's forecast brief is drafted, so the window line is not."""
    return cp.days_before_end in FORECAST_CHECKPOINT_DAYS and workflow.patched(RENEWAL_BRIEF_PATCH)


async def brief(ctx: PlaybookContext, cp: lc.Checkpoint, forecast: RenewalForecast | None) -> None:
    """The brief of checkpoint ``cp``; ``forecast`` None: its forecast could not be recorded."""
    if not replaces_window(cp):
        return
    s = ctx.s
    if forecast is None and s.db_retry_at is not None:
        ctx.log("decision", f"no renewal brief at {cp.label}: Postgres is unavailable")
        return
    now = workflow.now()
    days_left = (s.contract.end_date - now.date()).days
    sentiment = (
        s.sentiment if s.sentiment is not None and s.sentiment.in_force(now.date()) else None
    )
    facts = renewal_brief_facts(
        s.handoff,
        now,
        checkpoint_days=cp.days_before_end or 0,
        days_to_renewal=days_left,
        forecast=forecast,
        score=s.score,
        band=s.band,
        churn_level=s.churn_level,
        arr=s.contract.arr,
        renewal_date=s.contract.end_date,
        call_reason=sentiment.reason
        if sentiment is not None and forecast is not None and forecast.sentiment
        else None,
    )
    await draft_for_csm(
        ctx,
        facts,
        category="renewal",
        occurrence=cp.key,
        subject=f"Renewal in {days_left} days: {s.handoff.name}, "
        f"forecast {facts.forecast_category or 'not recorded'}",
    )
    await publish(
        ctx,
        "renewal.brief",
        {
            "days_before_end": cp.days_before_end,
            "category": forecast.category if forecast else None,
            "days_to_renewal": days_left,
        },
        cp.key,
    )
