"""The renewal forecast rule (domain/forecast.py) on hand-built cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.forecast import (
    CsmSentiment,
    ForecastInput,
    RenewalForecast,
    forecast_renewal,
    forecast_table,
)

AS_OF = date(2027, 1, 31)
RENEWAL = date(2027, 4, 1)  # 60 days later


def inp(**kw: object) -> ForecastInput:
    base: dict[str, object] = {
        "account_id": "acme",
        "as_of": AS_OF,
        "renewal_date": RENEWAL,
        "days_before_end": 60,
        "arr": 50_000,
        "band": "GREEN",
        "score": 82.0,
        "churn_level": "LOW",
    }
    base.update(kw)
    return ForecastInput.model_validate(base)


def call(value: str, expires_on: date = date(2027, 3, 1)) -> CsmSentiment:
    return CsmSentiment(
        value=value,  # type: ignore[arg-type]
        reason="exec sponsor said so",
        author="Dana Reyes",
        expires_on=expires_on,
        recorded_at=datetime(2027, 1, 20, tzinfo=UTC),
    )


def test_a_notice_on_file_is_lost_and_no_call_lifts_it() -> None:
    f = forecast_renewal(inp(notice_on=date(2027, 1, 10), sentiment=call("positive")))
    assert (f.category, f.data_category) == ("lost", "lost")
    assert "customer gave notice on 2027-01-10" in f.reasons[0]
    # a notice dated after as_of is not known yet: GREEN + LOW -> commit
    assert forecast_renewal(inp(notice_on=date(2027, 2, 15))).category == "commit"


def test_the_calibrated_probability_decides_at_its_thresholds() -> None:
    # 30% churned within 90 days in AMBER: at risk even with MEDIUM churn risk
    f = forecast_renewal(
        inp(band="AMBER", churn_level="MEDIUM", churn_probability=0.30, probability_horizon_days=90)
    )
    assert f.category == "at_risk"
    assert any("30%" in r and "AMBER" in r for r in f.reasons)
    # 10% exactly, LOW, nothing open: commit; 11%: likely
    assert forecast_renewal(inp(churn_probability=0.10, probability_horizon_days=90)).category == (
        "commit"
    )
    assert forecast_renewal(inp(churn_probability=0.11, probability_horizon_days=90)).category == (
        "likely"
    )
    # the probability, not the band, decides when there is one: RED with a 5% rate is commit
    f = forecast_renewal(inp(band="RED", churn_probability=0.05, probability_horizon_days=90))
    assert f.category == "commit"


def test_without_a_calibration_the_band_and_churn_level_decide() -> None:
    assert forecast_renewal(inp()).category == "commit"  # GREEN, LOW
    assert forecast_renewal(inp(band="AMBER")).category == "likely"
    assert forecast_renewal(inp(band="RED")).category == "at_risk"
    assert forecast_renewal(inp(churn_level="HIGH")).category == "at_risk"
    assert forecast_renewal(inp(churn_level="CRITICAL", band="GREEN")).category == "at_risk"
    assert forecast_renewal(inp(churn_level="MEDIUM")).category == "likely"
    # never scored (no snapshot yet): likely, and it says why
    f = forecast_renewal(inp(band=None, score=None, churn_level=None))
    assert f.category == "likely" and "churn risk not assessed" in f.reasons


def test_an_open_high_severity_finding_keeps_it_from_commit() -> None:
    f = forecast_renewal(inp(open_risks=["Support overload: 9 tickets in 30 days"]))
    assert f.category == "likely" and f.open_risks == 1
    assert any("Support overload" in r for r in f.reasons)


def test_the_csm_call_moves_the_forecast_within_its_bounds_and_says_so() -> None:
    # at_risk: at least at risk
    f = forecast_renewal(inp(sentiment=call("at_risk")))
    assert (f.data_category, f.category) == ("commit", "at_risk")
    assert f.sentiment == "at_risk" and f.sentiment_author == "Dana Reyes"
    assert "CSM call at_risk by Dana Reyes moved it at risk" in f.reasons[-1]
    # concerned: commit -> likely; likely stays likely
    assert forecast_renewal(inp(sentiment=call("concerned"))).category == "likely"
    assert forecast_renewal(inp(band="AMBER", sentiment=call("concerned"))).category == "likely"
    # positive: likely -> commit, never out of at risk
    f = forecast_renewal(inp(band="AMBER", sentiment=call("positive")))
    assert (f.data_category, f.category) == ("likely", "commit")
    f = forecast_renewal(inp(band="RED", sentiment=call("positive")))
    assert (f.data_category, f.category) == ("at_risk", "at_risk")
    assert "left it at risk" in f.reasons[-1]
    # neutral changes nothing
    assert forecast_renewal(inp(band="AMBER", sentiment=call("neutral"))).category == "likely"
    # the score and churn level are carried as computed, whatever the call
    f = forecast_renewal(inp(sentiment=call("at_risk")))
    assert (f.score, f.band, f.churn_level) == (82.0, "GREEN", "LOW")


def test_an_expired_call_is_ignored() -> None:
    # expires on as_of: no longer in force that day
    f = forecast_renewal(inp(sentiment=call("at_risk", expires_on=AS_OF)))
    assert f.category == "commit" and f.sentiment is None
    f = forecast_renewal(inp(sentiment=call("at_risk", expires_on=date(2027, 2, 1))))
    assert f.category == "at_risk"  # the day before it expires it still counts


def _f(account: str, category: str, arr: float) -> RenewalForecast:
    return RenewalForecast(
        account_id=account,
        as_of=AS_OF,
        renewal_date=RENEWAL,
        days_before_end=60,
        arr=arr,
        category=category,  # type: ignore[arg-type]
        data_category=category,  # type: ignore[arg-type]
        reasons=[],
    )


def test_the_portfolio_table_counts_accounts_and_arr_by_category_and_csm() -> None:
    rows = [
        _f("a", "commit", 100_000),
        _f("b", "commit", 20_000),
        _f("c", "at_risk", 50_000),
        _f("d", "lost", 5_000),
    ]
    owners = {"a": "Dana", "b": "Lee", "c": "Dana"}  # d has no CSM on file
    t = forecast_table(rows, owners)
    # all: commit 2 accounts / 120k; likely 0; at risk 1 / 50k; lost 1 / 5k
    assert (t["all"]["commit"].accounts, t["all"]["commit"].arr) == (2, 120_000)
    assert t["all"]["likely"].accounts == 0
    assert (t["all"]["at_risk"].accounts, t["all"]["at_risk"].arr) == (1, 50_000)
    assert (t["all"]["lost"].accounts, t["all"]["lost"].arr) == (1, 5_000)
    # Dana: commit a 100k, at risk c 50k; Lee: commit b 20k; (unassigned): lost d 5k
    assert (t["Dana"]["commit"].arr, t["Dana"]["at_risk"].arr) == (100_000, 50_000)
    assert t["Lee"]["commit"].accounts == 1 and t["Lee"]["at_risk"].accounts == 0
    assert t["(unassigned)"]["lost"].arr == 5_000


def test_the_sentiment_update_refuses_what_its_sinks_cannot_carry() -> None:
    import pytest
    from pydantic import ValidationError

    from domain.messages import SentimentUpdate

    ok = {
        "value": "concerned",
        "reason": "CFO review",
        "author": "Dana",
        "expires_on": "2027-02-01",
    }
    assert SentimentUpdate.model_validate(ok).value == "concerned"
    for field, bad, why in (
        ("value", "great", "'positive', 'neutral', 'concerned' or 'at_risk'"),
        ("reason", "line one\r\nBcc: x@example.com", "line break or control character"),
        ("reason", "nul\x00", "control character"),
        ("reason", "x" * 501, "at most 500 characters"),
        ("reason", "", "at least 1 character"),
        ("author", "a\nb", "line break"),
        ("expires_on", "next week", "valid date"),
    ):
        with pytest.raises(ValidationError) as err:
            SentimentUpdate.model_validate({**ok, field: bad})
        assert why in str(err.value), (field, bad, str(err.value))
