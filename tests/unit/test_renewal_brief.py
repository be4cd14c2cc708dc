"""The renewal checkpoint brief quotes the forecast of its checkpoint (hand-computed cases)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.forecast import CsmSentiment, ForecastInput, forecast_renewal
from domain.handoff import Handoff
from domain.narrative import render_template
from domain.renewal_brief import one_in, renewal_brief_facts

AS_OF = datetime(2026, 12, 1, 9, tzinfo=UTC)
END = date(2027, 3, 1)  # 90 days after 2026-12-01
HANDOFF = Handoff.model_validate(
    {
        "account_id": "acme",
        "name": "Acme Corp",
        "tier": "tier-2",
        "csm_owner": "Dana Reyes",
        "csm_email": "dana@example.com",
        "contract": {
            "start_date": "2026-03-01",
            "end_date": END.isoformat(),
            "arr": 48000,
            "seats_purchased": 80,
            "price_per_seat": 600,
        },
    }
)


def test_odds_are_the_rounded_reciprocal() -> None:
    assert one_in(0.125) == "about 1 in 8"
    assert one_in(0.3) == "about 1 in 3"  # 3.33
    assert one_in(0.4) == "about 1 in 3"  # 2.5 rounds half up
    assert one_in(0.07) == "about 1 in 14"  # 14.29
    assert one_in(0.0) == "no churn observed in its band"
    assert one_in(None) is None


def _brief(  # type: ignore[no-untyped-def]
    p: float | None,
    sentiment: CsmSentiment | None = None,
    reason: str | None = None,
    *,
    band: str = "AMBER",
    score: float = 61,
    churn_level: str = "MEDIUM",
):
    f = forecast_renewal(
        ForecastInput(
            account_id="acme",
            as_of=AS_OF.date(),
            renewal_date=END,
            days_before_end=90,
            arr=48000,
            band=band,
            score=score,
            churn_level=churn_level,
            churn_probability=p,
            probability_horizon_days=365 if p is not None else None,
            sentiment=sentiment,
        )
    )
    facts = renewal_brief_facts(
        HANDOFF,
        AS_OF,
        checkpoint_days=90,
        days_to_renewal=(END - AS_OF.date()).days,
        forecast=f,
        score=score,
        band=band,
        churn_level=churn_level,
        arr=48000,
        renewal_date=END,
        call_reason=reason,
    )
    return facts, render_template(facts)


def test_the_brief_quotes_category_probability_as_odds_and_the_reasons() -> None:
    facts, out = _brief(0.125)
    assert facts.forecast_category == "likely" and facts.data_category is None
    assert out.headline == "Acme Corp: renewal in 90 days (2027-03-01), forecast likely"
    para = out.paragraphs[0]
    assert "with ARR of $48,000; at this T-90d checkpoint the forecast is likely" in para
    assert "AMBER band is 13% (about 1 in 8) within 365 days" in para
    assert "No CSM call is in force" in para
    assert out.bullets == [
        "Why: churn risk MEDIUM",
        "Why: calibrated churn probability 13% for AMBER within 365 days",
    ]
    assert out.actions[0] == "Close the open risks before the next checkpoint"


def test_a_csm_call_that_moved_the_category_is_quoted_with_its_reason() -> None:
    call = CsmSentiment(
        value="at_risk",
        reason="new CFO reviews every tool",
        author="Dana Reyes",
        expires_on=date(2027, 1, 31),
        recorded_at=AS_OF,
    )
    facts, out = _brief(None, call, "new CFO reviews every tool")
    assert (facts.forecast_category, facts.data_category) == ("at risk", "likely")
    para = out.paragraphs[0]
    assert "the forecast is at risk (from the data alone: likely)" in para
    assert "No calibrated churn probability exists for its band" in para
    assert "scores 61/100 (AMBER) and churn risk MEDIUM" in para
    assert "at_risk by Dana Reyes (until 2027-01-31): new CFO reviews every tool" in para
    assert out.actions[0] == "Agree a save plan with the account rep and the executive sponsor"


def test_without_a_forecast_the_brief_says_it_could_not_be_recorded() -> None:
    facts = renewal_brief_facts(
        HANDOFF,
        AS_OF,
        checkpoint_days=60,
        days_to_renewal=90,
        forecast=None,
        score=None,
        band=None,
        churn_level=None,
        arr=48000,
        renewal_date=END,
    )
    out = render_template(facts)
    assert out.headline.endswith("forecast not recorded")
    assert "the forecast of the T-60d checkpoint could not be recorded" in out.paragraphs[0]


def test_an_unscored_band_is_not_told_as_a_health_score() -> None:
    """'it scores 67/100 (UNSCORED)' read as health; too little data says so instead."""
    _, out = _brief(None, band="UNSCORED", score=67, churn_level="LOW")
    para = out.paragraphs[0]
    assert "67/100" not in para and "scores" not in para
    assert "it is UNSCORED (too little data for a health score) and churn risk LOW" in para
